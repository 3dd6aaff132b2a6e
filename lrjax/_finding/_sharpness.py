"""Sharpness, the largest eigenvalue of the loss's Hessian, and the edge of stability.

Gradient descent on a quadratic with Hessian ``H`` is stable iff ``η λ_max(H) < 2``, and
training drives the sharpness up to that edge (Cohen et al. 2021). Both functions here
run Lanczos on Hessian-vector products; they never form ``H``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax._validation import describe, show

Tree = Any


def sharpness(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Tree,
    batch: Any,
    *,
    num_iterations: int = 20,
    key: jax.Array | None = None,
) -> jax.Array:
    """The sharpness ``λ_max(H)``, ``H = ∇²_θ loss_fn(θ, batch)`` at ``θ = params``.

    Lanczos with full reorthogonalisation builds an orthonormal basis ``V`` of the
    Krylov space ``{v, Hv, …, H^{m−1} v}`` from a random ``v`` and returns the largest
    eigenvalue of the tridiagonal ``T = Vᵀ H V`` (m×m). Each step costs one
    Hessian-vector product, ``Hv = ∂/∂ε ∇loss(θ + ε v)`` (``jax.jvp`` of ``jax.grad``,
    about two gradients). ``m = min(num_iterations, number of parameters)`` steps are
    taken, none fewer: with as many steps as parameters the result is exact up to
    rounding; fewer give a lower bound (a Ritz value) that converges fast when the top
    eigenvalue stands out, as it does in trained networks (a near-degenerate top pair
    converges to the pair: either is the answer). Where ``Hv`` falls into ``span V``
    (``H`` has fewer distinct eigenvalues than steps), ``V`` already holds every
    eigenvector the random start touches, and the remaining steps are left out.

    λ_max is the *algebraically* largest eigenvalue, the one gradient descent's
    stability depends on: it is negative when ``H`` is negative definite, and a saddle
    whose most negative eigenvalue is larger in magnitude reports its largest one all
    the same (no step size is stable along negative curvature; that is escape, not
    oscillation).

    Everything is a pytree operation: the vectors keep the parameters' tree, shapes
    and sharding (dot products are sums of leaf-wise products: no leaf is flattened or
    gathered), and the basis stacks ``m`` of them along a new leading axis, so it needs
    ``m`` times the parameters' memory (in float32). Runs under ``jax.jit``
    (``num_iterations`` is static) and ``jax.vmap``; each call outside ``jax.jit``
    compiles its loop again, so jit a function that measures repeatedly.

    Args:
      loss_fn: ``loss_fn(params, batch) -> real scalar``, twice differentiable.
      params: the point: any pytree of floating-point arrays (bf16, f16, f32, f64;
        a flax ``nnx.State`` of parameters).
      batch: passed to ``loss_fn`` as is.
      num_iterations: the most Lanczos steps (Hessian-vector products), an integer >= 1.
      key: a JAX PRNG key that picks the random start; ``None`` means
        ``jax.random.key(0)``.

    Returns:
      A scalar: float32, or float64 when a parameter is float64 (``jax_enable_x64``).
      Vectors are float32 for bf16/f16 parameters; their Hessian-vector products are
      computed in the parameters' dtype, so bf16 gives about 2 significant digits.

    Raises:
      ValueError: for a ``loss_fn`` that is not callable or does not return a real
        scalar, ``params`` without floating-point arrays or with others, a
        ``num_iterations`` that is not an integer >= 1, or a ``key`` that is no key.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss_fn = lambda w, x: 0.5 * jnp.sum(x * w**2)  # Hessian diag(x)
      >>> lrjax.sharpness(loss_fn, jnp.ones(3), jnp.array([1.0, 4.0, 2.0]))
      Array(4., dtype=float32)

    References:
      Cohen et al., 2021, "Gradient Descent on Neural Networks Typically Occurs at the
      Edge of Stability", https://arxiv.org/abs/2103.00065;
      Lanczos, 1950, https://doi.org/10.6028/jres.045.026;
      Golub and Van Loan, "Matrix Computations", 4th ed., §10.1 (Lanczos) and §10.3
      (full reorthogonalisation).

    torch: PyHessian's ``hessian(model, criterion, data).eigenvalues()`` (power
    iteration); no built-in.
    """
    owner = "sharpness"
    params, dtype, num_iterations, key = _check(owner, loss_fn, params, batch, num_iterations, key)
    return _lanczos(_hvp(loss_fn, params, batch, dtype, None), params, dtype, num_iterations, key)


# ------------------------------------------------------------------------ Lanczos


def _hvp(loss_fn, params: Tree, batch: Any, dtype, root: Tree | None) -> Callable[[Tree], Tree]:
    """``v ↦ H v`` (or ``E^½ H E^½ v`` given ``root = E^½``) on vectors of ``dtype``."""
    grad = jax.grad(lambda p: loss_fn(p, batch))

    def product(v: Tree) -> Tree:
        if root is not None:
            v = optax.tree.mul(root, v)
        # The tangent must have its primal's dtype; the product comes back in it.
        _, hv = jax.jvp(grad, (params,), (optax.tree.cast_like(v, params),))
        hv = optax.tree.cast(hv, dtype)
        return hv if root is None else optax.tree.mul(root, hv)

    return product


def _dot(x: Tree, y: Tree) -> jax.Array:
    """``⟨x, y⟩`` over the tree, leaf by leaf: no leaf is reshaped (a reshape of a
    sharded array gathers it; ``optax.tree.vdot`` flattens on some JAX versions)."""
    products = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.sum(a * b), x, y))
    return functools.reduce(jnp.add, products)


def _orthogonalise(basis: Tree, w: Tree) -> Tree:
    """``w`` minus its projection on the rows of ``basis`` (rows not yet filled are 0),
    twice: classical Gram-Schmidt once loses orthogonality in float32, twice does not
    ("twice is enough", Giraud et al. 2005). Contractions run over each leaf's own axes
    at full precision (TPUs and GPUs round float32 matmuls by default)."""
    highest = jax.lax.Precision.HIGHEST

    def project_out(w: Tree) -> Tree:
        coefficients = functools.reduce(
            jnp.add,
            jax.tree.leaves(
                jax.tree.map(
                    lambda b, x: jnp.tensordot(b, x, axes=x.ndim, precision=highest), basis, w
                )
            ),
        )
        return jax.tree.map(
            lambda b, x: x - jnp.tensordot(coefficients, b, axes=1, precision=highest), basis, w
        )

    # A loop of two, not two copies: half the program to compile.
    return jax.lax.fori_loop(0, 2, lambda _, w: project_out(w), w)


def _mix(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: every input bit flips each output bit with
    probability about ½ (Appleby, public domain)."""
    for shift, factor in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h = (h ^ (h >> np.uint32(shift))) * np.uint32(factor)
    return h ^ (h >> np.uint32(16))


