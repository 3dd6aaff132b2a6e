"""Every Python block of the README runs as written, and the README's commands are CI's."""

from __future__ import annotations

import ast
import os
import pathlib
import re
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import run_example

import lrjax

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)

# Each block is found by a string only it contains; every block must have one, so a new
# block fails test_every_python_block_is_run until a test below runs it.
MARKERS = {
    "first_look": "optax.clip_by_global_norm(1.0), lrjax.adam(schedule)",
    "flax": "nnx.Optimizer(",
    "fine_tuning": "lrjax.layerwise_decay(",
    "learning_rate_free": "lrjax.prodigy()",
    "plateau": "lrjax.reduce_on_plateau(",
    "finder": "lrjax.find_learning_rate(",
    "grid_sweep": "result.configs[0]",
    "hosts": "jax.distributed.initialize(",  # a script: run as one, in a subprocess
}


def block(name: str) -> str:
    (found,) = [b for b in BLOCKS if MARKERS[name] in b]
    return found


def run(source: str, namespace: dict | None = None) -> dict:
    return run_example(source, "README.md", namespace)


def comment(source: str, expression: str) -> str:
    """The comment that follows a line ``expression  # ...`` of the block."""
    (line,) = [line for line in source.splitlines() if line.startswith(expression + "  # ")]
    return line.split("  # ", 1)[1]


def test_every_python_block_is_run():
    found = []
    for source in BLOCKS:
        names = [name for name, marker in MARKERS.items() if marker in source]
        assert len(names) == 1, f"{names} mark the block {source[:200]!r}"
        found += names
    assert sorted(found) == sorted(MARKERS)  # one block each, 8 in all
    assert len(BLOCKS) == 8


def test_first_look_trains_and_reads_the_last_rate():
    namespace = run(block("first_look"))
    state, schedule, params = namespace["state"], namespace["schedule"], namespace["params"]
    # The rate the 1000th update applied, as the comment says, not the next one's.
    np.testing.assert_allclose(lrjax.current_learning_rate(state), schedule(999), rtol=1e-6)
    assert float(lrjax.current_learning_rate(state)) > 0.0
    assert float(namespace["loss"]) < 0.03  # fitted: the noise floor is 0.01
    rates = lrjax.effective_learning_rates(state)
    assert jax.tree.structure(rates) == jax.tree.structure(params)
    assert all(bool(jnp.all(r > 0)) for r in jax.tree.leaves(rates))


def test_flax_example_trains_and_reports_the_scheduled_rate():
    pytest.importorskip("flax")  # in the test extra; the example needs it, lrjax does not
    namespace = run(block("flax"))
    optimizer = namespace["optimizer"]
    schedule = namespace["schedule"]
    # y has variance 3.4 and no noise: the fitted model leaves about 2e-5 (weight decay biases it)
    assert float(namespace["loss"]) < 1e-3
    rate = lrjax.current_learning_rate(optimizer.opt_state)
    np.testing.assert_allclose(rate, schedule(999), rtol=1e-6)


def test_fine_tuning_example_runs_with_layerwise_rates(capsys):
    namespace: dict = {}
    exec(compile(block("fine_tuning"), "README.md", "exec"), namespace)  # strict promotion too
    printed = capsys.readouterr().out.splitlines()
    # The peaks, layer by layer, as the README says they print.
    assert printed[0] in " ".join(README.split())
    rates = lrjax.current_learning_rate(namespace["opt_state"])
    assert sorted(rates) == list(range(6))
    peaks = [1e-3 * 0.65 ** (5 - layer) for layer in range(6)]
    schedule_end = [float(rates[layer]) / peak for layer, peak in enumerate(peaks)]
    np.testing.assert_allclose(schedule_end, schedule_end[0], rtol=1e-5)  # one schedule, scaled
    assert float(namespace["loss"]) < 0.8  # trained: chance is log(3) = 1.10


