"""Adagrad: per-parameter rates from the sum of all squared gradients so far."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _base
from lrjax._base import ScalarOrSchedule


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`: ``sum_of_squares`` is Σ g²."""

    count: jax.Array
    sum_of_squares: optax.Updates
    hyperparams: _base.HyperparamsState

    def preconditioner(self) -> optax.Updates:
        """``1 / ((√Σg² + ε)(1 + (t−1)·lr_decay))``: the factor the last update applied."""
        hp = self.hyperparams.as_dict()
        lr_decay = _base.cast(hp.get("lr_decay", 0.0), jnp.float32)
        # `count` was incremented by the update this factor describes: t - 1 = count - 1.
        decay = 1 + jnp.maximum(self.count - 1, 0).astype(jnp.float32) * lr_decay

        def rate(s: jax.Array) -> jax.Array:
            dtype = _base.compute_dtype(s.dtype)
            std = jnp.sqrt(s.astype(dtype)) + _base.cast(hp["eps"], dtype)
            return 1 / (std * decay.astype(dtype))

        return jax.tree.map(rate, self.sum_of_squares)


def scale_by_adagrad(
    lr_decay: float | jax.Array = 0.0,
    initial_accumulator_value: float | jax.Array = 0.0,
    eps: float | jax.Array = 1e-10,
) -> optax.GradientTransformationExtraArgs:
    """Adagrad's direction (Duchi, Hazan & Singer, 2011), in torch's form.

    .. math::

        G_t = G_{t-1} + g_t^2, \\qquad
        d_t = \\frac{g_t}{(\\sqrt{G_t} + \\epsilon)\\,(1 + (t-1)\\,\\text{lr\\_decay})}

    ε is added outside the square root and ``G_0 = initial_accumulator_value``, as in
    ``torch.optim.Adagrad`` (optax's adagrad puts ε inside the root and starts at 0.1).
    Because G only grows, every parameter's rate only shrinks.

    Args:
      lr_decay: torch's ``lr_decay``: the rate is divided by ``1 + (t−1)·lr_decay``.
      initial_accumulator_value: G_0 >= 0.
      eps: ε >= 0.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
      Stochastic Optimization", JMLR 2011, https://jmlr.org/papers/v12/duchi11a.html
    """
    _base.check_hyperparam(
        "scale_by_adagrad", "initial_accumulator_value", initial_accumulator_value
    )
    decays = not _base.is_zero(lr_decay)
    held = {"eps": eps, **({"lr_decay": lr_decay} if decays else {})}
    hyperparams = _base.Hyperparams("scale_by_adagrad", **held)

    def init_fn(params: optax.Params) -> ScaleByAdagradState:
        return ScaleByAdagradState(
            count=_base.zeros_count(),
            sum_of_squares=_base.full_like(params, initial_accumulator_value),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.update(state.hyperparams)
        decay = None
        if decays:  # a scalar, computed once per step (not once per leaf)
            decay = 1 + state.count.astype(jnp.float32) * _base.cast(
                hp.value("lr_decay"), jnp.float32
            )

        def accumulate(g: jax.Array, s: jax.Array) -> jax.Array:
            dtype = _base.compute_dtype(g.dtype)
            return (s.astype(dtype) + jnp.square(g.astype(dtype))).astype(s.dtype)

        def direction(g: jax.Array, s: jax.Array) -> jax.Array:
            dtype = _base.compute_dtype(g.dtype)
            std = jnp.sqrt(s.astype(dtype)) + _base.cast(hp.value("eps"), dtype)
            if decay is not None:
                std = std * decay.astype(dtype)
            return (g.astype(dtype) / std).astype(g.dtype)

        sum_of_squares = jax.tree.map(accumulate, updates, state.sum_of_squares)
        updates = jax.tree.map(direction, updates, sum_of_squares)
        count = _base.increment(state.count)
        return updates, ScaleByAdagradState(count, sum_of_squares, hp)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    lr_decay: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    initial_accumulator_value: float | jax.Array = 0.0,
    eps: float | jax.Array = 1e-10,
) -> optax.GradientTransformationExtraArgs:
    """Adagrad, identical to ``torch.optim.Adagrad``.

    .. math::

        \\theta_t = \\theta_{t-1} - \\frac{\\eta_t}{1 + (t-1)\\,\\text{lr\\_decay}}\\,
        \\frac{g_t}{\\sqrt{G_t} + \\epsilon}, \\qquad G_t = G_{t-1} + g_t^2

    with ``g_t`` the gradient plus ``weight_decay · θ``.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      lr_decay: torch's ``lr_decay`` >= 0.
      weight_decay: λ >= 0, coupled (added to the gradient).
      initial_accumulator_value: G_0 >= 0.
      eps: ε >= 0, outside the square root.

    Returns:
      ``optax.chain(add_decayed_weights, scale_by_adagrad, scale_by_learning_rate)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adagrad(0.1)
      >>> updates, _ = tx.update(jnp.array([3.0, -0.5]), tx.init(jnp.zeros(2)))
      >>> updates  # the first step moves every parameter by the rate, whatever its gradient
      Array([-0.1,  0.1], dtype=float32)

    torch: ``torch.optim.Adagrad(params, lr, lr_decay, weight_decay,
    initial_accumulator_value, eps)``.

    References:
      Duchi, Hazan & Singer, JMLR 2011, https://jmlr.org/papers/v12/duchi11a.html
    """
    _base.check_hyperparams(
        "adagrad",
        learning_rate=learning_rate,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    blocks = []
    if not _base.is_zero(weight_decay):
        blocks.append(_base.add_decayed_weights(weight_decay))
    blocks.append(scale_by_adagrad(lr_decay, initial_accumulator_value, eps))
    blocks.append(_base.scale_by_learning_rate(learning_rate))
    return optax.chain(*blocks)
