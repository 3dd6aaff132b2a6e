"""Adam and AdamW: bias-corrected running averages of the gradient and its square."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from lrjax import _chain, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner
from lrjax._validation import check_flag, default


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`: ``mu`` is m (first moment), ``nu`` is v."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_adam` with ``amsgrad=True``: ``nu_max`` is max_t v_t."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    nu_max: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


def _corrections(count: jax.Array, hp: _hyperparams.Values) -> tuple[jax.Array, jax.Array]:
    """``1 − β1^t`` and ``√(1 − β2^t)``: scalars, computed once per step."""
    dtype = _numerics.default_float()
    correction1 = _numerics.bias_correction(count, hp.complement("b1"), dtype)
    return correction1, jnp.sqrt(_numerics.bias_correction(count, hp.complement("b2"), dtype))


def _rates(count: jax.Array, nu: optax.Updates, hp: _hyperparams.Values) -> optax.Updates:
    """``(1/(1 − β1^t)) / (√(v/(1 − β2^t)) + ε)``: the factor Adam's update puts on m."""
    correction1, sqrt_correction2 = _corrections(count, hp)

    def rate(v: jax.Array) -> jax.Array:
        denom = _numerics.adam_denominator(v, hp.value("eps"), sqrt_correction2=sqrt_correction2)
        return 1 / (_numerics.cast(correction1, denom.dtype) * denom)

    return jax.tree.map(rate, nu)


def _adam_preconditioner(
    state: ScaleByAdamState | ScaleByAmsgradState, given: dict[str, Any]
) -> optax.Updates:
    # Before any update t = 0 and both corrections are 0: report the first update's factor.
    nu = state.nu_max if isinstance(state, ScaleByAmsgradState) else state.nu
    return _rates(jnp.maximum(state.count, 1), nu, _hyperparams.Values(state.hyperparams, given))


