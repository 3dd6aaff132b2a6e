"""``python -m lrjax``: the demo runs end to end; bad input is one line, never a traceback.

The demo runs as ``python -m lrjax`` in a subprocess; the other commands call the same
``main`` in this process (each subprocess would import JAX again).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lrjax.__main__ import main


def lrjax_main(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrjax", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        check=False,
    )


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``python -m lrjax *args`` in an 80-column terminal: (exit status, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    try:
        status = main(list(args))
    except SystemExit as exit:  # argparse exits for --help, --version and misuse
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def test_demo_writes_its_plots(tmp_path):
    out = tmp_path / "plots"
    result = lrjax_main("demo", "--steps", "100", "--out", str(out), "--seed", "1")
    assert result.returncode == 0, result.stderr
    for name in ("finder.png", "tune.png", "schedule.png", "training.png"):
        assert (out / name).stat().st_size > 10_000, name
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"plots written to {os.path.abspath(out)}"
    assert "suggestion" in result.stdout and "test accuracy" in result.stdout
    assert "tuned rate" in result.stdout and "training uses the tuned rate" in result.stdout
    table = [line for line in lines if "%" in line and line.endswith("s") and "step" not in line]
    assert [line.split()[:2] for line in table] == [
        ["adam", "warm-up"],
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
def test_errors_are_one_line(args, message, capsys, monkeypatch):
    status, _, err = cli(capsys, monkeypatch, *args)
    assert status != 0  # 2 for a usage error (argparse), 1 for a bad value
    assert "Traceback" not in err
    # One line (a bare command also shows the usage line above it).
    lines = [line for line in err.strip().splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, err
    assert message in err


def test_help_version_and_schedule_list_fit_80_columns(capsys, monkeypatch):
    from lrjax import __version__

    status, usage, _ = cli(capsys, monkeypatch, "--help")
    assert status == 0 and "demo" in usage and "schedules" in usage
    status, help_text, _ = cli(capsys, monkeypatch, "demo", "--help")
    assert status == 0
    for option in ("--out", "--steps", "--seed"):
        assert option in help_text
    status, schedules_help, _ = cli(capsys, monkeypatch, "schedules", "--help")
    assert status == 0 and "torch" in schedules_help
    status, version, _ = cli(capsys, monkeypatch, "--version")
    assert status == 0 and version.strip() == f"lrjax {__version__}"
    status, listing, _ = cli(capsys, monkeypatch, "schedules")
    assert status == 0
    for name in ("cosine_decay", "one_cycle", "wsd", "warmup", "join", "CosineAnnealingLR"):
        assert name in listing
    for text in (usage, help_text, schedules_help, listing):
        widths = [len(line) for line in text.splitlines()]
        assert max(widths) <= 80, max(widths)


def test_misuse_of_the_module_exits_with_status_2():
    result = lrjax_main("conjure")
    assert result.returncode == 2 and "invalid choice: 'conjure'" in result.stderr
    assert "Traceback" not in result.stderr
