"""Adagrad: per-parameter rates from the sum of all squared gradients so far."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from lrjax import _chain, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner
from lrjax._validation import default


class ScaleByAdagradState(NamedTuple):
    """State of :func:`scale_by_adagrad`: ``sum_of_squares`` is Σ g²; ``count`` is the
    number of updates where the update reads it (``lr_decay``, a scheduled
    hyperparameter), else ``optax.EmptyState()``."""

    count: jax.Array | optax.EmptyState
    sum_of_squares: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


def _adagrad_preconditioner(state: ScaleByAdagradState, given: dict[str, Any]) -> optax.Updates:
    """``1 / ((√Σg² + ε)(1 + (t−1)·lr_decay))``: the factor the last update applied."""
    values = _hyperparams.Values(state.hyperparams, given)
    dtype = _numerics.default_float()
    lr_decay = _numerics.cast(values.get("lr_decay", 0.0), dtype)
    # `count` was incremented by the update this factor describes: t - 1 = count - 1.
    decay = jnp.ones([], dtype)
    if isinstance(state.count, jax.Array):  # without lr_decay there may be no counter
        decay = 1 + jnp.maximum(state.count - 1, 0).astype(dtype) * lr_decay

    def rate(s: jax.Array) -> jax.Array:
        dtype = _numerics.compute_dtype(s.dtype)
        std = jnp.sqrt(s.astype(dtype)) + _numerics.cast(values.value("eps"), dtype)
        return 1 / (std * decay.astype(dtype))

    return jax.tree.map(rate, state.sum_of_squares)


register_preconditioner(ScaleByAdagradState, _adagrad_preconditioner)


def scale_by_adagrad(
    *,
    lr_decay: float | jax.Array = default(0.0),
    initial_accumulator_value: float | jax.Array = default(0.0),
    eps: float | jax.Array = default(1e-10),
) -> optax.GradientTransformationExtraArgs:
    """Adagrad's direction (Duchi, Hazan & Singer, 2011), in torch's form.

    .. math::

        G_t = G_{t-1} + g_t^2, \\qquad
        d_t = \\frac{g_t}{(\\sqrt{G_t} + \\epsilon)\\,(1 + (t-1)\\,\\mathrm{lr\\_decay})}

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
    owner = "scale_by_adagrad"
    hp = _hyperparams.check_hyperparams(
        owner, lr_decay=lr_decay, initial_accumulator_value=initial_accumulator_value, eps=eps
    )
    return _tree.as_method(owner, adagrad_direction(**hp))


def adagrad_direction(
    lr_decay, initial_accumulator_value, eps
) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_adagrad` from checked hyperparameters."""
    decays = not _hyperparams.is_zero(lr_decay)
    held = {"eps": eps, **({"lr_decay": lr_decay} if decays else {})}
    hyperparams = _hyperparams.Hyperparams(**held)
    guard = _hyperparams.may_be_zero(eps)
    counts = decays or hyperparams.reads_step

    def init_fn(params: optax.Params) -> ScaleByAdagradState:
        return ScaleByAdagradState(
            count=_tree.count_if(counts),
            sum_of_squares=_tree.full_like(params, initial_accumulator_value),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.read(state.hyperparams, state.count)
        decay = None
        if decays:  # a scalar, computed once per step (not once per leaf)
            dtype = _numerics.default_float()
            decay = 1 + state.count.astype(dtype) * _numerics.cast(hp.value("lr_decay"), dtype)

        # G_t = G_{t-1} + g², d = g / ((√G_t + ε)(1 + (t − 1)·lr_decay))
        sum_of_squares = _numerics.leafwise(
            lambda g, s: lax.add(s, lax.square(g)),
            updates,
            state.sum_of_squares,
            like=state.sum_of_squares,
        )

        def direction(g, s, eps, *decay):
            std = lax.add(lax.sqrt(s), eps)
            return _numerics.safe_divide(g, lax.mul(std, decay[0]) if decay else std, guard)

        scalars = (hp.value("eps"),) if decay is None else (hp.value("eps"), decay)
        updates = _numerics.leafwise(direction, updates, sum_of_squares, scalars=scalars)
        count = _tree.increment(state.count)
        return updates, ScaleByAdagradState(count, sum_of_squares, hp.state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def adagrad(
    learning_rate: ScalarOrSchedule = default(1e-2),
    *,
    lr_decay: float | jax.Array = default(0.0),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    initial_accumulator_value: float | jax.Array = default(0.0),
    eps: float | jax.Array = default(1e-10),
) -> optax.GradientTransformationExtraArgs:
    """Adagrad, identical to ``torch.optim.Adagrad``.

    .. math::

        \\theta_t = \\theta_{t-1} - \\frac{\\eta_t}{1 + (t-1)\\,\\mathrm{lr\\_decay}}\\,
        \\frac{g_t}{\\sqrt{G_t} + \\epsilon}, \\qquad G_t = G_{t-1} + g_t^2

    with ``g_t`` the gradient plus ``weight_decay · θ``.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      lr_decay: torch's ``lr_decay`` >= 0.
      weight_decay: λ >= 0, coupled (added to the gradient).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
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
    owner = "adagrad"
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    direction = adagrad_direction(hp["lr_decay"], hp["initial_accumulator_value"], hp["eps"])
    return _chain.torch_method(owner, hp, [direction], mask=mask)
