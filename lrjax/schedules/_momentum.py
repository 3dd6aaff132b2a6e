"""Momentum schedules: the momentum (or Adam β1) that torch cycles against the rate.

torch's ``OneCycleLR`` and ``CyclicLR`` also set each step's ``momentum`` (SGD, RMSprop)
or ``betas[0]`` (Adam, AdamW) by default (``cycle_momentum=True``): it falls while the
rate rises and rises while it falls. In lrjax that curve is a schedule of its own,
passed as the method's hyperparameter: ``lrjax.sgd(one_cycle(0.1, T),
momentum=one_cycle_momentum(T))``. The curves are the rate's, run through in reverse
(``_cyclic.py``).
"""

from __future__ import annotations

from typing import Any

import jax

from lrjax._validation import check_float, unit_closed
from lrjax.schedules._cyclic import check_cycle, check_phases, one_cycle_curve, triangle_wave
from lrjax.schedules._schedule import Schedule, schedule_class


def _check_momentum(owner: str, name: str, value: Any) -> Any:
    """A momentum (or β1) value: a float hyperparameter in [0, 1]."""
    return check_float(owner, name, value, unit_closed, "in [0, 1]")


@schedule_class("one_cycle_momentum", static=("total_steps", "pct_start", "anneal", "three_phase"))
class _OneCycleMomentum(Schedule):
    total_steps: int
    pct_start: float
    base_momentum: Any
    max_momentum: Any
    anneal: str
    three_phase: bool

    def _value(self, step: jax.Array) -> jax.Array:
        shape = (self.total_steps, self.pct_start, self.anneal, self.three_phase)
        top, bottom = self.max_momentum, self.base_momentum
        return one_cycle_curve(step, shape, (top, bottom, top))


def one_cycle_momentum(
    total_steps: int,
    *,
    pct_start: float = 0.3,
    base_momentum: float | jax.Array = 0.85,
    max_momentum: float | jax.Array = 0.95,
    anneal: str = "cos",
    three_phase: bool = False,
) -> Schedule:
    """The momentum of the 1cycle policy: down while :func:`one_cycle`'s rate rises, then up.

    The momentum goes from ``max_momentum`` down to ``base_momentum`` over the first
    ``pct_start`` of the steps, while the rate warms up, then back to ``max_momentum`` at
    step ``total_steps - 1``. With ``three_phase`` it comes back to ``max_momentum`` as
    the rate returns to its initial value and stays there while the rate anneals. Each
    phase is a half cosine (``anneal="cos"``) or a straight line (``"linear"``):

    .. math:: \\mu = \\mu_{end} + (\\mu_{start} - \\mu_{end}) \\, \\tfrac12 (1 + \\cos \\pi p)
       \\quad \\text{or} \\quad \\mu_{start} + (\\mu_{end} - \\mu_{start}) \\, p

    with p the fraction of the phase done. Give it the ``total_steps``, ``pct_start``,
    ``anneal`` and ``three_phase`` of the rate's :func:`one_cycle`.

    Args:
      total_steps: the number of steps of the whole cycle, an integer >= 1.
      pct_start: the fraction of the steps over which the momentum falls, in [0, 1) (in
        [0, 0.5] with ``three_phase``); a concrete number, as in :func:`one_cycle`.
      base_momentum: the momentum at the rate's peak, in [0, 1].
      max_momentum: the momentum at the start and the end, in [0, 1]. It may be below
        ``base_momentum`` (as in torch), which makes the momentum rise with the rate.
      anneal: ``"cos"`` or ``"linear"``.
      three_phase: the phases of :func:`one_cycle`'s ``three_phase``.

    Returns:
      A :class:`Schedule` of momentum values: pass it as ``momentum=`` of
      :func:`lrjax.sgd` or :func:`lrjax.rmsprop`, or as ``b1=`` of :func:`lrjax.adam` or
      :func:`lrjax.adamw` (β1 must stay below 1 there: keep ``max_momentum < 1``).

    Example:
      >>> from lrjax import schedules
      >>> momentum = schedules.one_cycle_momentum(10, pct_start=0.5, anneal="linear")
      >>> [round(float(momentum(t)), 6) for t in (0, 2, 4, 9, 20)]
      [0.95, 0.9, 0.85, 0.95, 0.95]
      >>> import lrjax
      >>> total_steps = 1000
      >>> tx = lrjax.sgd(schedules.one_cycle(0.1, total_steps),
      ...                momentum=schedules.one_cycle_momentum(total_steps))

    Equivalent to the momentum (SGD's ``momentum``, Adam's ``betas[0]``) that torch
    ``OneCycleLR(optimizer, max_lr, total_steps, pct_start, anneal_strategy=anneal,
    cycle_momentum=True, base_momentum, max_momentum, three_phase=three_phase)`` sets
    before each of the updates 0..total_steps-1; like :func:`one_cycle`, it is held from
    step total_steps - 1 on, where torch raises.

    References:
      Smith, A Disciplined Approach to Neural Network Hyper-Parameters: Part 1, 2018,
      https://arxiv.org/abs/1803.09820
    """
    owner = "one_cycle_momentum"
    total_steps, pct_start, anneal, three_phase = check_phases(
        owner, total_steps, pct_start, anneal, three_phase, "final momentum"
    )
    return _OneCycleMomentum(
        total_steps=total_steps,
        pct_start=pct_start,
        base_momentum=_check_momentum(owner, "base_momentum", base_momentum),
        max_momentum=_check_momentum(owner, "max_momentum", max_momentum),
        anneal=anneal,
        three_phase=three_phase,
    )