def test_learning_rate_free_example_learns_its_step_size():
    source = block("learning_rate_free")
    prodigy, schedule_free = source.split("tx = lrjax.schedule_free_adamw(")
    namespace = run(prodigy)  # the whole block runs, in two parts, in one namespace
    loss_fn, everything = namespace["loss_fn"], (namespace["inputs"], namespace["targets"])
    everything = tuple(a.reshape(-1, *a.shape[2:]) for a in everything)
    # Prodigy's d grew from d0 = 1e-6 to a step size that fits (noise floor 0.01).
    rate = float(lrjax.current_learning_rate(namespace["state"]))
    assert rate > 1e-2
    assert float(loss_fn(namespace["params"], everything)) < 0.03
    effective = lrjax.effective_learning_rates(namespace["state"])
    assert effective.shape == (8,) and bool(jnp.all(effective > 0))

    run("tx = lrjax.schedule_free_adamw(" + schedule_free, namespace)
    params, eval_params = namespace["params"], namespace["eval_params"]
    assert not np.allclose(eval_params, params)  # the average x is not the iterate y
    assert float(loss_fn(eval_params, everything)) < 0.011


def test_plateau_example_runs_and_reduces_the_rate(capsys):
    namespace = run(block("plateau"))
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5
    state = namespace["state"]
    assert float(state[1].scale) < 1.0  # the plateau reduced the rate
    assert float(namespace["loss"]) < 0.02  # and the model fitted (noise floor 0.01)
    assert float(lrjax.current_learning_rate(state)) < 1e-3


def test_finder_example_suggests_and_sweeps():
    plt = pytest.importorskip("matplotlib.pyplot")
    source = block("finder")
    try:
        namespace = run(source)
    finally:
        plt.close("all")
    result, swept, tuned = namespace["result"], namespace["swept"], namespace["tuned"]
    assert 1e-7 < result.suggestion < 10.0
    assert set(result.suggestions) == {"bottom", "steepest", "valley", "minimum"}
    assert result.suggestion == result.suggestions["bottom"]
    assert tuned.learning_rate == tuned.rounds[-1].learning_rates[
        tuned.rounds[-1].scores.argmin()
    ].astype("float32")
    assert tuned.steps_used <= 5 * 300
    # The values the comment shows.
    shown = f"{swept.best_learning_rate}, {swept.losses.shape}: [K, T]"
    assert comment(source, "swept.best_learning_rate, swept.losses.shape") == shown
    best = swept.learning_rates.tolist().index(swept.best_learning_rate)
    assert swept.final_losses[best] < 0.2 < swept.losses[best, 0]  # it trained (log 4 = 1.39)


def test_grid_sweep_example_shows_what_it_returns():
    plt = pytest.importorskip("matplotlib.pyplot")
    source = block("grid_sweep")
    try:
        namespace = run(source)
        axes = namespace["result"].plot(kind="final")  # the block's last line, kept
        _, labels = axes.get_legend_handles_labels()
        lines = [label for label in labels if label.startswith("weight_decay=")]
        assert lines == ["weight_decay=0", "weight_decay=0.1"]  # a line per weight decay
    finally:
        plt.close("all")
    result = namespace["result"]
    assert comment(source, "result.best") == f"{result.best}, as given"
    assert comment(source, "result.configs[0]") == str(result.configs[0])
    assert comment(source, "result.losses.shape") == f"{result.losses.shape}: one row per run"
    assert result.mean_scores.shape == result.spread_scores.shape == (6,)
    assert np.all(np.isfinite(result.mean_scores))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hosts_script_runs_as_a_job_of_one_process(tmp_path):
    """The script as written, with jax.distributed on one local CPU process: it prints the
    best configuration, the one the README's single-process sweep shows. (Two processes
    splitting a sweep are test_sweep_scale.py's.)"""
    (tmp_path / "sweep_hosts.py").write_text(block("hosts"))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "sweep_hosts.py", "0", "1", f"127.0.0.1:{_free_port()}"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # gloo may announce its connections on stdout; the script prints one line.
    printed = [line for line in done.stdout.splitlines() if not line.startswith("[Gloo]")]
    shown = comment(block("grid_sweep"), "result.best").removesuffix(", as given")
    assert [ast.literal_eval(line) for line in printed] == [ast.literal_eval(shown)]


def test_ci_runs_the_readme_commands():
    commands = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert 'pip install -e ".[examples]" && python -m lrjax demo\n' in commands
    assert 'pip install -e ".[test]" && pytest\n' in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest\n' in ci
    assert "pip install torch==2.13.0\n" in ci
