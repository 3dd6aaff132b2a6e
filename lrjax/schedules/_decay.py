"""Smooth decays: exponential, inverse-time, polynomial and linear."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lrjax._validation import (
    check_flag,
    check_float,
    check_integer,
    nonnegative,
    positive,
    show,
)
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_rate,
    floor_divmod,
    is_one,
    k_decayed,
    known,
    log_of,
    offset,
    power,
    power_weights,
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
    return exponent + remainder.astype(jnp.float32) / float(period)


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
    *,
    transition_steps: int = 1,
    staircase: bool = False,
    end_value: float | jax.Array | None = None,
) -> Schedule:
    """Multiplies the rate by ``decay_rate`` every ``transition_steps`` steps, smoothly.

    .. math:: \\eta_t = \\eta_0 \\, r^{t / T}
       \\quad (\\lfloor t / T \\rfloor \\text{ if staircase}),
       \\text{ then clipped at } \\eta_{end}

    ``end_value`` is a floor when ``r <= 1`` and a cap when ``r > 1``. Values below
    float32's smallest normal number (about 1e-38) are 0.

    Args:
      init_value: the rate η₀ at step 0, >= 0.
      decay_rate: the factor r per ``transition_steps``, > 0. A rate > 1 grows
        without bound and needs ``end_value`` as its cap.
      transition_steps: the number of steps T over which the rate is multiplied by r, an
        integer >= 1.
      staircase: decay in whole steps of T (``r^floor(t/T)``) instead of smoothly.
      end_value: the floor (r <= 1, at most ``init_value``) or the cap (r > 1, at least
        ``init_value`` and at most 1e17 times it), >= 0, or None. A floor above the start
        (or a cap below it) would hold the rate at ``end_value`` from step 0, so it is
        refused.

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
    owner = "exponential_decay"
    init_value = check_rate(owner, "init_value", init_value)
    decay_rate = check_float(owner, "decay_rate", decay_rate, positive, "> 0")
    transition_steps = check_integer(owner, "transition_steps", transition_steps, 1, None)
    staircase = check_flag(owner, "staircase", staircase)
    init, rate = known(init_value), known(decay_rate)
    if end_value is None:
        if rate is not None and rate > 1:
            raise ValueError(
                f"{owner}: decay_rate must be <= 1 without an end_value (a growing rate needs "
                f"end_value as its cap), got {show(decay_rate)}"
            )
    else:
        end_value = check_rate(owner, "end_value", end_value)
        end = known(end_value)
        if init is not None and rate is not None and end is not None:
            _check_end_value(end_value, end, init_value, init, rate)
    return _ExponentialDecay(
        init_value=init_value,
        decay_rate=decay_rate,
        transition_steps=transition_steps,
        staircase=staircase,
        end_value=end_value,
    )


def _check_end_value(given: Any, end: float, init_value: Any, init: float, rate: float) -> None:
    """``exponential_decay``'s end_value is on the side the rate moves to, and in reach."""
    owner, got = "exponential_decay", f"got {show(given)} with init_value={show(init_value)}"
    if rate <= 1 and end > init:
        raise ValueError(
            f"{owner}: end_value must be <= init_value for a decay_rate <= 1 (a floor above "
            f"the start holds the rate at end_value from step 0), {got}"
        )
    if rate > 1 and end < init:
        raise ValueError(
            f"{owner}: end_value must be >= init_value for a decay_rate > 1 (a cap below "
            f"the start holds the rate at end_value from step 0), {got}"
        )
    if rate > 1 and init > 0 and end > _MAX_GROWTH * init:
        raise ValueError(
            f"{owner}: end_value must be at most {_MAX_GROWTH:g} * init_value for a growing "
            f"rate, {got}"
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
    *,
    decay_steps: int = 1,
    staircase: bool = False,
) -> Schedule:
    """Divides the initial rate by a linearly growing factor.

    .. math:: \\eta_t = \\frac{\\eta_0}{1 + r \\, t / T}
       \\quad (\\lfloor t / T \\rfloor \\text{ if staircase})

    Args:
      init_value: the rate η₀ at step 0, >= 0.
      decay_rate: r, >= 0 (0 keeps the rate constant).
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
    owner = "inverse_time_decay"
    return _InverseTimeDecay(
        init_value=check_rate(owner, "init_value", init_value),
        decay_rate=check_float(owner, "decay_rate", decay_rate, nonnegative, ">= 0"),
        decay_steps=check_integer(owner, "decay_steps", decay_steps, 1, None),
        staircase=check_flag(owner, "staircase", staircase),
    )


def _keras_cycle(step: jax.Array, steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Steps done and remaining in Keras's growing period P = N ceil(t/N) (N at step 0),
    and P, in float32: P - t is computed from the position in the current multiple of N,
    exactly, since t and P themselves lose their low digits in float32 past 2**24."""
    multiples, position = floor_divmod(step, steps)
    inside = position > 0
    # t = kN exactly ends the period kN (the rate is at end_value); step 0 starts the first.
    periods = jnp.maximum(multiples + inside.astype(multiples.dtype), 1)
    remaining = jnp.where(inside, -offset(position, steps), jnp.where(step == 0, float(steps), 0.0))
    return step.astype(jnp.float32), remaining, periods.astype(jnp.float32) * float(steps)


