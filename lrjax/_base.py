"""What every lrjax transformation shares.

* validation of concrete arguments (``ValueError`` naming function, argument, value);
* float hyperparameters held in the optimizer state, so that optimizers which differ
  only in those values lower to the same program;
* state leaves created with the sharding of the parameters they mirror;
* the two blocks most methods end with: coupled weight decay and the learning rate.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
ScalarOrSchedule = float | jax.Array | Schedule


# --------------------------------------------------------------------------- validation


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is known now (a number or an array), not a tracer."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def check(
    owner: str,
    name: str,
    value: Any,
    condition: Callable[[np.ndarray], Any],
    requirement: str,
) -> None:
    """Raises ``ValueError("owner: name must be requirement, got value")`` if a concrete
    ``value`` fails ``condition``. Tracers are not checked: their value is unknown here."""
    if not is_concrete(value):
        return
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
    with np.errstate(invalid="ignore"):
        ok = np.all(condition(array))
    if not ok:
        raise ValueError(f"{owner}: {name} must be {requirement}, got {_show(value)}")


def check_integer(owner: str, name: str, value: Any, minimum: int) -> int:
    """Returns ``value`` as a Python int, or raises ``ValueError`` unless it is a concrete
    integer ``>= minimum`` (step counts, milestones, periods are structural)."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{owner}: {name} must be a concrete integer >= {minimum}, got {_show(value)}"
        ) from None
    if number < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {number}")
    return number


def check_choice(owner: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, (str, bool)) or value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{owner}: {name} must be one of {options}, got {value!r}")


def _show(value: Any) -> str:
    if isinstance(value, jax.core.Tracer):
        return f"a traced {value.dtype}{list(value.shape)}"
    if isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 0:
        return repr(np.asarray(value).item())
    return repr(value)


def _nonnegative(v: np.ndarray) -> Any:
    return np.isfinite(v) & (v >= 0)


def _unit_open(v: np.ndarray) -> Any:
    return (v >= 0) & (v < 1)


def _unit_closed(v: np.ndarray) -> Any:
    return (v >= 0) & (v <= 1)


# One rule per hyperparameter name: a name means the same thing in every lrjax method,
# and `set_hyperparams` checks new values with the rule their constructor used.
HYPERPARAM_RULES: dict[str, tuple[Callable[[np.ndarray], Any], str]] = {
    "learning_rate": (_nonnegative, "finite and >= 0"),
    "b1": (_unit_open, "in [0, 1)"),
    "b2": (_unit_open, "in [0, 1)"),
    "decay": (_unit_open, "in [0, 1)"),
    "rho": (_unit_closed, "in [0, 1]"),
    "momentum": (_unit_closed, "in [0, 1]"),
    "dampening": (_unit_closed, "in [0, 1]"),
    "eps": (_nonnegative, "finite and >= 0"),
    "weight_decay": (_nonnegative, "finite and >= 0"),
    "lr_decay": (_nonnegative, "finite and >= 0"),
    "initial_accumulator_value": (_nonnegative, "finite and >= 0"),
    "hyper_lr": (_nonnegative, "finite and >= 0"),
    "factor": (lambda v: (v > 0) & (v < 1), "in (0, 1)"),
    "threshold": (_nonnegative, "finite and >= 0"),
    "min_scale": (_unit_closed, "in [0, 1]"),
}


def check_hyperparam(owner: str, name: str, value: Any) -> None:
    """Checks a float hyperparameter against the rule for its name."""
    condition, requirement = HYPERPARAM_RULES[name]
    check(owner, name, value, condition, requirement)


def check_hyperparams(owner: str, **values: Any) -> None:
    """Checks a method's float hyperparameters; a schedule is checked by its constructor."""
    for name, value in values.items():
        if not callable(value):
            check_hyperparam(owner, name, value)


# ------------------------------------------------------------------- hyperparameters


