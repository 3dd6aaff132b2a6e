"""Step-wise schedules: constant, step_decay, multistep_decay, piecewise_constant."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lrjax._validation import (
    FLOAT32_MAX,
    check_float,
    check_floats,
    check_integer,
    check_integers,
    nonnegative,
    positive,
    show,
    unit_half_open,
)
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_rate,
    count_reached,
    floor_divmod,
    known,
    power,
    schedule_class,
)

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
      value: the rate, >= 0.

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
    return _Constant(value=check_rate("constant", "value", value))


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
    init_value: float | jax.Array, step_size: int, *, gamma: float | jax.Array = 0.1
) -> Schedule:
    """Multiplies the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \\eta_t = \\eta_0 \\, \\gamma^{\\lfloor t / s \\rfloor}

    Args:
      init_value: the rate η₀ of the first ``step_size`` steps, >= 0.
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
    owner = "step_decay"
    return _StepDecay(
        init_value=check_rate(owner, "init_value", init_value),
        step_size=check_integer(owner, "step_size", step_size, 1, None),
        gamma=check_float(owner, "gamma", gamma, unit_half_open, "in (0, 1]"),
    )


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
    *,
    gamma: float | jax.Array = 0.1,
) -> Schedule:
    """Multiplies the rate by ``gamma`` at each milestone.

    .. math:: \\eta_t = \\eta_0 \\, \\gamma^{\\#\\{i \\,:\\, m_i \\le t\\}}

    A milestone listed twice decays twice at that step, as in torch.

    Args:
      init_value: the rate η₀ before the first milestone, >= 0.
      milestones: the steps mᵢ at which the rate is multiplied by γ: integers >= 0,
        non-decreasing. A milestone at 0 applies from the first step (as in torch).
      gamma: the factor γ, > 0 (γ > 1 raises the rate at each milestone; the rate after
        the last one must stay finite in float32).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.multistep_decay(1.0, milestones=[10, 20, 20], gamma=0.5)
      >>> [float(schedule(t)) for t in (0, 10, 19, 20)]
      [1.0, 0.5, 0.5, 0.125]

    Equivalent to torch ``MultiStepLR(optimizer, milestones, gamma)`` with ``lr=init_value``.
    """
    owner = "multistep_decay"
    init_value = check_rate(owner, "init_value", init_value)
    milestones = check_integers(owner, "milestones", milestones, 0, None)
    if list(milestones) != sorted(milestones):
        raise ValueError(f"{owner}: milestones must be non-decreasing, got {milestones}")
    gamma = check_float(owner, "gamma", gamma, positive, "> 0")
    init, factor = known(init_value), known(gamma)
    # γ > 1 multiplies the rate len(milestones) times: the last rate must be a float32.
    top = math.log(FLOAT32_MAX)
    if init and factor and factor > 1 and math.log(init) + len(milestones) * math.log(factor) > top:
        raise ValueError(
            f"{owner}: gamma must keep init_value * gamma**len(milestones) finite in float32, "
            f"got {show(gamma)} with init_value={show(init_value)} and {len(milestones)} milestones"
        )
    return _MultistepDecay(init_value=init_value, milestones=milestones, gamma=gamma)


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
      values: the rates vᵢ, each >= 0, one more than ``boundaries`` (a list, tuple or 1-D
        array). They are absolute values, not factors
        (``optax.piecewise_constant_schedule`` takes factors).

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.piecewise_constant([100, 200], [0.1, 0.01, 0.001])
      >>> [round(float(schedule(t)), 6) for t in (0, 99, 100, 200)]
      [0.1, 0.1, 0.01, 0.001]

    Keras ``PiecewiseConstantDecay`` switches one step later (at ``step > boundary``).
    """
    owner = "piecewise_constant"
    boundaries = check_integers(owner, "boundaries", boundaries, 1, None)
    if any(later <= earlier for earlier, later in itertools.pairwise(boundaries)):
        raise ValueError(f"{owner}: boundaries must be strictly increasing, got {boundaries}")
    values = check_floats(owner, "values", values, nonnegative, ">= 0")
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"{owner}: values must have len(boundaries) + 1 = {len(boundaries) + 1} "
            f"entries, got {len(values)}"
        )
    return _PiecewiseConstant(boundaries=boundaries, values=values)