@schedule_class("polynomial_decay", static=("decay_steps", "cycle"))
class _PolynomialDecay(Schedule):
    init_value: Any
    end_value: Any
    decay_steps: int
    power: Any
    cycle: bool
    k_decay: Any

    def _value(self, step: jax.Array) -> jax.Array:
        steps = self.decay_steps
        length: Any
        if self.cycle:
            done, remaining, length = _keras_cycle(step, steps)
        else:
            (done, remaining), length = progress(step, 0, steps), float(steps)
        if not is_one(self.k_decay):  # timm's t^k / N^k in place of t / N
            done, remaining = k_decayed(done, remaining, length, self.k_decay)
            length = 1.0
        # w = (1 - t/N)^p and 1 - w from the steps remaining and done, each exact: the value
        # init w + end (1 - w) is then exact whichever of init, end is larger.
        weight, rest = power_weights(remaining / length, done / length, as_float(self.power))
        return as_float(self.init_value) * weight + as_float(self.end_value) * rest


def polynomial_decay(
    init_value: float | jax.Array,
    end_value: float | jax.Array,
    decay_steps: int,
    *,
    power: float | jax.Array = 1.0,
    cycle: bool = False,
    k_decay: float | jax.Array = 1.0,
) -> Schedule:
    """Polynomial decay from ``init_value`` to ``end_value`` over ``decay_steps``, then held.

    .. math:: \\eta_t = (\\eta_0 - \\eta_{end})
       \\left(1 - \\frac{\\min(t, N)}{N}\\right)^p + \\eta_{end}

    With ``cycle`` the rate is not held: the period grows to the next multiple of N,

    .. math:: \\eta_t = (\\eta_0 - \\eta_{end})
       \\left(1 - \\frac{t}{P_t}\\right)^p + \\eta_{end}, \\qquad
       P_t = N \\max\\left(1, \\left\\lceil t / N \\right\\rceil\\right)

    so the rate reaches ``end_value`` at every multiple kN and jumps back up to
    (η₀ − η_end)((N − 1)/((k + 1)N))^p + η_end, lower each time.

    Args:
      init_value: the rate η₀ at step 0, >= 0.
      end_value: the rate at step N (and after, unless ``cycle``), >= 0 (above η₀ makes
        it rise).
      decay_steps: N, an integer >= 1.
      power: p, > 0 (1 is a straight line).
      cycle: restart the decay after each multiple of N over a period grown to the next
        multiple (Keras's ``cycle=True``) instead of holding ``end_value``.
      k_decay: k > 0, timm's ``k_decay``: t/N is replaced by (t/N)^k (above 1 the rate
        stays near η₀ longer and falls later and faster).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.polynomial_decay(1.0, 0.0, decay_steps=10, power=2.0)
      >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 20)]
      [1.0, 0.25, 0.0, 0.0]
      >>> cycled = schedules.polynomial_decay(1.0, 0.0, decay_steps=10, cycle=True)
      >>> [round(float(cycled(t)), 6) for t in (0, 5, 10, 11, 20, 25)]
      [1.0, 0.5, 0.0, 0.45, 0.0, 0.166667]

    Equivalent to torch ``PolynomialLR(optimizer, total_iters=decay_steps, power)`` (which
    has ``end_value=0`` and no cycle) and Keras ``PolynomialDecay(init_value, decay_steps,
    end_learning_rate=end_value, power, cycle)``. With ``k_decay``: timm's
    ``PolyLRScheduler(t_initial=decay_steps, power=power, lr_min=end_value, k_decay=k_decay)``
    without warm-up or restarts: η_end + (η₀ − η_end)(1 − t^k/N^k)^p.
    """
    owner = "polynomial_decay"
    return _PolynomialDecay(
        init_value=check_rate(owner, "init_value", init_value),
        end_value=check_rate(owner, "end_value", end_value),
        decay_steps=check_integer(owner, "decay_steps", decay_steps, 1, None),
        power=check_float(owner, "power", power, positive, "> 0"),
        cycle=check_flag(owner, "cycle", cycle),
        k_decay=check_float(owner, "k_decay", k_decay, positive, "> 0"),
    )


@schedule_class("linear", static=("transition_steps",))
class _Linear(Schedule):
    init_value: Any
    end_value: Any
    transition_steps: int

    def _value(self, step: jax.Array) -> jax.Array:
        steps = float(self.transition_steps)
        done, remaining = progress(step, 0, steps)
        # Two non-negative terms: init + (end - init) * t / N cancels near a 0 end value.
        # The weights come first: init * (N - t) would overflow for a rate near float32's top.
        return as_float(self.init_value) * (remaining / steps) + as_float(self.end_value) * (
            done / steps
        )


def linear(
    init_value: float | jax.Array, end_value: float | jax.Array, transition_steps: int
) -> Schedule:
    """A straight line from ``init_value`` to ``end_value`` over ``transition_steps``, then held.

    .. math:: \\eta_t = \\eta_0 + (\\eta_{end} - \\eta_0) \\frac{\\min(t, N)}{N}

    Args:
      init_value: the rate η₀ at step 0, >= 0.
      end_value: the rate from step N on, >= 0.
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
    owner = "linear"
    return _Linear(
        init_value=check_rate(owner, "init_value", init_value),
        end_value=check_rate(owner, "end_value", end_value),
        transition_steps=check_integer(owner, "transition_steps", transition_steps, 1, None),
    )
