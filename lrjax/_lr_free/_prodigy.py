"""Prodigy: Adam whose step size D estimates the distance to the solution online."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _hyperparams, _numerics, _tree
from lrjax._blocks import check_mask
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._lr_free import _mask
from lrjax._registry import register_preconditioner, register_rate_factor
from lrjax._validation import check_flag, check_integer, default


class ProdigyState(NamedTuple):
    """State of :func:`prodigy`.

    * ``count``: the updates called; schedules are evaluated at it.
    * ``k``: the steps taken, the reference's ``k``; an update skipped because
      ``‖s‖₁ = 0`` or the rate is 0 does not advance it. The bias correction uses it.
    * ``exp_avg``: m, the running average of ``d·g``; ``exp_avg_sq``: v, of ``d²·g²``.
    * ``s``: the running weighted sum of the gradients; ``p0``: the initial parameters
      x₀. Both hold every ``slice_p``-th entry of each flattened parameter (with
      ``slice_p=1``: the whole parameter, in its shape).
    * ``d``: the estimate D; ``d_max``: the largest estimate d̂ so far (at least d₀);
      ``d_numerator``: r, the weighted sum of ``⟨g, x₀ − x⟩``.
    * ``step_size``: ``d·lr·(bias correction)``, the reference's ``dlr``, that the most
      recent update computed (a skipped update applies none: it is then the step size the
      next update applies at the same rate); before any update, the first update's.
    * ``hyperparams``: the float hyperparameters held (see :func:`lrjax.set_hyperparams`).
    """

    count: jax.Array
    k: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    s: optax.Updates
    p0: optax.Updates
    d: jax.Array
    d_max: jax.Array
    d_numerator: jax.Array
    step_size: jax.Array
    hyperparams: _hyperparams.HyperparamsState


def _preconditioner(state: ProdigyState, given: dict[str, Any]) -> optax.Updates:
    """The per-parameter factor of the step: ``1/(√v + d·ε)`` on m, or with β1 = 0
    ``d/(√v + d·ε)`` on the gradient."""
    hp = _hyperparams.Values(state.hyperparams, given)
    d = state.d
    eps = _numerics.cast(hp.value("eps"), d.dtype)
    scale = jnp.where(_numerics.cast(hp.value("b1"), d.dtype) > 0, jnp.ones_like(d), d)

    def rate(v: jax.Array) -> jax.Array:
        denom = _numerics.adam_denominator(v, d * eps)
        return _numerics.cast(scale, denom.dtype) / denom

    return jax.tree.map(rate, state.exp_avg_sq)


register_rate_factor(ProdigyState, lambda state: state.step_size)
register_preconditioner(ProdigyState, _preconditioner)


def prodigy(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    b3: float | jax.Array | None = None,
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    decouple: bool = True,
    use_bias_correction: bool = False,
    safeguard_warmup: bool = False,
    d0: float | jax.Array = default(1e-6),
    d_coef: float | jax.Array = default(1.0),
    growth_rate: float | jax.Array = default(float("inf")),
    slice_p: int = default(1),
) -> optax.GradientTransformationExtraArgs:
    """Prodigy (Mishchenko & Defazio, 2024): Adam with a learned step size D.

    At step k, with gradient g and parameters x (x₀ those given to ``init``), as the
    reference implements the paper's Adam variant:

    .. math::

        \\lambda_k = d_k\\, \\eta_k\\, \\frac{\\sqrt{1 - \\beta_2^{k+1}}}{1 - \\beta_1^{k+1}}
        \\quad (\\text{without bias correction: } d_k \\eta_k)

        m_{k+1} = \\beta_1 m_k + (1 - \\beta_1)\\, d_k g_k, \\qquad
        v_{k+1} = \\beta_2 v_k + (1 - \\beta_2)\\, d_k^2 g_k^2

        r_{k+1} = \\beta_3 r_k + \\frac{d_k}{d_0} \\lambda_k \\langle g_k, x_0 - x_k \\rangle,
        \\qquad
        s_{k+1} = \\beta_3 s_k + \\frac{d_k}{d_0} \\lambda_k\\, g_k

        \\hat d_{k+1} = c\\, \\frac{r_{k+1}}{\\lVert s_{k+1} \\rVert_1}, \\qquad
        d^{\\max}_{k+1} = \\max(d^{\\max}_k, \\hat d_{k+1})

        d_{k+1} = \\min\\bigl(d^{\\max}_{k+1},\\ \\gamma \\cdot
        (\\max(d_k, \\hat d_{k+1}) \\text{ if } d_k = d_0 \\text{ else } d_k)\\bigr)

        x_{k+1} = x_k - \\lambda_k \\frac{m_{k+1}}{\\sqrt{v_{k+1}} + d_{k+1} \\epsilon}
        - \\lambda_k w\\, x_k

    with β₃ = √β₂ by default, c = ``d_coef``, γ = ``growth_rate`` and w =
    ``weight_decay`` (decoupled; with ``decouple=False`` it is added to the gradient,
    ``g ← g + w x``, instead). ``safeguard_warmup`` puts ``d_k`` in place of ``λ_k`` in
    s. With β₁ = 0 the step is ``λ_k d_{k+1} g_k / (√v + d_{k+1} ε)``. The inner product
    and s use every ``slice_p``-th entry of each flattened parameter; r and ‖s‖₁ are
    sums over all parameters. When ``‖s_{k+1}‖₁ = 0`` (the first gradient is zero) the
    update is zero and only m, v and s move: D, r and k stay (the reference returns
    early); a zero rate skips the update entirely.

    The first steps, about d₀·η, must be resolvable next to the parameters: bf16
    parameters of order 1 do not move by 1e-6, so D never grows (in the reference too);
    raise ``d0`` or keep float32 master weights.

    Args:
      learning_rate: η, a multiplier of the estimated step size (1 unless unstable): a
        number, a JAX array or a schedule.
      b1: β1 in [0, 1).
      b2: β2 in [0, 1).
      b3: β3 in [0, 1) for r and s; None for √β2.
      eps: ε >= 0, scaled by d in the denominator (0: a zero step where v = 0).
      weight_decay: w >= 0; held also when 0, so :func:`lrjax.set_hyperparams` can
        change it later, as the reference's ``param_groups``.
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
        The others are not decayed; D is still estimated from all of them, as the
        reference does with two parameter groups (``weight_decay`` w and 0), whose D
        is shared.
      decouple: AdamW-style decay ``−λ_k w x_k``; False: L2, added to the gradient.
      use_bias_correction: Adam's bias correction in λ_k.
      safeguard_warmup: leave the rate out of s, against a small rate in warm-up.
      d0: the initial estimate d₀ > 0.
      d_coef: c > 0, a multiplier of the estimate.
      growth_rate: γ >= 1, the most d may grow in one step (inf: unlimited).
      slice_p: estimate D from every ``slice_p``-th entry of each parameter (saves
        memory; 1 is exact Prodigy).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params``.
      :func:`lrjax.current_learning_rate` reports λ_k, the step size applied.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.prodigy()
      >>> @jax.jit
      ... def step(params, state):
      ...     updates, state = tx.update(params, state, params)  # J = ‖x‖²/2, g = x
      ...     return optax.apply_updates(params, updates), state
      >>> params = jnp.array([3.0, -2.0]); state = tx.init(params)
      >>> for _ in range(50):
      ...     params, state = step(params, state)
      >>> bool(state.d > 1.0)  # d grew from 1e-6 to the distance to the minimum
      True

    reference: ``prodigyopt.Prodigy(params, lr, betas=(b1, b2), beta3=b3, eps,
    weight_decay, decouple, use_bias_correction, safeguard_warmup, d0, d_coef,
    growth_rate, slice_p=slice_p)`` (prodigyopt 1.1.2).

    References:
      Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
      Learner", ICML 2024, https://arxiv.org/abs/2306.06101
    """
    owner = "prodigy"
    if eps is None:
        raise ValueError(
            f"{owner}: eps must be a real number >= 0, got None (the eps=None variant of "
            "later prodigyopt releases is not in prodigyopt 1.1.2)"
        )
    values = dict(
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        d0=d0,
        d_coef=d_coef,
        growth_rate=growth_rate,
    )
    if b3 is not None:
        values["b3"] = b3
    checked = _hyperparams.check_hyperparams(owner, **values)
    flags = dict(
        decouple=check_flag(owner, "decouple", decouple),
        use_bias_correction=check_flag(owner, "use_bias_correction", use_bias_correction),
        safeguard_warmup=check_flag(owner, "safeguard_warmup", safeguard_warmup),
    )
    slice_p = check_integer(owner, "slice_p", slice_p, 1)
    mask = check_mask(owner, mask)
    return _tree.as_method(owner, _prodigy(checked, mask, slice_p=slice_p, **flags))


def _prodigy(
    checked: dict[str, Any],
    mask: Any,
    *,
    decouple: bool,
    use_bias_correction: bool,
    safeguard_warmup: bool,
    slice_p: int,
) -> optax.GradientTransformationExtraArgs:
    """:func:`prodigy` from checked hyperparameters."""
    # The decay is always held, 0 included, so it can be set later as in the reference's
    # param_groups; a zero decay changes nothing (θ − 0·θ = θ, g + 0·θ = g exactly).
    hyperparams = _hyperparams.Hyperparams(**checked)
    has_b3 = "b3" in checked
    guard = _hyperparams.may_be_zero(checked["eps"])

    def sliced(x: jax.Array) -> jax.Array:
        return x if slice_p == 1 else jnp.ravel(x)[::slice_p]

    def step_size(hp: _hyperparams.Values, d: jax.Array, k: jax.Array) -> jax.Array:
        """λ_k = d·η·(bias correction) for step ``k`` (0-based)."""
        dtype = d.dtype
        lr = _numerics.cast(hp.value("learning_rate"), dtype)
        if not use_bias_correction:
            return d * lr
        t = _tree.increment(k)
        correction2 = _numerics.bias_correction(t, hp.complement("b2"), dtype)
        correction1 = _numerics.bias_correction(t, hp.complement("b1"), dtype)
        return d * lr * (jnp.sqrt(correction2) / correction1)

    def init_fn(params: optax.Params) -> ProdigyState:
        _mask.resolve("prodigy", mask, params)  # a mask that does not fit fails here
        dtype = _numerics.estimate_dtype(params)
        hp_state = hyperparams.init()
        hp = _hyperparams.Values(hp_state, hyperparams.given)
        d = _numerics.fresh(_numerics.cast(hp.value("d0"), dtype), dtype)
        k = _tree.zeros_count()
        return ProdigyState(
            count=_tree.zeros_count(),
            k=k,
            exp_avg=_tree.full_like(params, 0),
            exp_avg_sq=_tree.full_like(params, 0),
            s=_tree.full_like(jax.tree.map(sliced, params), 0),
            p0=jax.tree.map(
                lambda p: _numerics.fresh(sliced(p), _numerics.state_dtype(p.dtype)), params
            ),
            d=d,
            d_max=_numerics.fresh(d, dtype),
            d_numerator=jnp.zeros([], dtype),
            step_size=step_size(hp, d, k),
            hyperparams=hp_state,
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        why = "Prodigy measures the distance travelled from the initial parameters"
        _tree.needs_params("prodigy", params, why)
        decays = _mask.resolve("prodigy", mask, params)
        hp = hyperparams.read(state.hyperparams, state.count)
        dtype = state.d.dtype
        value = lambda name: _numerics.cast(hp.value(name), dtype)
        lr, b1, b2, d0 = value("learning_rate"), value("b1"), value("b2"), value("d0")
        b3 = value("b3") if has_b3 else _numerics.cast(jnp.sqrt(hp.value("b2")), dtype)
        one_minus_b1 = _numerics.cast(hp.complement("b1"), dtype)
        one_minus_b2 = _numerics.cast(hp.complement("b2"), dtype)
        wd = value("weight_decay")
        d = state.d
        dlr = step_size(hp, d, state.k)
        weight = (d / d0) * dlr  # of this step in r (and in s unless safeguard_warmup)
        # The reference updates nothing at a zero rate, and returns before the step when
        # ‖s‖₁ = 0 (a zero first gradient): m, v and s have moved, nothing else has.
        active = lr > 0

        # The scalars the elementwise passes use come out of conditionals, computed once:
        # XLA would otherwise fuse their arithmetic (flags included) into each pass and
        # redo it per entry, which also keeps the final pass from vectorising. So the
        # flags are made inside the branches: a value the conditional only passes through
        # would be computed in the passes again.
        def moving() -> tuple[jax.Array, ...]:
            s_weight = (d / d0) * d if safeguard_warmup else weight
            return b1, d * one_minus_b1, b2, d * d * one_minus_b2, b3, s_weight, jnp.array(True)

        def resting() -> tuple[jax.Array, ...]:  # (1, 0): m, v and s stay
            one, zero = jnp.ones([], dtype), jnp.zeros([], dtype)
            return one, zero, one, zero, one, zero, jnp.array(False)

        m_decay, m_weight, v_decay, v_weight, s_decay, s_weight, moves = jax.lax.cond(
            active, moving, resting
        )

        def gradient(g: jax.Array, p: jax.Array, decayed: bool) -> jax.Array:
            dtype = _numerics.compute_dtype(g.dtype)
            g = g.astype(dtype)
            if decayed and not decouple:  # L2: the decay joins the gradient
                g = g + _numerics.cast(wd, dtype) * p.astype(dtype)
            return g

        def accumulate(g, p, decayed, p0, m, v, s):
            g = gradient(g, p, decayed)
            c = lambda x: _numerics.cast(x, g.dtype)
            g_sliced = sliced(g)
            distance = p0.astype(g.dtype) - sliced(p.astype(g.dtype))
            product = jnp.sum(g_sliced * distance)
            # The selects keep the buffers exactly also where g is not finite.
            m_new = c(m_decay) * m.astype(g.dtype) + c(m_weight) * g
            v_new = c(v_decay) * v.astype(g.dtype) + c(v_weight) * g * g
            s_old = s.astype(g.dtype)
            s_new = jnp.where(moves, c(s_decay) * s_old + c(s_weight) * g_sliced, s_old)
            norm = jnp.sum(jnp.abs(s_new))  # before s is rounded to its dtype
            m = jnp.where(moves, m_new.astype(m.dtype), m)
            v = jnp.where(moves, v_new.astype(v.dtype), v)
            s = s_new.astype(s.dtype)
            return m, v, s, product.astype(dtype), norm.astype(dtype)

        moved = jax.tree.map(
            accumulate, updates, params, decays, state.p0, state.exp_avg, state.exp_avg_sq, state.s
        )
        m, v, s, products, norms = _tree.unzip(updates, moved, 5)
        zero = jnp.zeros([], dtype)
        numerator = b3 * state.d_numerator + weight * _numerics.tree_sum(products, dtype)
        denominator = _numerics.tree_sum(norms, dtype)
        taken = active & (denominator != 0)
        momentum = b1 > 0

        def estimate() -> tuple[jax.Array, ...]:
            """D, its maximum and r after the step, and the step's coefficients."""
            d_hat = value("d_coef") * numerator / denominator
            d_new = jnp.where(d == d0, _numerics.python_max(d, d_hat), d)
            d_max = _numerics.python_max(state.d_max, d_hat)
            d_new = _numerics.python_min(d_max, d_new * value("growth_rate"))
            scale = jnp.where(momentum, dlr, dlr * d_new)
            step = -scale, d_new * value("eps"), wd * dlr, b1 > 0, jnp.array(True)
            return d_new, d_max, numerator, *step

        def skip() -> tuple[jax.Array, ...]:  # no step: the state's D, a zero step
            step = zero, d * value("eps"), zero, b1 > 0, jnp.array(False)
            return d, state.d_max, state.d_numerator, *step

        d_new, d_max, numerator, scale, eps_term, decay_step, uses_m, steps = jax.lax.cond(
            taken, estimate, skip
        )

        def step(g, p, decayed, m, v):
            g = gradient(g, p, decayed)
            dtype = g.dtype
            direction = jnp.where(uses_m, m.astype(dtype), g)
            denom = _numerics.adam_denominator(v, eps_term)
            u = _numerics.cast(scale, dtype) * _numerics.safe_divide(direction, denom, guard)
            if decayed and decouple:
                # The decayed θ(1 − λw) is rounded to θ's dtype before the step is added,
                # as torch's in-place update does: in float32 the first steps are a few
                # ulps of θ, and where θ rounds moves ⟨g, x₀ − x⟩ and so D.
                x = p.astype(dtype)
                decayed = (x - _numerics.cast(decay_step, dtype) * x).astype(p.dtype)
                u = (decayed.astype(dtype) - x) + u
            return jnp.where(steps, u, jnp.zeros_like(u))

        new_updates = jax.tree.map(step, updates, params, decays, m, v)
        new_updates = _tree.cast_like(new_updates, updates)
        new_state = ProdigyState(
            count=_tree.increment(state.count),
            k=jnp.where(taken, _tree.increment(state.k), state.k),
            exp_avg=m,
            exp_avg_sq=v,
            s=s,
            p0=state.p0,
            d=d_new,
            d_max=d_max,
            d_numerator=numerator,
            step_size=dlr,
            hyperparams=hp.state,
        )
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
