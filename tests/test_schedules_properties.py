"""Properties of every family over random arguments (hypothesis): decays never rise,
rising schedules never fall, and every schedule stays within its values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from helpers import HUGE_STEPS, INT32_MAX, assert_close
from hypothesis import given
from hypothesis import strategies as st

from lrjax import schedules


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
