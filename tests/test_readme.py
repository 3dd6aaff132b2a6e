"""The README's runnable example runs, and the README's commands are the ones CI runs."""

from __future__ import annotations

import pathlib
import re

import jax
import numpy as np
import pytest

import lrjax

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_plateau_example_runs_and_reduces_the_rate(capsys):
    (block,) = [
        b
        for b in re.findall(r"```python\n(.*?)```", README, re.S)
        if "reduce_on_plateau" in b and b.startswith("import jax, jax.numpy")
    ]
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"):  # README code is written for the default mode
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5
    state = namespace["state"]
    assert float(state[1].scale) < 1.0  # the plateau reduced the rate
    assert float(namespace["loss"]) < 0.02  # and the model fitted (noise floor 0.01)
    assert float(lrjax.current_learning_rate(state)) < 1e-3


def test_flax_example_trains_and_reports_the_scheduled_rate():
    pytest.importorskip("flax")  # in the test extra; the example needs it, lrjax does not
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "nnx." in b]
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(block, "README.md", "exec"), namespace)
    optimizer = namespace["optimizer"]
    schedule = namespace["schedule"]
    # y has variance 3.4 and no noise: the fitted model leaves about 2e-5 (weight decay biases it)
    assert float(namespace["loss"]) < 1e-3
    rate = lrjax.current_learning_rate(optimizer.opt_state)
    np.testing.assert_allclose(rate, schedule(999), rtol=1e-6)


def test_fine_tuning_example_runs_with_layerwise_rates(capsys):
    (block,) = [
        b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "layerwise_decay(" in b
    ]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    # The peaks, layer by layer, as the README says they print.
    assert printed[0] in " ".join(README.split())
    rates = lrjax.current_learning_rate(namespace["opt_state"])
    assert sorted(rates) == list(range(6))
    peaks = [1e-3 * 0.65 ** (5 - layer) for layer in range(6)]
    schedule_end = [float(rates[layer]) / peak for layer, peak in enumerate(peaks)]
    np.testing.assert_allclose(schedule_end, schedule_end[0], rtol=1e-5)  # one schedule, scaled
    assert float(namespace["loss"]) < 0.8  # trained: chance is log(3) = 1.10


def test_ci_runs_the_readme_commands():
    commands = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert 'pip install -e ".[examples]" && python -m lrjax demo\n' in commands
    assert 'pip install -e ".[test]" && pytest\n' in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest\n' in ci
    assert "pip install torch==2.13.0\n" in ci
