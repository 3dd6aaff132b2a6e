"""The numerics every method shares: the dtype policy and the formulas several
methods write the same way (bias correction, Adam's denominator, sums over a tree).

Arithmetic runs in at least float32 (:func:`compute_dtype`), so bf16 rounds once, at the
end; a hyperparameter enters it in that dtype. :func:`leafwise` applies that policy to a
per-leaf formula, so an update is written as its paper's equations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# float32's smallest normal number: a rate below it is a subnormal, and rates are float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


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


def state_dtype(dtype: Any) -> np.dtype:
    """The dtype of a per-parameter state array for a parameter of ``dtype``.

    float16 (whose smallest number is 6e-8, so g² of a gradient below 2.4e-4 is 0) is
    kept in float32; every other float dtype as is. torch and optax store float16 moments
    in float16, where Adam's v underflows and the step blows up.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def cast(value: Any, dtype: Any) -> jax.Array:
    """A hyperparameter in the dtype of the arithmetic it enters."""
    return in_dtype(jnp.asarray(value), dtype)


def in_dtype(x: jax.Array, dtype: Any) -> jax.Array:
    """``x.astype(dtype)``, or ``x`` itself where it already is a strong ``dtype`` array.

    An update traces this once per leaf and operand: skipping a conversion that changes
    nothing keeps tracing time down on models with many leaves.
    """
    if x.dtype == dtype and not getattr(x, "weak_type", True):
        return x
    return x.astype(dtype)


def fresh(value: Any, dtype: Any) -> jax.Array:
    """A copy in ``dtype``: a state leaf never shares its buffer with another leaf."""
    return jnp.array(value, dtype=dtype, copy=True)


