"""Schedules made of other schedules: ``warmup`` in front of one, ``join`` of several one
after another, ``product`` of several at once, and ``per_epoch`` stepping of one."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lrjax._validation import check_callable, check_integer, check_integers, show
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_rate,
    floor_divmod,
    progress,
    reached,
    schedule_class,
    shift,
)


@schedule_class("function", static=("function",))
class _Function(Schedule):
    """Any ``step -> rate`` callable (an optax schedule, a lambda) as a :class:`Schedule`.

    The callable is static: it has no leaves to trace, and an lrjax schedule holding it
    stays a pytree of arrays. lrjax schedules are kept as they are, leaves and all.
    """

    function: Callable[[jax.Array], Any]

    def _value(self, step: jax.Array) -> jax.Array:
        return as_float(self.function(step))

    def __repr__(self) -> str:
        return repr(self.function)


def _as_schedule(owner: str, name: str, schedule: Any) -> Schedule:
    """A child schedule: an lrjax schedule as it is (already checked by its constructor),
    any other callable wrapped. The child is called with steps its parent has checked."""
    if isinstance(schedule, Schedule):
        return schedule
    return _Function(function=check_callable(owner, name, schedule, "a callable step -> rate"))


@schedule_class("warmup", static=("warmup_steps",))
class _Warmup(Schedule):
    schedule: Schedule
    warmup_steps: int
    init_value: Any

    def _value(self, step: jax.Array) -> jax.Array:
        warmup = self.warmup_steps
        target = self.schedule(jnp.zeros_like(step))
        done, remaining = progress(step, 0, warmup)
        # The weights first: a rate near float32's top times W would overflow.
        length = float(warmup)
        ramp = as_float(self.init_value) * (remaining / length) + target * (done / length)
        return jnp.where(reached(step, warmup), self.schedule(shift(step, warmup)), ramp)


def warmup(
    schedule: Callable[[jax.Array], Any], warmup_steps: int, *, init_value: float | jax.Array = 0.0
) -> Schedule:
    """A linear warm-up from ``init_value`` to ``schedule(0)``, then ``schedule``, delayed.

    .. math:: \\eta_t = \\begin{cases}
       \\eta_{init} + (s(0) - \\eta_{init}) \\, t / W & t < W \\\\
       s(t - W) & t \\ge W
       \\end{cases}

    Args:
      schedule: s, any ``step -> rate`` callable: an lrjax schedule, an optax schedule
        or a function.
      warmup_steps: W, an integer >= 1.
      init_value: the rate at step 0, >= 0.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.warmup(schedules.cosine_decay(1.0, 10), warmup_steps=4)
      >>> [round(float(schedule(t)), 6) for t in (0, 2, 4, 9, 14)]
      [0.0, 0.5, 1.0, 0.5, 0.0]

    How it differs from torch ``SequentialLR(optimizer, [LinearLR(optimizer, start_factor,
    total_iters=W), main], milestones=[W])``: torch's ``LinearLR`` ramps from
    ``start_factor * lr`` towards the optimizer's base rate ``lr``, whatever ``main``
    starts at, and jumps to ``main``'s first rate at step W. This warm-up ramps to
    ``schedule(0)``, the rate the schedule starts at, so it is continuous at step W. The
    two agree when ``main`` starts at the base rate (``CosineAnnealingLR``, ``StepLR``,
    ``ExponentialLR``); they differ when it does not. With ``lr=0.2``,
    ``start_factor=0.1``, W = 6 and ``main = ConstantLR(optimizer, factor=0.5)`` (0.1
    for 5 steps, then 0.2), torch gives 0.02, 0.05, 0.08, 0.11, 0.14, 0.17, then 0.1;
    the equivalent here ramps to 0.1:

    >>> main = schedules.piecewise_constant([5], [0.1, 0.2])  # ConstantLR(0.5), lr=0.2
    >>> schedule = schedules.warmup(main, 6, init_value=0.02)
    >>> [round(float(schedule(t)), 3) for t in (0, 1, 2, 5, 6, 11)]
    [0.02, 0.033, 0.047, 0.087, 0.1, 0.2]

    torch's ramp is ``warmup(main, W, init_value=start_factor * lr)`` only for a ``main``
    with ``main(0) = lr``. optax: ``optax.join_schedules([optax.linear_schedule(init_value,
    schedule(0), W), schedule], [W])``.
    """
    owner = "warmup"
    return _Warmup(
        schedule=_as_schedule(owner, "schedule", schedule),
        warmup_steps=check_integer(owner, "warmup_steps", warmup_steps, 1, None),
        init_value=check_rate(owner, "init_value", init_value),
    )


@schedule_class("join", static=("boundaries",))
class _Join(Schedule):
    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    def _value(self, step: jax.Array) -> jax.Array:
        value = self.schedules[0](step)
        for start, schedule in zip(self.boundaries, self.schedules[1:], strict=True):
            value = jnp.where(reached(step, start), schedule(shift(step, start)), value)
        return value


def join(schedules: Sequence[Callable[[jax.Array], Any]], boundaries: Sequence[int]) -> Schedule:
    """One schedule after another: ``schedules[i]`` on ``boundaries[i-1] <= t < boundaries[i]``.

    .. math:: \\eta_t = s_i(t - b_{i-1}) \\quad \\text{for } b_{i-1} \\le t < b_i,
       \\qquad b_{-1} = 0,\\ b_n = \\infty

    Each schedule sees the steps since its own start, so it begins at its step 0.

    Args:
      schedules: the sᵢ, any ``step -> rate`` callables (lrjax or optax schedules,
        functions), one more than ``boundaries``.
      boundaries: the steps bᵢ at which the next schedule starts: integers >= 1, strictly
        increasing.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.join(
      ...     [schedules.linear(0.0, 1.0, 10), schedules.cosine_decay(1.0, 90)], boundaries=[10])
      >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 55, 100)]
      [0.0, 0.5, 1.0, 0.5, 0.0]

    The intent of torch ``SequentialLR(optimizer, schedulers, milestones)`` (which hands
    each scheduler its step count, so chained schedulers can disagree at a milestone), and
    ``optax.join_schedules``.
    """
    owner = "join"
    schedules = _as_schedules(owner, schedules)
    boundaries = check_integers(owner, "boundaries", boundaries, 1, None)
    if any(later <= earlier for earlier, later in itertools.pairwise(boundaries)):
        raise ValueError(f"{owner}: boundaries must be strictly increasing, got {boundaries}")
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"{owner}: schedules must have len(boundaries) + 1 = {len(boundaries) + 1} "
            f"entries, got {len(schedules)}"
        )
    return _Join(schedules=schedules, boundaries=boundaries)


def _as_schedules(owner: str, schedules: Any) -> tuple[Schedule, ...]:
    """A list or tuple of child schedules, each as :func:`_as_schedule` makes it."""
    if not isinstance(schedules, (list, tuple)):
        raise ValueError(
            f"{owner}: schedules must be a list or tuple of callables step -> rate, "
            f"got {show(schedules)}"
        )
    return tuple(_as_schedule(owner, f"schedules[{i}]", s) for i, s in enumerate(schedules))


@schedule_class("product")
class _Product(Schedule):
    schedules: tuple[Schedule, ...]

    def _value(self, step: jax.Array) -> jax.Array:
        value = self.schedules[0](step)
        for schedule in self.schedules[1:]:
            value = value * schedule(step)
        return value


def product(schedules: Sequence[Callable[[jax.Array], Any]]) -> Schedule:
    """The pointwise product of schedules: ``schedules[0](t) * schedules[1](t) * ...``.

    .. math:: \\eta_t = \\prod_i s_i(t)

    lrjax schedules give absolute values, so a product is one rate times factors: give
    the base rate to one schedule and build the others with an initial value of 1.0.

    Args:
      schedules: the sᵢ, any ``step -> value`` callables (lrjax or optax schedules,
        functions), at least one. Each sees the same step. The product of their values
        must be finite in float32.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.product([
      ...     schedules.step_decay(0.1, 10, gamma=0.5),  # the base rate, halved every 10 steps
      ...     schedules.exponential_decay(1.0, 0.9),  # a factor: 0.9 per step
      ... ])
      >>> [round(float(schedule(t)), 6) for t in (0, 1, 10, 20)]
      [0.1, 0.09, 0.017434, 0.003039]

    Equivalent to torch ``ChainedScheduler([StepLR(optimizer, 10, 0.5),
    ExponentialLR(optimizer, 0.9)])`` with ``lr=0.1``, and in general to a
    ``ChainedScheduler`` of multiplicative schedulers (``StepLR``, ``MultiStepLR``,
    ``ExponentialLR``, ``ConstantLR``, ``LinearLR``, ``MultiplicativeLR``, ...), each of
    which multiplies the rate by its own factor: the base rate goes into one of the
    schedules here (``step_decay(lr, ...)``), the others are factors starting at 1.0
    (``exponential_decay(1.0, gamma)``, ``linear(start_factor, end_factor, N)``,
    ``piecewise_constant([N], [factor, 1.0])`` for ``ConstantLR``). Schedulers that are
    not products of factors (``CosineAnnealingLR`` with ``eta_min > 0``) do not chain
    this way.
    """
    owner = "product"
    schedules = _as_schedules(owner, schedules)
    if not schedules:
        raise ValueError(f"{owner}: schedules must hold at least one schedule, got []")
    return _Product(schedules=schedules)


@schedule_class("per_epoch", static=("steps_per_epoch",))
class _PerEpoch(Schedule):
    schedule: Schedule
    steps_per_epoch: int

    def _value(self, step: jax.Array) -> jax.Array:
        epoch, _ = floor_divmod(step, self.steps_per_epoch)
        return self.schedule(epoch)


def per_epoch(schedule: Callable[[jax.Array], Any], steps_per_epoch: int) -> Schedule:
    """``schedule`` stepped once an epoch: the step it sees is the number of epochs done.

    .. math:: \\eta_t = s(\\lfloor t / E \\rfloor)

    The schedule's step counts become epochs: ``per_epoch(step_decay(0.1, 30), E)``
    decays every 30 epochs of E steps.

    Args:
      schedule: s, any ``step -> rate`` callable: an lrjax schedule, an optax schedule
        or a function.
      steps_per_epoch: E, the updates per epoch, an integer >= 1.

    Returns:
      A :class:`Schedule` of the update count.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.per_epoch(schedules.step_decay(0.1, 2, gamma=0.5), 100)
      >>> [round(float(schedule(t)), 6) for t in (0, 199, 200, 399, 400)]
      [0.1, 0.1, 0.05, 0.05, 0.025]

    Equivalent to a torch scheduler stepped once an epoch (``scheduler.step()`` after
    each epoch's E updates, the way torch's and timm's epoch-based recipes step
    ``StepLR``, ``MultiStepLR``, ``CosineAnnealingLR`` ...): the update t of epoch
    ``t // E`` uses ``schedule(t // E)``. optax: ``lambda t: schedule(t // E)``.
    """
    owner = "per_epoch"
    return _PerEpoch(
        schedule=_as_schedule(owner, "schedule", schedule),
        steps_per_epoch=check_integer(owner, "steps_per_epoch", steps_per_epoch, 1, None),
    )
