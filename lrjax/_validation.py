"""The one validation path of every public lrjax function.

Every public constructor checks its concrete arguments once, at its own entry, and
raises ``ValueError("owner: name must be ..., got value")`` naming the function the user
called, the argument and the value as given. Nothing is clamped or replaced.

* Float hyperparameters (:func:`check_float`): a Python int or float, a NumPy real
  scalar, a 0-d real array, or a JAX array or tracer (used as given). ``bool``, ``str``,
  ``None``, lists, complex numbers, arrays with dimensions and values that are not
  finite in float32 are refused. A concrete value is returned as a Python float, so an
  array the caller modifies later changes nothing.
* Structural integers (:func:`check_integer`): what ``operator.index`` accepts, ``bool``
  aside; within int32 where they count steps of the int32 counter.
* Flags (:func:`check_flag`) and modes (:func:`check_choice`).
"""

from __future__ import annotations

import operator
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.core
import numpy as np

# Step counters are int32: a step count or period beyond it could never be reached.
INT32_MAX = int(np.iinfo(np.int32).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)

# How an error message quotes a value: at most about 200 characters, however long it is.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother = 120, 200
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 16

Condition = Callable[[np.ndarray], Any]


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is known now (a number or an array), not a tracer."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def show(value: Any) -> str:
    """``value`` as an error message quotes it: as given (abbreviated to about 200
    characters), a tracer by its type."""
    if isinstance(value, jax.core.Tracer):
        return f"a traced {value.dtype}{list(value.shape)}"
    if isinstance(value, jax.Array) and value.ndim == 0:
        return f"{value.item()!r} ({value.dtype} array)"
    return _SHORT.repr(value)


def describe(value: Any) -> str:
    """A wrong value described for a message: a number or string as given (abbreviated), an
    array by its dtype and shape, anything else by its type (never a huge repr)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, np.generic)):
        return _SHORT.repr(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"a {type(value).__name__}"


def _is_real_dtype(dtype: Any) -> bool:
    return bool(jax.numpy.issubdtype(dtype, np.floating) or jax.numpy.issubdtype(dtype, np.integer))


class Default:
    """A default value of a float hyperparameter, shown as its number.

    ``optax.inject_hyperparams`` turns every numeric argument of a factory, defaults
    included, into an array of the parameters' dtype: bfloat16 rounds β2 = 0.999 to 1.0.
    A default that is not a number stays out of its ``hyperparams``, so the transformation
    holds it at full precision; the values a user passes are injected as usual.
    """

    __slots__ = ("value",)

    def __init__(self, value: float):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __eq__(self, other: object) -> bool:
        return other == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def default(value: float) -> Any:
    """A float hyperparameter's default: see :class:`Default`."""
    return Default(value)


def check_float(
    owner: str,
    name: str,
    value: Any,
    condition: Condition | None = None,
    requirement: str = "",
) -> Any:
    """A float hyperparameter, checked; returns it as a Python float, or the JAX array.

    Args:
      owner: the public function the user called.
      name: the argument's name.
      value: the value as given.
      condition: an extra rule on the value (as a float64 NumPy array); a tracer is not
        checked against it, since its value is unknown here.
      requirement: how the message states the rule, e.g. ``"in [0, 1)"``.

    Raises:
      ValueError: for a value of the wrong kind or one that breaks the rule.
    """
    kind = "a real number (Python or NumPy scalar, 0-d array, or JAX scalar)"
    if isinstance(value, Default):
        value = value.value
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise ValueError(f"{owner}: {name} must be {kind}, got {show(value)}")
    if isinstance(value, jax.Array):  # arrays and tracers are used as given
        if value.ndim != 0 or not _is_real_dtype(value.dtype):
            raise ValueError(
                f"{owner}: {name} must be {kind}, got an array of dtype {value.dtype} "
                f"and shape {value.shape}"
            )
        if not is_concrete(value):
            return value
        number = float(value)
    elif isinstance(value, (int, float, np.integer, np.floating)) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and _is_real_dtype(value.dtype)
    ):
        number = float(value)
    else:
        raise ValueError(f"{owner}: {name} must be {kind}, got {show(value)}")
    if not np.isfinite(number) or abs(number) > FLOAT32_MAX:
        raise ValueError(f"{owner}: {name} must be finite in float32, got {show(value)}")
    if condition is not None and not bool(np.all(condition(np.asarray(number)))):
        hint = ""
        if isinstance(value, jax.Array) and np.dtype(value.dtype).itemsize < 4:
            hint = (
                f"; {value.dtype} rounds the value (optax.inject_hyperparams casts "
                "hyperparameters to the parameters' dtype unless given "
                "hyperparam_dtype=jnp.float32)"
            )
        raise ValueError(f"{owner}: {name} must be {requirement}, got {show(value)}{hint}")
    return value if isinstance(value, jax.Array) else number


