"""D-Adapt Adam (``dadaptation.DAdaptAdam`` 3.2): Adam whose step size ``d · lr`` estimates
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
from lrjax._registry import register_preconditioner, register_rate_factor
from lrjax._validation import check_flag, default


class DAdaptAdamState(NamedTuple):
    """State of :func:`dadapt_adam`.

    ``count`` counts the updates (it drives the schedules); ``k`` counts those that took
    a step (the reference's ``k``, which the bias correction uses); ``d`` is the
    estimate of D; ``numerator_weighted`` is the running numerator r of d̂; ``mu`` is
    m (which carries λ), ``nu`` is v, ``s`` the weighted gradient sum; ``step_size`` is
    λ = d·lr (times the bias correction) of the most recent update (before any update:
    the first update's).
    """

    count: jax.Array
    k: jax.Array
    d: jax.Array
    numerator_weighted: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    s: optax.Updates
    step_size: jax.Array
    hyperparams: _hyperparams.HyperparamsState


def _adam_denominators(state: DAdaptAdamState, given: dict[str, Any]) -> optax.Updates:
    """``1 / (√v + ε)``: the factor the update puts on m (which carries λ)."""
    eps = _hyperparams.Values(state.hyperparams, given).value("eps")

    return jax.tree.map(lambda v: 1 / _numerics.adam_denominator(v, eps), state.nu)


register_rate_factor(DAdaptAdamState, lambda state: state.step_size)
register_preconditioner(DAdaptAdamState, _adam_denominators)


def dadapt_adam(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    decouple: bool = False,
    use_bias_correction: bool = False,
    d0: float | jax.Array = default(1e-6),
    growth_rate: float | jax.Array = default(float("inf")),
) -> optax.GradientTransformationExtraArgs:
    """Adam with D-Adaptation: the step size ``d`` is estimated, not given.

    With ``λ_k = d_k · lr`` (times ``√(1 − β2^{k+1}) / (1 − β1^{k+1})`` with bias
    correction) and ``g`` the gradient (plus ``weight_decay · x`` unless decoupled):

    .. math::

        r_{k+1} = \\sqrt{\\beta_2}\\, r_k + (1 - \\sqrt{\\beta_2})\\,
            \\lambda_k \\langle g, s_k / (\\sqrt{v_k} + \\epsilon) \\rangle

        m_{k+1} = \\beta_1 m_k + (1 - \\beta_1) \\lambda_k g, \\quad
        v_{k+1} = \\beta_2 v_k + (1 - \\beta_2) g^2

        s_{k+1} = \\sqrt{\\beta_2}\\, s_k + (1 - \\sqrt{\\beta_2}) \\lambda_k g

        \\hat d = \\frac{r_{k+1}}{(1 - \\sqrt{\\beta_2}) \\|s_{k+1}\\|_1}, \\quad
        d_{k+1} = \\max(d_k, \\min(\\hat d, d_k \\cdot \\mathrm{growth\\_rate}))

        x_{k+1} = x_k - m_{k+1} / (\\sqrt{v_{k+1}} + \\epsilon)
            \\;[- \\lambda_k\\, \\mathrm{weight\\_decay}\\; x_k \\text{ if decoupled}]

    The sums and norms run over the whole parameter tree. As in the reference, an update
    whose ``‖s‖₁`` is 0 (an all-zero gradient before any step) moves nothing and leaves
    d, r and k as they are, while m, v and s decay as usual; with ``lr = 0`` nothing
    changes at all.

    Args:
      learning_rate: the multiplier ``lr`` >= 0 of the estimated step (leave it at 1
        unless training is unstable): a number, a JAX array or a schedule.
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      eps: ε >= 0, added to √v.
      weight_decay: >= 0; added to the gradient (L2), or with ``decouple`` subtracted
        as ``λ · weight_decay · x`` (AdamW).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
        The others are not decayed; d is still estimated from all of them, as the
        reference does with two parameter groups (``weight_decay`` w and 0), whose d is
        shared.
      decouple: decoupled (AdamW) weight decay.
      use_bias_correction: Adam's bias correction, folded into λ.
      d0: the initial estimate of D, > 0.
      growth_rate: the most d may grow in one step, as a factor >= 1 (inf: no limit;
        e.g. 1.02 for a warm-up).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params`` when
      ``weight_decay`` is not 0. :func:`lrjax.current_learning_rate` reports λ and
      :func:`lrjax.effective_learning_rates` ``λ / (√v + ε)``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.dadapt_adam()
      >>> params = jnp.array([1.0, -2.0]); state = tx.init(params)
      >>> update = jax.jit(tx.update)
      >>> for _ in range(50):  # J = ‖x‖²/2, the gradient is x
      ...     updates, state = update(params, state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> bool(state.d > 1e-3)  # d rose from d0 = 1e-6
      True

    reference: ``dadaptation.DAdaptAdam(params, lr, betas=(b1, b2), eps, weight_decay,
    decouple=decouple, use_bias_correction=use_bias_correction, d0=d0,
    growth_rate=growth_rate)`` (its ``log_every`` and ``fsdp_in_use`` are logging and
    distributed-training settings; under ``jax.jit`` the sums are global already).

    References:
      Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023,
      https://arxiv.org/abs/2301.07733
    """
    owner = "dadapt_adam"
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        d0=_dadapt.check_d0(owner, d0),
        growth_rate=growth_rate,
    )
    decouple = check_flag(owner, "decouple", decouple)
    use_bias_correction = check_flag(owner, "use_bias_correction", use_bias_correction)
    mask = check_mask(owner, mask)
    decays = not _hyperparams.is_zero(hp["weight_decay"])
    d0 = hp.pop("d0")
    if not decays:
        del hp["weight_decay"]  # a held zero leaves the decay out
    hyperparams = _hyperparams.Hyperparams(**hp)
    guard = _hyperparams.may_be_zero(hp["eps"])

    def step_size(d: jax.Array, k: jax.Array, values: _hyperparams.Values) -> jax.Array:
        """λ = d · lr, times √(1 − β2^{k+1}) / (1 − β1^{k+1}) with bias correction."""
        dtype = d.dtype
        rate = d * _numerics.cast(values.value("learning_rate"), dtype)
        if not use_bias_correction:
            return rate
        t = k.astype(dtype) + 1  # k may be saturated at the int32 maximum
        correction1 = _numerics.bias_correction(t, values.complement("b1"), dtype)
        correction2 = _numerics.bias_correction(t, values.complement("b2"), dtype)
        return rate * jnp.sqrt(correction2) / correction1

    def init_fn(params: optax.Params) -> DAdaptAdamState:
        _mask.resolve(owner, mask, params)  # a mask that does not fit fails here
        dtype = _numerics.estimate_dtype(params)
        count = _tree.zeros_count()
        held = hyperparams.init()
        d = _numerics.fresh(d0, dtype)
        return DAdaptAdamState(
            count=count,
            k=_tree.zeros_count(),
            d=d,
            numerator_weighted=jnp.zeros([], dtype),
            mu=_tree.full_like(params, 0),
            nu=_tree.full_like(params, 0),
            s=_tree.full_like(params, 0),
            step_size=step_size(d, count, hyperparams.read(held, count)),
            hyperparams=held,
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if decays:
            _tree.needs_params(owner, params, "weight decay")
        values = hyperparams.read(state.hyperparams, state.count)
        dtype = state.d.dtype
        scalar = lambda name: _numerics.cast(values.value(name), dtype)
        b1, b2, eps = scalar("b1"), scalar("b2"), scalar("eps")
        one_minus_b1 = _numerics.cast(values.complement("b1"), dtype)
        one_minus_b2 = _numerics.cast(values.complement("b2"), dtype)
        sqrt_b2 = jnp.sqrt(b2)
        one_minus_sqrt_b2 = one_minus_b2 / (1 + sqrt_b2)  # 1 − √β2 without cancellation
        decay = scalar("weight_decay") if decays else jnp.zeros([], dtype)
        dlr = step_size(state.d, state.k, values)
        # The reference updates nothing, not even m, v and s, when lr is 0.
        active = scalar("learning_rate") > 0

        # The scalars the elementwise passes use come out of conditionals, computed once:
        # XLA would otherwise fuse their arithmetic (flags included) into each pass and
        # redo it per entry, which also keeps the passes from vectorising. So the flags
        # are made inside the branches: a value the conditional only passes through would
        # be computed in the passes again.
        def updating() -> tuple[jax.Array, ...]:
            return dlr * one_minus_b1, dlr * one_minus_sqrt_b2, jnp.array(True)

        def resting() -> tuple[jax.Array, ...]:
            zero = jnp.zeros([], dtype)
            return zero, zero, jnp.array(False)

        m_scale, s_scale, updates_state = jax.lax.cond(active, updating, resting)

        def accumulate(g, p, decayed, m, v, s):
            cd = _numerics.compute_dtype(g.dtype)
            g = g.astype(cd)
            if decayed and not decouple:
                g = g + _numerics.cast(decay, cd) * p.astype(cd)
            m_old, v_old, s_old = m.astype(cd), v.astype(cd), s.astype(cd)
            denom = _numerics.adam_denominator(v_old, eps)
            inner = jnp.vdot(g, _numerics.safe_divide(s_old, denom, guard))  # ⟨g, s_k/(√v_k + ε)⟩
            m_new = _numerics.cast(b1, cd) * m_old + _numerics.cast(m_scale, cd) * g
            v_new = _numerics.cast(b2, cd) * v_old + _numerics.cast(one_minus_b2, cd) * jnp.square(
                g
            )
            # The selects keep the buffers exactly (also where g is not finite) when
            # nothing is updated; made here, they update the buffers in place.
            s_new = _numerics.cast(sqrt_b2, cd) * s_old + _numerics.cast(s_scale, cd) * g
            s_new = jnp.where(updates_state, s_new, s_old)
            l1 = jnp.sum(jnp.abs(s_new))  # before s is rounded to its dtype
            m = jnp.where(updates_state, m_new.astype(m.dtype), m)
            v = jnp.where(updates_state, v_new.astype(v.dtype), v)
            return inner, l1, m, v, s_new.astype(s.dtype)

        # Without weight decay the parameters are not read: the gradients hold their place.
        params_or_grads = params if params is not None else updates
        if decays:
            decayed = _mask.resolve(owner, mask, params_or_grads)
        else:
            decayed = jax.tree.map(lambda _: False, params_or_grads)
        results = jax.tree.map(
            accumulate, updates, params_or_grads, decayed, state.mu, state.nu, state.s
        )
        inner, l1, mu, nu, s = _tree.unzip(updates, results, 5)
        s_l1 = _numerics.tree_sum(l1, dtype)
        numerator = (
            sqrt_b2 * state.numerator_weighted
            + one_minus_sqrt_b2 * dlr * _numerics.tree_sum(inner, dtype)
        )
        # The reference returns before the step when ‖s‖₁ = 0: nothing to estimate from.
        taken = active & (s_l1 != 0)

        def estimate() -> tuple[jax.Array, ...]:
            d_hat = numerator / (one_minus_sqrt_b2 * s_l1)
            d = _dadapt.grow(state.d, d_hat, scalar("growth_rate"))
            shrink = decay * dlr  # decoupled decay: x ← x − λ · weight_decay · x
            return _tree.increment(state.k), d, numerator, shrink, jnp.array(True)

        def skip() -> tuple[jax.Array, ...]:
            zero = jnp.zeros([], dtype)
            return state.k, state.d, state.numerator_weighted, zero, jnp.array(False)

        k, d, numerator, shrink, moves = jax.lax.cond(taken, estimate, skip)

        def step(g, p, decayed, m, v):
            cd = _numerics.compute_dtype(g.dtype)
            m, v = m.astype(cd), v.astype(cd)
            u = -_numerics.safe_divide(m, _numerics.adam_denominator(v, eps), guard)
            if decayed and decouple:
                u = u - _numerics.cast(shrink, cd) * p.astype(cd)
            return jnp.where(moves, u, 0).astype(g.dtype)

        new_updates = jax.tree.map(step, updates, params_or_grads, decayed, mu, nu)
        new_state = DAdaptAdamState(
            count=_tree.increment(state.count),
            k=k,
            d=d,
            numerator_weighted=numerator,
            mu=mu,
            nu=nu,
            s=s,
            step_size=dlr,
            hyperparams=values.state,
        )
        return new_updates, new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))
