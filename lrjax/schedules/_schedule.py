"""The base of every schedule: a frozen dataclass that is a pytree and a pure function.

A schedule's float arguments (rates, decay factors) are pytree leaves, so they may be
tracers (a schedule built inside ``jax.vmap`` over its peak) and a schedule can be
passed into a jitted function as an argument. Structural arguments (step counts,
milestones, modes) are static metadata.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._validation import check_float, is_concrete, nonnegative, show


class Schedule:
    """A learning-rate schedule: ``schedule(step) -> float32`` rate of ``step``'s shape.

    ``step`` counts completed updates (the first update uses ``schedule(0)``). It may be a
    Python int, an integer or float array, or a tracer. Negative steps are treated as 0.
    A step beyond int32 (``np.int64(2**31)``, a Python int >= 2**31) needs
    ``jax_enable_x64``; without it such a step is refused (``ValueError``), never wrapped.
    Subclasses are frozen dataclasses made with :func:`schedule_class` and implement
    ``_value(step)`` on a step that is already a non-negative array.

    Float arguments given as Python numbers are used at their full (float64) precision
    where it matters (a rate raised to the power of the step); passed into a jitted
    function as an argument, they become float32 arrays like any other leaf.
    """

    name: ClassVar[str]

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        step = as_step(self.name, step)
        step = jnp.maximum(step, 0)
        value = jnp.asarray(self._value(step), jnp.float32)
        # A constant, or an argument of another shape, still gives the step's shape.
        return jnp.broadcast_to(value, jnp.broadcast_shapes(value.shape, step.shape))

    def _value(self, step: jax.Array) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        arguments = ", ".join(
            f"{field.name}={getattr(self, field.name)!r}"
            for field in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"{self.name}({arguments})"


def schedule_class(name: str, static: tuple[str, ...] = ()) -> Any:
    """Class decorator: a frozen dataclass registered as a pytree.

    Args:
      name: the public constructor's name, used in ``repr`` and error messages.
      static: the fields that are structure (ints, modes, tuples of ints); all other
        fields are leaves.
    """

    def decorate(cls: type) -> type:
        cls.name = name  # type: ignore[attr-defined]
        cls = dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
        fields = [field.name for field in dataclasses.fields(cls)]
        return jax.tree_util.register_dataclass(
            cls,
            data_fields=[f for f in fields if f not in static],
            meta_fields=[f for f in fields if f in static],
        )

    return decorate


def as_float(value: Any) -> jax.Array:
    """A float argument (number, array or tracer) as float32 for the arithmetic."""
    return jnp.asarray(value).astype(jnp.float32)


def cosine_interpolate(
    start: Any, end: Any, remaining: jax.Array, length: Any, done: jax.Array
) -> jax.Array:
    """``end + (start - end) * (1 + cos(pi * done / length)) / 2``, computed stably.

    With ``done + remaining = length`` this is
    ``start * sin^2(pi/2 * remaining/length) + end * sin^2(pi/2 * done/length)``. The
    textbook form loses all digits near the end of a cycle in float32 (``1 + cos(x)``
    cancels as x -> pi), where torch, in float64, still has them; ``end + (start - end) * ...``
    cancels when the rate rises (start < end). Two non-negative terms, each the sine of a
    small angle near its own end of the cycle, keep float32 within a few ulps of torch
    across the whole cycle. ``done`` and ``remaining`` are each computed exactly by the
    caller (``length - remaining`` would cancel near the start).
    """
    if isinstance(length, int):  # a period beyond int32 is a float in the arithmetic
        length = float(length)
    weight_start = jnp.square(jnp.sin(0.5 * jnp.pi * jnp.clip(remaining / length, 0.0, 1.0)))
    weight_end = jnp.square(jnp.sin(0.5 * jnp.pi * jnp.clip(done / length, 0.0, 1.0)))
    return start * weight_start + end * weight_end


def power_weights(left: jax.Array, done: jax.Array, exponent: Any) -> tuple[jax.Array, jax.Array]:
    """``w = left**p`` and ``1 - w``, for fractions with ``left + done = 1``, each given by
    the caller to full precision (from the steps remaining and the steps done).

    ``1 - w`` is ``-expm1(p log1p(-done))`` while ``done < 1/2`` and ``-expm1(p log(left))``
    after: each logarithm is taken where its argument is known to full relative precision,
    so neither ``1 - left`` nor ``1 - w`` cancels, for any p (below 1, ``1 - left**p``
    from ``done`` near 1 loses the digits that ``left`` still has). The gradient of ``x**p``
    with respect to p is NaN at x = 0 even where it is not selected: logarithms are taken
    of safe values only.
    """
    some = left > 0
    safe = jnp.where(some, left, 1.0)
    early = done < 0.5
    log_left = jnp.where(early, jnp.log1p(-jnp.where(early, done, 0.0)), jnp.log(safe))
    weight = jnp.where(some, jnp.power(safe, exponent), 0.0)
    return weight, jnp.where(some, -jnp.expm1(exponent * log_left), 1.0)


# ------------------------------------------------------------------ arguments


def check_rate(owner: str, name: str, value: Any) -> Any:
    """A rate or a value of the schedule: a float hyperparameter >= 0."""
    return check_float(owner, name, value, nonnegative, ">= 0")


def check_static_float(
    owner: str, name: str, value: Any, condition: Any, requirement: str, why: str
) -> float:
    """A float argument that shapes the schedule's structure (``pct_start``,
    ``period_mult``): checked like any float, then concrete, as a Python float."""
    if not is_concrete(value):
        raise ValueError(f"{owner}: {name} must be a concrete number ({why}), got {show(value)}")
    return float(check_float(owner, name, value, condition, requirement))


def known(value: Any) -> float | None:
    """``value`` as a Python float if it is known at construction, None for a tracer:
    checks that relate two arguments are made only on known values."""
    return float(value) if is_concrete(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (float, int, np.floating, np.integer))


def log_of(value: Any) -> jax.Array:
    """``log(value)`` in float32; from the float64 value of a Python or NumPy number."""
    if _is_number(value):
        return jnp.float32(math.log(float(value)))
    return jnp.log(as_float(value))


def power(base: Any, exponent: jax.Array) -> jax.Array:
    """``base ** exponent`` in float32, for ``base > 0`` and a float32 ``exponent``.

    A rate raised to the step amplifies the rounding of the rate: ``0.99`` rounded to
    float32 and raised to the 3000th power is 3e-5 (relative) away from ``0.99 ** 3000``
    in float64, which is what torch computes. For a Python or NumPy number the rounding error of its
    logarithm is put back as a second factor, so the result is within a few ulps of the
    float64 one. A float32 array or tracer is taken as the exact value it holds.
    """
    result = jnp.power(as_float(base), exponent)
    if _is_number(base) and float(base) > 0:
        error = math.log(float(base)) - math.log(float(np.float32(base)))
        if error:
            # |exponent * error| <= 40 keeps the product finite however large the step;
            # the clip only acts where the power itself is 0, 1 or capped by the caller.
            result = result * jnp.exp(jnp.clip(exponent * error, -40.0, 40.0))
    return result


def is_one(value: Any) -> bool:
    """A (checked) float argument known to be exactly 1, so the plain formula applies."""
    return not isinstance(value, jax.Array) and value == 1


def k_decayed(done: jax.Array, remaining: jax.Array, length: float, k: Any):
    """The fractions of a decay done and remaining after timm's ``k_decay``:
    ``(t/N)^k`` and ``1 − (t/N)^k``, each to full precision from the exact step counts."""
    return power_weights(done / length, remaining / length, as_float(k))


def complement_of_power(base: Any, exponent: jax.Array) -> jax.Array:
    """``1 - base ** exponent``, accurate where the power is close to 1 (no cancellation)."""
    return -jnp.expm1(exponent * log_of(base))


# ---------------------------------------------------------------------- steps
#
# A step is an integer (int32, or int64 under x64) or a float array, already >= 0. Step
# arithmetic stays exact: integer steps are only compared, floor-divided and subtracted
# in their own dtype, with Python ints that fit in it, and become float32 only as the
# small differences that the formulas use. Nothing overflows at the int32 maximum.


def as_step(owner: str, step: Any) -> jax.Array:
    """``step`` as a JAX array, refused where JAX would change its value.

    Without ``jax_enable_x64`` JAX holds integers in int32: it wraps a NumPy int64 beyond
    2**31 - 1 (``2**31 + 50`` becomes a negative step, so step 0) and raises an
    ``OverflowError`` naming nothing for such a Python int. A step whose value is known
    here is checked against the dtype JAX will hold it in; a JAX array already has JAX's
    dtype, and a tracer is used as given.
    """
    if not isinstance(step, jax.Array):
        _check_host_step(owner, step)
        _check_fits(owner, step)
        try:
            step = jnp.asarray(step)
        except OverflowError:  # a Python int beyond int64 (under x64), or in a list
            raise ValueError(f"{owner}: step {show(step)} {_beyond(np.int64)}") from None
    if not (jnp.issubdtype(step.dtype, jnp.integer) or jnp.issubdtype(step.dtype, jnp.floating)):
        raise TypeError(f"{owner}: step must be an integer or float array, got {step.dtype}")
    return step


def _check_host_step(owner: str, step: Any) -> None:
    """A step given as a Python or NumPy value is a real number (or array of them), not
    NaN: ``"5"`` or ``None`` is a slip, and a NaN step would give a NaN rate."""
    try:
        host = np.asarray(step)
    except Exception:  # a ragged list, an object NumPy cannot hold
        host = np.asarray(None)
    if host.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: step must be an integer or float (or an array of them), got {show(step)}"
        )
    if host.dtype.kind == "f" and np.isnan(host).any():
        raise ValueError(f"{owner}: step must be a number, not NaN, got {show(step)}")


def _check_fits(owner: str, step: Any) -> None:
    if isinstance(step, int) and not isinstance(step, bool):
        dtype, extremes = np.dtype(np.int64), [step]
    else:
        host = np.asarray(step)
        if host.dtype.kind not in "iu" or host.size == 0:
            return
        dtype, extremes = host.dtype, [int(host.min()), int(host.max())]
    info = np.iinfo(jax.dtypes.canonicalize_dtype(dtype))
    for value in extremes:
        if not int(info.min) <= value <= int(info.max):
            raise ValueError(f"{owner}: step {value} {_beyond(dtype)}")


def _beyond(dtype: Any) -> str:
    """The end of the message for a step that the integer type JAX uses cannot hold."""
    held = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    if held.itemsize < np.dtype(dtype).itemsize:
        top = "2**32 - 1" if held.kind == "u" else "2**31 - 1"
        return f"does not fit {held}; enable jax_enable_x64 for steps beyond {top}"
    return f"does not fit {held}"


def _is_integer(step: jax.Array) -> bool:
    return bool(jnp.issubdtype(step.dtype, jnp.integer))


def _fits(step: jax.Array, value: int) -> bool:
    info = jnp.iinfo(step.dtype)
    return int(info.min) <= value <= int(info.max)


def reached(step: jax.Array, point: float) -> jax.Array:
    """``step >= point`` for a Python number ``point``, without overflow."""
    if _is_integer(step):
        point = math.ceil(point)
        if point <= 0:
            return jnp.ones(step.shape, bool)
        if not _fits(step, point):
            return jnp.zeros(step.shape, bool)
        return step >= point
    return step >= float(point)


def beyond(step: jax.Array, point: float) -> jax.Array:
    """``step > point`` for a Python number ``point``, without overflow."""
    if _is_integer(step):
        return reached(step, math.floor(point) + 1)
    return step > float(point)


def count_reached(step: jax.Array, points: Sequence[int]) -> jax.Array:
    """How many of ``points`` are ``<= step`` (int32); a repeated point counts each time."""
    if _is_integer(step):
        points = [point for point in points if point <= int(jnp.iinfo(step.dtype).max)]
    if not points:
        return jnp.zeros(step.shape, jnp.int32)
    table = np.asarray(points, dtype=step.dtype)
    return jnp.sum(step[..., None] >= table, axis=-1, dtype=jnp.int32)


def floor_divmod(step: jax.Array, period: int) -> tuple[jax.Array, jax.Array]:
    """``(step // period, step % period)`` in the step's dtype, for an int ``period >= 1``."""
    if _is_integer(step):
        if not _fits(step, period):
            return jnp.zeros_like(step), step
        return step // period, step % period
    quotient = jnp.floor(step / float(period))
    return quotient, step - quotient * float(period)


def at_most(step: jax.Array, last: int) -> jax.Array:
    """``min(step, last)`` in the step's dtype, for an int ``last >= 0``."""
    if _is_integer(step):
        return step if not _fits(step, last) else jnp.minimum(step, last)
    return jnp.minimum(step, float(last))


def shift(step: jax.Array, start: int) -> jax.Array:
    """``max(step - start, 0)`` in the step's dtype: the step a later phase sees."""
    if _is_integer(step):
        return jnp.zeros_like(step) if not _fits(step, start) else jnp.maximum(step - start, 0)
    return jnp.maximum(step - float(start), 0)


def offset(step: jax.Array, point: float) -> jax.Array:
    """``step - point`` in float32, exact in the integer part of ``point``.

    ``float32(step) - point`` would lose the low digits of both numbers once the step
    passes 2**24; the difference itself is what the formulas need to full precision.
    """
    if _is_integer(step):
        whole = math.floor(point)
        if whole >= 0 and _fits(step, whole):
            return (step - whole).astype(jnp.float32) - (point - whole)
        return step.astype(jnp.float32) - float(point)
    return (step - float(point)).astype(jnp.float32)


def progress(step: jax.Array, start: float, end: float) -> tuple[jax.Array, jax.Array]:
    """Steps done since ``start`` and steps remaining until ``end``, both in float32 and
    clipped to ``[0, end - start]``, each exact on its own (no ``length - done``)."""
    length = float(end) - float(start)
    done = jnp.clip(offset(step, start), 0.0, length)
    remaining = jnp.clip(-offset(step, end), 0.0, length)
    return done, remaining
