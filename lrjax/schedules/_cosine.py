"""Cosine annealing, once (``cosine_decay``) and with warm restarts (``cosine_restarts``)."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._validation import check_float, check_integer, positive, unit_half_open
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_rate,
    check_static_float,
    complement_of_power,
    cosine_interpolate,
    floor_divmod,
    is_one,
    k_decayed,
    offset,
    power,
    power_weights,
    progress,
    schedule_class,
)

# Cycles that grow by less than 1% each make the table of cycle starts long (thousands
# of entries up to 2**63 steps) for no visible difference from period_mult=1.
_MIN_GROWTH = 1.01


@schedule_class("cosine_decay", static=("decay_steps",))
class _CosineDecay(Schedule):
    init_value: Any
    decay_steps: int
    end_value: Any
    exponent: Any
    k_decay: Any

    def _value(self, step: jax.Array) -> jax.Array:
        length = float(self.decay_steps)
        done, remaining = progress(step, 0, length)
        init, end = as_float(self.init_value), as_float(self.end_value)
        if not is_one(self.k_decay):  # timm's t^k / N^k in place of t / N
            done, remaining = k_decayed(done, remaining, length, self.k_decay)
            length = 1.0
        if is_one(self.exponent):
            return cosine_interpolate(init, end, remaining, length, done)
        # init w + end (1 - w) with w = c^p, c = (1 + cos(pi t/N)) / 2 = sin^2(pi/2 (N - t)/N)
        # and 1 - c = sin^2(pi/2 t/N), each from exact step counts (see cosine_interpolate).
        factor = jnp.square(jnp.sin(0.5 * jnp.pi * (remaining / length)))
        elapsed = jnp.square(jnp.sin(0.5 * jnp.pi * (done / length)))
        weight, rest = power_weights(factor, elapsed, as_float(self.exponent))
        return init * weight + end * rest


def cosine_decay(
    init_value: float | jax.Array,
    decay_steps: int,
    *,
    end_value: float | jax.Array = 0.0,
    exponent: float | jax.Array = 1.0,
    k_decay: float | jax.Array = 1.0,
) -> Schedule:
    """Half a cosine from ``init_value`` down to ``end_value`` over ``decay_steps``, then held.

    .. math:: \\eta_t = \\eta_{end} + (\\eta_0 - \\eta_{end})
       \\left(\\tfrac12 \\left(1 + \\cos\\frac{\\pi \\min(t, N)^k}{N^k}\\right)\\right)^p

    Args:
      init_value: the rate η₀ at step 0, >= 0.
      decay_steps: N, an integer >= 1.
      end_value: the rate from step N on, >= 0.
      exponent: p, the power of the cosine factor, > 0: above 1 every rate of the decay is
        lower (it leaves η₀ sooner), below 1 higher (it stays near η₀ longer).
      k_decay: k > 0, timm's ``k_decay``: the cosine's phase is (t/N)^k, so above 1 the
        rate stays near η₀ longer and falls later and faster, below 1 it falls sooner.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedules.cosine_decay(0.1, decay_steps=100)
      cosine_decay(init_value=0.1, decay_steps=100, end_value=0.0, exponent=1.0, k_decay=1.0)
      >>> schedule = schedules.cosine_decay(0.1, decay_steps=100, end_value=1e-3)
      >>> [round(float(schedule(t)), 6) for t in (0, 50, 100, 200)]
      [0.1, 0.0505, 0.001, 0.001]
      >>> squared = schedules.cosine_decay(0.1, decay_steps=100, exponent=2.0)
      >>> [round(float(squared(t)), 6) for t in (0, 50, 100)]
      [0.1, 0.025, 0.0]

    Equivalent to torch ``CosineAnnealingLR(optimizer, T_max=decay_steps, eta_min=end_value)``
    on steps 0..T_max (with ``exponent=1``). After T_max torch's rate rises again along
    the cosine (a period of 2·T_max); this one holds ``end_value``, like Keras
    ``CosineDecay`` and optax. Equivalent to ``optax.cosine_decay_schedule(init_value,
    decay_steps, alpha=end_value / init_value, exponent=exponent)``: optax's ``alpha`` is
    the final rate as a fraction of the initial one, ``end_value`` here is the rate itself.
    With ``k_decay``: timm's ``CosineLRScheduler(t_initial=decay_steps, lr_min=end_value,
    k_decay=k_decay)`` without warm-up or restarts.

    References:
      Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR 2017,
      https://arxiv.org/abs/1608.03983
    """
    owner = "cosine_decay"
    return _CosineDecay(
        init_value=check_rate(owner, "init_value", init_value),
        decay_steps=check_integer(owner, "decay_steps", decay_steps, 1, None),
        end_value=check_rate(owner, "end_value", end_value),
        exponent=check_float(owner, "exponent", exponent, positive, "> 0"),
        k_decay=check_float(owner, "k_decay", k_decay, positive, "> 0"),
    )


@functools.lru_cache(maxsize=64)
def _cycle_table(
    first_period: int, period_mult: float, last_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where the cycles of ``cosine_restarts`` start and end, for steps up to ``last_step``.

    Cycle i covers the real interval [S_i, S_{i+1}) with S_i = T0 (m^i - 1) / (m - 1). Row i
    of the first table holds ceil(S_i) and floor(S_{i+1}) (at most ``last_step``, so both fit
    the step's dtype); of the second, ceil(S_i) - S_i, S_{i+1} - floor(S_{i+1}) (or more,
    where it was cut at ``last_step``) and the length S_{i+1} - S_i. An integer
    ``period_mult`` is done in Python integers, exactly; a fractional one in float64, with
    bounds within 1e-12 of a whole step taken as whole.
    """
    if float(period_mult).is_integer():
        mult = int(period_mult)
        bounds: list[float] = [0]
        while bounds[-1] <= last_step:
            bounds.append(bounds[-1] + first_period * mult ** (len(bounds) - 1))
    else:
        bounds = [0.0]
        while bounds[-1] <= last_step:
            bound = first_period * (period_mult ** len(bounds) - 1) / (period_mult - 1)
            if abs(bound - round(bound)) <= 1e-12 * bound:
                bound = round(bound)
            bounds.append(bound)
    whole, rest = [], []
    for start, end in itertools.pairwise(bounds):
        first, last = math.ceil(start), min(math.floor(end), last_step)
        whole.append((first, last))
        rest.append((first - start, end - last, end - start))
    return np.asarray(whole, dtype=object), np.asarray(rest, dtype=np.float32)


