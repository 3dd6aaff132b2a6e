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

from lrjax import _base, _state

# What introspection knows of each lrjax state type: its global factor of the rate (None
# where the rate was given as a JAX array and is not held), and its per-parameter factor.
_RATE_FACTORS: dict[type, Callable[[Any], jax.Array | None]] = {}
_PRECONDITIONERS: dict[type, Callable[[Any, dict[str, Any]], optax.Updates]] = {}


def register_rate_factor(state_type: type, factor: Callable[[Any], jax.Array | None]) -> None:
    """Declares ``factor(state)``: the global factor of the rate a state of this type holds."""
    _RATE_FACTORS[state_type] = factor


def register_preconditioner(
    state_type: type, factor: Callable[[Any, dict[str, Any]], optax.Updates]
) -> None:
    """Declares ``factor(state, given)``: the per-parameter factor of an adaptive direction,
    where ``given`` holds the values an enclosing ``optax.inject_hyperparams`` passes."""
    _PRECONDITIONERS[state_type] = factor


def unit_factors(like: optax.Updates) -> optax.Updates:
    """The per-parameter factor of a direction that rescales nothing (SGD's): ones, shaped
    like the per-parameter arrays ``like``, in their compute dtype."""
    return jax.tree.map(lambda x: jnp.ones_like(x, _state.compute_dtype(x.dtype)), like)


register_rate_factor(
    _base.ScaleByLearningRateState, lambda s: s.hyperparams.values.get("learning_rate")
)
register_rate_factor(_base.ScaleByScheduleState, lambda s: s.learning_rate)


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
    return type(node) in _RATE_FACTORS


def _has_preconditioner(node: Any) -> bool:
    return type(node) in _PRECONDITIONERS


_GIVEN = object()  # a rate used as given: the value is not in the state


def _factors(opt_state: Any) -> list[Any]:
    """Every global factor of the rate: lrjax's own, and the ``learning_rate`` that
    ``optax.inject_hyperparams`` feeds an lrjax rate it drives or an optax rate."""
    factors: list[Any] = []
    for node in _find(opt_state, lambda n: _has_factor(n) or _is_inject(n) or _is_partition(n)):
        if _is_partition(node):  # each group has its own rate: see _groups
            continue
        if not _is_inject(node):
            factor = _RATE_FACTORS[type(node)](node)
            factors.append(_GIVEN if factor is None else factor)
            continue
        inner = _factors(node.inner_state)
        injected = node.hyperparams.get("learning_rate")
        owns_rate = _find(node.inner_state, _has_factor)
        if injected is not None:
            if _GIVEN in inner:  # the rate this inject_hyperparams drives
                inner = [injected if f is _GIVEN else f for f in inner]
            elif not owns_rate:  # an optax rate
                inner.append(injected)
        factors.extend(inner)
    return factors


def _is_partition(node: Any) -> bool:
    return isinstance(node, optax.transforms.PartitionState)


def _groups(opt_state: Any) -> dict[Any, Any]:
    """The inner states of the parameter groups of ``optax.partition`` (multi_transform)."""
    groups: dict[Any, Any] = {}
    for node in _find(opt_state, _is_partition):
        groups.update(node.inner_states)
    return groups


def _preconditioners(tree: Any, given: dict[str, Any]) -> list[optax.Updates]:
    found = []
    for node in _find(tree, lambda n: _has_preconditioner(n) or _is_inject(n) or _is_partition(n)):
        if _is_partition(node):
            continue
        if _is_inject(node):
            found.extend(_preconditioners(node.inner_state, {**given, **node.hyperparams}))
        else:
            found.append(_PRECONDITIONERS[type(node)](node, given))
    return found


def _product(owner: str, factors: list[Any]) -> jax.Array:
    if any(f is _GIVEN for f in factors):
        raise ValueError(
            f"{owner}: the learning rate was passed to the optimizer as a JAX array, which "
            "it uses as given without holding it in the state; pass a Python number to "
            "hold it, or read the rate where it is passed"
        )
    arrays = [jnp.asarray(f) for f in factors]
    # The widest float dtype of the factors (strict promotion mixes nothing implicitly).
    dtype = max((a.dtype for a in arrays), key=lambda d: jnp.dtype(d).itemsize)
    return functools.reduce(jnp.multiply, [a.astype(dtype) for a in arrays])


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
    return _current_learning_rate("current_learning_rate", opt_state)


def _current_learning_rate(owner: str, opt_state: Any) -> Any:
    outside = _factors(opt_state)
    groups = _groups(opt_state)
    rates = {
        label: _product(owner, [*factors, *outside])
        for label, inner in groups.items()
        if (factors := _factors(inner))
    }
    if len(groups) > 1 and rates:  # a dict, also when some groups hold no lrjax rate
        return rates
    if rates:
        return next(iter(rates.values()))
    factors = outside
    if not factors:
        raise ValueError(
            f"{owner}: opt_state holds no learning rate (no lrjax "
            "scale_by_learning_rate, reduce_on_plateau or hypergradient state, and no "
            "learning_rate injected by optax.inject_hyperparams)"
        )
    return _product(owner, factors)


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
    owner = "effective_learning_rates"
    groups = _groups(opt_state)
    if not groups:
        return _effective(owner, opt_state, _factors(opt_state), params)
    outside = _factors(opt_state)
    trees, unknown = [], []
    for label, inner in groups.items():
        own = _factors(inner)
        if own:
            trees.append(_effective(owner, inner, [*own, *outside], None, missing_ok=True))
        else:  # optax.set_to_zero(), or an optax (not lrjax) rate
            unknown.append(label)
    return _merge_groups(owner, trees, params, unknown)


