"""How close an optimizer is to the edge of stability: the sharpness of the Hessian
preconditioned by the method's per-parameter step sizes, against the method's limit on a
quadratic (Cohen et al. 2021, 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._finding._sharpness import _check, _hvp, _lanczos
from lrjax._inspect import effective_learning_rates
from lrjax._lr_free._dadapt_adam import DAdaptAdamState
from lrjax._lr_free._dadapt_sgd import DAdaptSGDState
from lrjax._lr_free._dog import DoGState, LDoGState
from lrjax._lr_free._prodigy import ProdigyState
from lrjax._lr_free._schedule_free import ScheduleFreeAdamWState, ScheduleFreeSGDState
from lrjax._methods._adadelta import ScaleByAdadeltaState
from lrjax._methods._adagrad import ScaleByAdagradState
from lrjax._methods._adam import ScaleByAdamState, ScaleByAmsgradState
from lrjax._methods._rmsprop import ScaleByCenteredRmsState, ScaleByRmsState
from lrjax._methods._sgd import ScaleByMomentumState

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
    size moves with the iterate, and optax's own directions (both a ``ValueError``); a
    dampening passed to ``lrjax.sgd`` as a JAX array (not held in the state: read as 0).

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
      >>> state = lrjax.sgd(0.375, momentum=0.5).init(params)
      >>> result = lrjax.stability(loss_fn, params, batch, state)
      >>> result.sharpness, result.threshold, result.ratio  # 0.375 · 4 = 1.5 of 2(1 + 0.5)
      (Array(1.5, dtype=float32), Array(3., dtype=float32), Array(0.5, dtype=float32))

    References:
      Cohen et al., 2021, https://arxiv.org/abs/2103.00065 (GD, heavy-ball);
      Cohen et al., 2022, "Adaptive Gradient Methods at the Edge of Stability",
      https://arxiv.org/abs/2207.14484 (Adam's preconditioned sharpness and threshold).
    """
    owner = "stability"
    params, dtype, num_iterations, key = _check(owner, loss_fn, params, batch, num_iterations, key)
    rates = _rates(owner, opt_state, params)
    threshold = _threshold(owner, opt_state, dtype)
    root = jax.tree.map(lambda e: jnp.sqrt(jnp.asarray(e).astype(dtype)), rates)
    value = _lanczos(_hvp(loss_fn, params, batch, dtype, root), params, dtype, num_iterations, key)
    return StabilityResult(value, threshold, value / threshold)


# ------------------------------------------------------------------ the threshold


def _rates(owner: str, opt_state: Any, params: Tree) -> Tree:
    """``effective_learning_rates(opt_state, params)``, with its errors in ``owner``'s name."""
    try:
        rates = effective_learning_rates(opt_state, params)
    except ValueError as error:
        message = str(error).removeprefix("effective_learning_rates: ")
        raise ValueError(f"{owner}: {message}") from error
    if jax.tree.structure(rates) != jax.tree.structure(params):
        raise ValueError(
            f"{owner}: the effective learning rates of opt_state do not have the tree "
            "structure of params (was opt_state initialised from these params?)"
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
        ScaleByMomentumState: _momentum_threshold,
        ScaleByAdamState: _adam_threshold,
        ScaleByAmsgradState: _adam_threshold,
    }
    plain = (
        ScaleByRmsState,
        ScaleByCenteredRmsState,
        ScaleByAdagradState,
        ScaleByAdadeltaState,
        DoGState,
        LDoGState,
    )
    return momentum, plain


# optax's own directions: effective_learning_rates reads lrjax's states only, so the
# rates it reports would leave their preconditioner or momentum out.
_OPTAX_DIRECTIONS = (
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByRmsState",
    "ScaleByRStdDevState",
    "ScaleByRssState",
    "TraceState",
    "ScaleByBeliefState",
    "ScaleByLionState",
    "EmaState",
    "ScaleByNovogradState",
    "ScaleBySM3State",
    "ScaleByAdaDeltaState",
)


def _unmodelled(node: Any) -> str | None:
    """Why no threshold is known for a state, or None."""
    lr_free = (
        DAdaptAdamState,
        DAdaptSGDState,
        ProdigyState,
        ScheduleFreeSGDState,
        ScheduleFreeAdamWState,
    )
    if isinstance(node, lr_free):
        return (
            f"no stability threshold is derived for lrjax.{type(node).__name__} (its step "
            "is no fixed linear recurrence on a quadratic: the step size or the averaging "
            "moves with the iterates)"
        )
    foreign = tuple(getattr(optax, name) for name in _OPTAX_DIRECTIONS if hasattr(optax, name))
    if isinstance(node, foreign):
        return (
            f"no stability threshold is derived for optax.{type(node).__name__}: the "
            "effective learning rates are read from lrjax's states only; build the "
            "optimizer from lrjax's methods"
        )
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
        why = _unmodelled(node)
        if why is not None:
            raise ValueError(f"{owner}: {why}")
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