@schedule_class("cosine_restarts", static=("first_period", "period_mult"))
class _CosineRestarts(Schedule):
    init_value: Any
    first_period: int
    period_mult: float
    end_value: Any
    peak_decay: Any

    def _value(self, step: jax.Array) -> jax.Array:
        if self.period_mult == 1:
            cycle, position = floor_divmod(step, self.first_period)
            done = position.astype(jnp.float32)
            remaining = -offset(position, self.first_period)
            length: Any = self.first_period
        else:
            cycle, done, remaining, length = self._locate(step)
        end = as_float(self.end_value)
        # The peak d^i init + (1 - d^i) end, two non-negative terms.
        cycle = cycle.astype(jnp.float32)
        decay, rest = power(self.peak_decay, cycle), complement_of_power(self.peak_decay, cycle)
        peak = as_float(self.init_value) * decay + end * rest
        return cosine_interpolate(peak, end, remaining, length, done)

    def _locate(self, step: jax.Array) -> tuple[jax.Array, ...]:
        """The cycle of ``step``, the steps done and remaining in it, and its length."""
        integer = jnp.issubdtype(step.dtype, jnp.integer)
        last_step = int(jnp.iinfo(step.dtype).max) if integer else 2**63 - 1
        mult = float(self.period_mult)
        whole, rest = _cycle_table(self.first_period, mult, last_step)
        whole, rest = jnp.asarray(whole.astype(step.dtype)), jnp.asarray(rest)

        def row(cycle: jax.Array) -> tuple[jax.Array, ...]:
            bounds, parts = whole[cycle], rest[cycle]
            done = (step - bounds[..., 0]).astype(jnp.float32) + parts[..., 0]
            remaining = (bounds[..., 1] - step).astype(jnp.float32) + parts[..., 1]
            return done, remaining, parts[..., 2]

        # S_i inverted in float32 is within a small fraction of a cycle of the true index, so
        # the floor is off by at most one; the exact bounds of that cycle then say which
        # way (done < 0: step < S_i; remaining <= 0: step >= S_{i+1}).
        estimate = jnp.log1p(step.astype(jnp.float32) * ((mult - 1) / self.first_period))
        cycle = jnp.clip(jnp.floor(estimate / math.log(mult)), 0, len(rest) - 1).astype(jnp.int32)
        done, remaining, _ = row(cycle)
        cycle = cycle + (remaining <= 0).astype(jnp.int32) - (done < 0).astype(jnp.int32)
        cycle = jnp.clip(cycle, 0, len(rest) - 1)
        return (cycle, *row(cycle))


