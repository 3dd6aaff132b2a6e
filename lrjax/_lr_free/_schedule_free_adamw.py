"""Schedule-free AdamW (``schedulefree.AdamWScheduleFree``): Adam's normalised step on z,
x an average of the z's, the gradient taken at their interpolation y."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax import _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._lr_free import _mask, _schedule_free
from lrjax._lr_free._schedule_free import ScheduleFreeAdamWState
from lrjax._registry import register_preconditioner, register_rate_factor
from lrjax._validation import default


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = default(0.0025),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    warmup_steps: int = default(0),
    r: float | jax.Array = default(0.0),
    weight_lr_power: float | jax.Array = default(2.0),
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free AdamW (Defazio et al., 2024), identical to the reference.

    For update number t = 1, 2, … with the gradient g_t taken at the parameters
    y_t = (1 − β1) z_t + β1 x_t:

    .. math::

        v_t = \\beta_2 v_{t-1} + (1 - \\beta_2)\\, g_t^2, \\qquad
        \\hat g_t = \\frac{g_t}{\\sqrt{v_t / (1 - \\beta_2^t)} + \\epsilon} + \\lambda\\, y_t

        \\gamma_t = \\eta \\min(1, t / W), \\qquad z_{t+1} = z_t - \\gamma_t\\, \\hat g_t

        w_t = t^r \\bigl(\\max_{i \\le t} \\gamma_i\\bigr)^p, \\qquad
        c_{t+1} = \\frac{w_t}{\\sum_{i \\le t} w_i}, \\qquad
        x_{t+1} = (1 - c_{t+1})\\, x_t + c_{t+1}\\, z_{t+1}

    with x_1 = z_1 = the initial parameters, W = ``warmup_steps`` (no warm-up when 0),
    λ = ``weight_decay`` (taken at y) and p = ``weight_lr_power``. The update moves y
    without forming x: ``y_{t+1} = y_t + c (z_t − y_t) − γ_t (1 − β1 + β1 c) ĝ_t``. As in
    the reference and unlike the paper's Algorithm 1, the bias correction is inside the
    square root and the averaging weight uses the largest rate so far. With ε = 0 a
    zero gradient where v = 0 gives a zero step (torch divides 0/0 into NaN).

    Train on y (the parameters ``optax.apply_updates`` gives); evaluate, and save, at
    :func:`schedule_free_eval_params`.

    Args:
      learning_rate: η: a number, a JAX array or a schedule (a decaying schedule is
        rarely needed: that is the point of the method).
      b1: β1 in (0, 1), the interpolation between z and x.
      b2: β2 in [0, 1).
      eps: ε >= 0.
      weight_decay: λ >= 0.
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
        As the reference with two parameter groups (``weight_decay`` λ and 0), whose
        warm-up and averaging weights are the same in both.
      warmup_steps: W >= 0, the linear warm-up's length (an integer; under
        ``optax.inject_hyperparams`` name it in ``static_args``).
      r: the power r >= 0 of the polynomial weighting of the average.
      weight_lr_power: p >= 0, the power of the rate in the averaging weights.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params`` (y).

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.schedule_free_adamw(0.1)
      >>> loss = lambda p: jnp.sum(p**2) / 2
      >>> @jax.jit
      ... def step(params, state):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> params = jnp.array([1.0, -2.0]); state = tx.init(params)
      >>> for _ in range(100):
      ...     params, state = step(params, state)
      >>> x = lrjax.schedule_free_eval_params(state, params)  # evaluate at x, train on y
      >>> bool(loss(x) < 0.02)
      True

    reference: ``schedulefree.AdamWScheduleFree(params, lr, betas=(b1, b2), eps,
    weight_decay, warmup_steps, r, weight_lr_power)`` in train mode.

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled",
      NeurIPS 2024, https://arxiv.org/abs/2405.15682
    """
    owner = "schedule_free_adamw"
    hp, warmup_steps, mask, decay, hyperparams = _schedule_free.check(
        owner,
        "b1",
        warmup_steps,
        mask,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        r=r,
        weight_lr_power=weight_lr_power,
    )
    guard = _hyperparams.may_be_zero(hp["eps"])

    def init_fn(params: optax.Params) -> ScheduleFreeAdamWState:
        _mask.resolve(owner, mask, params)  # a mask that does not fit fails here
        return ScheduleFreeAdamWState(
            z=_schedule_free.initial_z(params),
            v=_tree.full_like(params, 0),
            **_schedule_free.initial_scalars(hyperparams, warmup_steps, "b1"),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params(owner, params, "the current y, where the gradient was taken")
        hp = hyperparams.read(state.hyperparams, state.count)
        step = _schedule_free.step_scalars(state, hp, warmup_steps, "b1")
        count = _tree.increment(state.count)
        b2, one_minus_b2 = hp.value("b2"), hp.complement("b2")
        correction2 = _numerics.bias_correction(count, one_minus_b2, step.gamma.dtype)
        eps, weight_decay = hp.value("eps"), hp.get("weight_decay", 0.0)

        def leaf(decayed: bool):
            def formula(g, y, z, v, b2, one_minus_b2, correction2, eps, weight_decay):
                v = b2 * v + one_minus_b2 * jnp.square(g)
                denominator = _numerics.adam_denominator(v, eps, correction2=correction2)
                direction = _numerics.safe_divide(g, denominator, guard)
                if decayed:  # at y, after the normalisation, as the reference
                    direction = direction + weight_decay * y
                return (*_schedule_free.move(y, z, direction, step), v)

            return formula

        scalars = (b2, one_minus_b2, correction2, eps, weight_decay)
        dy, z, v = _schedule_free.per_leaf(
            owner, mask, decay, leaf, updates, params, state.z, state.v, scalars=scalars
        )
        new_state = ScheduleFreeAdamWState(
            count, z, v, step.lr_max, step.weight_sum, step.gamma, step.beta, hp.state
        )
        return dy, new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))


def _adamw_preconditioner(state: ScheduleFreeAdamWState, given: dict[str, Any]) -> optax.Updates:
    """``1/(√(v/(1 − β2^t)) + ε)``: the factor z's step puts on the gradient (before any
    update: the first update's, t = 1)."""
    hp = _hyperparams.Values(state.hyperparams, given)
    count = jnp.maximum(state.count, 1)
    correction2 = _numerics.bias_correction(count, hp.complement("b2"), state.weight_sum.dtype)

    eps = hp.value("eps")
    return jax.tree.map(
        lambda v: 1 / _numerics.adam_denominator(v, eps, correction2=correction2), state.v
    )


register_rate_factor(ScheduleFreeAdamWState, lambda state: state.step_size)
register_preconditioner(ScheduleFreeAdamWState, _adamw_preconditioner)