def check_floats(
    owner: str,
    name: str,
    values: Any,
    condition: Condition | None = None,
    requirement: str = "",
) -> tuple[Any, ...]:
    """A sequence of float hyperparameters (a list, tuple or 1-D array), element by element."""
    if isinstance(values, (np.ndarray, jax.Array)):
        if values.ndim != 1:
            raise ValueError(
                f"{owner}: {name} must be a list, tuple or 1-D array of numbers, got an "
                f"array of shape {values.shape}"
            )
        values = list(values)
    elif not isinstance(values, (list, tuple)):
        raise ValueError(
            f"{owner}: {name} must be a list, tuple or 1-D array of numbers, got {show(values)}"
        )
    return tuple(
        check_float(owner, f"{name}[{i}]", value, condition, requirement)
        for i, value in enumerate(values)
    )


def check_integer(
    owner: str, name: str, value: Any, minimum: int, maximum: int | None = INT32_MAX
) -> int:
    """A structural integer (a step count, period, milestone), as a Python int.

    What ``operator.index`` accepts: Python and NumPy integers, 0-d integer NumPy arrays
    and concrete 0-d integer JAX arrays; ``bool``, floats and tracers are refused. The
    default ``maximum`` is the int32 step counter's; ``maximum=None`` sets none (a
    schedule's period, computed in floating point). A default written ``default(n)``
    (kept out of ``optax.inject_hyperparams``) is its number.
    """
    if isinstance(value, Default):
        value = value.value
    number = _as_index(value)
    if number is None:
        raise ValueError(
            f"{owner}: {name} must be a concrete integer >= {minimum}, got {show(value)}"
        )
    if number < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        why = " (steps are counted in int32)" if maximum == INT32_MAX else ""
        raise ValueError(f"{owner}: {name} must be at most {maximum}{why}, got {number}")
    return number


def _as_index(value: Any) -> int | None:
    """``operator.index(value)`` for an integer that is not a bool, else None."""
    if isinstance(value, (bool, np.bool_, jax.core.Tracer)):
        return None
    if isinstance(value, (np.ndarray, jax.Array)) and value.dtype == bool:
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_integers(
    owner: str, name: str, values: Any, minimum: int, maximum: int | None = INT32_MAX
) -> tuple[int, ...]:
    """A sequence of structural integers (milestones, boundaries), element by element."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = list(values)
    if not isinstance(values, (list, tuple)):
        raise ValueError(
            f"{owner}: {name} must be a list, tuple or 1-D array of integers, got {show(values)}"
        )
    return tuple(
        check_integer(owner, f"{name}[{i}]", value, minimum, maximum)
        for i, value in enumerate(values)
    )


def check_flag(owner: str, name: str, value: Any) -> bool:
    """A concrete boolean flag (``bool`` or ``np.bool_``), as a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, got {show(value)}")
    return bool(value)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{owner}: {name} must be one of {options}, got {show(value)}")
    return value


def check_callable(owner: str, name: str, value: Any, what: str) -> Any:
    """A callable argument (a schedule, a loss function, an optimizer factory)."""
    if not callable(value):
        raise ValueError(f"{owner}: {name} must be {what}, got {describe(value)}")
    return value


def call_user(owner: str, name: str, signature: str, function: Any, *args: Any) -> Any:
    """``function(*args)``, a function the user passed as ``name``. A ``TypeError`` from
    the call (the wrong number of arguments, most often) comes back naming the argument
    and the signature lrjax calls it with, chained to the original."""
    try:
        return function(*args)
    except TypeError as error:
        raise TypeError(
            f"{owner}: calling {name} as {signature} raised TypeError: {error}"
        ) from error


# ------------------------------------------------------------------ common rules


def nonnegative(v: np.ndarray) -> Any:
    return v >= 0


def positive(v: np.ndarray) -> Any:
    return v > 0


def unit_open(v: np.ndarray) -> Any:
    return (v >= 0) & (v < 1)


def unit_closed(v: np.ndarray) -> Any:
    return (v >= 0) & (v <= 1)


def unit_half_open(v: np.ndarray) -> Any:
    return (v > 0) & (v <= 1)