def scale_by_adam(
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    amsgrad: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Adam's direction (Kingma & Ba, 2015, Algorithm 1), in torch's form.

    .. math::

        m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\qquad
        v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2

        d_t = \\frac{m_t / (1 - \\beta_1^t)}{\\sqrt{v_t} / \\sqrt{1 - \\beta_2^t} + \\epsilon}

    AMSGrad (Reddi et al., 2018) divides by ``max(v_1 … v_t)``, the maximum of the raw
    (not bias-corrected) second moment, as torch does.

    Args:
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      eps: ε >= 0, added after the bias-corrected square root.
      amsgrad: use the running maximum of v.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.scale_by_adam()
      >>> tx.update(jnp.array([4.0, -0.5]), tx.init(jnp.zeros(2)))[0]  # the first step: ±1
      Array([ 1., -1.], dtype=float32)

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      https://arxiv.org/abs/1412.6980; Reddi, Kale & Kumar, "On the Convergence of Adam
      and Beyond", ICLR 2018, https://openreview.net/forum?id=ryQu7f-RZ
    """
    owner = "scale_by_adam"
    hp = _hyperparams.check_hyperparams(owner, b1=b1, b2=b2, eps=eps)
    direction = adam_direction(**hp, amsgrad=check_flag(owner, "amsgrad", amsgrad))
    return _tree.as_method(owner, direction)


def adam_direction(b1, b2, eps, amsgrad: bool) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_adam` from checked hyperparameters."""
    hyperparams = _hyperparams.Hyperparams(b1=b1, b2=b2, eps=eps)
    guard = _hyperparams.may_be_zero(eps)

    def init_fn(params: optax.Params) -> ScaleByAdamState | ScaleByAmsgradState:
        moments = dict(
            count=_tree.zeros_count(),
            mu=_tree.full_like(params, 0),
            nu=_tree.full_like(params, 0),
        )
        if amsgrad:
            return ScaleByAmsgradState(
                **moments, nu_max=_tree.full_like(params, 0), hyperparams=hyperparams.init()
            )
        return ScaleByAdamState(**moments, hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.read(state.hyperparams, state.count)
        count = _tree.increment(state.count)
        mu = _numerics.lerp_moment(updates, state.mu, hp.complement("b1"))
        nu = _numerics.ema_of_squares(updates, state.nu, hp.value("b2"), hp.complement("b2"))
        nu_hat = jax.tree.map(jnp.maximum, state.nu_max, nu) if amsgrad else nu
        correction1, sqrt_correction2 = _corrections(count, hp)

        def direction(g, m, v, correction1, sqrt_correction2, eps):
            denominator = _numerics.adam_denominator(v, eps, sqrt_correction2=sqrt_correction2)
            return _numerics.safe_divide(lax.div(m, correction1), denominator, guard)

        scalars = (correction1, sqrt_correction2, hp.value("eps"))
        updates = _numerics.leafwise(direction, updates, mu, nu_hat, scalars=scalars)
        if amsgrad:
            return updates, ScaleByAmsgradState(count, mu, nu, nu_hat, hp.state)
        return updates, ScaleByAdamState(count, mu, nu, hp.state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


register_preconditioner(ScaleByAdamState, _adam_preconditioner)
register_preconditioner(ScaleByAmsgradState, _adam_preconditioner)


def adam(
    learning_rate: ScalarOrSchedule = default(1e-3),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    amsgrad: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Adam, identical to ``torch.optim.Adam``; ``weight_decay`` is coupled L2.

    .. math:: \\theta_t = \\theta_{t-1} - \\eta_t\\, d_t

    with ``d_t`` from :func:`scale_by_adam` applied to the gradient plus
    ``weight_decay · θ``. For decoupled weight decay use :func:`adamw`.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      eps: ε >= 0.
      weight_decay: λ >= 0, added to the gradient (L2 regularisation).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
      amsgrad: AMSGrad's running maximum of v.

    Returns:
      ``optax.chain(add_decayed_weights, scale_by_adam, scale_by_learning_rate)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adam(1e-3)
      >>> updates, _ = tx.update(jnp.array([5.0, -0.01]), tx.init(jnp.zeros(2)))
      >>> updates  # the first step is ±η whatever the gradient's scale
      Array([-0.001,  0.001], dtype=float32)

    torch: ``torch.optim.Adam(params, lr, betas=(b1, b2), eps, weight_decay, amsgrad)``.

    References:
      Kingma & Ba, ICLR 2015, https://arxiv.org/abs/1412.6980
    """
    return _adam("adam", learning_rate, b1, b2, eps, weight_decay, mask, amsgrad, decoupled=False)


def adamw(
    learning_rate: ScalarOrSchedule = default(1e-3),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(1e-2),
    mask: Any = None,
    amsgrad: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """AdamW (Loshchilov & Hutter, 2019), identical to ``torch.optim.AdamW``.

    .. math:: \\theta_t = \\theta_{t-1} - \\eta_t\\, (d_t + \\lambda\\, \\theta_{t-1})

    The decay is decoupled from the gradient and multiplied by the rate, as torch's
    ``θ ← θ(1 − ηλ)`` before the Adam step.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      eps: ε >= 0.
      weight_decay: λ >= 0 (torch's default 1e-2).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
      amsgrad: AMSGrad's running maximum of v.

    Returns:
      ``optax.chain(scale_by_adam, add_decayed_weights, scale_by_learning_rate)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adamw(0.1, weight_decay=0.5)
      >>> params = jnp.array([2.0])
      >>> updates, _ = tx.update(jnp.array([0.0]), tx.init(params), params)
      >>> updates  # zero gradient: only the decay, -η·λ·θ
      Array([-0.1], dtype=float32)

    torch: ``torch.optim.AdamW(params, lr, betas=(b1, b2), eps, weight_decay, amsgrad)``.

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
      https://arxiv.org/abs/1711.05101
    """
    return _adam("adamw", learning_rate, b1, b2, eps, weight_decay, mask, amsgrad, decoupled=True)


def _adam(owner, learning_rate, b1, b2, eps, weight_decay, mask, amsgrad, *, decoupled: bool):
    hp = _hyperparams.check_hyperparams(
        owner, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    direction = adam_direction(hp["b1"], hp["b2"], hp["eps"], check_flag(owner, "amsgrad", amsgrad))
    return _chain.torch_method(owner, hp, [direction], mask=mask, decoupled=decoupled)
