"""Which rate? The range test's suggestion and the tuner against each task's ground truth.

For every task and optimizer of :mod:`benchmarks.tasks`: the range test
(``find_learning_rate`` on the optimizer without its schedule, 100 steps, from three
starting seeds) and the rules that read it (lrjax's ``suggestion``, its older
``steepest``/``valley``/``minimum``, and as anchors fastai's ``valley`` and Lightning's
steepest gradient, written here from their published descriptions), then
``tune_learning_rate`` on the full protocol. Each chosen rate is scored on the cached
ground truth (``benchmarks/finder_truth.json``, see :mod:`benchmarks.finder_truth`): its
eval is read off the grid's mean curve (piecewise linear in log-rate between grid points
√2 apart), the *regret* is that eval over the grid's best minus one, the *ratio* the rate
over the grid's best rate. Also: how far the suggestion moves with its own settings
(``smoothing`` 0.9–0.99, ``num_steps`` 100–300), and what the tuner costs.

    python -m benchmarks.finder_quality [--seeds 3] [--tasks mlp lm] [--markdown]
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import numpy as np

import lrjax
from benchmarks.finder_truth import load
from benchmarks.tasks import OPTIMIZERS, TASKS

RULES = ("suggestion", "steepest", "valley", "minimum", "fastai valley", "Lightning steepest")


def curve(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth's rates and mean evals (fine grid, coarse grid outside it)."""
    fine = np.asarray(entry["rates"])
    mean = np.asarray([np.inf if m is None else m for m in entry["mean"]])
    coarse = np.asarray(entry["coarse_rates"])
    coarse_mean = np.asarray([np.inf if m is None else m for m in entry["coarse_mean"]])
    outside = (coarse < fine[0] / 1.01) | (coarse > fine[-1] * 1.01)
    rates = np.concatenate([fine, coarse[outside]])
    order = np.argsort(rates)
    return rates[order], np.concatenate([mean, coarse_mean[outside]])[order]


def score(entry: dict, rate: float | None) -> tuple[float, float]:
    """(regret, ratio to the best rate) of ``rate`` on the ground truth."""
    rates, means = curve(entry)
    best = int(np.argmin(means))
    if rate is None or not np.isfinite(rate):
        return np.inf, np.nan
    x, grid = np.log(rate), np.log(rates)
    if x <= grid[0] or x >= grid[-1]:
        value = means[0] if x <= grid[0] else means[-1]
    else:
        i = int(np.searchsorted(grid, x))
        w = (x - grid[i - 1]) / (grid[i] - grid[i - 1])
        a, b = means[i - 1], means[i]
        value = a + w * (b - a) if np.isfinite(a) and np.isfinite(b) else np.inf
    return value / means[best] - 1, rate / rates[best]


