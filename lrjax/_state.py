"""Optimizer state: float hyperparameters held in it, and per-parameter arrays.

* Float hyperparameters given as numbers are held in the state, so optimizers that
  differ only in those values lower to the same program and
  :func:`lrjax.set_hyperparams` changes them without a retrace. Values given as JAX
  arrays or tracers (``optax.inject_hyperparams``, ``jax.vmap``, a jitted function's
  arguments) are used as given and not copied into the state.
* Per-parameter arrays are created with the sharding of the parameters they mirror.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _validation as v

# ------------------------------------------------------------------- hyperparameters

# One rule per hyperparameter name: a name means the same thing in every lrjax method,
# and `set_hyperparams` checks new values with the rule their constructor used.
HYPERPARAM_RULES: dict[str, tuple[v.Condition, str]] = {
    "learning_rate": (v.nonnegative, "finite and >= 0"),
    "b1": (v.unit_open, "in [0, 1)"),
    "b2": (v.unit_open, "in [0, 1)"),
    "decay": (v.unit_open, "in [0, 1)"),
    "rho": (v.unit_closed, "in [0, 1]"),
    "momentum": (v.unit_closed, "in [0, 1]"),
    "dampening": (v.unit_closed, "in [0, 1]"),
    "eps": (v.nonnegative, "finite and >= 0"),
    "weight_decay": (v.nonnegative, "finite and >= 0"),
    "lr_decay": (v.nonnegative, "finite and >= 0"),
    "initial_accumulator_value": (v.nonnegative, "finite and >= 0"),
    "hyper_lr": (v.nonnegative, "finite and >= 0"),
    "factor": (lambda x: (x > 0) & (x < 1), "in (0, 1)"),
    "threshold": (v.nonnegative, "finite and >= 0"),
    "min_scale": (v.unit_closed, "in [0, 1]"),
    # The learning-rate-free methods (SPEC §9).
    "b3": (v.unit_open, "in [0, 1)"),
    "d0": (v.positive, "finite and > 0"),
    "d_coef": (v.positive, "finite and > 0"),
    "growth_rate": (lambda x: x >= 1, "inf or finite and >= 1"),
    "r": (v.nonnegative, "finite and >= 0"),
    "weight_lr_power": (v.nonnegative, "finite and >= 0"),
    "reps_rel": (v.positive, "finite and > 0"),
    "init_eta": (v.positive, "finite and > 0"),
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
    return v.check_float(owner, name, value, condition, requirement)


def _is_plus_inf(value: Any) -> bool:
    if isinstance(value, v.Default):
        value = value.value
    if isinstance(value, jax.Array):  # optax.inject_hyperparams passes its values as arrays
        return value.ndim == 0 and v.is_concrete(value) and bool(jnp.isposinf(value))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating)):
        return False
    return bool(np.isposinf(value))


def default_float() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype arithmetic runs in: at least float32, so bf16 rounds once, at the end."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def estimate_dtype(tree: Any) -> np.dtype:
    """The dtype of a method's scalar estimates (a learned step size and its sums):
    float32, or the widest parameter dtype above it."""
    dtypes = [compute_dtype(jnp.result_type(leaf)) for leaf in jax.tree.leaves(tree)]
    return max(dtypes, key=lambda d: d.itemsize, default=np.dtype(np.float32))


def python_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``max(a, b)``, as the reference packages evaluate it: ``a`` unless
    ``b > a``, so a NaN ``b`` is ignored."""
    return jnp.where(b > a, b, a)