def default_float() -> np.dtype:
    """float32, or float64 when ``jax_enable_x64`` is on."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype arithmetic runs in: at least float32, so bf16 rounds once, at the end."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def is_held(value: Any) -> bool:
    """A Python or NumPy number is held in the state; a JAX array or tracer is used as given.

    ``optax.inject_hyperparams``, ``jax.vmap`` and arguments of a jitted function all
    pass JAX arrays, and expect the transformation to use exactly the value passed.
    """
    return not isinstance(value, jax.Array)


def is_zero(value: Any) -> bool:
    """A held number equal to zero: the block it controls can be left out of the program.

    Only held numbers decide structure, so that ``init`` and ``update`` agree even when
    ``inject_hyperparams`` passes arrays (concrete at init, traced under jit at update).
    """
    return is_held(value) and bool(np.all(np.asarray(value) == 0))


# Decay rates near 1 enter the formulas as 1 − rate too. In float32, 1 − float32(0.999)
# keeps only ~3 significant digits; torch computes 1 − rate from the Python float, in
# float64. lrjax holds 1 − rate beside the rate, rounded once from float64, so the running
# averages weigh new values exactly as torch's do.
COMPLEMENTED = frozenset({"b1", "b2", "decay", "rho"})


class HyperparamsState(NamedTuple):
    """The float hyperparameters of one transformation, as its last update used them.

    ``held`` are the values the constructor received as Python or NumPy numbers: the
    state owns them and :func:`lrjax.set_hyperparams` changes them. ``given`` are the
    values it received as JAX arrays or tracers (from ``optax.inject_hyperparams``,
    ``jax.vmap`` or a jitted function's arguments): the caller drives them and the state
    records them, so that introspection sees every value. ``complements`` holds
    ``1 − value`` of held decay rates (β1, β2, α, ρ), rounded once from float64.
    """

    held: dict[str, jax.Array]
    given: dict[str, jax.Array]
    complements: dict[str, jax.Array]

    def value(self, name: str) -> jax.Array:
        return self.held[name] if name in self.held else self.given[name]

    def complement(self, name: str) -> jax.Array:
        """``1 − value``, to full precision when the value is held."""
        if name in self.complements:
            return self.complements[name]
        return 1 - self.value(name)

    def as_dict(self) -> dict[str, jax.Array]:
        return {**self.given, **self.held}


def complement_of(value: Any, dtype: Any) -> jax.Array:
    """``1 − value`` in ``dtype``, computed in float64 when the value is concrete."""
    if is_concrete(value):
        return jnp.asarray(1 - np.asarray(value, np.float64), dtype)
    return 1 - jnp.asarray(value).astype(dtype)


class Hyperparams:
    """Splits a transformation's float hyperparameters into held and given values."""

    def __init__(self, owner: str, **values: Any):
        for name, value in values.items():
            check_hyperparam(owner, name, value)
        self.held = {name: value for name, value in values.items() if is_held(value)}
        self.given = {name: value for name, value in values.items() if not is_held(value)}

    def init(self) -> HyperparamsState:
        """Fresh float arrays, one buffer each (donating the state needs distinct buffers)."""
        dtype = default_float()
        held = {name: jnp.asarray(value, dtype=dtype) for name, value in self.held.items()}
        complements = {
            name: complement_of(value, dtype)
            for name, value in self.held.items()
            if name in COMPLEMENTED
        }
        return HyperparamsState(held=held, given=self._record(), complements=complements)

    def update(self, state: HyperparamsState) -> HyperparamsState:
        """The hyperparameters this update uses: held ones from the state, given ones
        from the constructor, recorded in the returned state."""
        return state._replace(given=self._record())

    def _record(self) -> dict[str, jax.Array]:
        return {name: fresh(value, default_float()) for name, value in self.given.items()}


def cast(value: Any, dtype: Any) -> jax.Array:
    """A hyperparameter in the dtype of the arithmetic it enters."""
    return jnp.asarray(value).astype(dtype)


# ------------------------------------------------------------------------- state


def full_like(tree: Any, value: Any = 0, dtype: Any = None) -> Any:
    """A tree of arrays like ``tree`` filled with ``value``, each with its leaf's sharding.

    ``jnp.zeros_like`` under ``jax.jit`` has no data dependence on the parameter, so the
    partitioner is free to put it on one device (optax's state does that when ``init`` is
    jitted). Selecting against the parameter ties the result's sharding to it; XLA folds
    the select away, so nothing is read.
    """

    def fill(leaf: jax.Array) -> jax.Array:
        leaf_dtype = dtype or jnp.asarray(leaf).dtype
        return jnp.where(True, jnp.asarray(value).astype(leaf_dtype), leaf).astype(leaf_dtype)

    return jax.tree.map(fill, tree)


def zeros_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of wrapping."""
    return jnp.asarray(optax.safe_increment(count))


def unzip(like: Any, tree: Any, n: int) -> tuple[Any, ...]:
    """Splits a tree of n-tuples (a per-leaf step's results) into n trees like ``like``."""
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tree)


def cast_like(tree: Any, like: Any) -> Any:
    """``tree`` with each leaf in the dtype of the matching leaf of ``like``."""
    return jax.tree.map(lambda x, y: x.astype(y.dtype), tree, like)


def fresh(value: Any, dtype: Any) -> jax.Array:
    """A copy in ``dtype``: a state leaf never shares its buffer with another leaf."""
    return jnp.array(value, dtype=dtype, copy=True)


# ------------------------------------------------------------------- weight decay


class AddDecayedWeightsState(NamedTuple):
    """State of :func:`add_decayed_weights`."""

    hyperparams: HyperparamsState


def add_decayed_weights(
    weight_decay: float | jax.Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Adds ``weight_decay * params`` to the updates (L2 regularisation).

    .. math:: u \\leftarrow u + \\lambda \\theta

    Before a direction it is torch's coupled ``weight_decay`` of ``SGD``, ``Adagrad``,
    ``Adadelta``, ``RMSprop`` and ``Adam``; between the direction and the learning rate it
    is ``AdamW``'s decoupled decay, ``θ ← θ − η(d + λθ)``. Unlike
    ``optax.add_decayed_weights`` the coefficient lives in the state, where
    :func:`lrjax.set_hyperparams` can change it.

    Args:
      weight_decay: the coefficient λ >= 0.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params``.
    """
    hyperparams = Hyperparams("add_decayed_weights", weight_decay=weight_decay)

    def init_fn(params: optax.Params) -> AddDecayedWeightsState:
        del params
        return AddDecayedWeightsState(hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("add_decayed_weights: update needs params, got params=None")
        hp = hyperparams.update(state.hyperparams)

        def add(u: jax.Array, p: jax.Array) -> jax.Array:
            dtype = compute_dtype(u.dtype)
            decay = cast(hp.value("weight_decay"), dtype)
            return (u.astype(dtype) + decay * p.astype(dtype)).astype(u.dtype)

        return jax.tree.map(add, updates, params), AddDecayedWeightsState(hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ------------------------------------------------------------------ learning rate


class ScaleByLearningRateState(NamedTuple):
    """State of :func:`scale_by_learning_rate` with a constant rate.

    A rate given as a number is ``hyperparams.held["learning_rate"]`` (settable); one
    given as a JAX array is recorded in ``hyperparams.given``.
    """

    count: jax.Array
    hyperparams: HyperparamsState

    def learning_rate_factor(self) -> jax.Array:
        return self.hyperparams.value("learning_rate")


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_learning_rate` with a schedule.

    ``learning_rate`` records the rate the most recent update applied (before any
    update: the rate the first update will apply).
    """

    count: jax.Array
    learning_rate: jax.Array

    def learning_rate_factor(self) -> jax.Array:
        return self.learning_rate


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule,
) -> optax.GradientTransformationExtraArgs:
    """Multiplies the updates by ``-learning_rate``: the step of gradient descent.

    .. math:: u \\leftarrow -\\eta_t\\, u, \\qquad \\eta_t = \\text{schedule}(t)

    where ``t`` counts the updates done before this one, so the first update uses
    ``schedule(0)``.

    Args:
      learning_rate: a number (held in the state, settable with
        :func:`lrjax.set_hyperparams`), a JAX array (used as given, as ``jax.vmap`` and
        ``optax.inject_hyperparams`` pass it) or a schedule ``step -> rate``.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.scale_by_learning_rate(0.1)
      >>> updates, state = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> updates
      Array([-0.1, -0.1], dtype=float32)
    """
    if callable(learning_rate):
        return _scale_by_schedule(learning_rate)
    hyperparams = Hyperparams("scale_by_learning_rate", learning_rate=learning_rate)

    def init_fn(params: optax.Params) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(count=zeros_count(), hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.update(state.hyperparams)
        updates = _scale(updates, hp.value("learning_rate"))
        return updates, ScaleByLearningRateState(increment(state.count), hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scale_by_schedule(schedule: Schedule) -> optax.GradientTransformationExtraArgs:
    def rate(count: jax.Array) -> jax.Array:
        return fresh(schedule(count), default_float())

    def init_fn(params: optax.Params) -> ScaleByScheduleState:
        del params
        count = zeros_count()
        return ScaleByScheduleState(count=count, learning_rate=rate(count))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        learning_rate = rate(state.count)
        updates = _scale(updates, learning_rate)
        return updates, ScaleByScheduleState(increment(state.count), learning_rate)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scale(updates: optax.Updates, learning_rate: jax.Array) -> optax.Updates:
    return scale_tree(updates, -jnp.asarray(learning_rate))


def scale_tree(updates: optax.Updates, factor: jax.Array) -> optax.Updates:
    """``factor × updates``, computed in float32 or wider and returned in each leaf's dtype.

    ``factor`` is computed once by the caller: scalar work inside a per-leaf function is
    traced and compiled once per leaf, which slows compilation for many-leaf models.
    """

    def scale(u: jax.Array) -> jax.Array:
        dtype = compute_dtype(u.dtype)
        return (u.astype(dtype) * cast(factor, dtype)).astype(u.dtype)

    return jax.tree.map(scale, updates)
