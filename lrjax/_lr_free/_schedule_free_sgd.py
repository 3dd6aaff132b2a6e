"""Schedule-free SGD (``schedulefree.SGDScheduleFree``): SGD on z, x an average of the
z's, the gradient taken at their interpolation y."""

from __future__ import annotations

from typing import Any

import jax
import optax

from lrjax import _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._lr_free import _mask, _schedule_free
from lrjax._lr_free._schedule_free import ScheduleFreeSGDState
from lrjax._registry import register_preconditioner, register_rate_factor, unit_factors
from lrjax._validation import default


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    momentum: float | jax.Array = default(0.9),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    warmup_steps: int = default(0),
    r: float | jax.Array = default(0.0),
    weight_lr_power: float | jax.Array = default(2.0),
) -> optax.GradientTransformationExtraArgs:
    """Schedule-free SGD (Defazio et al., 2024), identical to the reference.

    For update number t = 1, 2, … with the gradient g_t taken at the parameters
    y_t = (1 − β) z_t + β x_t, β = ``momentum``:

    .. math::

        \\hat g_t = g_t + \\lambda\\, y_t, \\qquad
        \\gamma_t = \\eta \\min(1, t / W), \\qquad z_{t+1} = z_t - \\gamma_t\\, \\hat g_t

        w_t = t^r \\bigl(\\max_{i \\le t} \\gamma_i\\bigr)^p, \\qquad
        c_{t+1} = \\frac{w_t}{\\sum_{i \\le t} w_i}, \\qquad
        x_{t+1} = (1 - c_{t+1})\\, x_t + c_{t+1}\\, z_{t+1}

    with x_1 = z_1 = the initial parameters, W = ``warmup_steps`` (no warm-up when 0),
    λ = ``weight_decay`` and p = ``weight_lr_power``. The update moves y without forming
    x: ``y_{t+1} = y_t + c (z_t − y_t) − γ_t (1 − β + β c) ĝ_t``. β plays the part of
    momentum: β = 0 would be Polyak averaging, β = 1 primal averaging.

    Train on y (the parameters ``optax.apply_updates`` gives); evaluate, and save, at
    :func:`schedule_free_eval_params`.

    Args:
      learning_rate: η: a number, a JAX array or a schedule.
      momentum: β in (0, 1), the interpolation between z and x.
      weight_decay: λ >= 0, added to the gradient at y.
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
      >>> tx = lrjax.schedule_free_sgd(0.5, warmup_steps=10)
      >>> loss = lambda p: jnp.sum(p**2) / 2
      >>> @jax.jit
      ... def step(params, state):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> params = jnp.array([1.0, -2.0]); state = tx.init(params)
      >>> for _ in range(100):
      ...     params, state = step(params, state)
      >>> x = lrjax.schedule_free_eval_params(state, params)
      >>> bool(loss(x) < 1e-5)
      True

    reference: ``schedulefree.SGDScheduleFree(params, lr, momentum, weight_decay,
    warmup_steps, r, weight_lr_power)`` in train mode.

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled",
      NeurIPS 2024, https://arxiv.org/abs/2405.15682
    """
    owner = "schedule_free_sgd"
    _, warmup_steps, mask, decay, hyperparams = _schedule_free.check(
        owner,
        "momentum",
        warmup_steps,
        mask,
        learning_rate=learning_rate,
        momentum=momentum,
        weight_decay=weight_decay,
        r=r,
        weight_lr_power=weight_lr_power,
    )

    def init_fn(params: optax.Params) -> ScheduleFreeSGDState:
        _mask.resolve(owner, mask, params)  # a mask that does not fit fails here
        return ScheduleFreeSGDState(
            z=_schedule_free.initial_z(params),
            **_schedule_free.initial_scalars(hyperparams, warmup_steps, "momentum"),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params(owner, params, "the current y, where the gradient was taken")
        hp = hyperparams.read(state.hyperparams, state.count)
        step = _schedule_free.step_scalars(state, hp, warmup_steps, "momentum")
        weight_decay = hp.get("weight_decay", 0.0)

        def leaf(decayed: bool):
            def formula(g, y, z, weight_decay):
                direction = g + weight_decay * y if decayed else g
                return _schedule_free.move(y, z, direction, step)

            return formula

        dy, z = _schedule_free.per_leaf(
            owner, mask, decay, leaf, updates, params, state.z, scalars=(weight_decay,)
        )
        count = _tree.increment(state.count)
        new_state = ScheduleFreeSGDState(
            count, z, step.lr_max, step.weight_sum, step.gamma, step.beta, hp.state
        )
        return dy, new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))


register_rate_factor(ScheduleFreeSGDState, lambda state: state.step_size)
# SGD rescales nothing: z's step is the rate times the gradient.
register_preconditioner(ScheduleFreeSGDState, lambda state, given: unit_factors(state.z))
