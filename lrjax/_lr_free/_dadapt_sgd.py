"""D-Adapt SGD (``dadaptation.DAdaptSGD`` 3.2): SGD whose step size ``d · lr / ‖g₀‖`` estimates
the distance to the solution (see :mod:`lrjax._lr_free._dadapt`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _hyperparams, _numerics, _tree
from lrjax._blocks import check_mask
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._lr_free import _dadapt, _mask
from lrjax._registry import register_preconditioner, register_rate_factor, unit_factors
from lrjax._validation import default, is_concrete, show


class DAdaptSGDState(NamedTuple):
    """State of :func:`dadapt_sgd`.

    ``count`` counts the updates (it drives the schedules); ``k`` counts those that took
    a step; ``d`` is the estimate of D; ``numerator_weighted`` is Σ λᵢ⟨gᵢ, sᵢ⟩;
    ``g0_norm`` is ‖g₀‖ of the first step (0 before it); ``s`` is Σ λᵢ gᵢ and ``x0``
    the parameters at ``init``; ``step_size`` is λ = d·lr/‖g₀‖ of the most recent
    update (before any update, when ‖g₀‖ is not known yet: d₀·lr, the length of the
    first step).
    """

    count: jax.Array
    k: jax.Array
    d: jax.Array
    numerator_weighted: jax.Array
    g0_norm: jax.Array
    s: optax.Updates
    x0: optax.Updates
    step_size: jax.Array
    hyperparams: _hyperparams.HyperparamsState


register_rate_factor(DAdaptSGDState, lambda state: state.step_size)
# SGD rescales nothing: every parameter's gradient is scaled by λ.
register_preconditioner(DAdaptSGDState, lambda state, given: unit_factors(state.s))


def dadapt_sgd(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    momentum: float | jax.Array = default(0.0),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    d0: float | jax.Array = default(1e-6),
    growth_rate: float | jax.Array = default(float("inf")),
) -> optax.GradientTransformationExtraArgs:
    """SGD with D-Adaptation (dual averaging): the step size ``d`` is estimated.

    With ``λ_k = d_k · lr / ‖g_0‖`` (``g_0`` the first gradient) and ``g`` the gradient
    plus ``weight_decay · x``:

    .. math::

        r_{k+1} = r_k + \\lambda_k \\langle g, s_k \\rangle, \\qquad
        s_{k+1} = s_k + \\lambda_k g

        \\hat d = \\frac{2\\, r_{k+1}}{\\|s_{k+1}\\|_2}, \\qquad
        d_{k+1} = \\max(d_k, \\min(\\hat d, d_k \\cdot \\mathrm{growth\\_rate}))

        z_{k+1} = x_0 - s_{k+1}, \\qquad
        x_{k+1} = \\mu\\, x_k + (1 - \\mu)\\, z_{k+1}

    where μ is ``momentum`` (primal averaging) and the sums and norms run over the whole
    parameter tree. ``‖g_0‖`` is the norm of the first gradient without the weight
    decay, as the reference computes it.

    The reference raises ``ZeroDivisionError`` on an all-zero first gradient (``‖g_0‖``
    = 0) and ``UnboundLocalError`` when ``lr`` is 0; in both cases nothing of its state
    has changed. Here such an update moves nothing and changes nothing but ``count``;
    the next non-zero gradient is the first.

    Args:
      learning_rate: the multiplier ``lr`` >= 0 of the estimated step (leave it at 1
        unless training is unstable): a number, a JAX array or a schedule.
      momentum: μ in [0, 1).
      weight_decay: >= 0, added to the gradient (L2).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
        The others are not decayed; d and ‖g₀‖ are still computed from all of them.
        The reference has no equivalent: it reads ``weight_decay`` from its first
        parameter group only and applies it to every group, so torch's two groups
        (``weight_decay`` w and 0) decay all parameters or none. ``mask`` does what
        its ``DAdaptAdam`` does with two groups: the decayed parameters' gradients
        get ``w·x``, one d is shared.
      d0: the initial estimate of D, > 0.
      growth_rate: the most d may grow in one step, as a factor >= 1 (inf: no limit).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params``.
      :func:`lrjax.current_learning_rate` reports λ, and
      :func:`lrjax.effective_learning_rates` λ for every parameter.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.dadapt_sgd(momentum=0.9)
      >>> params = jnp.array([1.0, -2.0]); state = tx.init(params)
      >>> update = jax.jit(tx.update)
      >>> for _ in range(50):  # J = ‖x‖²/2, the gradient is x
      ...     updates, state = update(params, state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> bool(state.d > 1e-3)  # d rose from d0 = 1e-6
      True

    reference: ``dadaptation.DAdaptSGD(params, lr, momentum, weight_decay, d0=d0,
    growth_rate=growth_rate)`` (its ``log_every`` and ``fsdp_in_use`` are logging and
    distributed-training settings; under ``jax.jit`` the sums are global already).

    References:
      Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
      https://arxiv.org/abs/2301.07733
    """
    owner = "dadapt_sgd"
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        momentum=momentum,
        weight_decay=weight_decay,
        d0=_dadapt.check_d0(owner, d0),
        growth_rate=growth_rate,
    )
    if not callable(hp["momentum"]) and is_concrete(hp["momentum"]) and hp["momentum"] >= 1:
        # momentum 1 would never move the parameters (x ← x).
        raise ValueError(f"{owner}: momentum must be in [0, 1), got {show(momentum)}")
    mask = check_mask(owner, mask)
    decays = not _hyperparams.is_zero(hp["weight_decay"])
    d0 = hp.pop("d0")
    if not decays:
        del hp["weight_decay"]  # a held zero leaves the decay out
    hyperparams = _hyperparams.Hyperparams(**hp)

    def init_fn(params: optax.Params) -> DAdaptSGDState:
        _mask.resolve(owner, mask, params)  # a mask that does not fit fails here
        dtype = _numerics.estimate_dtype(params)
        count = _tree.zeros_count()
        held = hyperparams.init()
        d = _numerics.fresh(d0, dtype)
        rate = _numerics.cast(hyperparams.read(held, count).value("learning_rate"), dtype)
        return DAdaptSGDState(
            count=count,
            k=_tree.zeros_count(),
            d=d,
            numerator_weighted=jnp.zeros([], dtype),
            g0_norm=jnp.zeros([], dtype),
            s=_tree.full_like(params, 0),
            x0=jax.tree.map(lambda p: _numerics.fresh(p, _numerics.state_dtype(p.dtype)), params),
            step_size=d * rate,
            hyperparams=held,
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params(owner, params, "the step averages them with x0 − s")
        values = hyperparams.read(state.hyperparams, state.count)
        dtype = state.d.dtype
        scalar = lambda name: _numerics.cast(values.value(name), dtype)
        lr, momentum = scalar("learning_rate"), scalar("momentum")
        decay = scalar("weight_decay") if decays else jnp.zeros([], dtype)

        # ‖g_0‖ is measured at the first step, on the gradient without the weight decay.
        squares = jax.tree.map(lambda g: jnp.sum(jnp.square(g.astype(dtype))), updates)
        first_norm = jnp.sqrt(_numerics.tree_sum(squares, dtype))
        g0_norm = jnp.where(state.k == 0, first_norm, state.g0_norm)
        known = g0_norm > 0
        dlr = state.d * lr / jnp.where(known, g0_norm, 1)
        active = (lr > 0) & known

        def accumulate(g, p, decayed, s):
            cd = _numerics.compute_dtype(g.dtype)
            g = g.astype(cd)
            if decayed:
                g = g + _numerics.cast(decay, cd) * p.astype(cd)
            s = s.astype(cd)
            inner = jnp.vdot(g, s)  # ⟨g, s_k⟩
            s = s + _numerics.cast(dlr, cd) * g
            return inner, jnp.sum(jnp.square(s)), s

        if decays:
            decayed = _mask.resolve(owner, mask, params)
        else:
            decayed = jax.tree.map(lambda _: False, params)
        inner, squares, s = _tree.unzip(
            updates, jax.tree.map(accumulate, updates, params, decayed, state.s), 3
        )
        s = _dadapt.select(active, s, state.s)
        s_squared = jnp.where(active, _numerics.tree_sum(squares, dtype), 0)
        numerator = state.numerator_weighted + dlr * _numerics.tree_sum(inner, dtype)
        # ‖s‖ = 0: nothing to estimate from (the reference divides by it and raises).
        moves = s_squared != 0
        d_hat = 2 * numerator / jnp.sqrt(jnp.where(moves, s_squared, 1))
        d = _dadapt.grow(state.d, d_hat, scalar("growth_rate"))
        ck = 1 - momentum

        def step(g, p, x0, s):
            cd = _numerics.compute_dtype(g.dtype)
            z = x0.astype(cd) - s.astype(cd)
            u = _numerics.cast(ck, cd) * (z - p.astype(cd))  # x ← μ x + (1 − μ) z
            return jnp.where(moves, u, 0).astype(g.dtype)

        new_updates = jax.tree.map(step, updates, params, state.x0, s)
        new_state = DAdaptSGDState(
            count=_tree.increment(state.count),
            k=jnp.where(moves, _tree.increment(state.k), state.k),
            d=jnp.where(moves, d, state.d),
            numerator_weighted=jnp.where(moves, numerator, state.numerator_weighted),
            g0_norm=jnp.where(moves, g0_norm, state.g0_norm),
            s=s,
            x0=state.x0,
            step_size=jnp.where(known, dlr, state.step_size),
            hyperparams=values.state,
        )
        return new_updates, new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))