def python_max(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``max(a, b)``, as the reference packages evaluate it: ``a`` unless
    ``b > a``, so a NaN ``b`` is ignored."""
    return jnp.where(b > a, b, a)


def python_min(a: jax.Array, b: jax.Array) -> jax.Array:
    """Python's ``min(a, b)``: ``a`` unless ``b < a``."""
    return jnp.where(b < a, b, a)


def safe_divide(numerator: jax.Array, denominator: jax.Array, guard: bool) -> jax.Array:
    """``numerator / denominator``, and 0 where the denominator is 0 when ``guard``."""
    numerator, denominator = jnp.asarray(numerator), jnp.asarray(denominator)
    if numerator.shape != denominator.shape or numerator.dtype != denominator.dtype:
        dtype = jnp.result_type(numerator, denominator)
        shape = jnp.broadcast_shapes(numerator.shape, denominator.shape)
        numerator = jnp.broadcast_to(numerator.astype(dtype), shape)
        denominator = jnp.broadcast_to(denominator.astype(dtype), shape)
    if not guard:
        return lax.div(numerator, denominator)
    zero, one = lax.full_like(denominator, 0), lax.full_like(denominator, 1)
    positive = lax.gt(denominator, zero)
    return lax.select(positive, lax.div(numerator, lax.select(positive, denominator, one)), zero)


def leafwise(
    formula: Callable[..., Any], *trees: Any, scalars: tuple = (), like: Any = None
) -> Any:
    """``formula`` applied leaf by leaf in the compute dtype: the dtype policy in one place.

    Each leaf is cast to the :func:`compute_dtype` of the first tree's leaf, and so is each
    of ``scalars`` (computed once per step by the caller: scalar work inside a per-leaf
    function is traced once per leaf), so ``formula`` reads as the paper's equation. The
    result comes back in the dtype of the matching leaf of ``like`` (default: the first
    tree); a formula returning an n-tuple gives an n-tuple of trees, with ``like`` an
    n-tuple of trees.
    """
    first = trees[0]
    likes = like if isinstance(like, tuple) else None
    # The scalars in each compute dtype, cast once, and broadcast once to each leaf shape:
    # an operation on a scalar and an array lowers to a broadcast and the operation, and
    # the leaves of a model share a handful of shapes.
    cast_scalars: dict[Any, tuple] = {}

    def scalars_for(dtype: np.dtype, shape: tuple[int, ...]) -> tuple:
        if (dtype, shape) not in cast_scalars:
            if dtype not in cast_scalars:
                cast_scalars[dtype] = tuple(cast(s, dtype) for s in scalars)
            cast_scalars[dtype, shape] = tuple(
                lax.broadcast_in_dim(s, shape, ()) if s.ndim == 0 else s
                for s in cast_scalars[dtype]
            )
        return cast_scalars[dtype, shape]

    def apply(leaf: jax.Array, *others: jax.Array) -> Any:
        dtype = compute_dtype(leaf.dtype)
        return formula(
            in_dtype(leaf, dtype),
            *(in_dtype(x, dtype) for x in others),
            *scalars_for(dtype, leaf.shape),
        )

    if likes is None:
        out_like = first if like is None else like
        return jax.tree.map(lambda o, *xs: in_dtype(apply(*xs), o.dtype), out_like, *trees)
    results = jax.tree.map(apply, *trees)
    n = len(likes)
    if jax.tree.leaves(first):
        results = jax.tree.transpose(
            jax.tree.structure(first), jax.tree.structure((0,) * n), results
        )
    else:
        results = (results,) * n
    return tuple(
        jax.tree.map(lambda r, o: in_dtype(r, o.dtype), tree, out)
        for tree, out in zip(results, likes, strict=True)
    )


def bias_correction(count: jax.Array, one_minus_beta: jax.Array, dtype: Any) -> jax.Array:
    """``1 − β^t`` for update number ``t = count``, from ``1 − β``.

    As ``−expm1(t · log1p(−(1 − β)))`` it keeps float32's full precision where
    ``1 − β^t`` would cancel (β = 0.999, small t), as torch's float64 does.
    """
    t = count.astype(dtype)
    return -jnp.expm1(t * jnp.log1p(-cast(one_minus_beta, dtype)))


def adam_denominator(
    v: jax.Array, eps: Any, *, sqrt_correction2: Any = None, correction2: Any = None
) -> jax.Array:
    """Adam's denominator ``√v̂ + ε``, ``v̂ = v / (1 − β2^t)``, in ``v``'s compute dtype.

    With ``sqrt_correction2 = √(1 − β2^t)`` it is torch's ``√v / √(1 − β2^t) + ε``; with
    ``correction2 = 1 − β2^t``, schedulefree's ``√(v / (1 − β2^t)) + ε`` (they round
    differently); with neither, ``√v + ε`` (the correction folded into the step size, as
    D-Adaptation and Prodigy do).
    """
    dtype = compute_dtype(v.dtype)
    v = in_dtype(v, dtype)
    if correction2 is not None:
        root = lax.sqrt(lax.div(v, cast(correction2, dtype)))
    else:
        root = lax.sqrt(v)
        if sqrt_correction2 is not None:
            root = lax.div(root, cast(sqrt_correction2, dtype))
    return lax.add(root, cast(eps, dtype))


def tree_sum(tree: Any, dtype: Any) -> jax.Array:
    """The sum of a tree of scalars, in ``dtype`` (0 for an empty tree), added in the
    order of the leaves as the reference packages add their per-parameter sums."""
    return sum((jnp.asarray(x).astype(dtype) for x in jax.tree.leaves(tree)), jnp.zeros([], dtype))


def lerp_moment(updates: Any, moment: Any, one_minus_decay: Any) -> Any:
    """The running average ``m ← m + (1 − β)(g − m)``, torch's ``lerp_`` form (it rounds
    differently from ``β m + (1 − β) g``); in the compute dtype, returned in ``m``'s."""
    return leafwise(
        lambda g, m, c: lax.add(m, lax.mul(c, lax.sub(g, m))),  # m + c (g − m)
        updates,
        moment,
        scalars=(one_minus_decay,),
        like=moment,
    )


def ema_of_squares(updates: Any, moment: Any, decay: Any, one_minus_decay: Any) -> Any:
    """The running average of squares ``v ← β v + (1 − β) g²``, torch's
    ``mul_().addcmul_()`` form; in the compute dtype, returned in ``v``'s."""
    return leafwise(
        lambda g, v, b, c: lax.add(lax.mul(b, v), lax.mul(c, lax.square(g))),  # b v + c g²
        updates,
        moment,
        scalars=(decay, one_minus_decay),
        like=moment,
    )
