"""``python -m lrjax``: the demo runs end to end; bad input is one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def lrjax_main(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrjax", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
    )


def test_demo_writes_its_plots(tmp_path):
    out = tmp_path / "plots"
    result = lrjax_main("demo", "--steps", "100", "--out", str(out), "--seed", "1")
    assert result.returncode == 0, result.stderr
    for name in ("finder.png", "sweep.png", "schedule.png", "training.png"):
        assert (out / name).stat().st_size > 10_000, name
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"plots written to {os.path.abspath(out)}"
    assert "suggestion" in result.stdout and "test accuracy" in result.stdout
    table = [line for line in lines if "%" in line and line.endswith("s") and "step" not in line]
    assert [line.split()[:2] for line in table] == [
        ["adam", "warm-up"],
        ["adam", "constant"],
        ["adagrad", "constant"],
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--steps", "x"], "argument --steps: invalid int value: 'x'"),
        (["demo", "--steps", "10"], "--steps must be at least 100, got 10"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--out", "/proc/lrjax-cannot-write-here"], "cannot write to --out"),
        (["conjure"], "invalid choice: 'conjure'"),
        (["schedules", "bogus"], "unrecognized arguments: bogus"),
        ([], "a command is required"),
    ],
)
def test_errors_are_one_line(args, message):
    result = lrjax_main(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # One line (a bare command also shows the usage line above it).
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, result.stderr
    assert message in result.stderr


def test_help_version_and_schedule_list_fit_80_columns():
    from lrjax import __version__

    usage = lrjax_main("--help")
    assert usage.returncode == 0 and "demo" in usage.stdout and "schedules" in usage.stdout
    help_text = lrjax_main("demo", "--help")
    for option in ("--out", "--steps", "--seed"):
        assert option in help_text.stdout
    schedules_help = lrjax_main("schedules", "--help")
    assert schedules_help.returncode == 0 and "torch" in schedules_help.stdout
    version = lrjax_main("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"lrjax {__version__}"
    listing = lrjax_main("schedules")
    assert listing.returncode == 0
    for name in ("cosine_decay", "one_cycle", "wsd", "warmup", "join", "CosineAnnealingLR"):
        assert name in listing.stdout
    for result in (usage, help_text, schedules_help, listing):
        widths = [len(line) for line in result.stdout.splitlines()]
        assert max(widths) <= 80, max(widths)
