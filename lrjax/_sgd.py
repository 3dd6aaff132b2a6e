"""Stochastic gradient descent with momentum, as ``torch.optim.SGD`` computes it."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _base
from lrjax._base import ScalarOrSchedule


class ScaleByMomentumState(NamedTuple):
    """State of :func:`scale_by_momentum`."""

    count: jax.Array
    trace: optax.Updates
    hyperparams: _base.HyperparamsState

    def preconditioner(self) -> optax.Updates:
        """Momentum rescales nothing: the rate applies as is to the momentum gradient."""
        return jax.tree.map(lambda b: jnp.ones_like(b, _base.compute_dtype(b.dtype)), self.trace)


def scale_by_momentum(
    momentum: float | jax.Array = 0.9,
    dampening: float | jax.Array = 0.0,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Heavy-ball momentum (Polyak 1964), in torch's form.

    .. math::

        b_1 = g_1, \\qquad b_t = \\mu\\, b_{t-1} + (1 - \\tau)\\, g_t \\quad (t > 1)

        d_t = b_t \\quad\\text{or, with nesterov,}\\quad d_t = g_t + \\mu\\, b_t

    The first step copies the gradient, dampening included, as ``torch.optim.SGD`` does
    (optax's ``trace`` starts from zero instead, which differs when dampening > 0).
    RMSprop's momentum is this block with dampening 0 applied to the preconditioned
    gradient.

    Args:
      momentum: the momentum factor μ in [0, 1].
      dampening: τ in [0, 1]; the share of the gradient held back from the buffer.
      nesterov: Nesterov's look-ahead (Sutskever et al., 2013); needs momentum > 0 and
        dampening 0.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Polyak, 1964, https://doi.org/10.1016/0041-5553(64)90137-5;
      Sutskever et al., 2013, https://proceedings.mlr.press/v28/sutskever13.html
    """
    _check_nesterov("scale_by_momentum", momentum, dampening, nesterov)
    # A held zero dampening leaves its multiply out of the program (and out of the state:
    # set_hyperparams cannot then turn on a term the compiled step does not have).
    undamped = _base.is_zero(dampening)
    held = {"momentum": momentum, **({} if undamped else {"dampening": dampening})}
    hyperparams = _base.Hyperparams("scale_by_momentum", **held)

    def init_fn(params: optax.Params) -> ScaleByMomentumState:
        return ScaleByMomentumState(
            count=_base.zeros_count(),
            trace=_base.full_like(params, 0),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.update(state.hyperparams)
        momentum = hp.value("momentum")
        # The buffer starts at zero, so damping nothing on the first step copies g_1.
        # Without dampening that needs nothing at all: b_1 = μ·0 + g_1.
        take = None
        if not undamped:  # a scalar, computed once per step (not once per leaf)
            take = jnp.where(state.count == 0, 1, 1 - hp.value("dampening"))
            take = take.astype(momentum.dtype)

        def new_trace(g: jax.Array, b: jax.Array) -> jax.Array:
            dtype = _base.compute_dtype(g.dtype)
            g = g.astype(dtype) if take is None else _base.cast(take, dtype) * g.astype(dtype)
            return (_base.cast(momentum, dtype) * b.astype(dtype) + g).astype(b.dtype)

        trace = jax.tree.map(new_trace, updates, state.trace)
        if nesterov:

            def look_ahead(g: jax.Array, b: jax.Array) -> jax.Array:
                dtype = _base.compute_dtype(g.dtype)
                mu = _base.cast(momentum, dtype)
                return (g.astype(dtype) + mu * b.astype(dtype)).astype(g.dtype)

            updates = jax.tree.map(look_ahead, updates, trace)
        else:
            updates = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, trace)
        new_state = ScaleByMomentumState(_base.increment(state.count), trace, hp)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    momentum: float | jax.Array = 0.0,
    dampening: float | jax.Array = 0.0,
    nesterov: bool = False,
    weight_decay: float | jax.Array = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Stochastic gradient descent, ``θ ← θ − η d``, identical to ``torch.optim.SGD``.

    .. math::

        g_t \\leftarrow \\nabla J(\\theta_{t-1}) + \\lambda\\,\\theta_{t-1}, \\qquad
        \\theta_t = \\theta_{t-1} - \\eta_t\\, d_t

    with ``d_t = g_t`` or, when momentum > 0, the :func:`scale_by_momentum` direction.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      momentum: μ in [0, 1]; 0 leaves the momentum buffer out.
      dampening: τ in [0, 1] (torch's ``dampening``).
      nesterov: Nesterov momentum; needs momentum > 0 and dampening 0.
      weight_decay: λ >= 0, coupled (added to the gradient) as in torch.

    Returns:
      ``optax.chain(add_decayed_weights, scale_by_momentum, scale_by_learning_rate)``,
      with the blocks a held zero switches off left out.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.sgd(0.1, momentum=0.9)
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, state = tx.update(params, tx.init(params))  # gradient of |θ|²/2 is θ
      >>> optax.apply_updates(params, updates)
      Array([ 0.9, -1.8], dtype=float32)

    torch: ``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)``.
    """
    _base.check_hyperparams(
        "sgd",
        learning_rate=learning_rate,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
    )
    _check_nesterov("sgd", momentum, dampening, nesterov)
    blocks = []
    if not _base.is_zero(weight_decay):
        blocks.append(_base.add_decayed_weights(weight_decay))
    if not _base.is_zero(momentum):
        blocks.append(scale_by_momentum(momentum, dampening, nesterov))
    blocks.append(_base.scale_by_learning_rate(learning_rate))
    return optax.chain(*blocks)


def _check_nesterov(owner: str, momentum, dampening, nesterov: bool) -> None:
    if not isinstance(nesterov, bool):
        raise ValueError(f"{owner}: nesterov must be a bool, got {nesterov!r}")
    if not nesterov or not _base.is_concrete((momentum, dampening)):
        return
    if np.min(np.asarray(momentum)) <= 0 or np.max(np.asarray(dampening)) != 0:
        raise ValueError(
            f"{owner}: nesterov requires momentum > 0 and dampening 0, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
