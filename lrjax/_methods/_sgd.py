"""Stochastic gradient descent with momentum, as ``torch.optim.SGD`` computes it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from lrjax import _chain, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner
from lrjax._validation import check_flag, default, is_concrete, show


class ScaleByMomentumState(NamedTuple):
    """State of :func:`scale_by_momentum`: ``count`` is the number of updates where the
    update reads it (dampening's first step, a scheduled momentum or dampening), else
    ``optax.EmptyState()``."""

    count: jax.Array | optax.EmptyState
    trace: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


def _momentum_preconditioner(state: ScaleByMomentumState, given: dict[str, Any]) -> optax.Updates:
    """Momentum rescales nothing: the rate applies as is to the momentum gradient."""
    del given
    return jax.tree.map(lambda b: jnp.ones_like(b, _numerics.compute_dtype(b.dtype)), state.trace)


register_preconditioner(ScaleByMomentumState, _momentum_preconditioner)


def scale_by_momentum(
    *,
    momentum: float | jax.Array = default(0.9),
    dampening: float | jax.Array = default(0.0),
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

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.scale_by_momentum(momentum=0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> for _ in range(3):
      ...     updates, state = tx.update(jnp.ones(1), state)
      >>> updates  # 1 + 0.5 (1 + 0.5 · 1)
      Array([1.75], dtype=float32)
    """
    owner = "scale_by_momentum"
    hp = _hyperparams.check_hyperparams(owner, momentum=momentum, dampening=dampening)
    nesterov = _check_nesterov(owner, hp["momentum"], hp["dampening"], nesterov)
    return _tree.as_method(owner, momentum_direction(hp["momentum"], hp["dampening"], nesterov))


def momentum_direction(
    momentum, dampening, nesterov: bool
) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_momentum` from checked hyperparameters."""
    # A held zero dampening leaves its multiply out of the program (and out of the state:
    # set_hyperparams cannot then turn on a term the compiled step does not have).
    undamped = _hyperparams.is_zero(dampening)
    held = {"momentum": momentum, **({} if undamped else {"dampening": dampening})}
    hyperparams = _hyperparams.Hyperparams(**held)
    counts = not undamped or hyperparams.reads_step

    def init_fn(params: optax.Params) -> ScaleByMomentumState:
        return ScaleByMomentumState(
            count=_tree.count_if(counts),
            trace=_tree.full_like(params, 0),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.read(state.hyperparams, state.count)
        momentum = hp.value("momentum")
        # The buffer starts at zero, so damping nothing on the first step copies g_1.
        # Without dampening that needs nothing at all: b_1 = μ·0 + g_1.
        take = None
        if not undamped:  # a scalar, computed once per step (not once per leaf)
            take = jnp.where(state.count == 0, 1, 1 - hp.value("dampening"))
            take = take.astype(_numerics.default_float())

        # b_t = μ b_{t-1} + (1 − τ) g_t; Nesterov: d_t = g_t + μ b_t, else d_t = b_t
        if take is None:
            trace = _numerics.leafwise(
                lambda g, b, mu: lax.add(lax.mul(mu, b), g),  # μ b + g
                updates,
                state.trace,
                scalars=(momentum,),
                like=state.trace,
            )
        else:
            trace = _numerics.leafwise(
                lambda g, b, mu, take: lax.add(lax.mul(mu, b), lax.mul(take, g)),  # μ b + τ' g
                updates,
                state.trace,
                scalars=(momentum, take),
                like=state.trace,
            )
        if nesterov:
            updates = _numerics.leafwise(
                lambda g, b, mu: lax.add(g, lax.mul(mu, b)),  # g + μ b
                updates,
                trace,
                scalars=(momentum,),
            )
        else:
            updates = jax.tree.map(lambda g, b: _numerics.in_dtype(b, g.dtype), updates, trace)
        new_state = ScaleByMomentumState(_tree.increment(state.count), trace, hp.state)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sgd(
    learning_rate: ScalarOrSchedule = default(1e-3),
    *,
    momentum: float | jax.Array = default(0.0),
    dampening: float | jax.Array = default(0.0),
    nesterov: bool = False,
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
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
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).

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
    owner = "sgd"
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
    )
    nesterov = _check_nesterov(owner, hp["momentum"], hp["dampening"], nesterov)
    directions = []
    if not _hyperparams.is_zero(hp["momentum"]):
        directions.append(momentum_direction(hp["momentum"], hp["dampening"], nesterov))
    return _chain.torch_method(owner, hp, directions, mask=mask)


def _check_nesterov(owner: str, momentum, dampening, nesterov: Any) -> bool:
    nesterov = check_flag(owner, "nesterov", nesterov)
    # A schedule's or tracer's value is unknown here (a schedule is checked by its own
    # constructor).
    if not nesterov or callable(momentum) or callable(dampening):
        return nesterov
    if is_concrete((momentum, dampening)) and not (float(momentum) > 0 and float(dampening) == 0):
        raise ValueError(
            f"{owner}: nesterov requires momentum > 0 and dampening 0, "
            f"got momentum={show(momentum)}, dampening={show(dampening)}"
        )
    return nesterov
