"""The momentum schedules against torch's OneCycleLR and CyclicLR (``cycle_momentum``),
and the combinators against ChainedScheduler and a scheduler stepped once per epoch.

Driven as ``test_schedules_torch`` drives torch (with its runner and comparison): the
value torch applies at each update, lrjax's evaluated once on the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import import_torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_schedules_torch import (
    EXAMPLES,
    MAX_STEPS,
    ONE_CYCLE_VARIANTS,
    assert_matches,
    rates,
    torch_rates,
)

from lrjax import schedules

torch = import_torch()
lr_scheduler = torch.optim.lr_scheduler

# ------------------------------------------------------------------ momentum schedules


def torch_momenta(
    make_scheduler: Callable[[Any], Any], steps: int, optimizer: str = "sgd"
) -> np.ndarray:
    """The momentum (SGD) or betas[0] (Adam) torch applies at updates 0 .. steps - 1."""
    parameter = torch.nn.Parameter(torch.zeros(()))
    if optimizer == "sgd":
        opt = torch.optim.SGD([parameter], lr=1.0, momentum=0.9)
        read = lambda: opt.param_groups[0]["momentum"]
    else:
        opt = torch.optim.Adam([parameter], lr=1.0)
        read = lambda: opt.param_groups[0]["betas"][0]
    scheduler = make_scheduler(opt)
    momenta = [read()]
    for _ in range(steps - 1):
        opt.step()
        scheduler.step()
        momenta.append(read())
    return np.asarray(momenta, np.float64)


# Either order (torch allows a base above the maximum: the momentum then rises with the
# rate), and exactly 0 at the rate's peak.
momenta = st.one_of(st.just(0.0), st.floats(0.5, 0.99))
optimizers = st.sampled_from(["sgd", "adam"])


@settings(max_examples=10)
@given(
    total_steps=st.integers(2, 3000),
    pct_start=st.floats(0.0, 1.0, exclude_max=True),
    base=momenta,
    top=momenta,
    anneal=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
    optimizer=optimizers,
)
def test_one_cycle_momentum_matches_one_cycle_lr(
    total_steps, pct_start, base, top, anneal, three_phase, optimizer
):
    if three_phase:  # its two ramps take 2 * pct_start of the steps
        pct_start /= 2
    assume(float(pct_start * total_steps) != 1.0)  # torch divides 0 by 0 there
    shape = dict(pct_start=pct_start, three_phase=three_phase)
    expected = torch_momenta(
        lambda opt: lr_scheduler.OneCycleLR(
            opt,
            0.1,
            total_steps,
            **shape,
            anneal_strategy=anneal,
            base_momentum=base,
            max_momentum=top,
        ),
        total_steps,
        optimizer,
    )
    schedule = schedules.one_cycle_momentum(
        total_steps, **shape, base_momentum=base, max_momentum=top, anneal=anneal
    )
    assert_matches(schedule, expected)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize(("total_steps", "pct_start", "three_phase"), ONE_CYCLE_VARIANTS)
def test_one_cycle_momentum_defaults_match_one_cycle_lr(
    anneal, three_phase, total_steps, pct_start
):
    # torch's defaults: from 0.95 down to 0.85 at the rate's peak, and back.
    shape = dict(pct_start=pct_start, three_phase=three_phase)
    expected = torch_momenta(
        lambda opt: lr_scheduler.OneCycleLR(opt, 0.1, total_steps, **shape, anneal_strategy=anneal),
        total_steps,
    )
    assert_matches(schedules.one_cycle_momentum(total_steps, **shape, anneal=anneal), expected)


@settings(max_examples=10)
@given(
    base=momenta,
    top=momenta,
    up=st.integers(1, 500),
    down=st.one_of(st.none(), st.integers(0, 500)),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.99, 1.0),
    optimizer=optimizers,
)
def test_cyclic_momentum_matches_cyclic_lr(base, top, up, down, mode, gamma, optimizer):
    # torch's triangular2 computes 2.0 ** (cycle - 1) and overflows after 1024 cycles.
    steps = (
        3000 if mode != "triangular2" else min(3000, 100 * (up + (up if down is None else down)))
    )
    gamma = gamma if mode == "exp_range" else 1.0  # lrjax refuses a gamma it would ignore
    expected = torch_momenta(
        lambda opt: lr_scheduler.CyclicLR(
            opt,
            1e-3,
            0.1,
            up,
            down,
            mode=mode,
            gamma=gamma,
            base_momentum=base,
            max_momentum=top,
        ),
        steps,
        optimizer,
    )
    schedule = schedules.cyclic_momentum(
        base_momentum=base,
        max_momentum=top,
        step_size_up=up,
        step_size_down=down,
        mode=mode,
        gamma=gamma,
    )
    # torch's height in the cycle, 1 + t/total - cycle in floats, misses 1 by ulps that
    # grow with t: at the top its max - (max - base) h is ~1e-13, not 0, for base = 0.
    assert_matches(schedule, expected, atol=1e-12)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_momentum_defaults_match_cyclic_lr(mode):
    # torch's defaults (0.8 to 0.9) with unequal halves; exp_range's γ^t and triangular2's
    # halving shrink the swing towards max_momentum.
    gamma = 0.998 if mode == "exp_range" else 1.0
    expected = torch_momenta(
        lambda opt: lr_scheduler.CyclicLR(opt, 1e-3, 0.1, 7, 3, mode=mode, gamma=gamma), 1000
    )
    schedule = schedules.cyclic_momentum(step_size_up=7, step_size_down=3, mode=mode, gamma=gamma)
    assert_matches(schedule, expected)
    if mode != "triangular":
        # The swing has shrunk towards max_momentum, and lrjax's with it.
        assert expected[-10:].min() > expected[:10].min() + 0.05


# ------------------------------------------------------------------------- combinators

# torch ChainedScheduler of multiplicative schedulers, and its lrjax product: the base
# rate in one schedule, the other schedules are factors from 1.0.
CHAINS = {
    "step_exponential": (
        lambda opt, lr, k, g: [
            lr_scheduler.StepLR(opt, k, 0.5),
            lr_scheduler.ExponentialLR(opt, g),
        ],
        lambda lr, k, g: [
            schedules.step_decay(lr, k, gamma=0.5),
            schedules.exponential_decay(1.0, g),
        ],
    ),
    "constant_exponential": (
        lambda opt, lr, k, g: [
            lr_scheduler.ConstantLR(opt, factor=0.25, total_iters=k),
            lr_scheduler.ExponentialLR(opt, g),
        ],
        lambda lr, k, g: [
            schedules.piecewise_constant([k], [0.25 * lr, lr]),
            schedules.exponential_decay(1.0, g),
        ],
    ),
    "linear_multistep_step": (
        lambda opt, lr, k, g: [
            lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=k),
            lr_scheduler.MultiStepLR(opt, [k, 3 * k], g),
            lr_scheduler.StepLR(opt, 2 * k, 0.5),
        ],
        lambda lr, k, g: [
            schedules.linear(0.1, 1.0, k),
            schedules.multistep_decay(lr, [k, 3 * k], gamma=g),
            schedules.step_decay(1.0, 2 * k, gamma=0.5),
        ],
    ),
}


@EXAMPLES
@given(
    chain=st.sampled_from(sorted(CHAINS)),
    lr=rates,
    period=st.integers(1, 300),
    gamma=st.floats(0.995, 1.0),
)
def test_product_matches_chained_scheduler(chain, lr, period, gamma):
    theirs, ours = CHAINS[chain]
    steps = min(2000, 80 * period)  # halved every period at most: the rate stays > 1e-24·lr
    expected = torch_rates(
        lambda opt: lr_scheduler.ChainedScheduler(theirs(opt, lr, period, gamma)), steps, lr
    )
    assert_matches(schedules.product(ours(lr, period, gamma)), expected)


def torch_rates_per_epoch(
    make_scheduler, epochs: int, steps_per_epoch: int, lr: float
) -> np.ndarray:
    """The rate of every update when ``scheduler.step()`` is called once per epoch."""
    parameter = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(scheduler.get_last_lr()[0])
            optimizer.step()
        scheduler.step()
    return np.asarray(rates, np.float64)


@EXAMPLES
@given(
    lr=rates,
    step_size=st.integers(1, 30),
    gamma=st.floats(0.05, 1.0),
    steps_per_epoch=st.integers(1, 100),
)
def test_per_epoch_matches_an_epoch_stepped_step_lr(lr, step_size, gamma, steps_per_epoch):
    epochs = MAX_STEPS // steps_per_epoch
    if gamma < 1:  # the rate stays in float32's normal range
        epochs = min(epochs, step_size * int(60 / -math.log(gamma)))
    expected = torch_rates_per_epoch(
        lambda opt: lr_scheduler.StepLR(opt, step_size, gamma), epochs, steps_per_epoch, lr
    )
    schedule = schedules.per_epoch(
        schedules.step_decay(lr, step_size, gamma=gamma), steps_per_epoch
    )
    assert_matches(schedule, expected)
