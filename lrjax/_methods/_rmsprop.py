"""RMSprop: per-parameter rates from a running average of squared gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax
from jax import lax

from lrjax import _chain, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._methods._sgd import momentum_direction
from lrjax._registry import register_preconditioner
from lrjax._validation import check_flag, default


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms`: ``square_avg`` is E[g²]; ``count`` is the number
    of updates where a scheduled α or ε reads it, else ``optax.EmptyState()``."""

    count: jax.Array | optax.EmptyState
    square_avg: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


class ScaleByCenteredRmsState(NamedTuple):
    """State of :func:`scale_by_rms` with ``centered=True``: ``grad_avg`` is E[g]."""

    count: jax.Array | optax.EmptyState
    square_avg: optax.Updates
    grad_avg: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


def _rms_preconditioner(
    state: ScaleByRmsState | ScaleByCenteredRmsState, given: dict[str, Any]
) -> optax.Updates:
    """``1 / (√E[g²] + ε)``, centered: ``1 / (√(E[g²] − E[g]²) + ε)``."""
    eps = _hyperparams.Values(state.hyperparams, given).value("eps")
    if isinstance(state, ScaleByCenteredRmsState):
        return jax.tree.map(lambda v, m: 1 / _std(v, m, eps), state.square_avg, state.grad_avg)
    return jax.tree.map(lambda v: 1 / _std(v, None, eps), state.square_avg)


register_preconditioner(ScaleByRmsState, _rms_preconditioner)
register_preconditioner(ScaleByCenteredRmsState, _rms_preconditioner)


def _std(v: jax.Array, m: jax.Array | None, eps: jax.Array) -> jax.Array:
    """``√(v − m²) + ε`` (or ``√v + ε``) in the compute dtype: ε outside the root, as torch."""
    dtype = _numerics.compute_dtype(v.dtype)
    variance = _numerics.in_dtype(v, dtype)
    if m is not None:
        variance = lax.sub(variance, lax.square(_numerics.in_dtype(m, dtype)))
    return lax.add(lax.sqrt(variance), _numerics.cast(eps, dtype))


def scale_by_rms(
    *,
    decay: float | jax.Array = default(0.99),
    eps: float | jax.Array = default(1e-8),
    centered: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """RMSprop's direction (Tieleman & Hinton, 2012), in torch's form.

    .. math::

        E[g^2]_t = \\alpha\\, E[g^2]_{t-1} + (1 - \\alpha)\\, g_t^2, \\qquad
        d_t = \\frac{g_t}{\\sqrt{E[g^2]_t} + \\epsilon}

    Centered (Graves, 2013): ``E[g]_t = α E[g]_{t-1} + (1 − α) g_t`` and the root is of
    ``E[g²]_t − E[g]_t²``. ε is outside the root and both averages start at zero, as in
    ``torch.optim.RMSprop`` (optax's rmsprop puts ε inside the root).

    Args:
      decay: α in [0, 1) (torch's ``alpha``).
      eps: ε >= 0.
      centered: divide by an estimate of the gradient's standard deviation instead of
        its root mean square.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Tieleman & Hinton, Lecture 6.5 of "Neural Networks for Machine Learning", 2012;
      Graves, "Generating Sequences With Recurrent Neural Networks", 2013,
      https://arxiv.org/abs/1308.0850
    """
    owner = "scale_by_rms"
    hp = _hyperparams.check_hyperparams(owner, decay=decay, eps=eps)
    direction = rms_direction(**hp, centered=check_flag(owner, "centered", centered))
    return _tree.as_method(owner, direction)


def rms_direction(decay, eps, centered: bool) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_rms` from checked hyperparameters."""
    hyperparams = _hyperparams.Hyperparams(decay=decay, eps=eps)
    guard = _hyperparams.may_be_zero(eps)

    def init_fn(params: optax.Params) -> ScaleByRmsState | ScaleByCenteredRmsState:
        count = _tree.count_if(hyperparams.reads_step)
        square_avg = _tree.full_like(params, 0)
        if centered:
            grad_avg = _tree.full_like(params, 0)
            return ScaleByCenteredRmsState(count, square_avg, grad_avg, hyperparams.init())
        return ScaleByRmsState(count, square_avg, hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.read(state.hyperparams, state.count)

        alpha, one_minus_alpha, eps = hp.value("decay"), hp.complement("decay"), hp.value("eps")
        square_avg = _numerics.ema_of_squares(updates, state.square_avg, alpha, one_minus_alpha)
        count = _tree.increment(state.count)
        if centered:
            grad_avg = _numerics.lerp_moment(updates, state.grad_avg, one_minus_alpha)
            stds = jax.tree.map(lambda v, m: _std(v, m, eps), square_avg, grad_avg)
            new_state = ScaleByCenteredRmsState(count, square_avg, grad_avg, hp.state)
        else:
            stds = jax.tree.map(lambda v: _std(v, None, eps), square_avg)
            new_state = ScaleByRmsState(count, square_avg, hp.state)
        updates = jax.tree.map(
            lambda g, s: _numerics.in_dtype(
                _numerics.safe_divide(_numerics.in_dtype(g, s.dtype), s, guard), g.dtype
            ),
            updates,
            stds,
        )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def rmsprop(
    learning_rate: ScalarOrSchedule = default(1e-2),
    *,
    decay: float | jax.Array = default(0.99),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    momentum: float | jax.Array = default(0.0),
    centered: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """RMSprop, identical to ``torch.optim.RMSprop``.

    .. math::

        b_t = \\mu\\, b_{t-1} + \\frac{g_t}{\\sqrt{E[g^2]_t} + \\epsilon}, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta_t\\, b_t

    (``b_t`` is the preconditioned gradient itself when momentum is 0). Momentum acts on
    the preconditioned gradient, before the rate, as in torch.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      decay: α in [0, 1) (torch's ``alpha``, default 0.99).
      eps: ε >= 0, outside the square root.
      weight_decay: λ >= 0, coupled (added to the gradient).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
      momentum: μ in [0, 1]; 0 leaves the momentum buffer out.
      centered: normalise by the gradient's estimated standard deviation.

    Returns:
      ``optax.chain(add_decayed_weights, scale_by_rms, scale_by_momentum,
      scale_by_learning_rate)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.rmsprop(0.01)
      >>> updates, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
      >>> float(updates[0])  # 0.01 · 2 / (√(0.01 · 4) + 1e-8) = 0.1
      -0.1...

    torch: ``torch.optim.RMSprop(params, lr, alpha, eps, weight_decay, momentum,
    centered)``.
    """
    owner = "rmsprop"
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        decay=decay,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
    )
    directions = [rms_direction(hp["decay"], hp["eps"], check_flag(owner, "centered", centered))]
    if not _hyperparams.is_zero(hp["momentum"]):
        directions.append(momentum_direction(hp["momentum"], 0.0, nesterov=False))
    return _chain.torch_method(owner, hp, directions, mask=mask)