def _effective(owner, opt_state, factors, params, missing_ok=False):
    """The per-parameter rates of one optimizer (or one group): rate × preconditioners."""
    rate = _current_learning_rate(owner, opt_state) if not factors else _product(owner, factors)
    preconditioners = _preconditioners(opt_state, {})
    if not preconditioners:
        if params is None:
            if missing_ok:
                return rate
            raise ValueError(
                f"{owner}: opt_state keeps no per-parameter arrays (plain "
                "SGD); pass params= to get the rate in the parameters' shape"
            )
        return jax.tree.map(lambda p: jnp.full(jnp.shape(p), rate, jnp.result_type(rate)), params)
    product = functools.reduce(lambda a, b: jax.tree.map(jnp.multiply, a, b), preconditioners)
    # A batched rate (a state built under jax.vmap) lines up with the leading axes.
    return jax.tree.map(
        lambda f: f * jnp.reshape(rate, rate.shape + (1,) * (f.ndim - rate.ndim)).astype(f.dtype),
        product,
    )


def _is_masked(node: Any) -> bool:
    return isinstance(node, optax.MaskedNode)


_MISSING = object()  # a position no group's tree holds


def _overlay(trees: list[Any]) -> Any:
    """The trees of the groups, laid over each other: at each position, the one that is
    not masked there. ``optax.partition`` masks a whole subtree with one ``MaskedNode``
    where its labels are a prefix of the parameters, so the trees' structures differ."""
    present = [tree for tree in trees if not _is_masked(tree)]
    if not present:
        return _MISSING
    if len(present) == 1:
        return jax.tree.map(
            lambda x: _MISSING if _is_masked(x) else x, present[0], is_leaf=_is_masked
        )
    # Several groups share this subtree: descend one level in each.
    levels = [jax.tree_util.tree_flatten(t, is_leaf=lambda x, t=t: x is not t) for t in present]
    merged = [_overlay(list(children)) for children in zip(*(c for c, _ in levels), strict=True)]
    return jax.tree_util.tree_unflatten(levels[0][1], merged)


def _merge_groups(owner: str, trees: list[Any], params: Any, unknown: list[Any]) -> Any:
    """One tree of rates from the groups' trees (each masked outside its group). A group
    that keeps no per-parameter arrays (plain SGD) gives a scalar: its rate fills the
    parameters no other group claims, which needs ``params`` for their shapes."""
    shaped = [tree for tree in trees if not isinstance(tree, jax.Array)]
    scalars = [tree for tree in trees if isinstance(tree, jax.Array)]
    if len(scalars) > 1 or (scalars and params is None) or not (shaped or params is not None):
        raise ValueError(
            f"{owner}: {len(scalars)} parameter group(s) keep no per-parameter arrays (plain "
            "SGD); pass params= (and at most one such group) to place their rates"
        )
    merged = _overlay(shaped)

    def fill(rates: Any, like: Any) -> Any:
        if rates is not _MISSING:
            return rates
        if not scalars or unknown:
            raise ValueError(
                f"{owner}: the parameter groups {unknown} hold no lrjax learning rate "
                "(optax.set_to_zero or an optax optimizer), so their parameters' rates "
                "are unknown"
            )
        rate = scalars[0]
        return jax.tree.map(lambda p: jnp.full(jnp.shape(p), rate, jnp.result_type(rate)), like)

    is_missing = lambda x: x is _MISSING
    if params is None:  # then no group is plain SGD: a missing position is an error
        return jax.tree.map(lambda rates: fill(rates, None), merged, is_leaf=is_missing)
    return jax.tree.map(fill, merged, params, is_leaf=is_missing)


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
        name: _state.check_hyperparam("set_hyperparams", name, value)
        if name in _state.HYPERPARAM_RULES
        else value
        for name, value in values.items()
    }
    found: set[str] = set()

    def is_holder(node: Any) -> bool:
        return isinstance(node, _state.HyperparamsState) or (
            _is_inject(node) and isinstance(node.hyperparams, dict)
        )

    def replace(node: Any) -> Any:
        if isinstance(node, _state.HyperparamsState):
            return _state.set_held(node, values, found)
        if not _is_inject(node):
            return node
        # optax.inject_hyperparams: its scheduled values are recomputed every step.
        settable = {k: x for k, x in node.hyperparams.items() if k not in node.hyperparams_states}
        held = _state.set_held(_state.HyperparamsState(settable, {}, {}), values, found).values
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
    scheduled = _find(opt_state, lambda n: isinstance(n, _base.ScaleByScheduleState))
    injected = _find(opt_state, _is_inject)
    held = _find(opt_state, lambda n: isinstance(n, _state.HyperparamsState))
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