def cosine_restarts(
    init_value: float | jax.Array,
    first_period: int,
    *,
    period_mult: float = 1,
    end_value: float | jax.Array = 0.0,
    peak_decay: float | jax.Array = 1.0,
) -> Schedule:
    """Cosine annealing with warm restarts (SGDR): cycles of growing length, decaying peaks.

    Cycle i lasts :math:`T_i = T_0 m^i` steps and starts at :math:`S_i = T_0 (m^i - 1)/(m - 1)`
    (:math:`S_i = i T_0` for m = 1). With :math:`t` the steps since the start of its cycle,

    .. math:: \\eta_t = \\eta_{end} + (\\eta_0 - \\eta_{end}) \\, d^{\\,i} \\,
       \\tfrac12 \\left(1 + \\cos\\frac{\\pi t}{T_i}\\right)

    The floor stays at ``end_value``; the height above it decays by d per cycle.

    Args:
      init_value: the rate η₀ at the start of the first cycle, >= 0.
      first_period: T₀, the length of the first cycle, an integer >= 1.
      period_mult: m, the factor by which each cycle is longer than the previous one:
        1, or a number >= 1.01 (it may be fractional, as in Keras; a cycle then starts at
        the first step at or after S_i). A concrete number: it places the restarts.
      end_value: the rate η_end each cycle decays to, >= 0.
      peak_decay: d, the factor on the height of each cycle over the previous one, in (0, 1].

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.cosine_restarts(1.0, first_period=10, period_mult=2, peak_decay=0.5)
      >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 20, 30)]
      [1.0, 0.5, 0.5, 0.25, 0.25]

    Equivalent to torch ``CosineAnnealingWarmRestarts(optimizer, T_0=first_period,
    T_mult=period_mult, eta_min=end_value)`` (integer ``period_mult``, ``peak_decay=1``) and
    to Keras ``CosineDecayRestarts(init_value, first_period, t_mul=period_mult,
    m_mul=peak_decay, alpha=end_value / init_value)``.

    References:
      Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR 2017,
      https://arxiv.org/abs/1608.03983
    """
    owner = "cosine_restarts"
    init_value = check_rate(owner, "init_value", init_value)
    first_period = check_integer(owner, "first_period", first_period, 1, None)
    period_mult = check_static_float(
        owner,
        "period_mult",
        period_mult,
        lambda v: (v == 1) | (v >= _MIN_GROWTH),
        f"1 or a number >= {_MIN_GROWTH}",
        "it places the restarts",
    )
    return _CosineRestarts(
        init_value=init_value,
        first_period=first_period,
        # An integer factor keeps the cycle table in exact integer arithmetic.
        period_mult=int(period_mult) if period_mult.is_integer() else period_mult,
        end_value=check_rate(owner, "end_value", end_value),
        peak_decay=check_float(owner, "peak_decay", peak_decay, unit_half_open, "in (0, 1]"),
    )
