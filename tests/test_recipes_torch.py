"""Whole torch recipes: a method whose rate and momentum (or Adam β1) are both scheduled.

torch's ``OneCycleLR`` and ``CyclicLR`` cycle the optimizer's ``momentum`` (SGD) or
``betas[0]`` (Adam) against the rate by default (``cycle_momentum=True``). lrjax writes
the same recipe as two schedules: ``lrjax.sgd(one_cycle(lr, T),
momentum=one_cycle_momentum(T))``. Each recipe runs 200 steps of random gradients with
hyperparameters drawn at random (seeded), and the parameters are compared with torch's
after every step (the runners of ``helpers``, on the problem of ``test_methods_torch``).

Tolerance: rtol 1e-5 of each leaf's scale along the run (the largest magnitude torch's
parameter reaches), not of each element. The gradients are random, so a parameter
random-walks and may cross zero; there float32 rounding of the earlier steps (torch's and
ours alike: both are ~5e-4 away from a float64 run at such a crossing) is a large
fraction of the tiny value. The recipes agree within 4e-7 of the scale; with the momentum
(β1) held constant instead of cycled they are 3e-2 (Adam) to 2 (SGD) of it away
(``test_a_constant_momentum_does_not_pass_for_the_cycled_one``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_histories_close, import_torch, run_lrjax
from test_methods_torch import SHAPES, _gradients, _initial_params, run_method

import lrjax
from lrjax import schedules

torch = import_torch()
lr_scheduler = torch.optim.lr_scheduler

NUM_STEPS = 200
RTOL = 1e-5


def assert_runs_close(ours: list[dict], theirs: list[dict], rtol: float = RTOL) -> None:
    """Every step's parameters within ``rtol`` of each leaf's scale along torch's run."""
    scale = {name: max(float(np.max(np.abs(step[name]))) for step in theirs) for name in SHAPES}
    atol = {name: rtol * scale[name] for name in SHAPES}
    assert_histories_close(ours, theirs, rtol=rtol, atol=atol)


def _draw(seed: int) -> dict:
    """A random recipe: peak rate, momentum range and cycle shape."""
    rng = np.random.default_rng(seed)
    base_momentum = float(rng.uniform(0.75, 0.9))
    return dict(
        lr=float(10 ** rng.uniform(-3, -1.5)),
        base_momentum=base_momentum,
        max_momentum=float(rng.uniform(base_momentum, 0.98)),
    )


def _problem(seed: int) -> tuple[dict, list[dict]]:
    return _initial_params(seed), _gradients(seed, NUM_STEPS)


# (three_phase, anneal, pct_start): fastai's default, the paper's three phases with phase
# ends between two steps (pct_start * T fractional), and straight ramps.
ONE_CYCLE = [(False, "cos", 0.3), (True, "cos", 0.33), (False, "linear", 0.4)]


def _one_cycle_run(method: str, variant: tuple, seed: int, cycled: bool = True):
    three_phase, anneal, pct_start = variant
    draw = _draw(seed)
    lr, base, top = draw["lr"], draw["base_momentum"], draw["max_momentum"]
    shape = dict(pct_start=pct_start, anneal=anneal, three_phase=three_phase)
    momentum = schedules.one_cycle_momentum(
        NUM_STEPS, **shape, base_momentum=base, max_momentum=top
    )
    rate = schedules.one_cycle(lr, NUM_STEPS, **shape)
    if not cycled:  # the recipe without its momentum schedule: what must not pass
        momentum = top
    if method == "sgd":
        ours, theirs = lrjax.sgd(rate, momentum=momentum), dict(lr=lr, momentum=top)
    else:
        ours, theirs = lrjax.adam(rate, b1=momentum), dict(lr=lr)

    def scheduler(optimizer):
        return lr_scheduler.OneCycleLR(
            optimizer,
            lr,
            total_steps=NUM_STEPS,
            pct_start=pct_start,
            anneal_strategy=anneal,
            base_momentum=base,
            max_momentum=top,
            three_phase=three_phase,
        )

    params, gradients = _problem(seed)
    expected = run_method(method, theirs, params, gradients, scheduler=scheduler)
    return run_lrjax(ours, params, gradients)[0], expected


@pytest.mark.parametrize("variant", ONE_CYCLE, ids=lambda v: f"{v[1]}-three_phase={v[0]}")
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_one_cycle_with_cycled_momentum_matches_torch(method, variant):
    # torch's OneCycleLR sets SGD's momentum or Adam's betas[0] at every step.
    seed = ONE_CYCLE.index(variant) + (10 if method == "adam" else 0)
    actual, expected = _one_cycle_run(method, variant, seed)
    assert_runs_close(actual, expected)


@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_a_constant_momentum_does_not_pass_for_the_cycled_one(method):
    # The comparison above can fail: the same recipe with its momentum (β1) held at
    # max_momentum is far outside the tolerance.
    actual, expected = _one_cycle_run(method, ONE_CYCLE[0], seed=3, cycled=False)
    with pytest.raises(AssertionError):
        assert_runs_close(actual, expected, rtol=100 * RTOL)


# (mode, gamma, step_size_up, step_size_down): every mode, cycles of unequal halves,
# several cycles within the run.
CYCLIC = [
    ("triangular", 1.0, 30, 20),
    ("triangular2", 1.0, 17, 33),
    ("exp_range", 0.995, 25, None),
]


@pytest.mark.parametrize("case", CYCLIC, ids=lambda case: case[0])
def test_cyclic_with_cycled_momentum_matches_torch(case):
    mode, gamma, up, down = case
    seed = 20 + CYCLIC.index(case)
    draw = _draw(seed)
    lr, base, top = draw["lr"], draw["base_momentum"], draw["max_momentum"]
    shape = dict(step_size_up=up, step_size_down=down, mode=mode, gamma=gamma)
    tx = lrjax.sgd(
        schedules.cyclic(lr / 10, lr, **shape),
        momentum=schedules.cyclic_momentum(base_momentum=base, max_momentum=top, **shape),
    )

    def scheduler(optimizer):
        return lr_scheduler.CyclicLR(
            optimizer,
            lr / 10,
            lr,
            up,
            down,
            mode=mode,
            gamma=gamma,
            base_momentum=base,
            max_momentum=top,
        )

    params, gradients = _problem(seed)
    expected = run_method("sgd", dict(lr=lr, momentum=top), params, gradients, scheduler)
    assert_runs_close(run_lrjax(tx, params, gradients)[0], expected)


def test_cyclic_with_cycled_beta1_matches_torch_adam():
    # With Adam, CyclicLR cycles betas[0] (torch needs base_momentum and max_momentum < 1).
    draw = _draw(30)
    lr, base, top = draw["lr"], draw["base_momentum"], draw["max_momentum"]
    shape = dict(step_size_up=40, step_size_down=10, mode="triangular2")
    tx = lrjax.adam(
        schedules.cyclic(lr / 10, lr, **shape),
        b1=schedules.cyclic_momentum(base_momentum=base, max_momentum=top, **shape),
    )

    def scheduler(optimizer):
        return lr_scheduler.CyclicLR(
            optimizer,
            lr / 10,
            lr,
            40,
            10,
            mode="triangular2",
            base_momentum=base,
            max_momentum=top,
        )

    params, gradients = _problem(30)
    expected = run_method("adam", dict(lr=lr), params, gradients, scheduler)
    assert_runs_close(run_lrjax(tx, params, gradients)[0], expected)