def fastai_valley(result: lrjax.FinderResult) -> float | None:
    """fastai's ``valley``: the longest run of falling losses (a longest decreasing
    subsequence) on the smoothed curve without its first tenth and last five points; the
    rate half-way between its first third and its middle."""
    rates, losses = result.learning_rates, result.smoothed_losses
    n_all = len(losses)
    rates, losses = rates[n_all // 10 : n_all - 5], losses[n_all // 10 : n_all - 5]
    n = len(losses)
    if n < 2:
        return None
    length = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
            if length[end] < length[i]:
                end = i
                start = end - length[end]
    third = (end - start) / 3
    return float(rates[start + int(third) + int(third / 2)])


def lightning_steepest(result: lrjax.FinderResult) -> float | None:
    """Lightning's suggestion: the most negative gradient (by index) of the smoothed
    losses, the first 10 and the last point skipped."""
    losses = result.smoothed_losses[10:-1]
    finite = np.isfinite(losses)
    if finite.sum() < 2:
        return None
    return float(result.learning_rates[10:-1][np.argmin(np.gradient(losses[finite]))])


def rules(result: lrjax.FinderResult) -> dict[str, float | None]:
    return {
        "suggestion": result.suggestion,
        "steepest": result.suggestions["steepest"],
        "valley": result.suggestions["valley"],
        "minimum": result.suggestions["minimum"],
        "fastai valley": fastai_valley(result),
        "Lightning steepest": lightning_steepest(result),
    }


def finder(task, optimizer: str, seed: int, num_steps: int = 100, smoothing: float = 0.98):
    batches = jax.tree.map(lambda b: b[:num_steps], task.batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lrjax.find_learning_rate(
            task.loss_fn,
            task.params(seed),
            batches,
            task.protocols[optimizer].bare,
            num_steps=num_steps,
            smoothing=smoothing,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    parser.add_argument("--no-stability", action="store_true")
    args = parser.parse_args()
    truth = load()
    rows = []
    for name in args.tasks:
        task = TASKS[name]()
        for optimizer in args.optimizers:
            entry = truth[name][optimizer]
            rates, means = curve(entry)
            best_rate = rates[int(np.argmin(means))]
            chosen: dict[str, list[tuple[float, float, float | None]]] = {r: [] for r in RULES}
            for seed in range(args.seeds):
                for rule, rate in rules(finder(task, optimizer, seed)).items():
                    chosen[rule].append((*score(entry, rate), rate))
            spread = np.nan
            if not args.no_stability:
                moved = [
                    finder(task, optimizer, 0, steps, smoothing).suggestion
                    for steps in (100, 200, 300)
                    for smoothing in (0.9, 0.98, 0.99)
                ]
                moved = np.asarray([np.nan if m is None else m for m in moved])
                spread = float(np.nanmax(moved) / np.nanmin(moved))
            tuned = []
            for seed in range(args.seeds):
                began = time.perf_counter()
                result = lrjax.tune_learning_rate(
                    task.loss_fn,
                    task.params(seed),
                    task.batches,
                    task.protocols[optimizer].optimizer,
                    eval_fn=task.eval_fn,
                )
                seconds = time.perf_counter() - began
                tuned.append((*score(entry, result.learning_rate), result.steps_used, seconds))
            row = {
                "task": name,
                "optimizer": optimizer,
                "best": best_rate,
                "seeds": entry["seeds"],
                "noise": entry["relative_standard_error"],
                "spread": spread,
                "tuner": tuned,
                **{rule: chosen[rule] for rule in RULES},
            }
            rows.append(row)
            _print(row, task.num_steps)
    _summary(rows)


def _worst(values: list[tuple]) -> tuple[float, float]:
    regret = max(v[0] for v in values)
    ratios = np.asarray([v[1] for v in values], float)
    fold = np.where(np.isfinite(ratios), np.maximum(ratios, 1 / ratios), np.inf)
    return regret, float(np.max(fold))


def _print(row: dict, num_steps: int) -> None:
    print(
        f"\n{row['task']} / {row['optimizer']}: best rate {row['best']:.3g} "
        f"(mean of {row['seeds']} seeds, s.e. {row['noise']:.1%}); "
        f"suggestion moves {row['spread']:.2f}x with its settings",
        flush=True,
    )
    for rule in RULES:
        regret, fold = _worst(row[rule])
        rates = ", ".join("none" if v[2] is None else f"{v[2]:.3g}" for v in row[rule])
        print(f"  {rule:<19} rates {rates:<28} worst regret {regret:7.1%}  worst ×{fold:.2f}")
    regret, fold = _worst(row["tuner"])
    steps = max(v[2] for v in row["tuner"])
    seconds = np.median([v[3] for v in row["tuner"]])
    print(
        f"  {'tune_learning_rate':<19} worst regret {regret:7.1%}  worst ×{fold:.2f}  "
        f"{steps} steps ({steps / num_steps:.2f} runs), median {seconds:.1f} s",
        flush=True,
    )


def _summary(rows: list[dict]) -> None:
    print(
        "\n| task / optimizer | best rate | s.e. | " + " | ".join(RULES) + " | tuner | tuner cost |"
    )
    print("|---" * (len(RULES) + 5) + "|")
    for row in rows:
        cells = []
        for rule in (*RULES, "tuner"):
            regret, fold = _worst(row[rule])
            cells.append(f"{regret:.0%} / {fold:.1f}×" if np.isfinite(regret) else "none")
        steps = max(v[2] for v in row["tuner"])
        seconds = np.median([v[3] for v in row["tuner"]])
        print(
            f"| {row['task']} / {row['optimizer']} | {row['best']:.3g} | {row['noise']:.1%} | "
            + " | ".join(cells)
            + f" | {steps} steps, {seconds:.1f} s |"
        )


if __name__ == "__main__":
    main()
