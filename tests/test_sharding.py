"""Optimizer state follows the parameters' sharding (SPEC §7), on 8 fake CPU devices.

The devices must be configured before JAX starts, so the checks run in a subprocess
(``sharding_check.py``); each method's result is one test here.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers import METHOD_NAMES

# One worker runs every test here, so the subprocess runs once (pytest-xdist's loadgroup).
pytestmark = pytest.mark.xdist_group("sharding")


@pytest.fixture(scope="module")
def report():
    script = os.path.join(os.path.dirname(__file__), "sharding_check.py")
    result = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_state_follows_parameter_sharding(report, name):
    assert name in report
    assert report[name] == []
