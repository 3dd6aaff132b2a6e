"""The README's runnable example runs, and the README's commands are the ones CI runs."""

from __future__ import annotations

import pathlib
import re

import jax

import lrjax

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_plateau_example_runs_and_reduces_the_rate(capsys):
    (block,) = [
        b
        for b in re.findall(r"```python\n(.*?)```", README, re.S)
        if b.startswith("import jax, jax.numpy")
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


def test_ci_runs_the_readme_commands():
    commands = re.findall(r"```bash\n(.*?)```", README, re.S)
    assert 'pip install -e ".[examples]" && python -m lrjax demo\n' in commands
    assert 'pip install -e ".[test]" && pytest\n' in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest\n' in ci
    assert "pip install torch==2.13.0\n" in ci
