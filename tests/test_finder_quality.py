"""The benchmark's tasks as tests: the suggestion and the tuner scored on the cached ground
truth (benchmarks/finder_truth.json), and the suggestion's steadiness to its settings.

The bounds are the ones measured (benchmarks/RESULTS.md, "Which rate?"), with a margin:
they stop the answers from getting worse. The issue's targets (a regret of at most 5%
for the suggestion, 1% for the tuner, on every task) are not met on every task; the
table says where and why (seed noise of the held-out loss, a constant-rate ramp read
for a scheduled run).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import lrjax
from benchmarks.finder_quality import score
from benchmarks.finder_truth import load
from benchmarks.tasks import TASKS

TRUTH = load()

# (task, optimizer): the worst regret allowed to the suggestion and to the tuner.
# Measured worst over three seeds (RESULTS.md): logistic AdamW 24% / 15%, MLP SGD 65% /
# 20%, CNN AdamW 19%, autoencoder SGD 2% / 1%, language model AdamW 17.5%, regression
# AdamW 7% / 2.9%. The language model's tuner is left to the benchmark (a minute here).
BOUNDS = {
    ("logistic", "adamw"): (0.30, 0.20),
    ("mlp", "sgdm"): (0.80, 0.30),
    ("cnn", "adamw"): (0.30, None),
    ("autoencoder", "sgdm"): (0.05, 0.02),
    ("lm", "adamw"): (0.25, None),
    ("regression", "adamw"): (0.15, 0.05),
}


def finder(task, optimizer, num_steps=100, smoothing=0.98):
    batches = jax.tree.map(lambda b: b[:num_steps], task.batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lrjax.find_learning_rate(
            task.loss_fn,
            task.params(0),
            batches,
            task.protocols[optimizer].bare,
            num_steps=num_steps,
            smoothing=smoothing,
        )


@pytest.mark.parametrize(("name", "optimizer"), list(BOUNDS))
def test_the_suggestion_on_the_benchmark(name, optimizer):
    task = TASKS[name]()
    regret, ratio = score(TRUTH[name][optimizer], finder(task, optimizer).suggestion)
    assert regret <= BOUNDS[name, optimizer][0], (regret, ratio)


@pytest.mark.parametrize(
    ("name", "optimizer"), [key for key, (_, tuned) in BOUNDS.items() if tuned is not None]
)
def test_the_tuner_on_the_benchmark(name, optimizer):
    task = TASKS[name]()
    result = lrjax.tune_learning_rate(
        task.loss_fn,
        task.params(0),
        task.batches,
        task.protocols[optimizer].optimizer,
        eval_fn=task.eval_fn,
    )
    regret, ratio = score(TRUTH[name][optimizer], result.learning_rate)
    assert regret <= BOUNDS[name, optimizer][1], (regret, ratio)
    assert result.steps_used <= 5 * task.num_steps


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_suggestion_is_steady_to_its_own_settings(name):
    """smoothing 0.9–0.99 and 100–300 steps: the spread measured on these tasks was at
    most 2× (mlp, AdamW: 1.9×; cnn, SGD: 2.0×), others move more (RESULTS.md)."""
    task = TASKS[name]()
    optimizer = "adamw" if name == "mlp" else "sgdm"
    rates = [
        finder(task, optimizer, steps, smoothing).suggestion
        for steps in (100, 300)
        for smoothing in (0.9, 0.99)
    ]
    assert max(rates) / min(rates) <= 2.5, rates


def test_the_ground_truth_covers_its_best_and_says_how_noisy_it_is():
    for name, entries in TRUTH.items():
        for optimizer, entry in entries.items():
            means = np.asarray([np.inf if m is None else m for m in entry["mean"]])
            best = int(np.argmin(means))
            assert 0 < best < len(means) - 1, (name, optimizer)  # not at an edge
            assert np.allclose(np.diff(np.log2(entry["rates"])), 0.5)  # √2 apart
            assert entry["seeds"] >= 8 and entry["relative_standard_error"] < 0.1
