"""Schedules built from schedules (warmup, join, product, per_epoch) and the momentum
schedules that mirror a rate: their values in closed form."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from helpers import T, assert_close, values

from lrjax import schedules


def test_warmup_ramps_to_the_schedule_and_delays_it():
    schedule = schedules.warmup(schedules.cosine_decay(1.0, 100), 10, init_value=0.2)
    later = 0.5 * (1 + np.cos(np.pi * np.clip(T - 10, 0, 100) / 100))
    assert_close(values(schedule), np.where(T < 10, 0.2 + 0.8 * T / 10, later))


def test_warmup_and_join_take_any_callable():
    from_optax = schedules.warmup(optax.linear_schedule(1.0, 0.0, 100), 10)
    assert_close(values(from_optax), np.where(T < 10, T / 10, 1 - np.clip(T - 10, 0, 100) / 100))
    joined = schedules.join(
        [lambda t: 0.5, optax.constant_schedule(0.25), schedules.linear(1.0, 0.0, 10)], [5, 7]
    )
    assert_close(
        values(joined), np.select([T < 5, T < 7], [0.5, 0.25], 1 - np.clip(T - 7, 0, 10) / 10)
    )


def test_join_gives_each_schedule_its_own_steps():
    schedule = schedules.join(
        [schedules.linear(0.0, 1.0, 10), schedules.step_decay(1.0, 10, gamma=0.5)], [10]
    )
    assert_close(values(schedule), np.where(T < 10, T / 10, 0.5 ** ((T - 10) // 10)))


def test_product_and_per_epoch():
    schedule = schedules.product(
        [schedules.step_decay(0.1, 30, gamma=0.5), schedules.exponential_decay(1.0, 0.99)]
    )
    assert_close(values(schedule), 0.1 * 0.5 ** (T // 30) * 0.99**T)
    by_epoch = schedules.per_epoch(schedules.cosine_decay(1.0, 10), 7)
    assert_close(values(by_epoch), 0.5 * (1 + np.cos(np.pi * np.minimum(T // 7, 10) / 10)))
    # Both take any callable, and a product of one schedule is that schedule.
    assert_close(values(schedules.product([optax.constant_schedule(0.5), lambda t: 0.2])), 0.1)
    assert_close(values(schedules.per_epoch(lambda t: t.astype(jnp.float32), 3)), T // 3)
    assert_close(
        values(schedules.product([schedules.linear(1.0, 0.0, 10)])), 1 - np.minimum(T, 10) / 10
    )


def test_momentum_schedules_mirror_the_rate():
    # Where the rate is at its peak the momentum is at its base, and the other way round.
    rate = schedules.one_cycle(1.0, 101, pct_start=0.2, div_factor=10.0, final_div_factor=1.0)
    momentum = schedules.one_cycle_momentum(101, pct_start=0.2)
    # Both pass through their three values with the same fractions of each phase.
    fraction = (values(rate) - 0.1) / 0.9
    assert_close(values(momentum), 0.95 - 0.1 * np.asarray(fraction, np.float64), rtol=2e-5)
    cycle = dict(step_size_up=5, step_size_down=3, mode="exp_range", gamma=0.99)
    rate = schedules.cyclic(0.0, 1.0, **cycle)
    momentum = schedules.cyclic_momentum(base_momentum=0.7, max_momentum=0.9, **cycle)
    assert_close(values(momentum), 0.9 - 0.2 * np.asarray(values(rate), np.float64))
