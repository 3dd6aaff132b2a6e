"""Float hyperparameters: checked by the rule of their name, held in the state.

Float hyperparameters given as numbers are held in the state, so optimizers that differ
only in those values lower to the same program and :func:`lrjax.set_hyperparams` changes
them without a retrace. Values given as JAX arrays or tracers (``optax.inject_hyperparams``,
``jax.vmap``, a jitted function's arguments) are used as given and not copied into the
state; a schedule is evaluated at each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._numerics import default_float, fresh
from lrjax._validation import (
    Condition,
    Default,
    check_float,
    is_concrete,
    nonnegative,
    positive,
    show,
    unit_closed,
    unit_open,
)

ScheduleFn = Callable[[jax.typing.ArrayLike], jax.Array]
ScalarOrSchedule = float | jax.Array | ScheduleFn

# One rule per hyperparameter name: a name means the same thing in every lrjax method,
# and `set_hyperparams` checks new values with the rule their constructor used.
HYPERPARAM_RULES: dict[str, tuple[Condition, str]] = {
    "learning_rate": (nonnegative, "finite and >= 0"),
    "b1": (unit_open, "in [0, 1)"),
    "b2": (unit_open, "in [0, 1)"),
    "decay": (unit_open, "in [0, 1)"),
    "rho": (unit_closed, "in [0, 1]"),
    "momentum": (unit_closed, "in [0, 1]"),
    "dampening": (unit_closed, "in [0, 1]"),
    "eps": (nonnegative, "finite and >= 0"),
    "weight_decay": (nonnegative, "finite and >= 0"),
    "lr_decay": (nonnegative, "finite and >= 0"),
    "initial_accumulator_value": (nonnegative, "finite and >= 0"),
    "hyper_lr": (nonnegative, "finite and >= 0"),
    "factor": (lambda x: (x > 0) & (x < 1), "in (0, 1)"),
    "threshold": (nonnegative, "finite and >= 0"),
    "min_scale": (unit_closed, "in [0, 1]"),
    # The learning-rate-free methods.
    "b3": (unit_open, "in [0, 1)"),
    "d0": (positive, "finite and > 0"),
    "d_coef": (positive, "finite and > 0"),
    "growth_rate": (lambda x: x >= 1, "inf or finite and >= 1"),
    "r": (nonnegative, "finite and >= 0"),
    "weight_lr_power": (nonnegative, "finite and >= 0"),
    "reps_rel": (positive, "finite and > 0"),
    "init_eta": (positive, "finite and > 0"),
}

# Hyperparameters for which +inf is a value (no limit): held as inf in the state.
UNBOUNDED = frozenset({"growth_rate"})

# Decay rates near 1 enter the formulas as 1 − rate too. 1 − float32(0.999) keeps only
# ~4 significant digits of 1 − 0.999; torch computes 1 − rate from the Python float, in
# float64. lrjax holds, beside such a rate, the rounding error of its float32 value, so
# that 1 − rate is recovered to full precision from the one value the state names.
COMPLEMENTED = frozenset({"b1", "b2", "decay", "rho"})
ROUNDING = "_rounding"


def check_hyperparam(owner: str, name: str, value: Any) -> Any:
    """A float hyperparameter checked against the rule of its name; returns it as
    :func:`lrjax._validation.check_float` does."""
    condition, requirement = HYPERPARAM_RULES[name]
    if name in UNBOUNDED and _is_plus_inf(value):
        return value if isinstance(value, jax.Array) else float("inf")
    return check_float(owner, name, value, condition, requirement)


def _is_plus_inf(value: Any) -> bool:
    if isinstance(value, Default):
        value = value.value
    if isinstance(value, jax.Array):  # optax.inject_hyperparams passes its values as arrays
        return value.ndim == 0 and is_concrete(value) and bool(jnp.isposinf(value))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating)):
        return False
    return bool(np.isposinf(value))


def is_held(value: Any) -> bool:
    """A (checked) Python number is held in the state; a JAX array or tracer is used as
    given; a schedule is evaluated at each step."""
    return not isinstance(value, jax.Array) and not callable(value)


def is_zero(value: Any) -> bool:
    """A held number equal to zero: the block it controls can be left out of the program.

    Only held numbers decide structure, so that ``init`` and ``update`` agree even when
    ``inject_hyperparams`` passes arrays (concrete at init, traced under jit at update).
    """
    return is_held(value) and value == 0


class HyperparamsState(NamedTuple):
    """The float hyperparameters a transformation holds.

    ``values`` maps each name given as a number to its value; :func:`lrjax.set_hyperparams`
    and ``optax.tree.set`` change it. ``rounding`` holds, for the decay rates (β1, β2, α,
    ρ), ``value − float(value)`` under the key ``"<name>_rounding"``: the part of the
    number the state's float dtype could not hold, so that ``1 − value`` is exact.
    ``scheduled`` maps each name given as a schedule to the value the most recent update
    used (before any update: the first update's); it is recomputed at every update, so
    it is not settable.
    """

    values: dict[str, jax.Array]
    rounding: dict[str, jax.Array]
    scheduled: dict[str, jax.Array]


def _rounding(value: Any, dtype: Any) -> jax.Array:
    exact = np.float64(value)
    return jnp.asarray(exact - np.float64(np.asarray(exact, dtype)), dtype)


def held_state(values: dict[str, Any]) -> HyperparamsState:
    """The state of held values: fresh float arrays, one buffer each (donating the state
    needs distinct buffers)."""
    dtype = default_float()
    return HyperparamsState(
        values={name: jnp.asarray(value, dtype) for name, value in values.items()},
        rounding={
            name + ROUNDING: _rounding(value, dtype)
            for name, value in values.items()
            if name in COMPLEMENTED
        },
        scheduled={},
    )


def check_schedule(owner: str, name: str, schedule: Any) -> Any:
    """A schedule ``step -> value`` for a hyperparameter: it must map an int32 step to a
    real scalar (traced once, abstractly; nothing is computed)."""
    try:
        out = jax.eval_shape(schedule, jax.ShapeDtypeStruct((), jnp.int32))
    except Exception as error:
        raise ValueError(
            f"{owner}: {name} is a callable, so it must be a schedule step -> value; "
            f"calling it on a step failed with {type(error).__name__}: {error}"
        ) from None
    leaves = jax.tree.leaves(out)
    real = len(leaves) == 1 and (
        jnp.issubdtype(leaves[0].dtype, jnp.floating)
        or jnp.issubdtype(leaves[0].dtype, jnp.integer)
    )
    if not real or leaves[0].shape != ():
        raise ValueError(
            f"{owner}: {name} is a callable, so it must be a schedule step -> real scalar, "
            f"got {show(schedule)} returning {out}"
        )
    return schedule


def check_hyperparams(owner: str, **values: Any) -> dict[str, Any]:
    """Checks a transformation's float hyperparameters by the rules of their names; any of
    them may also be a schedule (whose values its own constructor checked)."""
    return {
        name: check_schedule(owner, name, value)
        if callable(value)
        else check_hyperparam(owner, name, value)
        for name, value in values.items()
    }


class Hyperparams:
    """A transformation's (checked) float hyperparameters: numbers held in the state,
    arrays used as given, schedules evaluated at the step."""

    def __init__(self, **values: Any):
        self.scheduled = {name: value for name, value in values.items() if callable(value)}
        values = {name: value for name, value in values.items() if name not in self.scheduled}
        self.held = {name: value for name, value in values.items() if is_held(value)}
        self.given = {name: value for name, value in values.items() if not is_held(value)}

    @property
    def reads_step(self) -> bool:
        """Whether a value is scheduled, so that ``read`` needs the step count."""
        return bool(self.scheduled)

    def _evaluate(self, count: jax.Array) -> dict[str, jax.Array]:
        return {name: fresh(f(count), default_float()) for name, f in self.scheduled.items()}

    def init(self) -> HyperparamsState:
        state = held_state(self.held)
        return state._replace(scheduled=self._evaluate(jnp.zeros([], jnp.int32)))

    def read(self, state: HyperparamsState, count: Any) -> Values:
        """The values the update after ``count`` updates uses; ``.state`` records them.
        ``count`` may be anything (no counter) where nothing is scheduled (``reads_step``
        is false)."""
        if self.scheduled:
            state = state._replace(scheduled=self._evaluate(count))
        return Values(state, self.given)


class Values:
    """The hyperparameters of one update: ``value(name)`` and ``complement(name)``."""

    def __init__(self, state: HyperparamsState, given: dict[str, Any]):
        self.state, self.given = state, given

    def value(self, name: str) -> jax.Array:
        if name in self.state.values:  # optax.tree.set may have put a Python number here
            return jnp.asarray(self.state.values[name])
        if name in self.state.scheduled:
            return jnp.asarray(self.state.scheduled[name])
        return jnp.asarray(self.given[name])

    def get(self, name: str, default: Any) -> Any:
        """The value of ``name``, or ``default`` where the transformation has none."""
        if name in self.state.values or name in self.state.scheduled or name in self.given:
            return self.value(name)
        return default

    def complement(self, name: str) -> jax.Array:
        """``1 − value``, to full precision when the value is held."""
        value = self.value(name)
        rounding = self.state.rounding.get(name + ROUNDING)
        if rounding is None:
            return 1 - value
        # 1 − value is exact in floating point for value in [0.5, 1] (Sterbenz).
        return (1 - value) - rounding.astype(value.dtype)


def set_held(state: HyperparamsState, values: dict[str, Any], found: set[str]) -> HyperparamsState:
    """``state`` with new held values (each keeps its dtype and shape); the names found
    are added to ``found``."""
    new_values, new_rounding = dict(state.values), dict(state.rounding)
    for name, value in values.items():
        if name not in state.values:
            continue
        old = state.values[name]
        new_values[name] = jnp.array(jnp.broadcast_to(jnp.asarray(value, old.dtype), old.shape))
        if name + ROUNDING in state.rounding:
            new_rounding[name + ROUNDING] = jnp.broadcast_to(_rounding(value, old.dtype), old.shape)
        found.add(name)
    return HyperparamsState(new_values, new_rounding, state.scheduled)


def may_be_zero(eps: Any) -> bool:
    """Whether a (checked) ε may be 0, so that a zero gradient meets 0/0.

    torch returns NaN there; lrjax takes the limit ε → 0, a zero step (m = 0 wherever the
    denominator is 0). Only then does the step carry the guard.
    """
    return not is_held(eps) or eps == 0


class ScaledSchedule:
    """``factor × schedule(step)``: a group's share of a scheduled rate (layer-wise decay,
    μP)."""

    def __init__(self, schedule: Callable[[Any], Any], factor: Any):
        self.schedule, self.factor = schedule, factor

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        value = jnp.asarray(self.schedule(step))
        return value * jnp.asarray(self.factor).astype(value.dtype)

    def __repr__(self) -> str:
        return f"{self.factor!r} * {self.schedule!r}"
