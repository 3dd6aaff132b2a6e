"""Schedule-free AdamW and SGD (Defazio et al., 2024): an average in place of a schedule.

Three sequences: z takes the base optimizer's steps, x is a weighted average of the z's
(the point to evaluate), and the gradient is taken at their interpolation
``y = (1 − β)·z + β·x``. The parameters the user holds during training are y (the
reference's train mode); :func:`schedule_free_eval_params` gives x (its eval mode).
Only y and z are stored: x is recovered from them, as the reference does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner, register_rate_factor, unit_factors
from lrjax._validation import Default, check_integer, default, is_concrete, show


class ScheduleFreeAdamWState(NamedTuple):
    """State of :func:`schedule_free_adamw`.

    * ``count``: the updates done, the reference's ``k``; schedules are evaluated at it.
    * ``z``: the base sequence z (it starts at the initial parameters).
    * ``v``: the running average of the squared gradients, the reference's ``exp_avg_sq``.
    * ``lr_max``: the largest warmed-up rate applied so far (0 before any update).
    * ``weight_sum``: the sum of the averaging weights ``t^r · lr_max^p`` so far (as the
      reference's, in float32 unless x64 holds float64: with r > 4 it overflows within
      10⁸ steps).
    * ``step_size``: the warmed-up rate ``lr·min(1, t/W)`` the most recent update applied
      (before any update: the first update's).
    * ``interpolation``: the β1 the most recent update used (before any update: the
      first update's), with which y was formed: :func:`schedule_free_eval_params` recovers
      x with it, also when β1 is given as an array (``jax.vmap``) the state does not hold.
    * ``hyperparams``: the float hyperparameters held (see :func:`lrjax.set_hyperparams`).
    """

    count: jax.Array
    z: optax.Params
    v: optax.Updates
    lr_max: jax.Array
    weight_sum: jax.Array
    step_size: jax.Array
    interpolation: jax.Array
    hyperparams: _hyperparams.HyperparamsState


class ScheduleFreeSGDState(NamedTuple):
    """State of :func:`schedule_free_sgd`: the fields of :class:`ScheduleFreeAdamWState`
    without ``v``; ``interpolation`` is the momentum β."""

    count: jax.Array
    z: optax.Params
    lr_max: jax.Array
    weight_sum: jax.Array
    step_size: jax.Array
    interpolation: jax.Array
    hyperparams: _hyperparams.HyperparamsState


_STATES = (ScheduleFreeAdamWState, ScheduleFreeSGDState)


# ------------------------------------------------------------------ the scalars


class _Step(NamedTuple):
    """The scalars of one update (``t = count + 1``)."""

    gamma: jax.Array  # γ_t, z's rate
    c: jax.Array  # c_{t+1}, the weight of z_{t+1} in the average x
    gamma_y: jax.Array  # γ_t (1 − β + β c), y's rate
    beta: jax.Array  # β, kept in the state as its interpolation
    lr_max: jax.Array
    weight_sum: jax.Array


def _warmed_up_rate(count: jax.Array, hp: _hyperparams.Values, warmup_steps: int) -> jax.Array:
    """``γ_t = lr · min(1, t/W)`` for update number ``t = count + 1``: the reference's
    warm-up reaches ``lr/W`` at the first update (optax's starts from 0)."""
    dtype = _numerics.default_float()
    rate = _numerics.cast(hp.value("learning_rate"), dtype)
    if warmup_steps == 0:
        return rate
    t = count.astype(dtype) + 1
    return rate * jnp.minimum(t / warmup_steps, 1)


def _step_scalars(state: Any, hp: _hyperparams.Values, warmup_steps: int, beta: str) -> _Step:
    """γ_t, the averaging weight c_{t+1}, and y's rate.

    ``w_t = t^r · (max_{i≤t} γ_i)^p`` and ``c_{t+1} = w_t / Σ_{i≤t} w_i``; 0 while the
    sum is 0 (the rate has been 0 so far), as the reference's ``ZeroDivisionError``
    branch. The reference weighs by the largest rate so far, not by γ_t itself (the
    paper's ``γ_t²``), so that a decaying schedule does not lower the weights.
    """
    gamma = _warmed_up_rate(state.count, hp, warmup_steps)
    dtype = state.weight_sum.dtype
    t = state.count.astype(dtype) + 1
    lr_max = jnp.maximum(state.lr_max, gamma)
    r = _numerics.cast(hp.value("r"), dtype)
    power = _numerics.cast(hp.value("weight_lr_power"), dtype)
    weight = jnp.power(t, r) * jnp.power(lr_max, power)  # 0^0 = 1, as in Python
    weight_sum = state.weight_sum + weight
    positive = weight_sum > 0
    c = jnp.where(positive, weight / jnp.where(positive, weight_sum, 1), 0)
    # y = (1 − β) z + β x moves by c (z − y) − γ (1 − β + β c) ĝ.
    b = _numerics.cast(hp.value(beta), dtype)
    gamma_y = gamma * (_numerics.cast(hp.complement(beta), dtype) + b * c)
    # Fresh copies: a held rate or β must not share its buffer with these state leaves.
    return _Step(
        _numerics.fresh(gamma, dtype), c, gamma_y, _numerics.fresh(b, dtype), lr_max, weight_sum
    )


def _move(y: jax.Array, z: jax.Array, direction: jax.Array, step: _Step):
    """``y_{t+1} − y_t`` (in the direction's dtype) and ``z_{t+1}`` (in z's) for the
    direction ĝ, given in compute precision."""
    dtype = direction.dtype
    y, z32 = y.astype(dtype), z.astype(dtype)
    dy = _numerics.cast(step.c, dtype) * (z32 - y) - _numerics.cast(step.gamma_y, dtype) * direction
    return dy, (z32 - _numerics.cast(step.gamma, dtype) * direction).astype(z.dtype)


def _initial_z(params: optax.Params) -> optax.Params:
    """z starts at the parameters, in a buffer of its own."""
    return jax.tree.map(
        lambda zero, p: zero + p.astype(zero.dtype), _tree.full_like(params, 0), params
    )


def _initial_scalars(
    hyperparams: _hyperparams.Hyperparams, warmup_steps: int, beta: str
) -> dict[str, Any]:
    """The scalar fields of a fresh state: ``step_size`` and ``interpolation`` are the
    first update's."""
    held = hyperparams.init()
    hp = _hyperparams.Values(held, hyperparams.given)
    gamma = _warmed_up_rate(_tree.zeros_count(), hp, warmup_steps)
    dtype = _numerics.default_float()
    return dict(
        count=_tree.zeros_count(),
        lr_max=jnp.zeros([], dtype),
        weight_sum=jnp.zeros([], dtype),
        step_size=_numerics.fresh(gamma, dtype),
        interpolation=_numerics.fresh(hp.value(beta), dtype),
        hyperparams=held,
    )


def _held(checked: dict[str, Any], decay: bool) -> _hyperparams.Hyperparams:
    """The values held in the state; a held zero weight decay leaves its term out of the
    program, so it is not held either (setting it later would change nothing)."""
    if not decay:
        checked = {name: x for name, x in checked.items() if name != "weight_decay"}
    return _hyperparams.Hyperparams(**checked)


def _check_warmup_steps(owner: str, value: Any) -> int:
    """A concrete integer >= 0. Its default is not an ``int``, so that
    ``optax.inject_hyperparams`` (which injects every numeric argument, defaults too)
    leaves it alone; a value given there must be named in ``static_args``."""
    if isinstance(value, Default):
        value = value.value
    if isinstance(value, jax.Array):
        raise ValueError(
            f"{owner}: warmup_steps must be a concrete integer, got {show(value)} (under "
            "optax.inject_hyperparams, name it in static_args=('warmup_steps',))"
        )
    return check_integer(owner, "warmup_steps", value, 0)


def _check_beta(owner: str, name: str, value: Any) -> None:
    """β must be in (0, 1) (the reference's SGD says so; its AdamW's ``eval()`` divides
    by β1): x = (y − (1 − β) z)/β is lost at β = 0."""
    if callable(value) or not is_concrete(value):
        return
    if not 0 < float(value) < 1:
        raise ValueError(
            f"{owner}: {name} must be in (0, 1) (the average x is recovered from "
            f"y = (1 − {name})·z + {name}·x), got {show(value)}"
        )


# ------------------------------------------------------------------------ AdamW


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = default(0.0025),
    *,
    b1: float | jax.Array = default(0.9),
    b2: float | jax.Array = default(0.999),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
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
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        weight_decay=weight_decay,
        r=r,
        weight_lr_power=weight_lr_power,
    )
    _check_beta(owner, "b1", hp["b1"])
    warmup_steps = _check_warmup_steps(owner, warmup_steps)
    decay = not _hyperparams.is_zero(hp["weight_decay"])
    guard = _hyperparams.may_be_zero(hp["eps"])
    hyperparams = _held(hp, decay)

    def init_fn(params: optax.Params) -> ScheduleFreeAdamWState:
        return ScheduleFreeAdamWState(
            z=_initial_z(params),
            v=_tree.full_like(params, 0),
            **_initial_scalars(hyperparams, warmup_steps, "b1"),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params(owner, params, "the current y, where the gradient was taken")
        hp = hyperparams.read(state.hyperparams, state.count)
        step = _step_scalars(state, hp, warmup_steps, "b1")
        count = _tree.increment(state.count)
        b2, one_minus_b2 = hp.value("b2"), hp.complement("b2")
        correction2 = _numerics.bias_correction(count, one_minus_b2, step.gamma.dtype)
        eps, weight_decay = hp.value("eps"), hp.get("weight_decay", 0.0)

        def leaf(g, y, z, v, b2, one_minus_b2, correction2, eps, weight_decay):
            v = b2 * v + one_minus_b2 * jnp.square(g)
            denominator = _numerics.adam_denominator(v, eps, correction2=correction2)
            direction = _numerics.safe_divide(g, denominator, guard)
            if decay:  # at y, after the normalisation, as the reference
                direction = direction + weight_decay * y
            return (*_move(y, z, direction, step), v)

        scalars = (b2, one_minus_b2, correction2, eps, weight_decay)
        like = (updates, state.z, state.v)
        dy, z, v = _numerics.leafwise(
            leaf, updates, params, state.z, state.v, scalars=scalars, like=like
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


# -------------------------------------------------------------------------- SGD


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    momentum: float | jax.Array = default(0.9),
    weight_decay: float | jax.Array = default(0.0),
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
    hp = _hyperparams.check_hyperparams(
        owner,
        learning_rate=learning_rate,
        momentum=momentum,
        weight_decay=weight_decay,
        r=r,
        weight_lr_power=weight_lr_power,
    )
    _check_beta(owner, "momentum", hp["momentum"])
    warmup_steps = _check_warmup_steps(owner, warmup_steps)
    decay = not _hyperparams.is_zero(hp["weight_decay"])
    hyperparams = _held(hp, decay)

    def init_fn(params: optax.Params) -> ScheduleFreeSGDState:
        return ScheduleFreeSGDState(
            z=_initial_z(params), **_initial_scalars(hyperparams, warmup_steps, "momentum")
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _tree.needs_params(owner, params, "the current y, where the gradient was taken")
        hp = hyperparams.read(state.hyperparams, state.count)
        step = _step_scalars(state, hp, warmup_steps, "momentum")
        weight_decay = hp.get("weight_decay", 0.0)

        def leaf(g, y, z, weight_decay):
            direction = g + weight_decay * y if decay else g
            return _move(y, z, direction, step)

        like = (updates, state.z)
        dy, z = _numerics.leafwise(
            leaf, updates, params, state.z, scalars=(weight_decay,), like=like
        )
        count = _tree.increment(state.count)
        new_state = ScheduleFreeSGDState(
            count, z, step.lr_max, step.weight_sum, step.gamma, step.beta, hp.state
        )
        return dy, new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))


register_rate_factor(ScheduleFreeAdamWState, lambda state: state.step_size)
register_rate_factor(ScheduleFreeSGDState, lambda state: state.step_size)
register_preconditioner(ScheduleFreeAdamWState, _adamw_preconditioner)
# SGD rescales nothing: z's step is the rate times the gradient.
register_preconditioner(ScheduleFreeSGDState, lambda state, given: unit_factors(state.z))
