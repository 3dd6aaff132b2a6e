"""The benchmark suite runs and reports: a smoke test at tiny sizes (it asserts nothing
about timings; those are measured by hand, see benchmarks/README.md)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_every_table(tmp_path):
    results = tmp_path / "results.md"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--no-torch"]
    command += ["--methods", "sgd,adadelta,adam", "--repeats", "2", "--markdown", str(results)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    text = results.read_text()
    for title in ("## Machine", "## Time per step", "## Compile time and memory", "## Sweep"):
        assert title in text, title
    rows = [
        line for line in text.splitlines() if line.startswith(("| sgd", "| adadelta", "| adam"))
    ]
    # three methods, three layouts (one leaf, equal leaves, a transformer's), two tables
    assert len(rows) == 3 * 3 * 2, rows
    assert sum(" model (52 leaves) " in row for row in rows) == 3 * 2, rows
    memory_rows = [row.split("|")[1:-1] for row in rows if " / " in row]
    assert len(memory_rows) == 3 * 3, memory_rows
    header = next(
        line for line in text.splitlines() if line.startswith("| method | layout | compile")
    )
    columns = [cell.strip() for cell in header.split("|")[1:-1]]
    temp_at, extra_at = (
        columns.index("temp MiB lrjax / optax"),
        columns.index("extra × params lrjax / optax"),
    )
    ratio_at, noise_at = columns.index("compile lrjax/optax"), columns.index("compile optax/optax")
    for cells in memory_rows:
        # Each compile ratio comes with its noise floor: optax's step against itself.
        assert float(cells[ratio_at]) > 0 and float(cells[noise_at]) > 0, cells
        # Donation leaves no temporary and no extra copy of parameters or state. (The
        # quick model's leaves are so small that XLA writes a few hundred bytes of outputs
        # afresh, optax's step as much as lrjax's: there, no more than optax's.)
        temp_mib = float(cells[temp_at].split("/")[0])
        extra, optax_extra = (float(x) for x in cells[extra_at].split("/"))
        assert temp_mib == 0, cells
        assert extra <= optax_extra if "model" in cells[1] else extra == 0, cells
    # The one-program sweep reproduces every bounded run (a chaotic one's curve depends
    # on rounding, so it is not compared), and most runs of the quick case are bounded.
    sweep = next(line for line in text.splitlines() if line.startswith("- loss curves equal"))
    found = re.search(r"(\d+) of (\d+) bounded runs .*?; (\d+) unbounded .*?, (\d+) of them", sweep)
    assert found, sweep
    matching, bounded, unbounded, diverged = (int(n) for n in found.groups())
    assert matching == bounded >= 12, sweep
    assert bounded + unbounded == 16 and diverged <= unbounded, sweep
