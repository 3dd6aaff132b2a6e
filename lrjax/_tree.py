"""Per-parameter arrays: how a state mirrors the parameters (dtype, sharding, complex
leaves), and the step counter."""

from __future__ import annotations

from typing import Any, overload

import jax
import jax.numpy as jnp
import optax

from lrjax._numerics import state_dtype


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


# A block's step counter, or ``optax.EmptyState()`` where nothing reads the step.
Count = jax.Array | optax.EmptyState


def count_if(needed: bool) -> Count:
    """A block's step counter: a fresh int32 zero where its update reads the step, else
    ``optax.EmptyState()`` (no array, as optax's stateless blocks hold). A counter that
    nothing reads would still cost every compile a scalar kernel of its own."""
    return zeros_count() if needed else optax.EmptyState()


@overload
def increment(count: jax.Array) -> jax.Array: ...
@overload
def increment(count: optax.EmptyState) -> optax.EmptyState: ...
def increment(count: Count) -> Count:
    """``count + 1``, saturating at the int32 maximum instead of wrapping; no counter
    stays none."""
    if isinstance(count, optax.EmptyState):
        return count
    return jnp.asarray(optax.safe_increment(count))


def unzip(like: Any, tree: Any, n: int) -> tuple[Any, ...]:
    """Splits a tree of n-tuples (a per-leaf step's results) into n trees like ``like``."""
    if not jax.tree.leaves(like):
        return (like,) * n
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tree)


def cast_like(tree: Any, like: Any) -> Any:
    """``tree`` with each leaf in the dtype of the matching leaf of ``like``."""
    return optax.tree.cast_like(tree, like)


def needs_params(owner: str, params: Any, why: str) -> None:
    """An ``update`` that reads the parameters refuses ``params=None``, saying why it
    reads them."""
    if params is None:
        raise ValueError(f"{owner}: update needs params ({why}), got params=None")


def as_method(
    owner: str, tx: optax.GradientTransformation
) -> optax.GradientTransformationExtraArgs:
    """``tx`` as the function ``owner`` returns it.

    ``init`` refuses parameters that are not floating point (naming ``owner``); Python
    number leaves work as in optax; a complex parameter is trained as the pair of its
    real and imaginary parts, each with its own state, as torch does (``view_as_real``):
    the state holds such a leaf as a real array with a trailing axis of 2.
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        check_params(owner, params)
        return tx.init(as_real(as_arrays(params)))

    def update_fn(updates, state, params=None, **extra_args):
        updates = as_arrays(updates)
        if params is not None:
            params = as_real(as_arrays(params))
        real, state = tx.update(as_real(updates), state, params, **extra_args)
        return as_complex_like(real, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
