"""Optimizer state follows the parameters' sharding, on 8 fake CPU devices.

The devices must be configured before JAX starts, so the checks run in a subprocess
(``sharding_check.py``). It checks every method, so it is one test: split per method,
each pytest-xdist worker that drew one of them would run the whole subprocess again.
"""

import json
import os
import subprocess
import sys

from helpers import METHOD_NAMES


def test_state_follows_parameter_sharding():
    script = os.path.join(os.path.dirname(__file__), "sharding_check.py")
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(METHOD_NAMES)
    problems = {name: found for name, found in report.items() if found}
    assert problems == {}, f"the state does not follow the sharding: {problems}"
