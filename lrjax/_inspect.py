"""Seeing the learning rate of a running optimizer.

The readers take any optimizer state: an lrjax method, a hand-made ``optax.chain`` of
lrjax blocks, and either one wrapped in ``optax.inject_hyperparams``,
``optax.MultiSteps``, ``optax.partition`` or other optax wrappers. They find lrjax's
states through :mod:`lrjax._registry`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax._registry import (
    PRECONDITIONERS,
    RATE_FACTORS,
    find,
    has_factor,
    has_preconditioner,
    is_inject,
    is_masked,
    is_partition,
)
from lrjax._validation import describe

_GIVEN = object()  # a rate used as given: the value is not in the state


def _factors(opt_state: Any) -> list[Any]:
    """Every global factor of the rate: lrjax's own, and the ``learning_rate`` that
    ``optax.inject_hyperparams`` feeds an lrjax rate it drives or an optax rate."""
    factors: list[Any] = []
    for node in find(opt_state, lambda n: has_factor(n) or is_inject(n) or is_partition(n)):
        if is_partition(node):  # each group has its own rate: see _groups
            continue
        if not is_inject(node):
            factor = RATE_FACTORS[type(node)](node)
            factors.append(_GIVEN if factor is None else factor)
            continue
        inner = _factors(node.inner_state)
        injected = node.hyperparams.get("learning_rate")
        owns_rate = find(node.inner_state, has_factor)
        if injected is not None:
            if _GIVEN in inner:  # the rate this inject_hyperparams drives
                inner = [injected if f is _GIVEN else f for f in inner]
            elif not owns_rate:  # an optax rate
                inner.append(injected)
        factors.extend(inner)
    return factors


def _groups(opt_state: Any) -> dict[Any, Any]:
    """The inner states of the parameter groups of ``optax.partition`` (multi_transform)."""
    groups: dict[Any, Any] = {}
    for node in find(opt_state, is_partition):
        groups.update(node.inner_states)
    return groups


def _preconditioners(tree: Any, given: dict[str, Any]) -> list[optax.Updates]:
    found = []
    for node in find(tree, lambda n: has_preconditioner(n) or is_inject(n) or is_partition(n)):
        if is_partition(node):
            continue
        if is_inject(node):
            found.extend(_preconditioners(node.inner_state, {**given, **node.hyperparams}))
        else:
            found.append(PRECONDITIONERS[type(node)](node, given))
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
    if params is not None:
        _check_params(owner, params)
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


_MISSING = object()  # a position no group's tree holds


def _overlay(trees: list[Any]) -> Any:
    """The trees of the groups, laid over each other: at each position, the one that is
    not masked there. ``optax.partition`` masks a whole subtree with one ``MaskedNode``
    where its labels are a prefix of the parameters, so the trees' structures differ."""
    present = [tree for tree in trees if not is_masked(tree)]
    if not present:
        return _MISSING
    if len(present) == 1:
        return jax.tree.map(
            lambda x: _MISSING if is_masked(x) else x, present[0], is_leaf=is_masked
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


def _check_params(owner: str, params: Any) -> None:
    """``params`` gives shapes: a pytree of numeric arrays, numbers or shape structs."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            continue
        if dtype is None or not (
            jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating)
        ):
            where = jax.tree_util.keystr(path) or "the parameters"
            raise ValueError(
                f"{owner}: params must be a pytree of floating-point arrays (or "
                f"jax.ShapeDtypeStruct) like the parameters, got {describe(leaf)} at {where}"
            )
