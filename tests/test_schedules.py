"""Schedules: closed forms, argument checks, the contract every schedule keeps, properties."""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import SCHEDULE_CASES as HELPER_CASES
from helpers import ScheduleCase
from hypothesis import given
from hypothesis import strategies as st

import lrjax
from lrjax import schedules

T = np.arange(400)
INT32_MAX = 2**31 - 1
# Steps where float32 and int32 arithmetic would break: past 2**24 (float32 stops
# counting whole numbers) and at the int32 maximum.
HUGE_STEPS = np.array(
    [0, 1, 2, 3, 10, 999, 2**16, 2**24 - 1, 2**24, 2**24 + 1, 2**30, INT32_MAX - 1, INT32_MAX],
    np.int32,
)


def assert_close(actual: jax.Array, expected: np.ndarray, rtol: float = 1e-5) -> None:
    assert actual.dtype == jnp.float32
    chex.assert_trees_all_close(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol
    )


def values(schedule: schedules.Schedule, steps: np.ndarray = T) -> jax.Array:
    return schedule(jnp.asarray(steps))


# ------------------------------------------------------------------- closed forms


def test_constant():
    assert_close(values(schedules.constant(0.3), HUGE_STEPS), np.full(len(HUGE_STEPS), 0.3))
    assert_close(values(schedules.constant(2)), np.full(len(T), 2.0))


