"""Each schedule family's values: closed forms in NumPy, and the references other than
torch (Keras, optax, SGDR walked in exact arithmetic). torch's schedulers are in
``test_schedules_torch``; schedules built from others in ``test_schedules_combinators``."""

from __future__ import annotations

import math
import os
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import HUGE_STEPS, INT32_MAX, T, assert_close, values

from lrjax import schedules

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
