"""The blocks every lrjax method ends with: weight decay and the learning rate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from lrjax import _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule, ScheduleFn
from lrjax._registry import register_rate_factor
from lrjax._validation import default, show

# ------------------------------------------------------------------- weight decay


class AddDecayedWeightsState(NamedTuple):
    """State of :func:`add_decayed_weights`: ``count`` steps a scheduled coefficient; a
    coefficient given as a number or an array reads no step (``optax.EmptyState()``)."""

    count: jax.Array | optax.EmptyState
    hyperparams: _hyperparams.HyperparamsState


def check_mask(owner: str, mask: Any) -> Any:
    """``None``, a function ``params -> pytree of bools``, or a pytree of bools."""
    if mask is None or callable(mask):
        return mask
    leaves = jax.tree.leaves(mask)
    if not leaves or not all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
        raise ValueError(
            f"{owner}: mask must be None, a pytree of bools like the parameters, or a "
            f"function params -> pytree of bools, got {show(mask)}"
        )
    return mask


def add_decayed_weights(
    weight_decay: float | jax.Array | ScheduleFn = default(0.0),
    *,
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Adds ``weight_decay * params`` to the updates (L2 regularisation).

    .. math:: u \\leftarrow u + \\lambda \\theta

    Before a direction it is torch's coupled ``weight_decay`` of ``SGD``, ``Adagrad``,
    ``Adadelta``, ``RMSprop`` and ``Adam``; between the direction and the learning rate it
    is ``AdamW``'s decoupled decay, ``θ ← θ − η(d + λθ)``. Unlike
    ``optax.add_decayed_weights`` the coefficient lives in the state, where
    :func:`lrjax.set_hyperparams` can change it.

    Args:
      weight_decay: the coefficient λ >= 0, or a schedule ``step -> λ``.
      mask: which parameters decay: a pytree of bools like the parameters (or a prefix
        of it), or a function ``params -> pytree of bools``, as optax's ``mask``; None
        decays all. The usual recipe leaves biases and norm scales out, as torch's two
        parameter groups do.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.add_decayed_weights(0.5)
      >>> params = jnp.array([2.0])
      >>> tx.update(jnp.array([1.0]), tx.init(params), params)[0]
      Array([2.], dtype=float32)
    """
    owner = "add_decayed_weights"
    checked = _hyperparams.check_hyperparams(owner, weight_decay=weight_decay)
    return _tree.as_method(owner, decayed_weights(checked["weight_decay"], check_mask(owner, mask)))


def decayed_weights(weight_decay: Any, mask: Any = None) -> optax.GradientTransformationExtraArgs:
    """:func:`add_decayed_weights` from a checked coefficient and mask."""
    hyperparams = _hyperparams.Hyperparams(weight_decay=weight_decay)

    def init_fn(params: optax.Params) -> AddDecayedWeightsState:
        del params
        count = _tree.count_if(hyperparams.reads_step)
        return AddDecayedWeightsState(count=count, hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params("weight decay", params, "the decay is proportional to them")
        hp = hyperparams.read(state.hyperparams, state.count)
        decay = hp.value("weight_decay")

        new_state = AddDecayedWeightsState(_tree.increment(state.count), hp.state)
        return _numerics.leafwise(
            lambda u, p, wd: lax.add(u, lax.mul(wd, p)), updates, params, scalars=(decay,)
        ), new_state

    tx = optax.GradientTransformationExtraArgs(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


# ------------------------------------------------------------------ learning rate


class ScaleByLearningRateState(NamedTuple):
    """State of :func:`scale_by_learning_rate` with a constant rate.

    A rate given as a number is ``hyperparams.values["learning_rate"]`` (settable with
    :func:`lrjax.set_hyperparams` or ``optax.tree.set``); one given as a JAX array is used
    as given and not held (``hyperparams.values`` is then empty). A constant rate reads
    no step, so the state counts none (a schedule's state does).
    """

    hyperparams: _hyperparams.HyperparamsState


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_learning_rate` with a schedule.

    ``learning_rate`` records the rate the most recent update applied (before any
    update: the rate the first update will apply).
    """

    count: jax.Array
    learning_rate: jax.Array


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
    checked = _hyperparams.check_hyperparams("scale_by_learning_rate", learning_rate=learning_rate)
    return _tree.as_method("scale_by_learning_rate", learning_rate_block(checked["learning_rate"]))


def learning_rate_block(learning_rate: ScalarOrSchedule) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_learning_rate` from a checked rate or a schedule."""
    if callable(learning_rate):
        return _scale_by_schedule(learning_rate)
    hyperparams = _hyperparams.Hyperparams(learning_rate=learning_rate)

    def init_fn(params: optax.Params) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        rate = hyperparams.read(state.hyperparams, None).value("learning_rate")
        return _scale(updates, rate), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scale_by_schedule(schedule: ScheduleFn) -> optax.GradientTransformationExtraArgs:
    def rate(count: jax.Array) -> jax.Array:
        return _numerics.fresh(schedule(count), _numerics.default_float())

    def init_fn(params: optax.Params) -> ScaleByScheduleState:
        del params
        count = _tree.zeros_count()
        return ScaleByScheduleState(count=count, learning_rate=rate(count))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        learning_rate = rate(state.count)
        updates = _scale(updates, learning_rate)
        return updates, ScaleByScheduleState(_tree.increment(state.count), learning_rate)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scale(updates: optax.Updates, learning_rate: jax.Array) -> optax.Updates:
    return scale_tree(updates, -jnp.asarray(learning_rate))


def scale_tree(updates: optax.Updates, factor: jax.Array) -> optax.Updates:
    """``factor × updates``, computed in float32 or wider and returned in each leaf's dtype.

    ``factor`` is computed once by the caller: scalar work inside a per-leaf function is
    traced and compiled once per leaf, which slows compilation for many-leaf models.
    """
    return _numerics.leafwise(lax.mul, updates, scalars=(factor,))


register_rate_factor(ScaleByLearningRateState, lambda s: s.hyperparams.values.get("learning_rate"))
register_rate_factor(ScaleByScheduleState, lambda s: s.learning_rate)