def _start(key: jax.Array, like: Tree, dtype) -> Tree:
    """A random vector shaped like ``like``, uniform in [−1, 1) entry by entry: the
    hash of each entry's index and ``key``. Like any start with independent entries it
    meets the top eigenvector almost surely; unlike ``jax.random`` (threefry: about a
    second of CPU compilation for a handful of leaves) it compiles to a few elementwise
    integer operations per leaf, computed where each shard lives."""
    seed = np.uint32(0x9E3779B9)
    for word in jax.random.key_data(key).ravel():
        seed = _mix(seed ^ word.astype(np.uint32))

    def leaf_noise(index: int, leaf: jax.Array) -> jax.Array:
        flat = jnp.zeros(leaf.shape, np.uint32)  # each entry's index in the flat leaf
        stride = 1
        for axis in reversed(range(leaf.ndim)):
            iota = jax.lax.broadcasted_iota(np.uint32, leaf.shape, axis)
            flat = flat + iota * np.uint32(stride % 2**32)
            stride *= leaf.shape[axis]
        bits = _mix(_mix(flat ^ _mix(seed ^ np.uint32(index))) ^ seed)
        unit = (bits >> np.uint32(8)).astype(dtype) * dtype.type(2.0**-24)
        return 2 * unit - 1

    leaves, treedef = jax.tree.flatten(like)
    return jax.tree.unflatten(treedef, [leaf_noise(i, x) for i, x in enumerate(leaves)])


