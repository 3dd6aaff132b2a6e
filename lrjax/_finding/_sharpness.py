"""Sharpness, the largest eigenvalue of the loss's Hessian, and the edge of stability.

Gradient descent on a quadratic with Hessian ``H`` is stable iff ``η λ_max(H) < 2``, and
training drives the sharpness up to that edge (Cohen et al. 2021). Both functions here
run Lanczos on Hessian-vector products; they never form ``H``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax

Tree = Any


class StabilityResult(NamedTuple):
    """What :func:`stability` measures (a pytree, so it can come out of ``jax.jit``).

    Attributes:
      sharpness: ``λ_max(E^½ H E^½)``, the preconditioned sharpness.
      threshold: the largest value of it for which the method is stable on a quadratic.
      ratio: ``sharpness / threshold``: below 1 stable, above 1 unstable; the edge of
        stability is 1.
    """

    sharpness: jax.Array
    threshold: jax.Array
    ratio: jax.Array


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
    about two gradients), and ``m`` is ``min(num_iterations, number of parameters)``:
    with as many steps as parameters the result is exact up to rounding. Fewer steps
    give a lower bound that converges fast when the top eigenvalue stands out (as it
    does in trained networks); a near-degenerate top pair is still found (either of the
    pair is the answer). An invariant subspace found early (``Hv ∈ span V``) restarts
    the basis from a random vector orthogonal to it, so every step adds information.

    λ_max is the *algebraically* largest eigenvalue, the one gradient descent's
    stability depends on: it is negative when ``H`` is negative definite, and a saddle
    whose most negative eigenvalue is larger in magnitude still reports its largest
    positive one.

    Everything is a pytree operation (``optax.tree.vdot`` and leaf-wise maps): the
    vectors keep the parameters' tree, shapes and sharding; the basis stacks ``m``
    copies of them along a new leading axis (memory: ``m`` times the parameters, in
    float32). Runs under ``jax.jit`` (``num_iterations`` is static) and ``jax.vmap``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> real scalar``, twice differentiable.
      params: the point: any pytree of floating-point arrays (bf16, f16, f32, f64;
        a flax ``nnx.State`` of parameters).
      batch: passed to ``loss_fn`` as is.
      num_iterations: the most Lanczos steps (Hessian-vector products), an integer >= 1.
      key: a JAX PRNG key for the starting vector; ``None`` means ``jax.random.key(0)``.

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
    params, dtype, num_iterations, key = _check(
        owner, loss_fn, params, batch, num_iterations, key
    )
    return _lanczos(_hvp(loss_fn, params, batch, dtype, None), params, dtype, num_iterations, key)


def stability(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Tree,
    batch: Any,
    opt_state: Any,
    *,
    num_iterations: int = 20,
    key: jax.Array | None = None,
) -> StabilityResult:
    """How close an optimizer is to the edge of stability: ``λ_max(E^½ H E^½)`` against
    the method's threshold.

    ``E`` is :func:`lrjax.effective_learning_rates` of ``opt_state``: the step each
    parameter takes per unit of (momentum) gradient, ``η`` for SGD and
    ``η/((1 − β1^t)(√v̂ + ε))`` for Adam. With the preconditioner frozen, the method is a
    linear recurrence on a quadratic, stable iff ``λ_max(E^½ H E^½) = λ_max(EH)`` is
    below the threshold. Per eigenvalue ``h`` of ``EH``:

    * SGD, ``θ ← θ − E g``: ``x ← (1 − h) x``, stable iff ``h < 2``.
    * Heavy-ball momentum in torch's form, ``b ← μ b + (1 − τ) g``, ``θ ← θ − E b``
      (``lrjax.sgd(momentum=μ, dampening=τ)``): ``x_{t+1} = (1 + μ − (1 − τ) h) x_t − μ
      x_{t−1}``, stable iff ``(1 − τ) h < 2(1 + μ)`` (Jury's test), i.e. ``2(1 + μ)``
      without dampening (3.8 at μ = 0.9). RMSprop with momentum is this recurrence on
      the preconditioned gradient (torch's form), so it gets the same threshold.
    * Adam, AdamW, AMSGrad: ``m ← β1 m + (1 − β1) g``, ``θ ← θ − E m`` is the recurrence
      above with ``μ = β1``, ``1 − τ = 1 − β1``: ``(2 + 2β1)/(1 − β1)``, 38 at β1 = 0.9
      (Cohen et al. 2022).
    * RMSprop, Adagrad, Adadelta without momentum, DoG, L-DoG: 2.

    ``μ``, ``τ`` and ``β1`` are read from the state as the most recent update used them:
    held by the lrjax block (a number, or a schedule's current value), or fed by an
    enclosing ``optax.inject_hyperparams``. With ``optax.partition`` the smallest of the
    groups' thresholds is reported (the ratio then errs on the unstable side).

    Not covered: Nesterov momentum (the state does not record it; its threshold is
    ``(2 + 2μ)/(1 + 2μ)``, 1.36 at μ = 0.9, and this function reports heavy-ball's);
    weight decay (put a coupled L2 term into ``loss_fn``; decoupled decay shifts the
    edge by about ``η·λ_wd``); the learning-rate-free methods other than DoG, whose step
    size moves with the iterate; optax's own adaptive states (a ``ValueError``).

    Args:
      loss_fn: ``loss_fn(params, batch) -> real scalar``.
      params: the parameters (any pytree of floating-point arrays).
      batch: passed to ``loss_fn``.
      opt_state: the state of an lrjax method (after an update, for adaptive methods:
        before it, ``v`` is 0), also inside ``optax.chain``, ``optax.inject_hyperparams``
        or ``optax.partition``.
      num_iterations: the most Lanczos steps, as in :func:`sharpness`.
      key: the PRNG key of the starting vector, as in :func:`sharpness`.

    Returns:
      A :class:`StabilityResult` of scalars in :func:`sharpness`'s dtype.

    Raises:
      ValueError: for the arguments :func:`sharpness` refuses, an ``opt_state`` without
        a learning rate or with a method whose threshold is not known, or a momentum or
        β1 the state does not hold (passed as a JAX array to the lrjax method).

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss_fn = lambda w, x: 0.5 * jnp.sum(x * w**2)
      >>> params, batch = jnp.ones(3), jnp.array([1.0, 4.0, 2.0])
      >>> state = lrjax.sgd(0.4, momentum=0.9).init(params)
      >>> lrjax.stability(loss_fn, params, batch, state)  # 0.4 · 4 = 1.6 of 3.8
      StabilityResult(sharpness=Array(1.6, dtype=float32), threshold=Array(3.8, dtype=float32), ratio=Array(0.42105263, dtype=float32))

    References:
      Cohen et al., 2021, https://arxiv.org/abs/2103.00065 (GD, heavy-ball);
      Cohen et al., 2022, "Adaptive Gradient Methods at the Edge of Stability",
      https://arxiv.org/abs/2207.14484 (Adam's preconditioned sharpness and threshold).
    """
    owner = "stability"
    params, dtype, num_iterations, key = _check(
        owner, loss_fn, params, batch, num_iterations, key
    )
    threshold = _threshold(owner, opt_state, dtype)
    rates = _rates(owner, opt_state, params)
    root = jax.tree.map(lambda e: jnp.sqrt(jnp.asarray(e).astype(dtype)), rates)
    value = _lanczos(_hvp(loss_fn, params, batch, dtype, root), params, dtype, num_iterations, key)
    return StabilityResult(value, threshold, value / threshold)


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


def _orthogonalise(basis: Tree, w: Tree) -> Tree:
    """``w`` minus its projection on the rows of ``basis`` (rows not yet filled are 0),
    twice: classical Gram-Schmidt once loses orthogonality in float32, twice does not
    ("twice is enough", Giraud et al. 2005)."""
    for _ in range(2):
        coefficients = jax.vmap(optax.tree.vdot, in_axes=(0, None))(basis, w)
        w = jax.tree.map(
            lambda b, x: x
            - jnp.tensordot(coefficients, b, axes=1, precision=jax.lax.Precision.HIGHEST),
            basis,
            w,
        )
    return w


def _lanczos(hvp, params: Tree, dtype, num_iterations: int, key: jax.Array) -> jax.Array:
    size = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))
    steps = min(num_iterations, size)
    like = optax.tree.cast(params, dtype)
    eps = float(jnp.finfo(dtype).eps)

    def unit(v: Tree) -> Tree:
        return optax.tree.scale(1 / optax.tree.norm(v), v)

    def random_direction(basis: Tree, step: jax.Array) -> Tree:
        noise = optax.tree.random_like(jax.random.fold_in(key, step), like, dtype=dtype)
        return unit(_orthogonalise(basis, noise))

    basis = jax.tree.map(lambda x: jnp.zeros((steps, *x.shape), dtype), like)
    zeros = jnp.zeros([steps], dtype)

    def body(j, carry):
        basis, alphas, betas, scale, v = carry
        basis = jax.tree.map(lambda b, x: b.at[j].set(x), basis, v)
        w = hvp(v)
        alpha = optax.tree.vdot(v, w)
        scale = jnp.maximum(scale, optax.tree.norm(w))  # an estimate of ‖H‖
        w = _orthogonalise(basis, w)
        beta = optax.tree.norm(w)
        # β ≈ 0: span V is invariant under H. Its Ritz values are eigenvalues; go on in
        # the orthogonal complement (β = 0 decouples T there).
        broke = beta <= 100 * eps * scale
        v, beta = jax.lax.cond(
            broke,
            lambda: (random_direction(basis, j + 1), jnp.zeros([], dtype)),
            lambda: (optax.tree.scale(1 / beta, w), beta),
        )
        return basis, alphas.at[j].set(alpha), betas.at[j].set(beta), scale, v

    start = unit(optax.tree.random_like(key, like, dtype=dtype))
    carry = (basis, zeros, zeros, jnp.zeros([], dtype), start)
    _, alphas, betas, _, _ = jax.lax.fori_loop(0, steps, body, carry)
    off = betas[:-1]
    tridiagonal = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigvalsh(tridiagonal)[-1]


# --------------------------------------------------------------------- validation


def _describe(value: Any) -> str:
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _check(owner: str, loss_fn, params, batch, num_iterations, key):
    """The checked arguments: params as arrays, the vectors' dtype, the step count and
    the key."""
    if not callable(loss_fn):
        raise ValueError(
            f"{owner}: loss_fn must be a callable loss_fn(params, batch) -> scalar, "
            f"got {_describe(loss_fn)}"
        )
    if isinstance(num_iterations, (bool, np.bool_)):
        raise ValueError(f"{owner}: num_iterations must be an integer >= 1, got {num_iterations!r}")
    try:
        steps = operator.index(num_iterations)
    except TypeError:
        raise ValueError(
            f"{owner}: num_iterations must be an integer >= 1, got {_describe(num_iterations)}"
        ) from None
    if steps < 1:
        raise ValueError(f"{owner}: num_iterations must be an integer >= 1, got {steps!r}")
    key = jax.random.key(0) if key is None else _check_key(owner, key)

    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in leaves:
        dtype = jnp.result_type(leaf) if _is_numeric(leaf) else None
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            where = jax.tree_util.keystr(path) or "params"
            what = _describe(leaf) if dtype is None else str(dtype)
            raise ValueError(
                f"{owner}: params must hold real floating-point arrays only, got {what} at "
                f"{where}; pass the trainable parameters (in flax nnx: nnx.split(model, "
                "nnx.Param, ...)), cast to a float dtype"
            )
    if sum(int(np.size(leaf)) for _, leaf in leaves) == 0:
        raise ValueError(
            f"{owner}: params must hold at least one floating-point number, got "
            f"{_describe(params)}"
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
            f"{owner}: loss_fn(params, batch) must return a real floating-point scalar, "
            f"got {got}"
        )
    return params, dtype, steps, key


def _is_numeric(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, complex))


def _check_key(owner: str, key: Any) -> jax.Array:
    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape == ():
            return key
    elif isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(jnp.asarray(key))
    raise ValueError(
        f"{owner}: key must be a single JAX PRNG key (jax.random.key(0)) or None, got "
        f"{_describe(key)}"
    )


# ------------------------------------------------------------------ the threshold


def _rates(owner: str, opt_state: Any, params: Tree) -> Tree:
    """``effective_learning_rates(opt_state, params)``, with its errors in ``owner``'s name."""
    try:
        rates = lrjax.effective_learning_rates(opt_state, params)
    except ValueError as error:
        message = str(error).removeprefix("effective_learning_rates: ")
        raise ValueError(f"{owner}: {message}") from error
    if isinstance(rates, dict) and jax.tree.structure(rates) != jax.tree.structure(params):
        raise ValueError(
            f"{owner}: the effective learning rates of opt_state do not follow params' "
            f"structure (got rates for {list(rates)})"
        )
    for (path, rate), leaf in zip(
        jax.tree_util.tree_leaves_with_path(rates), jax.tree.leaves(params), strict=True
    ):
        if jnp.shape(rate) != jnp.shape(leaf):
            raise ValueError(
                f"{owner}: the effective learning rates at {jax.tree_util.keystr(path)} have "
                f"shape {jnp.shape(rate)}, params {jnp.shape(leaf)} (a state built under "
                "jax.vmap? call stability under the same vmap)"
            )
    return rates


def _value(owner: str, state: Any, given: dict[str, Any], name: str, default: Any = None):
    """A hyperparameter as the state's most recent update used it: held by the block
    (a number or a schedule's value) or fed by an enclosing ``inject_hyperparams``."""
    held = state.hyperparams
    for source in (held.values, held.scheduled, given):
        if name in source:
            return jnp.asarray(source[name])
    if default is not None:
        return default
    raise ValueError(
        f"{owner}: opt_state's {type(state).__name__} does not hold its {name} (it was passed "
        "to the method as a JAX array, which lrjax uses as given); pass a Python number, a "
        "schedule, or optax.inject_hyperparams to keep it in the state"
    )


def _complement(owner: str, state: Any, given: dict[str, Any], name: str) -> jax.Array:
    """``1 − value``; for a held value to full precision (the state keeps its rounding)."""
    value = _value(owner, state, given, name)
    rounding = state.hyperparams.rounding.get(name + "_rounding")
    if name not in state.hyperparams.values or rounding is None:
        return 1 - value
    return (1 - value) - jnp.asarray(rounding).astype(value.dtype)


def _momentum_threshold(owner: str, state: Any, given: dict[str, Any]) -> jax.Array:
    momentum = _value(owner, state, given, "momentum")
    # An absent dampening is a held zero, which the block leaves out of its state.
    kept = 1 - _value(owner, state, given, "dampening", jnp.zeros([], momentum.dtype))
    return 2 * (1 + momentum) / kept.astype(momentum.dtype)


def _adam_threshold(owner: str, state: Any, given: dict[str, Any]) -> jax.Array:
    b1 = _value(owner, state, given, "b1")
    return (2 + 2 * b1) / _complement(owner, state, given, "b1").astype(b1.dtype)


def _rules() -> tuple[dict[type, Callable[..., jax.Array]], tuple[type, ...]]:
    """The lrjax states that set a threshold, and those that leave it at 2."""
    momentum = {
        lrjax.ScaleByMomentumState: _momentum_threshold,
        lrjax.ScaleByAdamState: _adam_threshold,
        lrjax.ScaleByAmsgradState: _adam_threshold,
    }
    plain = (
        lrjax.ScaleByRmsState,
        lrjax.ScaleByCenteredRmsState,
        lrjax.ScaleByAdagradState,
        lrjax.ScaleByAdadeltaState,
        lrjax.DoGState,
        lrjax.LDoGState,
    )
    return momentum, plain


def _unknown(node: Any) -> str | None:
    """The name of a state whose dynamics this module has no threshold for."""
    lr_free = (
        lrjax.DAdaptAdamState,
        lrjax.DAdaptSGDState,
        lrjax.ProdigyState,
        lrjax.ScheduleFreeSGDState,
        lrjax.ScheduleFreeAdamWState,
    )
    if isinstance(node, lr_free):
        return f"lrjax.{type(node).__name__}"
    names = (
        "ScaleByAdamState ScaleByAmsgradState ScaleByRmsState ScaleByRStdDevState "
        "ScaleByRssState TraceState ScaleByBeliefState ScaleByLionState EmaState "
        "ScaleByNovogradState ScaleBySM3State ScaleByAdaDeltaState"
    ).split()
    foreign = tuple(getattr(optax, name) for name in names if hasattr(optax, name))
    if isinstance(node, foreign):
        return f"optax.{type(node).__name__}"
    return None


def _thresholds(owner: str, tree: Any, given: dict[str, Any]):
    """The thresholds of the momentum-type states found outside any ``optax.partition``,
    and those of each partition group."""
    momentum, plain = _rules()
    found: list[jax.Array] = []
    groups: list[list[jax.Array]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, optax.InjectStatefulHyperparamsState):
            inner, inner_groups = _thresholds(
                owner, node.inner_state, {**given, **node.hyperparams}
            )
            found.extend(inner)
            groups.extend(inner_groups)
            return True
        if isinstance(node, optax.transforms.PartitionState):
            for inner_state in node.inner_states.values():
                inner, inner_groups = _thresholds(owner, inner_state, given)
                groups.extend([inner + g for g in inner_groups] if inner_groups else [inner])
            return True
        if type(node) in momentum:
            found.append(momentum[type(node)](owner, node, given))
            return True
        if isinstance(node, plain):
            return True
        name = _unknown(node)
        if name is not None:
            raise ValueError(
                f"{owner}: no stability threshold is derived for {name} (its step is not "
                "a fixed linear recurrence on a quadratic); lrjax.stability covers "
                "lrjax's SGD, momentum, Adam, AMSGrad, RMSprop, Adagrad, Adadelta and DoG"
            )
        return False

    jax.tree_util.tree_flatten(tree, is_leaf=visit)
    return found, groups


def _threshold(owner: str, opt_state: Any, dtype) -> jax.Array:
    found, groups = _thresholds(owner, opt_state, {})
    values = []
    for group in [found + g for g in groups] if groups else [found]:
        if len(group) > 1:
            raise ValueError(
                f"{owner}: opt_state holds {len(group)} momentum buffers (heavy-ball or Adam "
                "moments) acting on the same parameters; no threshold is derived for "
                "stacked momentum"
            )
        values.append(group[0].astype(dtype) if group else jnp.asarray(2, dtype))
    threshold = values[0]
    for value in values[1:]:
        threshold = jnp.minimum(threshold, value)
    return threshold
