"""Adam and AdamW: bias-corrected running averages of the gradient and its square."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _base
from lrjax._base import ScalarOrSchedule


class ScaleByAdamState(NamedTuple):
    """State of :func:`scale_by_adam`: ``mu`` is m (first moment), ``nu`` is v."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    hyperparams: _base.HyperparamsState

    def preconditioner(self) -> optax.Updates:
        """``(1/(1 − β1^t)) / (√(v/(1 − β2^t)) + ε)``: the factor on m of the last update."""
        return _preconditioner(self.count, self.nu, self.hyperparams)


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_adam` with ``amsgrad=True``: ``nu_max`` is max_t v_t."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    nu_max: optax.Updates
    hyperparams: _base.HyperparamsState

    def preconditioner(self) -> optax.Updates:
        """As Adam's, with ``max_t v_t`` in place of v."""
        return _preconditioner(self.count, self.nu_max, self.hyperparams)


def _bias_correction(count: jax.Array, one_minus_beta: jax.Array, dtype) -> jax.Array:
    """``1 − β^t`` for update number ``t = count``, from ``1 − β``.

    As ``−expm1(t · log1p(−(1 − β)))`` it keeps float32's full precision where
    ``1 − β^t`` would cancel (β = 0.999, small t), as torch's float64 does.
    """
    t = count.astype(dtype)
    return -jnp.expm1(t * jnp.log1p(-_base.cast(one_minus_beta, dtype)))


def _denominator(v: jax.Array, sqrt_correction2: jax.Array, eps: jax.Array) -> jax.Array:
    """torch's ``√v / √(1 − β2^t) + ε``, in ``v``'s compute dtype."""
    dtype = _base.compute_dtype(v.dtype)
    return jnp.sqrt(v.astype(dtype)) / _base.cast(sqrt_correction2, dtype) + _base.cast(eps, dtype)


def _preconditioner(count, nu, hp: _base.HyperparamsState) -> optax.Updates:
    # Before any update t = 0 and both corrections are 0: report the first update's factor.
    t = jnp.maximum(count, 1)
    dtype = hp.value("eps").dtype
    correction1 = _bias_correction(t, hp.complement("b1"), dtype)
    sqrt_correction2 = jnp.sqrt(_bias_correction(t, hp.complement("b2"), dtype))

    def rate(v: jax.Array) -> jax.Array:
        denom = _denominator(v, sqrt_correction2, hp.value("eps"))
        return 1 / (_base.cast(correction1, denom.dtype) * denom)

    return jax.tree.map(rate, nu)


def scale_by_adam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
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

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      https://arxiv.org/abs/1412.6980; Reddi, Kale & Kumar, "On the Convergence of Adam
      and Beyond", ICLR 2018, https://openreview.net/forum?id=ryQu7f-RZ
    """
    if not isinstance(amsgrad, bool):
        raise ValueError(f"scale_by_adam: amsgrad must be a bool, got {amsgrad!r}")
    hyperparams = _base.Hyperparams("scale_by_adam", b1=b1, b2=b2, eps=eps)

    def init_fn(params: optax.Params) -> ScaleByAdamState | ScaleByAmsgradState:
        moments = dict(
            count=_base.zeros_count(),
            mu=_base.full_like(params, 0),
            nu=_base.full_like(params, 0),
        )
        if amsgrad:
            return ScaleByAmsgradState(
                **moments, nu_max=_base.full_like(params, 0), hyperparams=hyperparams.init()
            )
        return ScaleByAdamState(**moments, hyperparams=hyperparams.init())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.update(state.hyperparams)
        count = _base.increment(state.count)

        def moments(g: jax.Array, m: jax.Array, v: jax.Array):
            dtype = _base.compute_dtype(g.dtype)
            b2 = _base.cast(hp.value("b2"), dtype)
            one_minus_b1 = _base.cast(hp.complement("b1"), dtype)
            one_minus_b2 = _base.cast(hp.complement("b2"), dtype)
            g, m = g.astype(dtype), m.astype(dtype)
            m = m + one_minus_b1 * (g - m)  # torch's lerp, which rounds differently
            v = b2 * v.astype(dtype) + one_minus_b2 * jnp.square(g)
            return m, v

        # Scalars once per step, in the hyperparameters' float dtype.
        dtype = hp.value("eps").dtype
        correction1 = _bias_correction(count, hp.complement("b1"), dtype)
        correction2 = _bias_correction(count, hp.complement("b2"), dtype)
        sqrt_correction2 = jnp.sqrt(correction2)

        def direction(g: jax.Array, m: jax.Array, v: jax.Array) -> jax.Array:
            dtype = _base.compute_dtype(g.dtype)
            denom = _denominator(v, sqrt_correction2, hp.value("eps"))
            return (m.astype(dtype) / _base.cast(correction1, dtype) / denom).astype(g.dtype)

        mu, nu = _base.unzip(updates, jax.tree.map(moments, updates, state.mu, state.nu), 2)
        mu, nu = _base.cast_like(mu, state.mu), _base.cast_like(nu, state.nu)
        if amsgrad:
            nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
            updates = jax.tree.map(direction, updates, mu, nu_max)
            return updates, ScaleByAmsgradState(count, mu, nu, nu_max, hp)
        updates = jax.tree.map(direction, updates, mu, nu)
        return updates, ScaleByAdamState(count, mu, nu, hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array = 0.0,
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
    _base.check_hyperparams(
        "adam", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    blocks = []
    if not _base.is_zero(weight_decay):
        blocks.append(_base.add_decayed_weights(weight_decay))
    blocks.append(scale_by_adam(b1, b2, eps, amsgrad))
    blocks.append(_base.scale_by_learning_rate(learning_rate))
    return optax.chain(*blocks)


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array = 1e-2,
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
    _base.check_hyperparams(
        "adamw", learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
    blocks = [scale_by_adam(b1, b2, eps, amsgrad)]
    if not _base.is_zero(weight_decay):
        blocks.append(_base.add_decayed_weights(weight_decay))
    blocks.append(_base.scale_by_learning_rate(learning_rate))
    return optax.chain(*blocks)
