"""Adadelta: rates from the ratio of recent update and gradient magnitudes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from lrjax import _chain, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner
from lrjax._validation import default


class ScaleByAdadeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`, named after the paper.

    ``square_avg`` is E[g²] and ``acc_delta`` is E[Δx²] (torch's names); ``count`` is
    the number of updates where a scheduled ρ or ε reads it, else ``optax.EmptyState()``.
    """

    count: jax.Array | optax.EmptyState
    square_avg: optax.Updates
    acc_delta: optax.Updates
    hyperparams: _hyperparams.HyperparamsState


def _adadelta_preconditioner(state: ScaleByAdadeltaState, given: dict[str, Any]) -> optax.Updates:
    """``√(E[Δx²] + ε) / √(E[g²] + ε)`` from the current accumulators."""
    eps = _hyperparams.Values(state.hyperparams, given).value("eps")

    def rate(v: jax.Array, u: jax.Array) -> jax.Array:
        dtype = _numerics.compute_dtype(v.dtype)
        e = _numerics.cast(eps, dtype)
        return jnp.sqrt(u.astype(dtype) + e) / jnp.sqrt(v.astype(dtype) + e)

    return jax.tree.map(rate, state.square_avg, state.acc_delta)


register_preconditioner(ScaleByAdadeltaState, _adadelta_preconditioner)


def scale_by_adadelta(
    *,
    rho: float | jax.Array = default(0.9),
    eps: float | jax.Array = default(1e-6),
) -> optax.GradientTransformationExtraArgs:
    """Adadelta's direction (Zeiler, 2012, Algorithm 1), in torch's form.

    .. math::

        E[g^2]_t = \\rho\\, E[g^2]_{t-1} + (1 - \\rho)\\, g_t^2

        \\Delta x_t = \\frac{\\sqrt{E[\\Delta x^2]_{t-1} + \\epsilon}}
                           {\\sqrt{E[g^2]_t + \\epsilon}}\\, g_t

        E[\\Delta x^2]_t = \\rho\\, E[\\Delta x^2]_{t-1} + (1 - \\rho)\\, \\Delta x_t^2

    The paper applies ``Δx`` with unit rate; torch (and lrjax) multiply it by ``lr``.

    Args:
      rho: the decay ρ in [0, 1] of both running averages.
      eps: ε >= 0, inside both square roots.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012,
      https://arxiv.org/abs/1212.5701
    """
    owner = "scale_by_adadelta"
    return _tree.as_method(
        owner, adadelta_direction(**_hyperparams.check_hyperparams(owner, rho=rho, eps=eps))
    )


