"""The ground truth of the finder benchmark: every task's protocol trained to the end at a
grid of peak rates, scored by its held-out ``eval_fn``, averaged over seeds.

A coarse pass (rates 2^k, 2 seeds) finds the region; a fine pass (spacing √2, 8 seeds,
more while the standard error of the best mean is above 0.5% of it, up to 32) measures
it. The result is cached in ``benchmarks/finder_truth.json``, which the benchmark and
the tests read, so their daily runs are short. Recompute it (about 15 minutes on two
CPU cores) with

    python -m benchmarks.finder_truth [--tasks mlp lm] [--optimizers adamw]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import lrjax
from benchmarks.tasks import OPTIMIZERS, TASKS, Task

PATH = Path(__file__).with_name("finder_truth.json")
COARSE = 2.0 ** np.arange(-17, 5)  # 7.6e-6 … 16
FINE_SPAN = 6  # half-steps of √2 on each side of the coarse best
MAX_SEEDS = 32
NOISE = 0.005  # the standard error of the best mean, relative, that is small enough


def scores(task: Task, optimizer: str, rates, seeds) -> np.ndarray:
    """``[rates, seeds]`` held-out scores (inf for a diverged run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the best at the edge of a pass is expected
        result = lrjax.sweep(
            task.loss_fn,
            None,
            task.batches,
            task.protocols[optimizer].optimizer,
            learning_rates=[float(r) for r in rates],
            init_fn=task.init_fn,
            seeds=list(seeds),
            eval_fn=task.eval_fn,
            batch_size=8,
        )
    return np.asarray(result.scores, np.float64).reshape(len(rates), len(seeds))


def _mean(values: np.ndarray) -> np.ndarray:
    """Mean over seeds; a rate with any diverged seed scores inf."""
    return np.where(np.all(np.isfinite(values), axis=1), values.mean(axis=1), np.inf)


def truth(task: Task, optimizer: str) -> dict:
    started = time.perf_counter()
    coarse = scores(task, optimizer, COARSE, range(2))
    centre = COARSE[int(np.argmin(_mean(coarse)))]
    steps = list(range(-FINE_SPAN, FINE_SPAN + 1))
    seeds = list(range(8))
    table: dict[int, np.ndarray] = {}

    def measure(new_steps: list[int]) -> None:
        rates = centre * 2.0 ** (np.asarray(new_steps) / 2)
        for step, row in zip(new_steps, scores(task, optimizer, rates, seeds), strict=True):
            table[step] = row

    measure(steps)
    while True:  # widen while the best is at an edge
        means = {s: _mean(table[s][None])[0] for s in sorted(table)}
        best = min(means, key=means.get)
        if best == min(table):
            measure(list(range(best - 4, best)))
        elif best == max(table):
            measure(list(range(best + 1, best + 5)))
        else:
            break
    while True:  # more seeds while the noise is above the bar
        means = {s: _mean(table[s][None])[0] for s in sorted(table)}
        best = min(means, key=means.get)
        error = table[best].std(ddof=1) / np.sqrt(len(seeds)) / means[best]
        if error <= NOISE or len(seeds) >= MAX_SEEDS:
            break
        extra = list(range(len(seeds), 2 * len(seeds)))
        for step in sorted(table):
            rate = centre * 2.0 ** (step / 2)
            table[step] = np.concatenate([table[step], scores(task, optimizer, [rate], extra)[0]])
        seeds += extra
    order = sorted(table)
    values = np.stack([table[s] for s in order])
    finite = np.isfinite(values)
    return {
        "rates": [float(centre * 2.0 ** (s / 2)) for s in order],
        "mean": [float(m) if np.isfinite(m) else None for m in _mean(values)],
        "std": [
            float(v[f].std(ddof=1)) if f.sum() > 1 else None
            for v, f in zip(values, finite, strict=True)
        ],
        "diverged": [int((~f).sum()) for f in finite],
        "seeds": len(seeds),
        "coarse_rates": [float(r) for r in COARSE],
        "coarse_mean": [float(m) if np.isfinite(m) else None for m in _mean(coarse)],
        "relative_standard_error": float(error),
        "num_steps": task.num_steps,
        "seconds": round(time.perf_counter() - started, 1),
    }


def load() -> dict:
    return json.loads(PATH.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    parser.add_argument("--out", type=Path, default=PATH, help="where to write (and merge)")
    args = parser.parse_args()
    cached = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.tasks:
        task = TASKS[name]()
        for optimizer in args.optimizers:
            entry = truth(task, optimizer)
            cached.setdefault(name, {})[optimizer] = entry
            args.out.write_text(json.dumps(cached, indent=1) + "\n")
            best = int(np.argmin([np.inf if m is None else m for m in entry["mean"]]))
            print(
                f"{name:<12} {optimizer:<6} best {entry['rates'][best]:.3g} "
                f"eval {entry['mean'][best]:.4f}  seeds {entry['seeds']}  "
                f"rel. s.e. {entry['relative_standard_error']:.2%}  {entry['seconds']}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