def test_step_decay():
    assert_close(values(schedules.step_decay(0.1, 30, gamma=0.5)), 0.1 * 0.5 ** (T // 30))


def test_multistep_decay_counts_repeated_milestones():
    schedule = schedules.multistep_decay(0.1, [0, 10, 20, 20, 50], gamma=0.5)
    counts = 1 + (T >= 10).astype(int) + 2 * (T >= 20) + (T >= 50)
    assert_close(values(schedule), 0.1 * 0.5**counts)


def test_piecewise_constant():
    schedule = schedules.piecewise_constant([10, 20], [0.3, 0.2, 0.1])
    assert_close(values(schedule), np.select([T < 10, T < 20], [0.3, 0.2], 0.1))
    assert_close(values(schedules.piecewise_constant([], [0.3])), np.full(len(T), 0.3))


def test_exponential_decay():
    smooth = schedules.exponential_decay(1.0, 0.5, transition_steps=10)
    assert_close(values(smooth), 0.5 ** (T / 10))
    staircase = schedules.exponential_decay(1.0, 0.5, transition_steps=10, staircase=True)
    assert_close(values(staircase), 0.5 ** (T // 10))


def test_exponential_decay_end_value_is_a_floor_or_a_cap():
    floor = schedules.exponential_decay(
        1.0, 0.5, transition_steps=10, staircase=True, end_value=0.1
    )
    assert_close(values(floor), np.maximum(0.5 ** (T // 10), 0.1))
    cap = schedules.exponential_decay(0.01, 1.1, end_value=0.1)
    assert_close(values(cap), np.minimum(0.01 * 1.1**T, 0.1))
    capped = np.minimum(0.01 * 1.1 ** np.minimum(HUGE_STEPS, 100).astype(float), 0.1)
    assert_close(values(cap, HUGE_STEPS), capped)


def test_inverse_time_decay():
    smooth = schedules.inverse_time_decay(1.0, 0.5, decay_steps=10)
    assert_close(values(smooth), 1 / (1 + 0.5 * T / 10))
    staircase = schedules.inverse_time_decay(1.0, 0.5, decay_steps=10, staircase=True)
    assert_close(values(staircase), 1 / (1 + 0.5 * (T // 10)))


def test_polynomial_decay():
    schedule = schedules.polynomial_decay(1.0, 0.01, 100, power=2.0)
    assert_close(values(schedule), 0.99 * (1 - np.minimum(T, 100) / 100) ** 2 + 0.01)
    rising = schedules.polynomial_decay(0.0, 1.0, 100, power=0.5)
    assert_close(values(rising), -((1 - np.minimum(T, 100) / 100) ** 0.5) + 1.0)


def test_linear():
    assert_close(values(schedules.linear(1.0, 0.0, 100)), 1 - np.minimum(T, 100) / 100)
    assert_close(values(schedules.linear(0.1, 1.0, 100)), 0.1 + 0.9 * np.minimum(T, 100) / 100)


def test_cosine_decay_holds_end_value():
    expected = 0.01 + 0.5 * 0.99 * (1 + np.cos(np.pi * np.minimum(T, 100) / 100))
    assert_close(values(schedules.cosine_decay(1.0, 100, end_value=0.01)), expected)


def keras_cycled_polynomial(init, end, steps, power, t):
    """Keras's ``PolynomialDecay(cycle=True)``, as its source writes it."""
    t = np.asarray(t, np.float64)
    period = steps * np.where(t == 0, 1.0, np.ceil(t / steps))
    return (init - end) * (1 - t / period) ** power + end


def test_polynomial_decay_cycle():
    schedule = schedules.polynomial_decay(1.0, 0.01, 100, power=2.0, cycle=True)
    assert_close(values(schedule), keras_cycled_polynomial(1.0, 0.01, 100, 2.0, T))
    # At each multiple of N the rate is at end_value; one step later it is back up.
    assert_close(
        values(schedule, np.array([100, 101, 200, 201])),
        [0.01, 0.01 + 0.99 * 0.495**2, 0.01, 0.01 + 0.99 * 0.33**2],
    )
    huge = HUGE_STEPS.astype(np.int64)
    assert_close(values(schedule, HUGE_STEPS), keras_cycled_polynomial(1.0, 0.01, 100, 2.0, huge))


def test_cosine_decay_exponent():
    cosine = 0.5 * (1 + np.cos(np.pi * np.minimum(T, 100) / 100))
    for exponent in (0.5, 2.0, 3.7):
        schedule = schedules.cosine_decay(1.0, 100, end_value=0.01, exponent=exponent)
        assert_close(values(schedule), 0.01 + 0.99 * cosine**exponent)


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


# ----------------------------------------------------- references other than torch


def import_keras():
    """Keras 3 on the JAX backend; like torch (``helpers.import_torch``), required in CI."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import keras

        return keras
    return pytest.importorskip("keras")


REFERENCE_STEPS = np.arange(3001)


@pytest.mark.parametrize(
    ("init", "end", "steps", "power"),
    [(1.0, 0.0, 1, 1.0), (0.1, 1e-4, 7, 2.0), (0.3, 0.01, 250, 0.5), (1e-3, 0.5, 100, 3.0)],
)
def test_polynomial_decay_cycle_matches_keras(init, end, steps, power):
    keras = import_keras()
    # Keras in float64 (under x64): its float32 1 - t/P cancels near each multiple of N.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        keras.config.set_floatx("float64")
        try:
            reference = keras.optimizers.schedules.PolynomialDecay(
                init, steps, end_learning_rate=end, power=power, cycle=True
            )
            expected = np.asarray(reference(jnp.asarray(REFERENCE_STEPS, jnp.float64)))
        finally:
            keras.config.set_floatx("float32")
    schedule = schedules.polynomial_decay(init, end, steps, power=power, cycle=True)
    assert_close(values(schedule, REFERENCE_STEPS), expected)


@pytest.mark.parametrize(
    ("init", "steps", "alpha", "exponent"),
    [(1.0, 100, 0.0, 2.0), (0.1, 1000, 0.01, 0.5), (3e-4, 2999, 0.1, 3.0), (0.5, 1, 0.5, 1.5)],
)
def test_cosine_decay_exponent_matches_optax(init, steps, alpha, exponent):
    # optax in float64: in float32 its 1 + cos(pi t/N) cancels near N.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        reference = optax.cosine_decay_schedule(init, steps, alpha=alpha, exponent=exponent)
        expected = np.asarray(reference(jnp.asarray(REFERENCE_STEPS, jnp.float64)))
    schedule = schedules.cosine_decay(init, steps, end_value=alpha * init, exponent=exponent)
    assert_close(values(schedule, REFERENCE_STEPS), expected)


def sgdr(
    init: float, first: int, mult: float, end: float, decay: float, steps: np.ndarray
) -> np.ndarray:
    """SGDR by walking the cycles in exact rational arithmetic."""
    out = []
    for step in steps:
        cycle, start, length = 0, Fraction(0), Fraction(first)
        while start + length <= step:
            cycle, start, length = cycle + 1, start + length, length * Fraction(mult)
        fraction = float((step - start) / length)
        out.append(end + (init - end) * decay**cycle * 0.5 * (1 + math.cos(math.pi * fraction)))
    return np.asarray(out)


@pytest.mark.parametrize(
    ("first", "mult"), [(10, 1), (10, 2), (3, 3), (8, 1.5), (5, 1.25), (4, 2.5)]
)
def test_cosine_restarts(first, mult):
    schedule = schedules.cosine_restarts(
        1.0, first, period_mult=mult, end_value=0.01, peak_decay=0.7
    )
    assert_close(values(schedule), sgdr(1.0, first, mult, 0.01, 0.7, T))


@pytest.mark.parametrize("mult", [2, 3])
def test_cosine_restarts_restarts_on_the_exact_step_near_int32_max(mult):
    # The last restart below 2**31: S_i = (mult**i - 1) / (mult - 1), where a float32 cycle
    # index would be off by one.
    i = int(math.log(INT32_MAX * (mult - 1) + 1, mult))
    restart = (mult**i - 1) // (mult - 1)
    schedule = schedules.cosine_restarts(1.0, 1, period_mult=mult)
    assert float(schedule(restart)) == 1.0
    assert float(schedule(restart - 1)) < 1e-15


def test_cosine_restarts_peak_decay_keeps_the_floor():
    # Keras's m_mul with alpha: the height above end_value halves each cycle.
    schedule = schedules.cosine_restarts(1.0, 10, end_value=0.1, peak_decay=0.5)
    assert_close(values(schedule, np.array([0, 10, 20, 30])), [1.0, 0.55, 0.325, 0.2125])
    assert_close(values(schedule, np.array([5, 15])), [0.55, 0.325])


def test_cyclic_modes():
    def triangle(t, up, down):
        position = t % (up + down)
        return np.where(position <= up, position / up, (up + down - position) / down)

    cycle = T // 8
    sizes = {"step_size_up": 5, "step_size_down": 3}
    assert_close(values(schedules.cyclic(0.1, 1.0, **sizes)), 0.1 + 0.9 * triangle(T, 5, 3))
    triangular2 = schedules.cyclic(0.1, 1.0, **sizes, mode="triangular2")
    assert_close(values(triangular2), 0.1 + 0.9 * triangle(T, 5, 3) * 0.5**cycle)
    exp_range = schedules.cyclic(0.1, 1.0, **sizes, mode="exp_range", gamma=0.99)
    assert_close(values(exp_range), 0.1 + 0.9 * triangle(T, 5, 3) * 0.99**T)
    sawtooth = schedules.cyclic(0.0, 1.0, step_size_up=4, step_size_down=0)
    assert_close(values(sawtooth), (T % 4) / 4)


def test_one_cycle_phases():
    schedule = schedules.one_cycle(1.0, 101, pct_start=0.2, div_factor=10.0, final_div_factor=100.0)
    # Up from 0.1 to 1 on [0, 0.2 * 101 - 1], down to 1e-3 at step 100, then held.
    warm_end = 0.2 * 101 - 1
    t = np.minimum(T, 100)
    up = 1.0 + (0.1 - 1.0) * 0.5 * (1 + np.cos(np.pi * t / warm_end))
    down = 1e-3 + (1.0 - 1e-3) * 0.5 * (1 + np.cos(np.pi * (t - warm_end) / (100 - warm_end)))
    assert_close(values(schedule), np.where(t <= warm_end, up, down))
    three = schedules.one_cycle(
        1.0,
        100,
        pct_start=0.25,
        div_factor=10.0,
        final_div_factor=10.0,
        anneal="linear",
        three_phase=True,
    )
    assert_close(values(three, np.array([0, 24, 48, 99, 200])), [0.1, 1.0, 0.1, 0.01, 0.01])
    degenerate = schedules.one_cycle(1.0, 10, pct_start=0.1)  # pct_start * total_steps == 1
    assert float(degenerate(0)) == 1.0


def test_inverse_sqrt():
    expected = np.where(T <= 10, T / 10, np.sqrt(10 / np.maximum(T, 1)))
    assert_close(values(schedules.inverse_sqrt(1.0, 10)), expected)
    assert float(schedules.inverse_sqrt(1.0, 10)(0)) == 0.0


@pytest.mark.parametrize(
    ("shape", "f"),
    [
        ("linear", lambda tau: 1 - tau),
        ("cosine", lambda tau: 0.5 * (1 + np.cos(np.pi * tau))),
        ("1-sqrt", lambda tau: 1 - np.sqrt(tau)),
    ],
)
def test_wsd_shapes(shape, f):
    schedule = schedules.wsd(1.0, 20, 100, 200, init_value=0.1, end_value=0.01, decay_shape=shape)
    tau = np.clip((T - 120) / 200, 0, 1)
    expected = np.where(T < 20, 0.1 + 0.9 * T / 20, np.where(T < 120, 1.0, 0.01 + 0.99 * f(tau)))
    assert_close(values(schedule), expected)
    assert float(schedule(320)) == pytest.approx(0.01)
    assert float(schedule(INT32_MAX)) == pytest.approx(0.01)


def test_wsd_without_warmup_or_stable_phase():
    assert_close(
        values(schedules.wsd(1.0, 0, 0, 100, decay_shape="linear")), 1 - np.minimum(T, 100) / 100
    )


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


def test_negative_and_float_steps():
    schedule = schedules.cosine_decay(1.0, 100)
    assert float(schedule(-5)) == 1.0
    assert_close(
        schedule(jnp.asarray([2.5, 50.0], jnp.float32)),
        0.5 * (1 + np.cos(np.pi * np.array([2.5, 50]) / 100)),
    )


# --------------------------------------------------------------------- validation


INVALID = [
    (lambda: schedules.constant(-0.1), "constant: value must be >= 0, got -0.1"),
    (
        lambda: schedules.constant(float("nan")),
        "constant: value must be finite in float32, got nan",
    ),
    (
        lambda: schedules.step_decay(0.1, 0),
        "step_decay: step_size must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.step_decay(0.1, 2.5),
        "step_decay: step_size must be a concrete integer >= 1, got 2.5",
    ),
    (
        lambda: schedules.step_decay(0.1, 10, gamma=0.0),
        "step_decay: gamma must be in (0, 1], got 0.0",
    ),
    (
        lambda: schedules.step_decay(0.1, 10, gamma=1.5),
        "step_decay: gamma must be in (0, 1], got 1.5",
    ),
    (
        lambda: schedules.step_decay(-1.0, 10),
        "step_decay: init_value must be >= 0, got -1.0",
    ),
    (
        lambda: schedules.multistep_decay(0.1, [30, 10]),
        "multistep_decay: milestones must be non-decreasing, got (30, 10)",
    ),
    (
        lambda: schedules.multistep_decay(0.1, [-1]),
        "multistep_decay: milestones[0] must be an integer >= 0, got -1",
    ),
    (
        lambda: schedules.multistep_decay(0.1, [10], gamma=-0.5),
        "multistep_decay: gamma must be > 0, got -0.5",
    ),
    (
        lambda: schedules.piecewise_constant([10, 10], [1.0, 0.5, 0.1]),
        "piecewise_constant: boundaries must be strictly increasing, got (10, 10)",
    ),
    (
        lambda: schedules.piecewise_constant([0], [1.0, 0.5]),
        "piecewise_constant: boundaries[0] must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.piecewise_constant([10], [1.0]),
        "piecewise_constant: values must have len(boundaries) + 1 = 2 entries, got 1",
    ),
    (
        lambda: schedules.piecewise_constant([10], [1.0, -1.0]),
        "piecewise_constant: values[1] must be >= 0, got -1.0",
    ),
    (
        lambda: schedules.exponential_decay(0.1, 0.0),
        "exponential_decay: decay_rate must be > 0, got 0.0",
    ),
    (
        lambda: schedules.exponential_decay(0.1, 1.5),
        "exponential_decay: decay_rate must be <= 1 without an end_value (a growing rate needs"
        " end_value as its cap), got 1.5",
    ),
    (
        lambda: schedules.exponential_decay(1e-30, 1.1, end_value=1.0),
        "exponential_decay: end_value must be at most 1e+17 * init_value for a growing rate,"
        " got 1.0 with init_value=1e-30",
    ),
    (
        lambda: schedules.exponential_decay(0.1, 0.9, transition_steps=0),
        "exponential_decay: transition_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.exponential_decay(0.1, 0.9, staircase="yes"),
        "exponential_decay: staircase must be True or False, got 'yes'",
    ),
    (
        lambda: schedules.exponential_decay(0.1, 0.9, end_value=-1.0),
        "exponential_decay: end_value must be >= 0, got -1.0",
    ),
    (
        lambda: schedules.inverse_time_decay(0.1, 0.5, decay_steps=0),
        "inverse_time_decay: decay_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.inverse_time_decay(0.1, -0.5),
        "inverse_time_decay: decay_rate must be >= 0, got -0.5",
    ),
    (
        lambda: schedules.polynomial_decay(0.1, 0.0, 0),
        "polynomial_decay: decay_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.polynomial_decay(0.1, 0.0, 10, power=0.0),
        "polynomial_decay: power must be > 0, got 0.0",
    ),
    (
        lambda: schedules.polynomial_decay(0.1, float("inf"), 10),
        "polynomial_decay: end_value must be finite in float32, got inf",
    ),
    (
        lambda: schedules.linear(0.1, 0.0, 0),
        "linear: transition_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.linear(0.1, -0.1, 10),
        "linear: end_value must be >= 0, got -0.1",
    ),
    (
        lambda: schedules.cosine_decay(0.1, 0),
        "cosine_decay: decay_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.cosine_decay(-0.1, 10),
        "cosine_decay: init_value must be >= 0, got -0.1",
    ),
    (
        lambda: schedules.cosine_restarts(0.1, 0),
        "cosine_restarts: first_period must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.cosine_restarts(0.1, 10, period_mult=0.5),
        "cosine_restarts: period_mult must be 1 or a number >= 1.01, got 0.5",
    ),
    (
        lambda: schedules.cosine_restarts(0.1, 10, period_mult=1.001),
        "cosine_restarts: period_mult must be 1 or a number >= 1.01, got 1.001",
    ),
    (
        lambda: schedules.cosine_restarts(0.1, 10, peak_decay=0.0),
        "cosine_restarts: peak_decay must be in (0, 1], got 0.0",
    ),
    (
        lambda: schedules.cosine_restarts(0.1, 10, peak_decay=1.5),
        "cosine_restarts: peak_decay must be in (0, 1], got 1.5",
    ),
    (
        lambda: schedules.cyclic(0.1, 1.0, step_size_up=0),
        "cyclic: step_size_up must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.cyclic(0.1, 1.0, step_size_up=10, step_size_down=-1),
        "cyclic: step_size_down must be an integer >= 0, got -1",
    ),
    (
        lambda: schedules.cyclic(0.1, 1.0, mode="sine"),
        "cyclic: mode must be one of 'triangular', 'triangular2', 'exp_range', got 'sine'",
    ),
    (
        lambda: schedules.cyclic(0.1, 1.0, mode="exp_range", gamma=0.0),
        "cyclic: gamma must be in (0, 1], got 0.0",
    ),
    (
        lambda: schedules.cyclic(0.1, 1.0, mode="exp_range", gamma=1.5),
        "cyclic: gamma must be in (0, 1], got 1.5",
    ),
    (lambda: schedules.cyclic(-0.1, 1.0), "cyclic: base_value must be >= 0, got -0.1"),
    (
        lambda: schedules.one_cycle(0.1, 0),
        "one_cycle: total_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.one_cycle(0.1, 100, pct_start=1.5),
        "one_cycle: pct_start must be in [0, 1) (at 1 the final rate is never reached), got 1.5",
    ),
    (
        lambda: schedules.one_cycle(0.1, 100, div_factor=0.0),
        "one_cycle: div_factor must be >= 1.18e-38 (the smallest normal float32), got 0.0",
    ),
    (
        lambda: schedules.one_cycle(0.1, 100, final_div_factor=-1.0),
        "one_cycle: final_div_factor must be >= 1.18e-38 (the smallest normal float32), got -1.0",
    ),
    (
        lambda: schedules.one_cycle(0.1, 100, anneal="cosine"),
        "one_cycle: anneal must be one of 'cos', 'linear', got 'cosine'",
    ),
    (
        lambda: schedules.one_cycle(0.1, 100, three_phase=1),
        "one_cycle: three_phase must be True or False, got 1",
    ),
    (
        lambda: schedules.inverse_sqrt(0.1, 0),
        "inverse_sqrt: warmup_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.inverse_sqrt(-0.1, 10),
        "inverse_sqrt: peak_value must be >= 0, got -0.1",
    ),
    (
        lambda: schedules.wsd(0.1, -1, 10, 10),
        "wsd: warmup_steps must be an integer >= 0, got -1",
    ),
    (
        lambda: schedules.wsd(0.1, 10, -1, 10),
        "wsd: stable_steps must be an integer >= 0, got -1",
    ),
    (
        lambda: schedules.wsd(0.1, 10, 10, 0),
        "wsd: decay_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.wsd(0.1, 10, 10, 10, decay_shape="exp"),
        "wsd: decay_shape must be one of 'linear', 'cosine', '1-sqrt', got 'exp'",
    ),
    (
        lambda: schedules.wsd(0.1, 10, 10, 10, init_value=-1.0),
        "wsd: init_value must be >= 0, got -1.0",
    ),
    (
        lambda: schedules.warmup(schedules.constant(0.1), 0),
        "warmup: warmup_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.warmup(0.1, 10),
        "warmup: schedule must be a callable step -> rate, got 0.1",
    ),
    (
        lambda: schedules.warmup(schedules.constant(0.1), 10, init_value=-1.0),
        "warmup: init_value must be >= 0, got -1.0",
    ),
    (
        lambda: schedules.join([schedules.constant(0.1)], [10]),
        "join: schedules must have len(boundaries) + 1 = 2 entries, got 1",
    ),
    (
        lambda: schedules.join([schedules.constant(0.1)] * 3, [20, 10]),
        "join: boundaries must be strictly increasing, got (20, 10)",
    ),
    (
        lambda: schedules.join([schedules.constant(0.1)] * 2, [0]),
        "join: boundaries[0] must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.join([schedules.constant(0.1), "cosine"], [10]),
        "join: schedules[1] must be a callable step -> rate, got 'cosine'",
    ),
    (
        lambda: schedules.polynomial_decay(0.1, 0.0, 10, cycle="yes"),
        "polynomial_decay: cycle must be True or False, got 'yes'",
    ),
    (
        lambda: schedules.cosine_decay(0.1, 10, exponent=0.0),
        "cosine_decay: exponent must be > 0, got 0.0",
    ),
    (
        lambda: schedules.per_epoch(schedules.constant(0.1), 0),
        "per_epoch: steps_per_epoch must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.per_epoch(0.1, 10),
        "per_epoch: schedule must be a callable step -> rate, got 0.1",
    ),
    (lambda: schedules.product([]), "product: schedules must hold at least one schedule, got []"),
    (
        lambda: schedules.product(schedules.constant(0.1)),
        "product: schedules must be a list or tuple of callables step -> rate, got constant(",
    ),
    (
        lambda: schedules.product([schedules.constant(0.1), 2.0]),
        "product: schedules[1] must be a callable step -> rate, got 2.0",
    ),
    (
        lambda: schedules.one_cycle_momentum(100, base_momentum=1.5),
        "one_cycle_momentum: base_momentum must be in [0, 1], got 1.5",
    ),
    (
        lambda: schedules.one_cycle_momentum(100, max_momentum=-0.1),
        "one_cycle_momentum: max_momentum must be in [0, 1], got -0.1",
    ),
    (
        lambda: schedules.one_cycle_momentum(100, pct_start=1.0),
        "one_cycle_momentum: pct_start must be in [0, 1) (at 1 the final momentum is never"
        " reached), got 1.0",
    ),
    (
        lambda: schedules.one_cycle_momentum(0),
        "one_cycle_momentum: total_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: schedules.cyclic_momentum(max_momentum=1.01),
        "cyclic_momentum: max_momentum must be in [0, 1], got 1.01",
    ),
    (
        lambda: schedules.cyclic_momentum(gamma=0.9),
        "cyclic_momentum: gamma must be 1 unless mode='exp_range' (mode='triangular' has no"
        " gamma), got 0.9",
    ),
    (
        lambda: schedules.cyclic_momentum(step_size_up=0),
        "cyclic_momentum: step_size_up must be an integer >= 1, got 0",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), INVALID, ids=[message.split(" must")[0] for _, message in INVALID]
)
def test_invalid_arguments_raise(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_traced_arguments_are_not_checked():
    # Inside jax.vmap the value is unknown at construction: no check, no error.
    rates = jax.vmap(lambda v: schedules.cosine_decay(v, 10)(0))(jnp.asarray([0.1, 0.2]))
    assert_close(rates, [0.1, 0.2])


# ----------------------------------------------------------------------- contract

# A plain optax schedule as a factor of product (module-level: a new one per build would be
# a new static child, and a retrace).
_OPTAX_FACTOR = optax.exponential_decay(1.0, 10, 0.9)

# The turn-2 options and combinators, under the same contract as every schedule (they
# belong with the others in helpers.SCHEDULE_CASES, which is not this change's to edit).
TURN_2_CASES = {
    "polynomial_cycle": ScheduleCase(
        lambda v: schedules.polynomial_decay(v, 1e-3, 10, power=2.0, cycle=True),
        (0, 9, 10, 11, 20, 21),
    ),
    "cosine_exponent": ScheduleCase(
        lambda v: schedules.cosine_decay(0.1, 100, end_value=1e-3, exponent=v + 1.9),
        (0, 1, 99, 100, 101),
    ),
    "per_epoch": ScheduleCase(
        lambda v: schedules.per_epoch(schedules.step_decay(v, 3, gamma=0.5), 10),
        (0, 9, 10, 29, 30, 31),
    ),
    "product": ScheduleCase(
        lambda v: schedules.product([schedules.step_decay(v, 30, gamma=0.5), _OPTAX_FACTOR]),
        (0, 29, 30, 1000),
    ),
    "one_cycle_momentum": ScheduleCase(
        lambda v: schedules.one_cycle_momentum(100, base_momentum=v + 0.75),
        (0, 29, 30, 99, 100),
    ),
    "cyclic_momentum_exp_range": ScheduleCase(
        lambda v: schedules.cyclic_momentum(
            step_size_up=5, step_size_down=3, mode="exp_range", gamma=v + 0.89
        ),
        (0, 5, 8, 9, 1000),
    ),
}
SCHEDULE_CASES = {**HELPER_CASES, **TURN_2_CASES}
SCHEDULE_NAMES = sorted(SCHEDULE_CASES)

# One step array for every case (a new shape would compile every operation again): the
# phase ends of all cases, and the huge steps.
STEPS = np.unique(np.concatenate([HUGE_STEPS, *(case.steps for case in SCHEDULE_CASES.values())]))
STEPS = STEPS.astype(np.int32)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_jit_matches_eager_and_stays_finite_up_to_the_int32_maximum(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    eager = schedule(jnp.asarray(STEPS))
    assert_close(jax.jit(schedule)(jnp.asarray(STEPS)), eager, rtol=1e-6)
    rates = np.asarray(eager)
    assert np.all(np.isfinite(rates)), rates
    assert np.all(rates >= 0), rates


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_vmap_over_steps_matches_a_loop(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    batched = jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS))
    one = jax.jit(schedule)  # one compile for the scalar steps of the loop
    assert_close(batched, np.asarray([one(step) for step in STEPS]), rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_vmap_over_a_float_argument(name):
    # The schedule is built inside vmap: its float argument is a tracer.
    case = SCHEDULE_CASES[name]
    arguments = jnp.asarray([0.05, 0.075, 0.1], jnp.float32)
    steps = jnp.asarray(STEPS)
    batched = jax.jit(jax.vmap(lambda v: case.build(v)(steps)))(arguments)
    assert_close(batched, np.stack([case.build(v)(steps) for v in arguments]), rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_grad_with_respect_to_a_float_argument_is_finite(name):
    case = SCHEDULE_CASES[name]
    steps = jnp.asarray([*case.steps, INT32_MAX])
    gradient = jax.grad(lambda v, step: case.build(v)(step))
    gradients = jax.jit(jax.vmap(gradient, in_axes=(None, 0)))(jnp.float32(0.1), steps)
    assert np.all(np.isfinite(gradients)), (steps, gradients)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_result_is_float32_with_the_shape_of_step(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    for step in (7, np.int32(7)):
        rate = schedule(step)
        assert rate.dtype == jnp.float32
        assert rate.shape == ()
    for step in (jax.ShapeDtypeStruct((2, 3), jnp.int32), jax.ShapeDtypeStruct((4,), jnp.float32)):
        rate = jax.eval_shape(schedule, step)
        assert rate.dtype == jnp.float32
        assert rate.shape == step.shape


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_int64_and_float_steps(name):
    expected = SCHEDULE_CASES[name].build(0.1)(jnp.asarray(STEPS))
    # float32 holds whole steps exactly only up to 2**24.
    small = STEPS <= 2**24
    huge = [2**31, 2**40, 2**62, 2**63 - 1]
    with jax.enable_x64(True):
        schedule = SCHEDULE_CASES[name].build(0.1)
        rates = jax.jit(lambda *steps: [schedule(s) for s in steps])(
            jnp.asarray(STEPS, jnp.float32),
            jnp.asarray([*STEPS, *huge], jnp.int64),
            jnp.asarray(STEPS, jnp.float64),
        )
    floats, int64s, float64s = rates
    assert_close(floats[small], expected[small], rtol=1e-6)
    # An optax child computes in the step's 64-bit precision; lrjax's own arithmetic is
    # float32 whatever the step.
    assert_close(int64s[: len(STEPS)], expected, rtol=1e-5)
    assert_close(float64s, expected, rtol=1e-5)
    assert np.all(np.isfinite(int64s)), int64s
    assert np.all(int64s >= 0), int64s


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_drives_optax_adam_and_lrjax(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    params, grads = jnp.zeros(3), jnp.ones(3)

    @jax.jit
    def first_updates():
        out = []
        for tx in (optax.adam(schedule), lrjax.scale_by_learning_rate(schedule)):
            state = tx.init(params)
            for _ in range(3):
                with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int
                    updates, state = tx.update(grads, state, params)
                out.append(updates)
        return out

    updates = first_updates()
    rates = schedule(jnp.arange(3))
    for step in range(3):
        # With constant gradients Adam steps by the rate itself, up to float32's 1 - 0.999
        # in its bias correction.
        assert_close(updates[step], -rates[step] * grads, rtol=1e-4)
        assert_close(updates[3 + step], -rates[step] * grads, rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_new_float_values_do_not_retrace(name):
    # The schedule is an argument of the jitted function; the step is a traced int32.
    case = SCHEDULE_CASES[name]
    rate = jax.jit(chex.assert_max_traces(lambda schedule, step: schedule(step), n=1))
    for v in (0.1, 0.05, 0.075):
        assert_close(rate(case.build(v), 10), case.build(v)(10), rtol=1e-6)
    chex.clear_trace_counter()
    rate = jax.jit(chex.assert_max_traces(lambda schedule, step: schedule(step), n=1))
    for v in (0.1, 0.05):
        rate(case.build(jnp.float32(v)), 10)
    chex.clear_trace_counter()


REPRS = [
    (
        schedules.cosine_decay(0.1, 100),
        "cosine_decay(init_value=0.1, decay_steps=100, end_value=0.0, exponent=1.0)",
    ),
    (
        schedules.polynomial_decay(0.1, 0.0, 100, cycle=True),
        "polynomial_decay(init_value=0.1, end_value=0.0, decay_steps=100, power=1.0, cycle=True)",
    ),
    (
        schedules.one_cycle_momentum(100),
        "one_cycle_momentum(total_steps=100, pct_start=0.3, base_momentum=0.85,"
        " max_momentum=0.95, anneal='cos', three_phase=False)",
    ),
    (
        schedules.cyclic_momentum(step_size_up=10, mode="exp_range", gamma=0.99),
        "cyclic_momentum(base_momentum=0.8, max_momentum=0.9, step_size_up=10,"
        " step_size_down=10, mode='exp_range', gamma=0.99)",
    ),
    (
        schedules.product([schedules.constant(0.1), schedules.exponential_decay(1.0, 0.9)]),
        "product(schedules=(constant(value=0.1), exponential_decay(init_value=1.0,"
        " decay_rate=0.9, transition_steps=1, staircase=False, end_value=None)))",
    ),
    (
        schedules.per_epoch(schedules.step_decay(0.1, 30), 100),
        "per_epoch(schedule=step_decay(init_value=0.1, step_size=30, gamma=0.1),"
        " steps_per_epoch=100)",
    ),
    (schedules.constant(1), "constant(value=1.0)"),
    (
        schedules.multistep_decay(0.1, [10, 20]),
        "multistep_decay(init_value=0.1, milestones=(10, 20), gamma=0.1)",
    ),
    (
        schedules.exponential_decay(0.1, 0.5),
        "exponential_decay(init_value=0.1, decay_rate=0.5, transition_steps=1, staircase=False,"
        " end_value=None)",
    ),
    (
        schedules.cyclic(0.0, 1.0, step_size_up=10),
        "cyclic(base_value=0.0, max_value=1.0, step_size_up=10, step_size_down=10,"
        " mode='triangular', gamma=1.0)",
    ),
    (
        schedules.warmup(schedules.constant(0.1), 5),
        "warmup(schedule=constant(value=0.1), warmup_steps=5, init_value=0.0)",
    ),
    (
        schedules.join([schedules.constant(0.1), schedules.linear(0.1, 0.0, 10)], [5]),
        "join(schedules=(constant(value=0.1), linear(init_value=0.1, end_value=0.0,"
        " transition_steps=10)), boundaries=(5,))",
    ),
]


@pytest.mark.parametrize(("schedule", "text"), REPRS, ids=[text.split("(")[0] for _, text in REPRS])
def test_repr_reads_as_the_constructor_call(schedule, text):
    assert repr(schedule) == text
    rebuilt = eval(text, vars(schedules))  # the repr is the call that makes it
    assert_close(rebuilt(jnp.asarray(STEPS)), schedule(jnp.asarray(STEPS)), rtol=0)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_every_repr_names_its_constructor(name):
    text = repr(SCHEDULE_CASES[name].build(0.1))
    assert re.fullmatch(r"[a-z_]+\(.*\)", text), text
    assert "object at" not in text.split("(")[0], text


# --------------------------------------------------------------------- properties


def assert_within(rates: np.ndarray, low: float, high: float, schedule: object) -> None:
    """``low <= rates <= high`` up to float32 rounding.

    XLA on CPU flushes float32 subnormals to zero, so a bound below the smallest normal
    float32 (1.2e-38) is 0 there.
    """
    tiny = float(np.finfo(np.float32).tiny)
    low, high = (float(np.float32(b)) if abs(b) >= tiny else 0.0 for b in (low, high))
    assert np.all(np.isfinite(rates)), schedule
    assert np.all(rates >= low * (1 - 1e-6)), schedule
    assert np.all(rates <= high * (1 + 1e-6)), schedule


PROPERTY_STEPS = jnp.asarray(
    np.concatenate([np.arange(1200), HUGE_STEPS[HUGE_STEPS >= 1200]]).astype(np.int32)
)

rate = st.one_of(st.just(0.0), st.floats(1e-6, 10.0))
length = st.integers(1, 400)
factor = st.floats(1e-3, 1.0)


def _decays(draw):
    """A decaying schedule, its bounds, and ``"down"`` (non-increasing)."""
    init = draw(rate)
    end = draw(st.floats(0.0, 1.0)) * init
    kind = draw(
        st.sampled_from(
            ["step", "multistep", "exponential", "inverse_time", "polynomial", "linear", "cosine"]
        )
    )
    if kind == "step":
        schedule = schedules.step_decay(init, draw(length), gamma=draw(factor))
    elif kind == "multistep":
        milestones = sorted(draw(st.lists(st.integers(0, 1500), max_size=6)))
        schedule = schedules.multistep_decay(init, milestones, gamma=draw(factor))
    elif kind == "exponential":
        schedule = schedules.exponential_decay(
            init,
            draw(factor),
            transition_steps=draw(length),
            staircase=draw(st.booleans()),
            end_value=end,
        )
        return schedule, end, init
    elif kind == "inverse_time":
        schedule = schedules.inverse_time_decay(
            init,
            draw(st.floats(0.0, 10.0)),
            decay_steps=draw(length),
            staircase=draw(st.booleans()),
        )
    elif kind == "polynomial":
        power = draw(st.floats(0.1, 5.0))
        schedule = schedules.polynomial_decay(init, end, draw(length), power=power)
        return schedule, end, init
    elif kind == "linear":
        return schedules.linear(init, end, draw(length)), end, init
    else:
        exponent = draw(st.one_of(st.just(1.0), st.floats(0.1, 5.0)))
        schedule = schedules.cosine_decay(init, draw(length), end_value=end, exponent=exponent)
        return schedule, end, init
    return schedule, 0.0, init


@given(data=st.data())
def test_decays_are_non_increasing_and_bounded(data):
    schedule, low, high = _decays(data.draw)
    rates = np.asarray(schedule(PROPERTY_STEPS), np.float64)
    assert_within(rates, low, high, schedule)
    assert np.all(np.diff(rates) <= 1e-6 * rates[:-1]), schedule


@given(
    init=rate,
    end=rate,
    steps=length,
    power=st.floats(0.1, 5.0),
    kind=st.sampled_from(["poly", "linear", "cos"]),
)
def test_rising_schedules_are_non_decreasing(init, end, steps, power, kind):
    low, high = min(init, end), max(init, end)
    if kind == "poly":
        schedule = schedules.polynomial_decay(low, high, steps, power=power)
    elif kind == "linear":
        schedule = schedules.linear(low, high, steps)
    else:
        schedule = schedules.cosine_decay(low, steps, end_value=high, exponent=power)
    rates = np.asarray(schedule(PROPERTY_STEPS), np.float64)
    assert_within(rates, low, high, schedule)
    assert np.all(np.diff(rates) >= -1e-6 * rates[1:]), schedule


# A rate of exactly 1 does not grow: a cap above init_value would be a floor above it.
@given(
    init=rate,
    cap=rate,
    growth=st.floats(1.0, 2.0, exclude_min=True),
    steps=length,
    staircase=st.booleans(),
)
def test_exponential_growth_is_non_decreasing_up_to_its_cap(init, cap, growth, steps, staircase):
    cap = max(init, cap)
    schedule = schedules.exponential_decay(
        init, growth, transition_steps=steps, staircase=staircase, end_value=cap
    )
    rates = np.asarray(schedule(PROPERTY_STEPS), np.float64)
    assert_within(rates, init, cap, schedule)
    assert np.all(np.diff(rates) >= -1e-6 * rates[1:])


def _cycles(draw):
    """A schedule that is not monotone, and the range of values it stays in."""
    kind = draw(
        st.sampled_from(
            [
                "restarts",
                "cyclic",
                "one_cycle",
                "inverse_sqrt",
                "wsd",
                "warmup",
                "join",
                "piecewise",
                "polynomial_cycle",
                "momentum",
                "product",
                "per_epoch",
            ]
        )
    )
    a, b, c = draw(rate), draw(rate), draw(rate)
    if kind == "polynomial_cycle":
        power = draw(st.floats(0.1, 5.0))
        schedule = schedules.polynomial_decay(a, b, draw(length), power=power, cycle=True)
        return schedule, min(a, b), max(a, b)
    if kind == "momentum":  # between its two values, in either order
        low, high = draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))
        momenta = dict(base_momentum=low, max_momentum=high)
        if draw(st.booleans()):
            three_phase = draw(st.booleans())
            schedule = schedules.one_cycle_momentum(
                draw(st.integers(1, 2000)),
                pct_start=draw(st.floats(0.0, 0.5)),
                **momenta,
                anneal=draw(st.sampled_from(["cos", "linear"])),
                three_phase=three_phase,
            )
        else:
            mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
            schedule = schedules.cyclic_momentum(
                **momenta,
                step_size_up=draw(length),
                step_size_down=draw(st.integers(0, 400)),
                mode=mode,
                gamma=draw(factor) if mode == "exp_range" else 1.0,
            )
        return schedule, min(low, high), max(low, high)
    if kind == "product":  # a rate times a factor in [0, 1]
        factor_ = schedules.cosine_restarts(1.0, draw(length), end_value=draw(factor))
        return schedules.product([schedules.linear(a, b, draw(length)), factor_]), 0.0, max(a, b)
    if kind == "per_epoch":
        inner = schedules.cyclic(a, b, step_size_up=draw(length))
        return schedules.per_epoch(inner, draw(length)), min(a, b), max(a, b)
    if kind == "restarts":
        mult = draw(st.one_of(st.sampled_from([1, 2, 3]), st.floats(1.01, 3.0)))
        return (
            schedules.cosine_restarts(
                a, draw(length), period_mult=mult, end_value=b, peak_decay=draw(factor)
            ),
            min(a, b),
            max(a, b),
        )
    if kind == "cyclic":
        mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
        schedule = schedules.cyclic(
            a,
            b,
            step_size_up=draw(length),
            step_size_down=draw(st.integers(0, 400)),
            mode=mode,
            gamma=draw(factor) if mode == "exp_range" else 1.0,
        )
        return schedule, min(a, b), max(a, b)
    if kind == "one_cycle":
        three_phase = draw(st.booleans())
        schedule = schedules.one_cycle(
            a,
            draw(st.integers(1, 2000)),
            # The final rate is reached: pct_start < 1, or <= 0.5 with three phases.
            pct_start=draw(
                st.floats(0.0, 0.5) if three_phase else st.floats(0.0, 1.0, exclude_max=True)
            ),
            div_factor=draw(st.floats(1.0, 100.0)),
            final_div_factor=draw(st.floats(1.0, 1e4)),
            anneal=draw(st.sampled_from(["cos", "linear"])),
            three_phase=three_phase,
        )
        return schedule, 0.0, a
    if kind == "inverse_sqrt":
        return schedules.inverse_sqrt(a, draw(length)), 0.0, a
    if kind == "wsd":
        shape = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
        warmup = draw(st.integers(0, 400))
        schedule = schedules.wsd(
            a,
            warmup,
            draw(st.integers(0, 400)),
            draw(length),
            init_value=b if warmup else 0.0,  # without a warm-up init_value must be 0
            end_value=c,
            decay_shape=shape,
        )
        return schedule, min(a, b, c), max(a, b, c)
    if kind == "warmup":
        return (
            schedules.warmup(
                schedules.cosine_decay(a, draw(length), end_value=b), draw(length), init_value=c
            ),
            min(a, b, c),
            max(a, b, c),
        )
    if kind == "join":
        first, second = draw(length), draw(length)
        schedule = schedules.join(
            [schedules.linear(c, a, first), schedules.cosine_decay(a, second, end_value=b)],
            [first],
        )
        return schedule, min(a, b, c), max(a, b, c)
    values_ = draw(st.lists(rate, min_size=1, max_size=5))
    boundaries = sorted(
        draw(st.sets(st.integers(1, 1500), min_size=len(values_) - 1, max_size=len(values_) - 1))
    )
    return schedules.piecewise_constant(boundaries, values_), min(values_), max(values_)


@given(data=st.data())
def test_cyclical_schedules_stay_within_their_values(data):
    schedule, low, high = _cycles(data.draw)
    rates = np.asarray(schedule(PROPERTY_STEPS), np.float64)
    assert_within(rates, low, high, schedule)


@given(data=st.data(), step=st.integers(0, INT32_MAX))
def test_jit_equals_eager_at_random_steps(data, step):
    schedule, _, _ = _cycles(data.draw)
    rate = schedule(step)
    assert np.isfinite(rate)
    assert rate >= 0
    assert_close(jax.jit(schedule)(jnp.int32(step)), rate, rtol=1e-6)
