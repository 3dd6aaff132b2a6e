"""The benchmark suite runs and reports: a smoke test at tiny sizes (it asserts nothing
about timings; those are measured by hand, see benchmarks/README.md)."""

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
    assert len(rows) == 3 * 2 * 2, rows  # three methods, two layouts, two tables
    memory_rows = [row.split("|")[1:-1] for row in rows if " / " in row]
    assert len(memory_rows) == 3 * 2, memory_rows
    for cells in memory_rows:
        # Donation leaves no temporary and no extra copy of parameters or state.
        temp_mib, extra = (float(cells[i].split("/")[0]) for i in (4, 5))
        assert temp_mib == 0 and extra == 0, cells
    # The one-program sweep reproduces every run that did not diverge.
    sweep = next(line for line in text.splitlines() if line.startswith("- loss curves equal"))
    matching, total = (int(n) for n in sweep.split(": ")[1].split(";")[0].split(" of "))
    diverged = int(sweep.rsplit(": ", 1)[1])
    assert matching == total - diverged, sweep