def python_min(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``min(a, b)``: ``a`` unless ``b < a``."""
    return jnp.where(b < a, b, a)


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
            f"got {schedule!r} returning {out}"
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

    def _evaluate(self, count: jax.Array) -> dict[str, jax.Array]:
        return {name: fresh(f(count), default_float()) for name, f in self.scheduled.items()}

    def init(self) -> HyperparamsState:
        state = held_state(self.held)
        return state._replace(scheduled=self._evaluate(jnp.zeros([], jnp.int32)))

    def read(self, state: HyperparamsState, count: jax.Array) -> Values:
        """The values the update after ``count`` updates uses; ``.state`` records them."""
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


def safe_divide(numerator: jax.Array, denominator: jax.Array, guard: bool) -> jax.Array:
    """``numerator / denominator``, and 0 where the denominator is 0 when ``guard``."""
    if not guard:
        return numerator / denominator
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1), 0)


def cast(value: Any, dtype: Any) -> jax.Array:
    """A hyperparameter in the dtype of the arithmetic it enters."""
    return jnp.asarray(value).astype(dtype)


# ------------------------------------------------------------------------- state


def state_dtype(dtype: Any) -> np.dtype:
    """The dtype of a per-parameter state array for a parameter of ``dtype``.

    float16 (whose smallest number is 6e-8, so g² of a gradient below 2.4e-4 is 0) is
    kept in float32; every other float dtype as is. torch and optax store float16 moments
    in float16, where Adam's v underflows and the step blows up.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def full_like(tree: Any, value: Any = 0) -> Any:
    """A tree of arrays like ``tree`` filled with ``value``, each with its leaf's sharding.

    ``jnp.zeros_like`` under ``jax.jit`` has no data dependence on the parameter, so the
    partitioner is free to put it on one device (optax's state does that when ``init`` is
    jitted). Selecting against the parameter ties the result's sharding to it; XLA folds
    the select away, so nothing is read.
    """

    def fill(leaf: Any) -> jax.Array:
        leaf = jnp.asarray(leaf)
        dtype = state_dtype(leaf.dtype)
        filled = jnp.where(True, jnp.asarray(value).astype(dtype), leaf.astype(dtype))
        return filled.astype(dtype)

    return jax.tree.map(fill, tree)


def check_params(owner: str, params: Any) -> None:
    """Parameters must be floating point, real or complex (Python floats count as float32)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = jnp.result_type(leaf)
        if jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating):
            continue
        where = jax.tree_util.keystr(path) or "the parameter"
        raise ValueError(
            f"{owner}: parameters must be floating-point arrays, got {dtype} at {where}; "
            "gradient descent on integers would round every step away: cast them to a "
            "float dtype to train them"
        )


def _is_complex(leaf: jax.Array) -> bool:
    return bool(jnp.issubdtype(leaf.dtype, jnp.complexfloating))


def as_real(tree: Any) -> Any:
    """Complex leaves as real arrays with a trailing axis (real, imaginary)."""
    return jax.tree.map(
        lambda x: jnp.stack([x.real, x.imag], axis=-1) if _is_complex(x) else x, tree
    )


def as_complex_like(tree: Any, like: Any) -> Any:
    """The inverse of :func:`as_real` for the leaves that are complex in ``like``."""
    return jax.tree.map(
        lambda x, y: jax.lax.complex(x[..., 0], x[..., 1]).astype(y.dtype) if _is_complex(y) else x,
        tree,
        like,
    )


def as_arrays(tree: Any) -> Any:
    """``tree`` with Python-number leaves made arrays (optax accepts float leaves)."""
    return jax.tree.map(jnp.asarray, tree)


def zeros_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping."""
    return jnp.asarray(optax.safe_increment(count))


def unzip(like: Any, tree: Any, n: int) -> tuple[Any, ...]:
    """Splits a tree of n-tuples (a per-leaf step's results) into n trees like ``like``."""
    if not jax.tree.leaves(like):
        return (like,) * n
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tree)


def cast_like(tree: Any, like: Any) -> Any:
    """``tree`` with each leaf in the dtype of the matching leaf of ``like``."""
    return optax.tree.cast_like(tree, like)


def fresh(value: Any, dtype: Any) -> jax.Array:
    """A copy in ``dtype``: a state leaf never shares its buffer with another leaf."""
    return jnp.array(value, dtype=dtype, copy=True)