@schedule_class("cyclic_momentum", static=("step_size_up", "step_size_down", "mode"))
class _CyclicMomentum(Schedule):
    base_momentum: Any
    max_momentum: Any
    step_size_up: int
    step_size_down: int
    mode: str
    gamma: Any

    def _value(self, step: jax.Array) -> jax.Array:
        shape = (self.step_size_up, self.step_size_down, self.mode, self.gamma)
        # The rate's wave from the top down: max - (max - base) h s.
        return triangle_wave(step, shape, self.max_momentum, self.base_momentum)


def cyclic_momentum(
    *,
    base_momentum: float | jax.Array = 0.8,
    max_momentum: float | jax.Array = 0.9,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float | jax.Array = 1.0,
) -> Schedule:
    """The momentum of cyclical learning rates: down while :func:`cyclic`'s rate rises.

    With c the cycle (from 0) and h the height in it (0 → 1 over ``step_size_up`` steps,
    1 → 0 over ``step_size_down``), the momentum mirrors the rate:

    .. math:: \\mu_t = \\mu_{max} - (\\mu_{max} - \\mu_{base}) \\, h_t \\, s_t, \\qquad
       s_t = 1 \\text{ (triangular)},\\ 2^{-c} \\text{ (triangular2)},\\ \\gamma^t
       \\;(\\mathrm{exp\\_range})

    so in ``triangular2`` and ``exp_range`` it settles at ``max_momentum`` as the cycles
    shrink. Give it the step sizes, mode and γ of the rate's :func:`cyclic`.

    Args:
      base_momentum: the momentum at the top of an unscaled cycle of the rate, in [0, 1].
      max_momentum: the momentum at the bottom of each cycle, in [0, 1]. It may be below
        ``base_momentum`` (as in torch), which makes the momentum rise with the rate.
      step_size_up: the steps from the bottom of a cycle to its top, an integer >= 1.
      step_size_down: the steps from the top back to the bottom, an integer >= 0; None
        means ``step_size_up``.
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: γ of ``"exp_range"``, in (0, 1]; refused with the other modes unless 1.

    Returns:
      A :class:`Schedule` of momentum values: pass it as ``momentum=`` of
      :func:`lrjax.sgd` or :func:`lrjax.rmsprop`, or as ``b1=`` of :func:`lrjax.adam` or
      :func:`lrjax.adamw` (keep ``max_momentum < 1`` there).

    Example:
      >>> from lrjax import schedules
      >>> momentum = schedules.cyclic_momentum(step_size_up=2, mode="triangular2")
      >>> [round(float(momentum(t)), 6) for t in range(7)]
      [0.9, 0.85, 0.8, 0.85, 0.9, 0.875, 0.85]
      >>> import lrjax
      >>> tx = lrjax.sgd(schedules.cyclic(1e-3, 0.1, step_size_up=2),
      ...                momentum=schedules.cyclic_momentum(step_size_up=2))

    Equivalent to the momentum (SGD's ``momentum``, Adam's ``betas[0]``) that torch
    ``CyclicLR(optimizer, base_lr, max_lr, step_size_up, step_size_down, mode, gamma,
    cycle_momentum=True, base_momentum, max_momentum)`` sets before each update.

    References:
      Smith, Cyclical Learning Rates for Training Neural Networks, WACV 2017,
      https://arxiv.org/abs/1506.01186
    """
    owner = "cyclic_momentum"
    base_momentum = _check_momentum(owner, "base_momentum", base_momentum)
    max_momentum = _check_momentum(owner, "max_momentum", max_momentum)
    step_size_up, step_size_down, mode, gamma = check_cycle(
        owner, step_size_up, step_size_down, mode, gamma
    )
    return _CyclicMomentum(
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        step_size_up=step_size_up,
        step_size_down=step_size_down,
        mode=mode,
        gamma=gamma,
    )