def _lanczos(hvp, params: Tree, dtype, num_iterations: int, key: jax.Array) -> jax.Array:
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))
    steps = min(num_iterations, size)
    like = optax.tree.cast(params, dtype)
    tolerance = 100 * float(jnp.finfo(dtype).eps)

    def body(j, carry):
        basis, alphas, betas, valid, scale, v = carry
        basis = jax.tree.map(lambda b, x: b.at[j].set(x), basis, v)
        w = hvp(v)
        alpha = _dot(v, w)
        scale = jnp.maximum(scale, optax.tree.norm(w))  # an estimate of ‖H‖
        w = _orthogonalise(basis, w)
        beta = optax.tree.norm(w)
        # β ≈ 0: span V is invariant under H. From a random start that happens when V
        # holds every eigenvector the start touches (H has fewer distinct eigenvalues
        # than steps), so the Ritz values found are the spectrum: the rest is left out.
        go_on = valid[j] & (beta > tolerance * scale)
        v = optax.tree.scale(jnp.where(go_on, 1 / jnp.where(go_on, beta, 1), 0), w)
        alphas, betas = alphas.at[j].set(alpha), betas.at[j].set(jnp.where(go_on, beta, 0))
        if steps > 1:
            valid = valid.at[j + 1].set(go_on, mode="drop")
        return basis, alphas, betas, valid, scale, v

    noise = _start(key, like, dtype)
    start = optax.tree.scale(1 / optax.tree.norm(noise), noise)
    basis = jax.tree.map(lambda x: jnp.zeros((steps, *x.shape), dtype), like)
    zeros = jnp.zeros([steps], dtype)
    valid = jnp.ones([steps], bool)
    carry = (basis, zeros, zeros, valid, jnp.zeros([], dtype), start)
    _, alphas, betas, valid, _, _ = jax.lax.fori_loop(0, steps, body, carry)
    # A step after the stop holds no vector: it repeats α_0, which is no larger than the
    # largest Ritz value (a diagonal entry of T is a Rayleigh quotient of T).
    alphas = jnp.where(valid, alphas, alphas[0])
    off = betas[:-1]
    tridiagonal = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigvalsh(tridiagonal)[-1]


# --------------------------------------------------------------------- validation


def _check(owner: str, loss_fn, params, batch, num_iterations, key):
    """The checked arguments: params as arrays, the vectors' dtype, the step count and
    the key."""
    if not callable(loss_fn):
        raise ValueError(
            f"{owner}: loss_fn must be a callable loss_fn(params, batch) -> scalar, "
            f"got {describe(loss_fn)}"
        )
    if isinstance(num_iterations, (bool, np.bool_)):
        raise ValueError(
            f"{owner}: num_iterations must be an integer >= 1, got {show(num_iterations)}"
        )
    try:
        steps = operator.index(num_iterations)
    except TypeError:
        raise ValueError(
            f"{owner}: num_iterations must be an integer >= 1, got {describe(num_iterations)}"
        ) from None
    if steps < 1:
        raise ValueError(f"{owner}: num_iterations must be an integer >= 1, got {steps}")
    key = jax.random.key(0) if key is None else _check_key(owner, key)

    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in leaves:
        dtype = jnp.result_type(leaf) if _is_numeric(leaf) else None
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            where = jax.tree_util.keystr(path) or "params"
            what = describe(leaf) if dtype is None else str(dtype)
            raise ValueError(
                f"{owner}: params must hold real floating-point arrays only, got {what} at "
                f"{where}; pass the trainable parameters (in flax nnx: nnx.split(model, "
                "nnx.Param, ...)), cast to a float dtype"
            )
    if sum(int(np.size(leaf)) for _, leaf in leaves) == 0:
        raise ValueError(
            f"{owner}: params must hold at least one floating-point number, got {describe(params)}"
        )
    params = jax.tree.map(jnp.asarray, params)
    dtype = jnp.float64 if any(x.dtype == jnp.float64 for x in jax.tree.leaves(params)) else None
    dtype = np.dtype(jnp.float32 if dtype is None else dtype)

    try:
        loss = jax.eval_shape(loss_fn, params, batch)
    except Exception as error:
        raise ValueError(
            f"{owner}: calling loss_fn(params, batch) failed with {type(error).__name__}; "
            "loss_fn must take the parameters and the batch and return a real scalar"
        ) from error
    if (
        not isinstance(loss, jax.ShapeDtypeStruct)
        or loss.shape != ()
        or not jnp.issubdtype(loss.dtype, jnp.floating)
    ):
        got = f"{loss.dtype} of shape {loss.shape}" if hasattr(loss, "shape") else repr(loss)
        raise ValueError(
            f"{owner}: loss_fn(params, batch) must return a real floating-point scalar, got {got}"
        )
    return params, dtype, steps, key


def _is_numeric(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, complex))


def _check_key(owner: str, key: Any) -> jax.Array:
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape == ():
            return key
    elif isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(jnp.asarray(key))
    raise ValueError(
        f"{owner}: key must be a single JAX PRNG key (jax.random.key(0)) or None, got "
        f"{describe(key)}"
    )
