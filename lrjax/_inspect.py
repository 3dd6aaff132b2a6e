"""Seeing and changing the learning rate of a running optimizer.

The functions here read any optimizer state: an lrjax method, a hand-made
``optax.chain`` of lrjax blocks, and either one wrapped in ``optax.inject_hyperparams``,
``optax.MultiSteps`` or other optax wrappers. They find lrjax's states by what they
offer: ``learning_rate_factor()`` (a global factor of the rate: the rate itself, a
plateau scale, a hypergradient rate), ``preconditioner()`` (a per-parameter factor of
an adaptive direction) and a ``hyperparams`` field of type ``HyperparamsState``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax import _base

_LEARNING_RATE_STATES = (_base.ScaleByLearningRateState, _base.ScaleByScheduleState)


def _find(tree: Any, match: Callable[[Any], bool]) -> list[Any]:
    """The nodes of ``tree`` for which ``match`` holds (not looking inside them)."""
    found: list[Any] = []

    def visit(node: Any) -> bool:
        if match(node):
            found.append(node)
            return True
        return False

    jax.tree_util.tree_flatten(tree, is_leaf=visit)
    return found


def _is_inject(node: Any) -> bool:
    return isinstance(node, optax.InjectStatefulHyperparamsState)


def _has_factor(node: Any) -> bool:
    return callable(getattr(node, "learning_rate_factor", None)) and hasattr(node, "_fields")


def _has_preconditioner(node: Any) -> bool:
    return callable(getattr(node, "preconditioner", None)) and hasattr(node, "_fields")


def _factors(opt_state: Any) -> list[jax.Array]:
    """Every global factor of the rate: lrjax's own, and the ``learning_rate`` that
    ``optax.inject_hyperparams`` feeds an optax (not lrjax) rate."""
    factors = []
    for node in _find(opt_state, lambda n: _has_factor(n) or _is_inject(n)):
        if not _is_inject(node):
            factors.append(node.learning_rate_factor())
            continue
        inner = _factors(node.inner_state)
        owns_rate = _find(node.inner_state, lambda n: isinstance(n, _LEARNING_RATE_STATES))
        if "learning_rate" in node.hyperparams and not owns_rate:
            inner.append(node.hyperparams["learning_rate"])
        factors.extend(inner)
    return factors


def current_learning_rate(opt_state: Any) -> jax.Array:
    """The global learning rate the most recent update applied.

    Before any update it is the rate the first update will apply. It is the product of
    every learning-rate factor in the state: the rate (constant or schedule value) ×
    a plateau scale × a hypergradient rate, wherever they sit in ``optax.chain``,
    ``optax.inject_hyperparams`` or ``optax.MultiSteps``. After
    :func:`set_hyperparams` it is the new value. For a state built under ``jax.vmap``
    over rates, it has the batch's shape.

    Args:
      opt_state: the state of an lrjax method or of a chain containing lrjax blocks.

    Returns:
      A float array (a scalar unless the state is batched).

    Raises:
      ValueError: when the state holds no learning rate.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adam(lrjax.schedules.cosine_decay(1e-3, 100))
      >>> state = tx.init(jnp.zeros(3))
      >>> float(lrjax.current_learning_rate(state))
      0.001
    """
    factors = _factors(opt_state)
    if not factors:
        raise ValueError(
            "current_learning_rate: opt_state holds no learning rate (no lrjax "
            "scale_by_learning_rate, reduce_on_plateau or hypergradient state, and no "
            "learning_rate injected by optax.inject_hyperparams)"
        )
    return functools.reduce(jnp.multiply, [jnp.asarray(f) for f in factors])


def effective_learning_rates(opt_state: Any, params: optax.Params | None = None) -> Any:
    """The per-parameter step size each parameter's (momentum) gradient receives.

    The global rate (:func:`current_learning_rate`) times the per-parameter factor of
    every adaptive direction in the state, from the state as the most recent update
    left it:

    * Adam: ``(η/(1 − β1^t)) / (√(v/(1 − β2^t)) + ε)`` (AMSGrad: ``max v``);
    * Adagrad: ``η / ((√G + ε)(1 + (t−1)·lr_decay))``;
    * RMSprop: ``η / (√E[g²] + ε)`` (centered: ``√(E[g²] − E[g]²)``);
    * Adadelta: ``η √(E[Δx²] + ε) / √(E[g²] + ε)``;
    * SGD, with or without momentum: ``η`` everywhere.

    Args:
      opt_state: the optimizer state.
      params: only needed when the state keeps no per-parameter arrays (plain SGD):
        gives the tree's structure and shapes.

    Returns:
      A pytree like the parameters.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adagrad(0.1)
      >>> params = jnp.zeros(2)
      >>> _, state = tx.update(jnp.array([1.0, 0.1]), tx.init(params))
      >>> lrjax.effective_learning_rates(state)  # large gradient, smaller rate
      Array([0.1, 1. ], dtype=float32)
    """
    rate = current_learning_rate(opt_state)
    factors = [node.preconditioner() for node in _find(opt_state, _has_preconditioner)]
    if not factors:
        if params is None:
            raise ValueError(
                "effective_learning_rates: opt_state keeps no per-parameter arrays (plain "
                "SGD); pass params= to get the rate in the parameters' shape"
            )
        return jax.tree.map(lambda p: jnp.full(jnp.shape(p), rate, jnp.result_type(rate)), params)
    product = functools.reduce(lambda a, b: jax.tree.map(jnp.multiply, a, b), factors)
    return jax.tree.map(lambda f: f * rate.astype(f.dtype), product)


def set_hyperparams(opt_state: Any, **values: Any) -> Any:
    """Returns ``opt_state`` with new hyperparameter values, without retracing.

    The new values keep the old ones' dtype and shape, so the same jitted step runs
    them with no recompilation: the JAX counterpart of torch's
    ``optimizer.param_groups[0]["lr"] = ...``. Every place in the state that holds a
    value of that name is set (inside ``optax.chain``, ``optax.MultiSteps``, and the
    ``hyperparams`` of ``optax.inject_hyperparams``).

    Args:
      opt_state: the optimizer state.
      **values: new values, e.g. ``learning_rate=3e-4, b2=0.98``; each is checked with
        the rule of the constructor that took it.

    Returns:
      A new state; ``opt_state`` is unchanged.

    Raises:
      ValueError: for a value the rule rejects, a name nothing in the state holds, or a
        learning rate a schedule drives (change the schedule instead).

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> state = lrjax.sgd(0.1).init(jnp.zeros(2))
      >>> state = lrjax.set_hyperparams(state, learning_rate=0.01)
      >>> float(lrjax.current_learning_rate(state))
      0.01
    """
    for name, value in values.items():
        if name in _base.HYPERPARAM_RULES:
            _base.check_hyperparam("set_hyperparams", name, value)
    found: set[str] = set()
    given: set[str] = set()

    def is_holder(node: Any) -> bool:
        return isinstance(getattr(node, "hyperparams", None), (dict, _base.HyperparamsState))

    def replace(node: Any) -> Any:
        if not is_holder(node):
            return node
        fields = {f: walk(getattr(node, f)) for f in node._fields if f != "hyperparams"}
        held = node.hyperparams
        if isinstance(held, _base.HyperparamsState):
            given.update(name for name in values if name in held.given)
            complements = {
                name: _base.complement_of(value, held.complements[name].dtype)
                for name, value in values.items()
                if name in held.complements
            }
            held = held._replace(
                held=_set(held.held, values, found),
                # A given value is driven from outside (by an enclosing inject_hyperparams
                # that this call also sets); update the record so introspection agrees.
                given=_set(held.given, values, set()),
                complements=_set(held.complements, complements, set()),
            )
        else:  # optax.inject_hyperparams: its scheduled values are recomputed every step
            scheduled = getattr(node, "hyperparams_states", {})
            settable = {k: v for k, v in held.items() if k not in scheduled}
            held = {**held, **_set(settable, values, found)}
        return node._replace(hyperparams=held, **fields)

    def walk(tree: Any) -> Any:
        return jax.tree.map(replace, tree, is_leaf=is_holder)

    new_state = walk(opt_state)
    for name in values:
        if name not in found:
            raise ValueError(_not_settable(opt_state, name, name in given))
    return new_state


def _set(held: dict[str, jax.Array], values: dict[str, Any], found: set[str]) -> dict:
    new = dict(held)
    for name, value in values.items():
        if name in held:
            old = held[name]
            new[name] = jnp.array(jnp.broadcast_to(jnp.asarray(value, old.dtype), old.shape))
            found.add(name)
    return new


def _not_settable(opt_state: Any, name: str, given: bool) -> str:
    scheduled = _find(opt_state, lambda n: isinstance(n, _base.ScaleByScheduleState))
    injected = _find(opt_state, _is_inject)
    if name == "learning_rate" and scheduled:
        return (
            "set_hyperparams: learning_rate is driven by a schedule in this state; "
            "build the optimizer with another schedule, or with a number to set it"
        )
    if any(name in getattr(node, "hyperparams_states", {}) for node in injected):
        return f"set_hyperparams: {name} is scheduled by optax.inject_hyperparams"
    if given:
        return (
            f"set_hyperparams: {name} was passed to the optimizer as a JAX array, which it "
            "uses as given; pass a Python number to hold it in the state"
        )
    return f"set_hyperparams: nothing in opt_state holds a hyperparameter named {name!r}"
