"""Changing the hyperparameters of a running optimizer: :func:`set_hyperparams`."""

from __future__ import annotations

from typing import Any

import jax

from lrjax import _blocks, _hyperparams
from lrjax._registry import find, is_inject


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
    values = {
        name: _hyperparams.check_hyperparam("set_hyperparams", name, value)
        if name in _hyperparams.HYPERPARAM_RULES
        else value
        for name, value in values.items()
    }
    found: set[str] = set()

    def is_holder(node: Any) -> bool:
        return isinstance(node, _hyperparams.HyperparamsState) or (
            is_inject(node) and isinstance(node.hyperparams, dict)
        )

    def replace(node: Any) -> Any:
        if isinstance(node, _hyperparams.HyperparamsState):
            return _hyperparams.set_held(node, values, found)
        if not is_inject(node):
            return node
        # optax.inject_hyperparams: its scheduled values are recomputed every step.
        settable = {k: x for k, x in node.hyperparams.items() if k not in node.hyperparams_states}
        held = _hyperparams.set_held(
            _hyperparams.HyperparamsState(settable, {}, {}), values, found
        ).values
        return node._replace(
            hyperparams={**node.hyperparams, **held}, inner_state=walk(node.inner_state)
        )

    def walk(tree: Any) -> Any:
        return jax.tree.map(replace, tree, is_leaf=is_holder)

    new_state = walk(opt_state)
    for name in values:
        if name not in found:
            raise ValueError(_not_settable(opt_state, name))
    return new_state


def _not_settable(opt_state: Any, name: str) -> str:
    scheduled = find(opt_state, lambda n: isinstance(n, _blocks.ScaleByScheduleState))
    injected = find(opt_state, is_inject)
    held = find(opt_state, lambda n: isinstance(n, _hyperparams.HyperparamsState))
    if (name == "learning_rate" and scheduled) or any(name in h.scheduled for h in held):
        return (
            f"set_hyperparams: {name} is driven by a schedule in this state; "
            "build the optimizer with another schedule, or with a number to set it"
        )
    if any(name in node.hyperparams_states for node in injected):
        return f"set_hyperparams: {name} is scheduled by optax.inject_hyperparams"
    return (
        f"set_hyperparams: nothing in opt_state holds a hyperparameter named {name!r} (a "
        "value passed to the optimizer as a JAX array is used as given, not held: pass a "
        "Python number to hold it; a held zero weight_decay, momentum, dampening or "
        "lr_decay leaves its block out of the optimizer)"
    )