def adadelta_direction(rho, eps) -> optax.GradientTransformationExtraArgs:
    """:func:`scale_by_adadelta` from checked hyperparameters."""
    hyperparams = _hyperparams.Hyperparams(rho=rho, eps=eps)
    guard = _hyperparams.may_be_zero(eps)  # E[g²] + ε is 0 only for ε = 0 and a zero gradient

    def init_fn(params: optax.Params) -> ScaleByAdadeltaState:
        return ScaleByAdadeltaState(
            count=_tree.count_if(hyperparams.reads_step),
            square_avg=_tree.full_like(params, 0),
            acc_delta=_tree.full_like(params, 0),
            hyperparams=hyperparams.init(),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        hp = hyperparams.read(state.hyperparams, state.count)
        dtype = _numerics.default_float()
        rho_eps = _numerics.cast(hp.value("rho"), dtype) * _numerics.cast(
            hp.value("eps"), dtype
        )  # a scalar, once per step

        def step(g, v, u, rho, eps, one_minus_rho, rho_eps):
            # lax's operations, not jnp's: this traces once per leaf, and each jnp
            # operation is a jitted function of its own to trace.
            g2 = lax.square(g)
            new_g2 = lax.mul(one_minus_rho, g2)
            v = lax.add(lax.mul(rho, v), new_g2)  # E[g²]_t = ρ E[g²]_{t-1} + (1-ρ) g²
            v_eps = lax.add(v, eps)
            # E[Δx²]_t = ρ E[Δx²]_{t-1} + (1-ρ) Δx_t²,
            # where Δx_t² = (E[Δx²]_{t-1} + ε) / (E[g²]_t + ε) · g².
            ratio = _numerics.safe_divide(lax.add(u, eps), v_eps, guard)
            u_new = lax.add(lax.mul(rho, u), lax.mul(one_minus_rho, lax.mul(ratio, g2)))
            # Δx_t from the *new* E[Δx²]: (E[Δx²]_{t-1} + ε) / (E[g²]_t + ε) equals
            # (E[Δx²]_t + ρε) / (ρ(E[g²]_t + ε) + (1-ρ)g²). The paper's form shares two
            # square roots between the update and E[Δx²]_t, which XLA:CPU then writes to two
            # temporary arrays each step; this one reads the old E[Δx²] once and needs one
            # root, so the step is three passes over memory (benchmarks/README.md).
            denominator = lax.add(lax.mul(rho, v_eps), new_g2)
            numerator = lax.add(u_new, rho_eps)
            # The denominator is 0 only where g = 0 and ρ(E[g²] + ε) = 0: there Δx = 0.
            if guard:  # ε may be 0: E[Δx²]_t may be > 0 over a zero denominator
                zero = lax.full_like(denominator, 0)
                ratio = lax.select(lax.gt(denominator, zero), lax.div(numerator, denominator), zero)
            else:
                # With ε > 0 a zero denominator needs g² = 0 and ρ = 0 (or ρε below the
                # dtype's normal range), where the numerator is 0 (or as small): over the
                # smallest normal number instead, Δx is still 0 where g = 0. One operation
                # per element fewer than a select: 4-6% of the compile of 1000 leaves.
                tiny = lax.full_like(denominator, np.finfo(denominator.dtype).tiny)
                ratio = lax.div(numerator, lax.max(denominator, tiny))
            delta = lax.mul(lax.sqrt(ratio), g)
            return delta, v, u_new

        delta, square_avg, acc_delta = _numerics.leafwise(
            step,
            updates,
            state.square_avg,
            state.acc_delta,
            scalars=(hp.value("rho"), hp.value("eps"), hp.complement("rho"), rho_eps),
            like=(updates, state.square_avg, state.acc_delta),
        )
        new_state = ScaleByAdadeltaState(
            _tree.increment(state.count), square_avg, acc_delta, hp.state
        )
        return delta, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def adadelta(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    rho: float | jax.Array = default(0.9),
    eps: float | jax.Array = default(1e-6),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """Adadelta, identical to ``torch.optim.Adadelta``.

    .. math:: \\theta_t = \\theta_{t-1} - \\eta_t\\, \\Delta x_t

    with ``Δx_t`` from :func:`scale_by_adadelta` and the gradient plus
    ``weight_decay · θ``.

    Args:
      learning_rate: η (torch's default 1.0): a number, a JAX array or a schedule.
      rho: ρ in [0, 1].
      eps: ε >= 0.
      weight_decay: λ >= 0, coupled (added to the gradient).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).

    Returns:
      ``optax.chain(add_decayed_weights, scale_by_adadelta, scale_by_learning_rate)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> tx = lrjax.adadelta()
      >>> updates, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
      >>> float(updates[0])  # the first step is tiny: E[Δx²] starts at zero
      -0.0031622...

    torch: ``torch.optim.Adadelta(params, lr, rho, eps, weight_decay)``.

    References:
      Zeiler, 2012, https://arxiv.org/abs/1212.5701
    """
    owner = "adadelta"
    hp = _hyperparams.check_hyperparams(
        owner, learning_rate=learning_rate, rho=rho, eps=eps, weight_decay=weight_decay
    )
    direction = adadelta_direction(hp["rho"], hp["eps"])
    return _chain.torch_method(owner, hp, [direction], mask=mask)
