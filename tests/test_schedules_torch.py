"""Schedules against torch.optim.lr_scheduler: the rates a torch user sees, step by step.

torch is driven the way a training loop drives it (``optimizer.step()`` then
``scheduler.step()``), recording ``scheduler.get_last_lr()`` before each update; lrjax is
evaluated once, vectorised, on the same steps. Parameters are drawn by hypothesis over the
documented range; rates are compared with rtol 1e-5 and no atol unless a comment says why.
The momentum schedules and the combinators are in ``test_schedules_torch_momentum``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import import_torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lrjax import schedules

torch = import_torch()
lr_scheduler = torch.optim.lr_scheduler

EXAMPLES = settings(max_examples=6)


def torch_rates(make_scheduler: Callable[[Any], Any], steps: int, lr: float = 1.0) -> np.ndarray:
    """The learning rate torch applies at updates 0 .. steps - 1."""
    parameter = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = [scheduler.get_last_lr()[0]]
    for _ in range(steps - 1):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    return np.asarray(rates, np.float64)


# One step array for every comparison: a new shape would recompile every operation.
MAX_STEPS = 3001
STEPS = jnp.arange(MAX_STEPS)


def assert_matches(schedule: schedules.Schedule, expected: np.ndarray, atol: float = 0.0) -> None:
    actual = schedule(STEPS)
    assert actual.dtype == jnp.float32
    actual = np.asarray(actual, np.float64)[: len(expected)]
    chex.assert_trees_all_close(actual, expected, rtol=1e-5, atol=atol)


rates = st.floats(1e-4, 1.0)
# A small rate, or exactly 0; not 1e-300, which float32 cannot hold.
small_rates = st.one_of(st.just(0.0), st.floats(1e-6, 1e-2))


@EXAMPLES
@given(
    lr=rates,
    step_size=st.integers(1, 400),
    gamma=st.floats(0.05, 1.0),
    steps=st.integers(100, 3000),
)
def test_step_decay_matches_step_lr(lr, step_size, gamma, steps):
    # Keep the rate in float32's normal range (below ~1e-38 it has no relative precision).
    if gamma < 1:
        steps = min(steps, step_size * int(60 / -math.log(gamma)))
    expected = torch_rates(lambda opt: lr_scheduler.StepLR(opt, step_size, gamma), steps, lr)
    assert_matches(schedules.step_decay(lr, step_size, gamma=gamma), expected)


@EXAMPLES
@given(
    lr=rates,
    milestones=st.lists(st.integers(0, 1500), max_size=8),
    repeat=st.booleans(),
    gamma=st.floats(0.05, 2.0),
)
def test_multistep_decay_matches_multistep_lr(lr, milestones, repeat, gamma):
    milestones = sorted(milestones + milestones[:2] if repeat else milestones)
    expected = torch_rates(lambda opt: lr_scheduler.MultiStepLR(opt, milestones, gamma), 2000, lr)
    assert_matches(schedules.multistep_decay(lr, milestones, gamma=gamma), expected)


def test_multistep_decay_counts_repeated_milestones_like_torch():
    expected = torch_rates(lambda opt: lr_scheduler.MultiStepLR(opt, [3, 5, 5, 5, 8], 0.5), 12)
    assert_matches(schedules.multistep_decay(1.0, [3, 5, 5, 5, 8], gamma=0.5), expected)
    assert expected[5] == 0.5**4


@EXAMPLES
@given(lr=rates, gamma=st.floats(0.95, 1.0), steps=st.integers(100, 3000))
def test_exponential_decay_matches_exponential_lr(lr, gamma, steps):
    steps = min(steps, int(60 / -math.log(gamma))) if gamma < 1 else steps  # rate > 1e-26·lr
    expected = torch_rates(lambda opt: lr_scheduler.ExponentialLR(opt, gamma), steps, lr)
    assert_matches(schedules.exponential_decay(lr, gamma), expected)


def test_exponential_decay_keeps_python_float_precision():
    # float32(0.999) ** 3000 is 4e-5 (relative) away from 0.999 ** 3000: the rate's
    # rounding must not be raised to the 3000th power.
    expected = torch_rates(lambda opt: lr_scheduler.ExponentialLR(opt, 0.999), 3000)
    assert_matches(schedules.exponential_decay(1.0, 0.999), expected)


@EXAMPLES
@given(lr=rates, total_iters=st.integers(1, 2000), power=st.floats(0.1, 5.0))
def test_polynomial_decay_matches_polynomial_lr(lr, total_iters, power):
    expected = torch_rates(
        lambda opt: lr_scheduler.PolynomialLR(opt, total_iters, power), total_iters + 100, lr
    )
    assert_matches(schedules.polynomial_decay(lr, 0.0, total_iters, power=power), expected)


@EXAMPLES
@given(
    lr=rates,
    start_factor=st.floats(1e-3, 1.0),
    end_factor=st.one_of(st.just(0.0), st.floats(1e-3, 1.0)),
    total_iters=st.integers(1, 2000),
)
def test_linear_matches_linear_lr(lr, start_factor, end_factor, total_iters):
    expected = torch_rates(
        lambda opt: lr_scheduler.LinearLR(opt, start_factor, end_factor, total_iters),
        total_iters + 100,
        lr,
    )
    # torch updates the rate multiplicatively; with end_factor 0 its last factor is
    # 1 - (N sf - (N - 1) sf) / sf, a rounding error (~1e-16) instead of 0, so torch ends at
    # ~1e-17·lr where the exact (and our) rate is 0.
    atol = 1e-12 * lr
    assert_matches(
        schedules.linear(lr * start_factor, lr * end_factor, total_iters), expected, atol=atol
    )


@EXAMPLES
@given(lr=rates, t_max=st.integers(1, 2000), eta_min=small_rates)
def test_cosine_decay_matches_cosine_annealing_lr(lr, t_max, eta_min):
    expected = torch_rates(
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, t_max, eta_min), t_max + 1, lr
    )
    assert_matches(schedules.cosine_decay(lr, t_max, end_value=eta_min), expected)


def test_cosine_decay_holds_where_torch_rises_again():
    expected = torch_rates(lambda opt: lr_scheduler.CosineAnnealingLR(opt, 10), 15)
    ours = np.asarray(schedules.cosine_decay(1.0, 10)(jnp.arange(15)))
    assert expected[14] > 0.1  # torch: the cosine goes on past T_max
    np.testing.assert_array_equal(ours[10:], 0.0)


@EXAMPLES
@given(
    lr=rates,
    t_0=st.integers(1, 300),
    t_mult=st.sampled_from([1, 2, 3]),
    eta_min=small_rates,
)
def test_cosine_restarts_matches_cosine_annealing_warm_restarts(lr, t_0, t_mult, eta_min):
    expected = torch_rates(
        lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, t_0, t_mult, eta_min), 3000, lr
    )
    assert_matches(
        schedules.cosine_restarts(lr, t_0, period_mult=t_mult, end_value=eta_min), expected
    )


@pytest.mark.parametrize(("t_0", "t_mult"), [(1, 2), (1, 3), (5, 2), (10, 1), (7, 4)])
def test_cosine_restarts_matches_torch_at_every_restart(t_0, t_mult):
    expected = torch_rates(
        lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(opt, t_0, t_mult), 3000
    )
    assert_matches(schedules.cosine_restarts(1.0, t_0, period_mult=t_mult), expected)


@EXAMPLES
@given(
    base=small_rates,
    max_lr=st.floats(1e-2, 1.0),
    up=st.integers(1, 500),
    down=st.one_of(st.none(), st.integers(0, 500)),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.99, 1.0),
)
def test_cyclic_matches_cyclic_lr(base, max_lr, up, down, mode, gamma):
    # torch's triangular2 computes 2.0 ** (cycle - 1) and overflows after 1024 cycles.
    steps = (
        3000 if mode != "triangular2" else min(3000, 100 * (up + (up if down is None else down)))
    )
    expected = torch_rates(
        lambda opt: lr_scheduler.CyclicLR(
            opt, base, max_lr, up, down, mode=mode, gamma=gamma, cycle_momentum=False
        ),
        steps,
    )
    # torch ignores gamma outside exp_range; lrjax refuses a gamma it would ignore.
    schedule = schedules.cyclic(
        base,
        max_lr,
        step_size_up=up,
        step_size_down=down,
        mode=mode,
        gamma=gamma if mode == "exp_range" else 1.0,
    )
    assert_matches(schedule, expected)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
@pytest.mark.parametrize(("up", "down"), [(10, None), (7, 3), (5, 0), (1, 1)])
def test_cyclic_matches_cyclic_lr_in_every_mode(mode, up, down):
    def make(opt):
        return lr_scheduler.CyclicLR(
            opt, 1e-3, 0.1, up, down, mode=mode, gamma=0.999, cycle_momentum=False
        )

    expected = torch_rates(make, 1000)
    schedule = schedules.cyclic(
        1e-3,
        0.1,
        step_size_up=up,
        step_size_down=down,
        mode=mode,
        gamma=0.999 if mode == "exp_range" else 1.0,
    )
    assert_matches(schedule, expected)


@settings(max_examples=12)
@given(
    max_lr=rates,
    total_steps=st.integers(1, 3000),
    pct_start=st.floats(0.0, 1.0, exclude_max=True),
    div_factor=st.floats(1.0, 100.0),
    final_div_factor=st.floats(1.0, 1e5),
    anneal=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
)
def test_one_cycle_matches_one_cycle_lr(
    max_lr, total_steps, pct_start, div_factor, final_div_factor, anneal, three_phase
):
    if three_phase:  # its two ramps take 2 * pct_start of the steps
        pct_start /= 2
    assume(float(pct_start * total_steps) != 1.0)  # torch divides 0 by 0 there
    expected = torch_rates(
        lambda opt: lr_scheduler.OneCycleLR(
            opt,
            max_lr,
            total_steps,
            pct_start=pct_start,
            anneal_strategy=anneal,
            cycle_momentum=False,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
        ),
        total_steps,
    )
    schedule = schedules.one_cycle(
        max_lr,
        total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal=anneal,
        three_phase=three_phase,
    )
    assert_matches(schedule, expected)


# pct_start up to (not including) 1, and up to 0.5 with three phases: beyond, the final
# rate is never reached (see test_one_cycle_refuses_a_final_rate_torch_never_reaches).
ONE_CYCLE_VARIANTS = [
    (total_steps, pct_start, three_phase)
    for total_steps, pct_start in [(1000, 0.3), (1001, 0.25), (97, 0.5), (10, 0.0), (50, 0.98)]
    for three_phase in (False, True)
    if pct_start <= 0.5 or not three_phase
]


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize(("total_steps", "pct_start", "three_phase"), ONE_CYCLE_VARIANTS)
def test_one_cycle_matches_one_cycle_lr_in_every_variant(
    anneal, three_phase, total_steps, pct_start
):
    def make(opt):
        return lr_scheduler.OneCycleLR(
            opt,
            0.1,
            total_steps,
            pct_start=pct_start,
            anneal_strategy=anneal,
            cycle_momentum=False,
            three_phase=three_phase,
        )

    expected = torch_rates(make, total_steps)
    assert_matches(
        schedules.one_cycle(
            0.1, total_steps, pct_start=pct_start, anneal=anneal, three_phase=three_phase
        ),
        expected,
    )


@pytest.mark.parametrize(("pct_start", "three_phase"), [(0.6, True), (1.0, False)])
def test_one_cycle_refuses_a_final_rate_torch_never_reaches(pct_start, three_phase):
    def make(opt):
        return lr_scheduler.OneCycleLR(
            opt, 0.1, 100, pct_start=pct_start, cycle_momentum=False, three_phase=three_phase
        )

    # torch's last rate is far above the final one, 0.1 / 25 / 1e4: final_div_factor is
    # silently ignored there.
    assert torch_rates(make, 100)[-1] > 1e3 * 0.1 / 25 / 1e4
    with pytest.raises(ValueError, match=r"^one_cycle: pct_start must be in "):
        schedules.one_cycle(0.1, 100, pct_start=pct_start, three_phase=three_phase)


def test_warmup_differs_from_sequential_lr_as_documented():
    # torch's LinearLR ramps to the optimizer's rate 0.2, then SequentialLR jumps to
    # ConstantLR's 0.1; lrjax's warm-up ramps to main(0) = 0.1 (the warmup docstring).
    def make(opt):
        return lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=6),
                lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=5),
            ],
            milestones=[6],
        )

    expected = torch_rates(make, 14, lr=0.2)
    np.testing.assert_allclose(expected[:3], [0.02, 0.05, 0.08])
    main = schedules.piecewise_constant([5], [0.1, 0.2])  # ConstantLR(0.5) of lr=0.2
    ours = np.asarray(schedules.warmup(main, 6, init_value=0.02)(jnp.arange(14)), np.float64)
    np.testing.assert_allclose(ours[:3], [0.02, 0.2 / 6, 0.28 / 6], rtol=1e-6)
    # After the warm-up both follow main: 0.1 for 5 steps, then 0.2.
    np.testing.assert_allclose(ours[6:], expected[6:], rtol=1e-6)
