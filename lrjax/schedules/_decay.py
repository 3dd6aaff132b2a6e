"""Monotone schedules: constant, step-wise, exponential, inverse-time, polynomial, linear."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._base import check, check_integer, is_concrete
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_flag,
    check_nonnegative,
    check_positive,
    count_reached,
    float_arg,
    floor_divmod,
    log_of,
    power,
    progress,
    schedule_class,
)

# A growing exponential_decay reaches its cap within this factor of init_value.
_MAX_GROWTH = 1e17


def _exponent(step: jax.Array, period: int, staircase: bool) -> jax.Array:
    """``step / period`` in float32, floored if ``staircase``."""
    quotient, remainder = floor_divmod(step, period)
    exponent = quotient.astype(jnp.float32)
    if staircase:
        return exponent
    return exponent + remainder.astype(jnp.float32) / period


# ------------------------------------------------------------------- constant


@schedule_class("constant")
class _Constant(Schedule):
    value: Any

    def _value(self, step: jax.Array) -> jax.Array:
        return as_float(self.value)


def constant(value: float | jax.Array) -> Schedule:
    """A constant learning rate.

    .. math:: \\eta_t = v

    Args:
      value: the rate, finite and >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedules.constant(0.1)
      constant(value=0.1)
      >>> round(float(schedules.constant(0.1)(1000)), 6)
      0.1

    torch has no scheduler for this (it is the optimizer's ``lr``); optax's is
    ``optax.constant_schedule``.
    """
    check_nonnegative("constant", "value", value)
    return _Constant(value=float_arg(value))


# ----------------------------------------------------------------- step decays


@schedule_class("step_decay", static=("step_size",))
class _StepDecay(Schedule):
    init_value: Any
    step_size: int
    gamma: Any

    def _value(self, step: jax.Array) -> jax.Array:
        decays, _ = floor_divmod(step, self.step_size)
        return as_float(self.init_value) * power(self.gamma, decays.astype(jnp.float32))


def step_decay(
    init_value: float | jax.Array, step_size: int, gamma: float | jax.Array = 0.1
) -> Schedule:
    """Multiplies the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \\eta_t = \\eta_0 \\, \\gamma^{\\lfloor t / s \\rfloor}

    Args:
      init_value: the rate η₀ of the first ``step_size`` steps, finite and >= 0.
      step_size: the number of steps s between two decays, an integer >= 1.
      gamma: the factor γ, in (0, 1]. A growing step schedule would overflow; use
        ``exponential_decay(..., staircase=True, end_value=cap)`` for one.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.step_decay(0.1, step_size=30, gamma=0.1)
      >>> [round(float(schedule(t)), 6) for t in (0, 29, 30, 60)]
      [0.1, 0.1, 0.01, 0.001]

    Equivalent to torch ``StepLR(optimizer, step_size, gamma)`` with ``lr=init_value``.
    """
    check_nonnegative("step_decay", "init_value", init_value)
    step_size = check_integer("step_decay", "step_size", step_size, 1)
    check("step_decay", "gamma", gamma, lambda v: (v > 0) & (v <= 1), "in (0, 1]")
    return _StepDecay(init_value=float_arg(init_value), step_size=step_size, gamma=float_arg(gamma))


@schedule_class("multistep_decay", static=("milestones",))
class _MultistepDecay(Schedule):
    init_value: Any
    milestones: tuple[int, ...]
    gamma: Any

    def _value(self, step: jax.Array) -> jax.Array:
        decays = count_reached(step, self.milestones).astype(jnp.float32)
        return as_float(self.init_value) * power(self.gamma, decays)


def multistep_decay(
    init_value: float | jax.Array,
    milestones: Sequence[int],
    gamma: float | jax.Array = 0.1,
) -> Schedule:
    """Multiplies the rate by ``gamma`` at each milestone.

    .. math:: \\eta_t = \\eta_0 \\, \\gamma^{\\#\\{i \\,:\\, m_i \\le t\\}}

    A milestone listed twice decays twice at that step, as in torch.

    Args:
      init_value: the rate η₀ before the first milestone, finite and >= 0.
      milestones: the steps mᵢ at which the rate is multiplied by γ: integers >= 0,
        non-decreasing. A milestone at 0 applies from the first step (as in torch).
      gamma: the factor γ, finite and > 0 (γ > 1 raises the rate at each milestone).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.multistep_decay(1.0, milestones=[10, 20, 20], gamma=0.5)
      >>> [float(schedule(t)) for t in (0, 10, 19, 20)]
      [1.0, 0.5, 0.5, 0.125]

    Equivalent to torch ``MultiStepLR(optimizer, milestones, gamma)`` with ``lr=init_value``.
    """
    check_nonnegative("multistep_decay", "init_value", init_value)
    milestones = tuple(
        check_integer("multistep_decay", f"milestones[{i}]", milestone, 0)
        for i, milestone in enumerate(milestones)
    )
    if list(milestones) != sorted(milestones):
        raise ValueError(f"multistep_decay: milestones must be non-decreasing, got {milestones}")
    check_positive("multistep_decay", "gamma", gamma)
    return _MultistepDecay(
        init_value=float_arg(init_value), milestones=milestones, gamma=float_arg(gamma)
    )


@schedule_class("piecewise_constant", static=("boundaries",))
class _PiecewiseConstant(Schedule):
    boundaries: tuple[int, ...]
    values: tuple[Any, ...]

    def _value(self, step: jax.Array) -> jax.Array:
        values = jnp.stack([as_float(value) for value in self.values])
        return values[count_reached(step, self.boundaries)]


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float | jax.Array]) -> Schedule:
    """``values[i]`` on the steps ``boundaries[i-1] <= t < boundaries[i]``.

    .. math:: \\eta_t = v_i \\quad \\text{for } b_{i-1} \\le t < b_i,
       \\qquad b_{-1} = 0,\\ b_n = \\infty

    Args:
      boundaries: the steps bᵢ at which the next value starts: integers >= 1, strictly
        increasing (a boundary at 0 would leave ``values[0]`` unused; an empty sequence
        gives a constant).
      values: the rates vᵢ, finite and >= 0, one more than ``boundaries``. They are
        absolute values, not factors (``optax.piecewise_constant_schedule`` takes factors).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.piecewise_constant([100, 200], [0.1, 0.01, 0.001])
      >>> [round(float(schedule(t)), 6) for t in (0, 99, 100, 200)]
      [0.1, 0.1, 0.01, 0.001]

    Keras ``PiecewiseConstantDecay`` switches one step later (at ``step > boundary``).
    """
    boundaries = tuple(
        check_integer("piecewise_constant", f"boundaries[{i}]", boundary, 1)
        for i, boundary in enumerate(boundaries)
    )
    if any(later <= earlier for earlier, later in itertools.pairwise(boundaries)):
        raise ValueError(
            f"piecewise_constant: boundaries must be strictly increasing, got {boundaries}"
        )
    values = tuple(values)
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"piecewise_constant: values must have len(boundaries) + 1 = {len(boundaries) + 1} "
            f"entries, got {len(values)}"
        )
    for i, value in enumerate(values):
        check_nonnegative("piecewise_constant", f"values[{i}]", value)
    return _PiecewiseConstant(boundaries=boundaries, values=tuple(float_arg(v) for v in values))


# ---------------------------------------------------------------- smooth decays


@schedule_class("exponential_decay", static=("transition_steps", "staircase"))
class _ExponentialDecay(Schedule):
    init_value: Any
    decay_rate: Any
    transition_steps: int
    staircase: bool
    end_value: Any

    def _value(self, step: jax.Array) -> jax.Array:
        exponent = _exponent(step, self.transition_steps, self.staircase)
        init = as_float(self.init_value)
        if self.end_value is None:
            return init * power(self.decay_rate, exponent)
        end, log_rate = as_float(self.end_value), log_of(self.decay_rate)
        growing = log_rate > 0
        # A growing rate overflows float32 within a few thousand steps, and an inf factor
        # makes the gradient of the capped value NaN (0 * inf): stop the exponent one
        # transition after the cap is reached. (The constructor keeps the cap within 1e17
        # of init_value, so the factor stays below e**40 times the rate; logs are kept off 0.)
        tiny = jnp.finfo(jnp.float32).tiny
        ratio = jnp.log(jnp.maximum(end, tiny)) - jnp.log(jnp.maximum(init, tiny))
        reach = jnp.minimum(ratio, 40.0) / jnp.where(growing, log_rate, 1.0) + 1.0
        exponent = jnp.where(growing, jnp.minimum(exponent, jnp.maximum(reach, 0.0)), exponent)
        value = init * power(self.decay_rate, exponent)
        return jnp.where(growing, jnp.minimum(value, end), jnp.maximum(value, end))


def exponential_decay(
    init_value: float | jax.Array,
    decay_rate: float | jax.Array,
    transition_steps: int = 1,
    staircase: bool = False,
    end_value: float | jax.Array | None = None,
) -> Schedule:
    """Multiplies the rate by ``decay_rate`` every ``transition_steps`` steps, smoothly.

    .. math:: \\eta_t = \\eta_0 \\, r^{t / T}
       \\quad (\\lfloor t / T \\rfloor \\text{ if staircase}),
       \\text{ then clipped at } \\eta_{end}

    ``end_value`` is a floor when ``r < 1`` and a cap when ``r > 1``. Values below
    float32's smallest normal number (about 1e-38) are 0.

    Args:
      init_value: the rate η₀ at step 0, finite and >= 0.
      decay_rate: the factor r per ``transition_steps``, finite and > 0. A rate > 1 grows
        without bound and needs ``end_value`` as its cap.
      transition_steps: the number of steps T over which the rate is multiplied by r, an
        integer >= 1.
      staircase: decay in whole steps of T (``r^floor(t/T)``) instead of smoothly.
      end_value: the floor (r < 1) or cap (r > 1), finite and >= 0, or None. A cap is at
        most 1e17 times ``init_value``.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.exponential_decay(1.0, decay_rate=0.5, transition_steps=10)
      >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 20)]
      [1.0, 0.707107, 0.5, 0.25]

    Equivalent to torch ``ExponentialLR(optimizer, gamma=decay_rate)`` (with
    ``transition_steps=1``) and to Keras ``ExponentialDecay``.
    """
    check_nonnegative("exponential_decay", "init_value", init_value)
    check_positive("exponential_decay", "decay_rate", decay_rate)
    transition_steps = check_integer("exponential_decay", "transition_steps", transition_steps, 1)
    staircase = check_flag("exponential_decay", "staircase", staircase)
    if end_value is None:
        check(
            "exponential_decay",
            "decay_rate",
            decay_rate,
            lambda v: v <= 1,
            "<= 1 without an end_value (a growing rate needs end_value as its cap)",
        )
    else:
        check_nonnegative("exponential_decay", "end_value", end_value)
        if is_concrete((decay_rate, init_value)) and np.all(np.asarray(decay_rate) > 1):
            init = np.asarray(init_value, np.float64)
            check(
                "exponential_decay",
                "end_value",
                end_value,
                lambda v: (init == 0) | (v <= _MAX_GROWTH * init),
                f"at most {_MAX_GROWTH:g} * init_value for a growing rate",
            )
        end_value = float_arg(end_value)
    return _ExponentialDecay(
        init_value=float_arg(init_value),
        decay_rate=float_arg(decay_rate),
        transition_steps=transition_steps,
        staircase=staircase,
        end_value=end_value,
    )


@schedule_class("inverse_time_decay", static=("decay_steps", "staircase"))
class _InverseTimeDecay(Schedule):
    init_value: Any
    decay_rate: Any
    decay_steps: int
    staircase: bool

    def _value(self, step: jax.Array) -> jax.Array:
        exponent = _exponent(step, self.decay_steps, self.staircase)
        return as_float(self.init_value) / (1.0 + as_float(self.decay_rate) * exponent)


def inverse_time_decay(
    init_value: float | jax.Array,
    decay_rate: float | jax.Array,
    decay_steps: int = 1,
    staircase: bool = False,
) -> Schedule:
    """Divides the initial rate by a linearly growing factor.

    .. math:: \\eta_t = \\frac{\\eta_0}{1 + r \\, t / T}
       \\quad (\\lfloor t / T \\rfloor \\text{ if staircase})

    Args:
      init_value: the rate η₀ at step 0, finite and >= 0.
      decay_rate: r, finite and >= 0 (0 keeps the rate constant).
      decay_steps: T, an integer >= 1.
      staircase: use whole multiples of T (``floor(t / T)``).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.inverse_time_decay(1.0, decay_rate=0.5, decay_steps=10)
      >>> [round(float(schedule(t)), 6) for t in (0, 10, 20, 30)]
      [1.0, 0.666667, 0.5, 0.4]

    Equivalent to Keras ``InverseTimeDecay``; torch has no such scheduler.
    """
    check_nonnegative("inverse_time_decay", "init_value", init_value)
    check_nonnegative("inverse_time_decay", "decay_rate", decay_rate)
    decay_steps = check_integer("inverse_time_decay", "decay_steps", decay_steps, 1)
    staircase = check_flag("inverse_time_decay", "staircase", staircase)
    return _InverseTimeDecay(
        init_value=float_arg(init_value),
        decay_rate=float_arg(decay_rate),
        decay_steps=decay_steps,
        staircase=staircase,
    )


@schedule_class("polynomial_decay", static=("decay_steps",))
class _PolynomialDecay(Schedule):
    init_value: Any
    end_value: Any
    decay_steps: int
    power: Any

    def _value(self, step: jax.Array) -> jax.Array:
        steps = self.decay_steps
        done, remaining = progress(step, 0, steps)
        # w = (1 - t/N)^p and 1 - w, each without cancellation: (N - t)/N near the end
        # rather than 1 - t/N, and -expm1(p log1p(-t/N)) near the start. The value
        # init w + end (1 - w) is then exact whichever of init, end is larger.
        # The gradient of x**p with respect to p is log(x) x**p, NaN at x = 0 even where it
        # is not selected: take the logarithms of safe values where nothing is left.
        left = remaining > 0
        power = as_float(self.power)
        weight = jnp.where(left, jnp.power(jnp.where(left, remaining / steps, 1.0), power), 0.0)
        rest = jnp.where(
            left, -jnp.expm1(power * jnp.log1p(-jnp.where(left, done, 0.0) / steps)), 1.0
        )
        return as_float(self.init_value) * weight + as_float(self.end_value) * rest


def polynomial_decay(
    init_value: float | jax.Array,
    end_value: float | jax.Array,
    decay_steps: int,
    power: float | jax.Array = 1.0,
) -> Schedule:
    """Polynomial decay from ``init_value`` to ``end_value`` over ``decay_steps``, then held.

    .. math:: \\eta_t = (\\eta_0 - \\eta_{end})
       \\left(1 - \\frac{\\min(t, N)}{N}\\right)^p + \\eta_{end}

    Args:
      init_value: the rate η₀ at step 0, finite and >= 0.
      end_value: the rate from step N on, finite and >= 0 (above η₀ makes it rise).
      decay_steps: N, an integer >= 1.
      power: p, finite and > 0 (1 is a straight line).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.polynomial_decay(1.0, 0.0, decay_steps=10, power=2.0)
      >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 20)]
      [1.0, 0.25, 0.0, 0.0]

    Equivalent to torch ``PolynomialLR(optimizer, total_iters=decay_steps, power)`` (which
    has ``end_value=0``) and Keras ``PolynomialDecay`` (with ``cycle=False``).
    """
    check_nonnegative("polynomial_decay", "init_value", init_value)
    check_nonnegative("polynomial_decay", "end_value", end_value)
    decay_steps = check_integer("polynomial_decay", "decay_steps", decay_steps, 1)
    check_positive("polynomial_decay", "power", power)
    return _PolynomialDecay(
        init_value=float_arg(init_value),
        end_value=float_arg(end_value),
        decay_steps=decay_steps,
        power=float_arg(power),
    )


@schedule_class("linear", static=("transition_steps",))
class _Linear(Schedule):
    init_value: Any
    end_value: Any
    transition_steps: int

    def _value(self, step: jax.Array) -> jax.Array:
        done, remaining = progress(step, 0, self.transition_steps)
        # Two non-negative terms: init + (end - init) * t / N cancels near a 0 end value.
        return (
            as_float(self.init_value) * remaining + as_float(self.end_value) * done
        ) / self.transition_steps


def linear(
    init_value: float | jax.Array, end_value: float | jax.Array, transition_steps: int
) -> Schedule:
    """A straight line from ``init_value`` to ``end_value`` over ``transition_steps``, then held.

    .. math:: \\eta_t = \\eta_0 + (\\eta_{end} - \\eta_0) \\frac{\\min(t, N)}{N}

    Args:
      init_value: the rate η₀ at step 0, finite and >= 0.
      end_value: the rate from step N on, finite and >= 0.
      transition_steps: N, an integer >= 1.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.linear(0.0, 1.0, transition_steps=4)
      >>> [float(schedule(t)) for t in (0, 1, 4, 8)]
      [0.0, 0.25, 1.0, 1.0]

    Equivalent to torch ``LinearLR(optimizer, start_factor, end_factor, total_iters)`` with
    ``init_value = lr * start_factor`` and ``end_value = lr * end_factor``.
    """
    check_nonnegative("linear", "init_value", init_value)
    check_nonnegative("linear", "end_value", end_value)
    transition_steps = check_integer("linear", "transition_steps", transition_steps, 1)
    return _Linear(
        init_value=float_arg(init_value),
        end_value=float_arg(end_value),
        transition_steps=transition_steps,
    )
