"""Hypergradient descent: learning the global learning rate online."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _blocks, _hyperparams, _numerics, _tree
from lrjax._methods._adam import adam_direction
from lrjax._registry import register_rate_factor
from lrjax._validation import default, show


class HypergradientState(NamedTuple):
    """State of :func:`hypergradient`.

    ``learning_rate`` is α_t, the rate the most recent update applied (before any
    update: α_0); ``direction`` is d_{t−1}, the direction that update applied;
    ``inner_state`` is the direction transformation's state.
    """

    count: jax.Array
    learning_rate: jax.Array
    direction: optax.Updates
    inner_state: Any
    hyperparams: _hyperparams.HyperparamsState


register_rate_factor(HypergradientState, lambda state: state.learning_rate)


def hypergradient(
    direction: optax.GradientTransformation,
    learning_rate: float | jax.Array,
    hyper_lr: float | jax.Array,
) -> optax.GradientTransformationExtraArgs:
    """Hypergradient descent (Baydin et al., 2018): the rate learns itself online.

    .. math::

        h_t = \\frac{\\partial J(\\theta_{t-1})}{\\partial \\alpha}
            = -g_t \\cdot d_{t-1}, \\qquad
        \\alpha_t = \\alpha_{t-1} - \\beta\\, h_t = \\alpha_{t-1} + \\beta\\, g_t \\cdot d_{t-1}

        \\theta_t = \\theta_{t-1} - \\alpha_t\\, d_t

    where ``g_t`` is the incoming gradient, ``d_t`` the direction that ``direction``
    makes of it, and the dot product runs over the whole parameter tree. Since
    ``θ_{t−1} = θ_{t−2} − α d_{t−1}``, the derivative of the loss with respect to the
    rate is ``−g_t · d_{t−1}``: consecutive directions that agree raise the rate,
    directions that reverse (overshooting) lower it. With ``d_0 = 0`` the first update
    uses ``α_0``. Costs one extra parameter-sized buffer (``d_{t−1}``) and one dot
    product per step. As in the paper, α is not clipped: it can shrink to zero or below.

    Args:
      direction: the transformation that makes the direction, e.g. ``optax.identity()``
        (SGD-HD) or :func:`lrjax.scale_by_adam` (Adam-HD).
      learning_rate: the initial rate α_0 >= 0.
      hyper_lr: the hypergradient learning rate β >= 0.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; :func:`lrjax.current_learning_rate`
      reports α_t.

    References:
      Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation
      with Hypergradient Descent", ICLR 2018, https://arxiv.org/abs/1703.04782
    """
    owner = "hypergradient"
    if not isinstance(direction, optax.GradientTransformation):
        raise ValueError(
            f"{owner}: direction must be an optax.GradientTransformation (e.g. "
            f"optax.identity() or lrjax.scale_by_adam()), got {show(direction)}"
        )
    return _hypergradient(owner, direction, learning_rate, hyper_lr)


def _hypergradient(owner: str, direction, learning_rate, hyper_lr):
    if callable(learning_rate):
        raise ValueError(
            f"{owner}: learning_rate must be a number or an array (the initial rate "
            f"α_0, which the method then learns), got the schedule {show(learning_rate)}"
        )
    hp = _hyperparams.check_hyperparams(owner, learning_rate=learning_rate, hyper_lr=hyper_lr)
    learning_rate = hp["learning_rate"]
    hyperparams = _hyperparams.Hyperparams(hyper_lr=hp["hyper_lr"])
    direction = optax.with_extra_args_support(direction)

    def init_fn(params: optax.Params) -> HypergradientState:
        return HypergradientState(
            count=_tree.zeros_count(),
            learning_rate=_numerics.fresh(learning_rate, _numerics.default_float()),
            direction=_tree.full_like(params, 0),
            inner_state=direction.init(params),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        hp = hyperparams.read(state.hyperparams, state.count)
        dtype = state.learning_rate.dtype
        products = jax.tree.map(
            lambda g, d: jnp.vdot(g.astype(dtype), d.astype(dtype)), updates, state.direction
        )
        h = _numerics.tree_sum(products, dtype)
        learning_rate = state.learning_rate + _numerics.cast(hp.value("hyper_lr"), dtype) * h
        new_direction, inner_state = direction.update(
            updates, state.inner_state, params, **extra_args
        )
        new_state = HypergradientState(
            count=_tree.increment(state.count),
            learning_rate=learning_rate,
            direction=_tree.cast_like(new_direction, state.direction),
            inner_state=inner_state,
            hyperparams=hp.state,
        )
        return _blocks.scale_tree(new_direction, -learning_rate), new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))


def sgd_hd(
    learning_rate: float | jax.Array = default(1e-3),
    *,
    hyper_lr: float | jax.Array = default(1e-3),
) -> optax.GradientTransformationExtraArgs:
    """SGD-HD: gradient descent whose rate follows the hypergradient.

    ``θ_t = θ_{t−1} − α_t g_t`` with ``α_t = α_{t−1} + β g_t·g_{t−1}``. The defaults are
    the paper's (α_0 = 0.001, β = 0.001).

    Args:
      learning_rate: the initial rate α_0.
      hyper_lr: β.

    Returns:
      ``hypergradient(optax.identity(), learning_rate, hyper_lr)``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.sgd_hd(1e-3, hyper_lr=1e-2)
      >>> params = jnp.array([3.0]); state = tx.init(params)
      >>> for _ in range(20):
      ...     updates, state = tx.update(params, state)  # J = θ²/2, the gradient is θ
      ...     params = optax.apply_updates(params, updates)
      >>> bool(lrjax.current_learning_rate(state) > 1e-3)  # aligned gradients raise the rate
      True

    References:
      Baydin et al., ICLR 2018, https://arxiv.org/abs/1703.04782
    """
    return _hypergradient("sgd_hd", optax.identity(), learning_rate, hyper_lr)


def adam_hd(
    learning_rate: float | jax.Array = default(1e-3),
    *,
    hyper_lr: float | jax.Array = default(1e-7),
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
) -> optax.GradientTransformationExtraArgs:
    """Adam-HD: Adam whose global rate follows the hypergradient.

    ``d_t`` is Adam's bias-corrected direction ``m̂_t / (√v̂_t + ε)`` (torch's form, as
    :func:`lrjax.scale_by_adam`), and ``α_t = α_{t−1} + β g_t·d_{t−1}``. The defaults are
    the paper's (α_0 = 0.001, β = 1e-7).

    Args:
      learning_rate: the initial rate α_0.
      hyper_lr: β.
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      eps: ε >= 0.

    Returns:
      ``hypergradient(scale_by_adam(b1, b2, eps), learning_rate, hyper_lr)``.

    References:
      Baydin et al., ICLR 2018, https://arxiv.org/abs/1703.04782
    """
    owner = "adam_hd"
    hp = _hyperparams.check_hyperparams(owner, b1=b1, b2=b2, eps=eps)
    return _hypergradient(owner, adam_direction(**hp, amsgrad=False), learning_rate, hyper_lr)
