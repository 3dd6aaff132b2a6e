"""Cyclical schedules: triangular cycles (``cyclic``) and the 1cycle policy (``one_cycle``).

The curves are written once, through their start, turning and end values, and shared
with the momentum schedules of ``_momentum.py``, which run through them the other way.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._validation import (
    FLOAT32_MAX,
    check_choice,
    check_flag,
    check_float,
    check_integer,
    show,
    unit_half_open,
    unit_open,
)
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    at_most,
    beyond,
    check_rate,
    check_static_float,
    complement_of_power,
    cosine_interpolate,
    floor_divmod,
    known,
    offset,
    power,
    progress,
    schedule_class,
)

_TINY = float(np.finfo(np.float32).tiny)


def triangle_wave(
    step: jax.Array, shape: tuple[int, int, str, Any], start: Any, top: Any
) -> jax.Array:
    """The cycles of ``cyclic`` and ``cyclic_momentum``: ``start + (top - start) h s``.

    ``shape`` is (step_size_up, step_size_down, mode, gamma) as :func:`check_cycle` gives
    it; h is the height in the cycle and s the mode's scale. The rate rises from its
    base (``start < top``); the momentum falls from its maximum (``start > top``).
    """
    up, down, mode, gamma = shape
    # The position in the cycle by integer division; torch's float 1 + t/total - cycle
    # drifts by ulps that grow with t.
    cycle, position = floor_divmod(step, up + down)
    # The height h in the cycle and its complement 1 - h, each from exact step counts:
    # start + (top - start) h cancels when start > top.
    past_top = offset(position, up)
    height, depth = position.astype(jnp.float32) / float(up), -past_top / float(up)
    if down:
        falling = beyond(position, up)
        height = jnp.where(falling, -offset(position, up + down) / float(down), height)
        depth = jnp.where(falling, past_top / float(down), depth)
    start, top = as_float(start), as_float(top)
    if mode == "triangular":
        return start * depth + top * height
    # The top is scaled by s: start + (top - start) h s = start (1 - h) + h (start (1 - s) + top s).
    exponent, factor = (
        (cycle.astype(jnp.float32), 0.5)
        if mode == "triangular2"
        else (step.astype(jnp.float32), gamma)
    )
    scale, rest = power(factor, exponent), complement_of_power(factor, exponent)
    return start * depth + height * (start * rest + top * scale)


def check_cycle(
    owner: str, step_size_up: Any, step_size_down: Any, mode: Any, gamma: Any
) -> tuple[int, int, str, Any]:
    """The shape of the cycles of ``cyclic`` and ``cyclic_momentum``, checked:
    ``(step_size_up, step_size_down, mode, gamma)``."""
    step_size_up = check_integer(owner, "step_size_up", step_size_up, 1, None)
    if step_size_down is None:
        step_size_down = step_size_up
    step_size_down = check_integer(owner, "step_size_down", step_size_down, 0, None)
    mode = check_choice(owner, "mode", mode, ("triangular", "triangular2", "exp_range"))
    gamma = check_float(owner, "gamma", gamma, unit_half_open, "in (0, 1]")
    if mode != "exp_range" and known(gamma) not in (None, 1.0):
        raise ValueError(
            f"{owner}: gamma must be 1 unless mode='exp_range' (mode={show(mode)} has no gamma), "
            f"got {show(gamma)}"
        )
    return step_size_up, step_size_down, mode, gamma


@schedule_class("cyclic", static=("step_size_up", "step_size_down", "mode"))
class _Cyclic(Schedule):
    base_value: Any
    max_value: Any
    step_size_up: int
    step_size_down: int
    mode: str
    gamma: Any

    def _value(self, step: jax.Array) -> jax.Array:
        shape = (self.step_size_up, self.step_size_down, self.mode, self.gamma)
        return triangle_wave(step, shape, self.base_value, self.max_value)


def cyclic(
    base_value: float | jax.Array,
    max_value: float | jax.Array,
    *,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float | jax.Array = 1.0,
) -> Schedule:
    """Cyclical learning rate: up from ``base_value`` to ``max_value`` and back, repeatedly.

    With c the cycle (from 0) and h the height in it (0 → 1 over ``step_size_up`` steps,
    1 → 0 over ``step_size_down``),

    .. math:: \\eta_t = \\eta_{base} + (\\eta_{max} - \\eta_{base}) \\, h_t \\, s_t, \\qquad
       s_t = 1 \\text{ (triangular)},\\ 2^{-c} \\text{ (triangular2)},\\ \\gamma^t
       \\;(\\mathrm{exp\\_range})

    Args:
      base_value: the rate at the start of each cycle, >= 0.
      max_value: the rate at the top of an unscaled cycle, >= 0.
      step_size_up: the steps from the bottom of a cycle to its top, an integer >= 1.
      step_size_down: the steps from the top back to the bottom, an integer >= 0
        (0 gives a sawtooth); None means ``step_size_up``.
      mode: ``"triangular"``, ``"triangular2"`` (the height halves each cycle) or
        ``"exp_range"`` (the height is scaled by γ^t).
      gamma: γ of ``"exp_range"``, in (0, 1]. The other modes have no γ: a value other
        than 1 with them is refused (torch ignores it).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.cyclic(0.0, 1.0, step_size_up=2, mode="triangular2")
      >>> [float(schedule(t)) for t in range(9)]
      [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0]

    Equivalent to the learning rates of torch ``CyclicLR(optimizer, base_lr, max_lr,
    step_size_up, step_size_down, mode, gamma)``; the momentum it cycles by default
    (``cycle_momentum=True``) is :func:`cyclic_momentum`. torch's ``triangular2`` raises
    ``OverflowError`` after 1024 cycles (it computes ``2.0 ** cycle``); here the height
    underflows to 0 and the rate settles at ``base_value``.

    References:
      Smith, Cyclical Learning Rates for Training Neural Networks, WACV 2017,
      https://arxiv.org/abs/1506.01186
    """
    owner = "cyclic"
    base_value = check_rate(owner, "base_value", base_value)
    max_value = check_rate(owner, "max_value", max_value)
    step_size_up, step_size_down, mode, gamma = check_cycle(
        owner, step_size_up, step_size_down, mode, gamma
    )
    return _Cyclic(
        base_value=base_value,
        max_value=max_value,
        step_size_up=step_size_up,
        step_size_down=step_size_down,
        mode=mode,
        gamma=gamma,
    )


def one_cycle_curve(
    step: jax.Array, shape: tuple[int, float, str, bool], values: tuple[Any, Any, Any]
) -> jax.Array:
    """The phases of torch's ``OneCycleLR`` through ``values = (start, turn, end)``.

    ``shape`` is (total_steps T, pct_start, anneal, three_phase). Two phases: start ->
    turn, ending at pct_start T - 1, then turn -> end at T - 1. Three phases: start ->
    turn, turn -> start (ending at 2 pct_start T - 2), start -> end. Held from T - 1 on.
    The rate passes through (initial, peak, final), the momentum through (max, base, max).
    """
    total_steps, pct_start, anneal, three_phase = shape
    start, turn, end = values
    last = total_steps - 1
    # torch's phase ends, in torch's float64 arithmetic: the phases end between steps
    # when pct_start * total_steps is fractional.
    warm_end = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [
            (0.0, warm_end, start, turn),
            (warm_end, float(2 * pct_start * total_steps) - 2, turn, start),
        ]
    else:
        phases = [(0.0, warm_end, start, turn)]
    phases.append((phases[-1][1], float(last), phases[-1][3], end))
    step = at_most(step, last)
    value = _anneal(step, anneal, *phases[-1])
    for phase in reversed(phases[:-1]):
        value = jnp.where(beyond(step, phase[1]), value, _anneal(step, anneal, *phase))
    return value


def _anneal(
    step: jax.Array, anneal: str, start: float, end: float, start_value: Any, end_value: Any
) -> jax.Array:
    length = end - start
    done: Any
    remaining: Any
    if length >= 1:
        done, remaining = progress(step, start, end)
    else:
        # At most one whole step lies in a phase this short: the end of the phase, or
        # step 0 in the first. Its fraction is taken in float64, as torch does, since
        # float32 cannot resolve the phase; a phase of length 0 (torch divides 0 by 0
        # at step 0 when pct_start * total_steps == 1) is taken at its end.
        fraction = min(max((math.floor(end) - start) / length, 0.0), 1.0) if length > 0 else 1.0
        done, remaining, length = fraction, 1.0 - fraction, 1.0
    if anneal == "cos":
        return cosine_interpolate(start_value, end_value, remaining, length, done)
    return (start_value * remaining + end_value * done) / length


def check_phases(
    owner: str, total_steps: Any, pct_start: Any, anneal: Any, three_phase: Any, final: str
) -> tuple[int, float, str, bool]:
    """The phases of ``one_cycle`` and ``one_cycle_momentum``, checked: ``(total_steps,
    pct_start, anneal, three_phase)``. ``final`` names what the last phase reaches."""
    total_steps = check_integer(owner, "total_steps", total_steps, 1, None)
    three_phase = check_flag(owner, "three_phase", three_phase)
    # The last phase must keep some steps: it is where the final value is reached.
    if three_phase:
        rule, requirement = (
            (lambda v: (v >= 0) & (v <= 0.5)),
            (
                "in [0, 0.5] with three_phase (its two ramps take 2 * pct_start of the steps; "
                f"beyond 0.5 the {final} is never reached)"
            ),
        )
    else:
        rule, requirement = unit_open, f"in [0, 1) (at 1 the {final} is never reached)"
    why = "it places the phase boundaries"
    pct_start = check_static_float(owner, "pct_start", pct_start, rule, requirement, why)
    anneal = check_choice(owner, "anneal", anneal, ("cos", "linear"))
    return total_steps, pct_start, anneal, three_phase


@schedule_class("one_cycle", static=("total_steps", "pct_start", "anneal", "three_phase"))
class _OneCycle(Schedule):
    max_value: Any
    total_steps: int
    pct_start: float
    div_factor: Any
    final_div_factor: Any
    anneal: str
    three_phase: bool

    def _value(self, step: jax.Array) -> jax.Array:
        peak = as_float(self.max_value)
        initial = peak / as_float(self.div_factor)
        final = initial / as_float(self.final_div_factor)
        shape = (self.total_steps, self.pct_start, self.anneal, self.three_phase)
        return one_cycle_curve(step, shape, (initial, peak, final))


def one_cycle(
    max_value: float | jax.Array,
    total_steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float | jax.Array = 25.0,
    final_div_factor: float | jax.Array = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """The 1cycle policy: warm up to ``max_value``, then anneal far below the start.

    The rate goes from ``max_value / div_factor`` up to ``max_value`` over the first
    ``pct_start`` of the steps, then down to ``max_value / (div_factor * final_div_factor)``
    at step ``total_steps - 1``. With ``three_phase`` it first comes back down to the
    initial rate symmetrically, then anneals to the final one. Each phase is a half cosine
    (``anneal="cos"``) or a straight line (``"linear"``).

    .. math:: \\eta = \\eta_{end} + (\\eta_{start} - \\eta_{end}) \\, \\tfrac12 (1 + \\cos \\pi p)
       \\quad \\text{or} \\quad \\eta_{start} + (\\eta_{end} - \\eta_{start}) \\, p

    with p the fraction of the phase done.

    Args:
      max_value: the peak rate, >= 0.
      total_steps: the number of steps of the whole cycle, an integer >= 1.
      pct_start: the fraction of the steps spent warming up, in [0, 1) (in [0, 0.5] with
        ``three_phase``, whose two ramps take twice that); a concrete number, since it
        places the phase boundaries. Beyond that range the final rate would never be
        reached.
      div_factor: the initial rate is ``max_value / div_factor``; at least float32's
        smallest normal number (1.2e-38), with that rate finite in float32.
      final_div_factor: the final rate is ``initial / final_div_factor``; the same rules.
      anneal: ``"cos"`` or ``"linear"``.
      three_phase: warm up, come back down to the initial rate, then anneal (the paper's
        version) instead of warming up and annealing (fastai's).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.one_cycle(1.0, total_steps=10, pct_start=0.5,
      ...                                div_factor=10.0, final_div_factor=10.0, anneal="linear")
      >>> [round(float(schedule(t)), 6) for t in (0, 2, 4, 9, 20)]
      [0.1, 0.55, 1.0, 0.01, 0.01]

    Equivalent to the learning rates of torch ``OneCycleLR(optimizer, max_lr, total_steps,
    pct_start, anneal_strategy=anneal, div_factor, final_div_factor, three_phase)`` on
    steps 0..total_steps-1. torch extrapolates the last phase at step total_steps and
    raises after it; this schedule holds the final rate from step total_steps - 1 on.
    Where ``pct_start * total_steps == 1`` torch divides by zero at step 0; here step 0 is
    the end of the warm-up, ``max_value``. The momentum (or Adam β1) that torch cycles by
    default (``cycle_momentum=True``) is :func:`one_cycle_momentum`.

    References:
      Smith & Topin, Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates, 2017, https://arxiv.org/abs/1708.07120
    """
    owner = "one_cycle"
    max_value = check_rate(owner, "max_value", max_value)
    total_steps, pct_start, anneal, three_phase = check_phases(
        owner, total_steps, pct_start, anneal, three_phase, "final rate"
    )
    div_factor = _check_divisor(owner, "div_factor", div_factor)
    final_div_factor = _check_divisor(owner, "final_div_factor", final_div_factor)
    _check_rates(max_value, div_factor, final_div_factor)
    return _OneCycle(
        max_value=max_value,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal=anneal,
        three_phase=three_phase,
    )


def _check_rates(max_value: Any, div_factor: Any, final_div_factor: Any) -> None:
    """The initial and final rates of ``one_cycle``, where known, are finite in float32."""
    peak, first, last = known(max_value), known(div_factor), known(final_div_factor)
    if peak is None or first is None:
        return
    if peak / first > FLOAT32_MAX:
        raise ValueError(
            f"one_cycle: div_factor must keep the initial rate max_value / div_factor finite "
            f"in float32, got {show(div_factor)} with max_value={show(max_value)}"
        )
    if last is not None and peak / first / last > FLOAT32_MAX:
        raise ValueError(
            f"one_cycle: final_div_factor must keep the final rate max_value / (div_factor * "
            f"final_div_factor) finite in float32, got {show(final_div_factor)} with "
            f"max_value={show(max_value)}, div_factor={show(div_factor)}"
        )


def _check_divisor(owner: str, name: str, value: Any) -> Any:
    """A factor the rate is divided by. XLA on CPU flushes float32 subnormals to zero, so
    a divisor below the smallest normal float32 would give inf or NaN rates."""
    return check_float(
        owner, name, value, lambda v: v >= _TINY, f">= {_TINY:.3g} (the smallest normal float32)"
    )
