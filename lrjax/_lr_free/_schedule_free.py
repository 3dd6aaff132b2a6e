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
from lrjax._blocks import check_mask
from lrjax._lr_free import _mask
from lrjax._validation import Default, check_integer, is_concrete, show


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


class Step(NamedTuple):
    """The scalars of one update (``t = count + 1``)."""

    gamma: jax.Array  # γ_t, z's rate
    c: jax.Array  # c_{t+1}, the weight of z_{t+1} in the average x
    gamma_y: jax.Array  # γ_t (1 − β + β c), y's rate
    beta: jax.Array  # β, kept in the state as its interpolation
    lr_max: jax.Array
    weight_sum: jax.Array


def warmed_up_rate(count: jax.Array, hp: _hyperparams.Values, warmup_steps: int) -> jax.Array:
    """``γ_t = lr · min(1, t/W)`` for update number ``t = count + 1``: the reference's
    warm-up reaches ``lr/W`` at the first update (optax's starts from 0)."""
    dtype = _numerics.default_float()
    rate = _numerics.cast(hp.value("learning_rate"), dtype)
    if warmup_steps == 0:
        return rate
    t = count.astype(dtype) + 1
    return rate * jnp.minimum(t / warmup_steps, 1)


def step_scalars(state: Any, hp: _hyperparams.Values, warmup_steps: int, beta: str) -> Step:
    """γ_t, the averaging weight c_{t+1}, and y's rate.

    ``w_t = t^r · (max_{i≤t} γ_i)^p`` and ``c_{t+1} = w_t / Σ_{i≤t} w_i``; 0 while the
    sum is 0 (the rate has been 0 so far), as the reference's ``ZeroDivisionError``
    branch. The reference weighs by the largest rate so far, not by γ_t itself (the
    paper's ``γ_t²``), so that a decaying schedule does not lower the weights.
    """
    gamma = warmed_up_rate(state.count, hp, warmup_steps)
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
    return Step(
        _numerics.fresh(gamma, dtype), c, gamma_y, _numerics.fresh(b, dtype), lr_max, weight_sum
    )


def move(y: jax.Array, z: jax.Array, direction: jax.Array, step: Step):
    """``y_{t+1} − y_t`` (in the direction's dtype) and ``z_{t+1}`` (in z's) for the
    direction ĝ, given in compute precision."""
    dtype = direction.dtype
    y, z32 = y.astype(dtype), z.astype(dtype)
    dy = _numerics.cast(step.c, dtype) * (z32 - y) - _numerics.cast(step.gamma_y, dtype) * direction
    return dy, (z32 - _numerics.cast(step.gamma, dtype) * direction).astype(z.dtype)


def initial_z(params: optax.Params) -> optax.Params:
    """z starts at the parameters, in a buffer of its own."""
    return jax.tree.map(
        lambda zero, p: zero + p.astype(zero.dtype), _tree.full_like(params, 0), params
    )


def initial_scalars(
    hyperparams: _hyperparams.Hyperparams, warmup_steps: int, beta: str
) -> dict[str, Any]:
    """The scalar fields of a fresh state: ``step_size`` and ``interpolation`` are the
    first update's."""
    held = hyperparams.init()
    hp = _hyperparams.Values(held, hyperparams.given)
    gamma = warmed_up_rate(_tree.zeros_count(), hp, warmup_steps)
    dtype = _numerics.default_float()
    return dict(
        count=_tree.zeros_count(),
        lr_max=jnp.zeros([], dtype),
        weight_sum=jnp.zeros([], dtype),
        step_size=_numerics.fresh(gamma, dtype),
        interpolation=_numerics.fresh(hp.value(beta), dtype),
        hyperparams=held,
    )


def held(checked: dict[str, Any], decay: bool) -> _hyperparams.Hyperparams:
    """The values held in the state; a held zero weight decay leaves its term out of the
    program, so it is not held either (setting it later would change nothing)."""
    if not decay:
        checked = {name: x for name, x in checked.items() if name != "weight_decay"}
    return _hyperparams.Hyperparams(**checked)


class Checked(NamedTuple):
    """A schedule-free factory's checked arguments."""

    hp: dict[str, Any]
    warmup_steps: int
    mask: Any
    decay: bool
    hyperparams: _hyperparams.Hyperparams


def check(owner: str, beta: str, warmup_steps: Any, mask: Any, **values: Any) -> Checked:
    """Both factories' arguments, checked in one order: the float hyperparameters, the
    interpolation ``beta``, ``warmup_steps``, then ``mask``."""
    hp = _hyperparams.check_hyperparams(owner, **values)
    check_beta(owner, beta, hp[beta])
    warmup_steps = check_warmup_steps(owner, warmup_steps)
    mask = check_mask(owner, mask)
    decay = not _hyperparams.is_zero(hp["weight_decay"])
    return Checked(hp, warmup_steps, mask, decay, held(hp, decay))


def check_warmup_steps(owner: str, value: Any) -> int:
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


def check_beta(owner: str, name: str, value: Any) -> None:
    """β must be in (0, 1) (the reference's SGD says so; its AdamW's ``eval()`` divides
    by β1): x = (y − (1 − β) z)/β is lost at β = 0."""
    if callable(value) or not is_concrete(value):
        return
    if not 0 < float(value) < 1:
        raise ValueError(
            f"{owner}: {name} must be in (0, 1) (the average x is recovered from "
            f"y = (1 − {name})·z + {name}·x), got {show(value)}"
        )


def per_leaf(
    owner: str,
    mask: Any,
    decay: bool,
    formula: Any,
    updates: optax.Updates,
    params: Any,
    *state: Any,
    scalars: tuple,
) -> tuple[Any, ...]:
    """``formula(decayed)`` leaf by leaf (:func:`lrjax._numerics.leafwise`), ``decayed``
    saying whether the weight decay applies to the leaf (never when ``decay`` is off):
    y's move, and the new state trees like ``state``."""
    decays = _mask.resolve(owner, mask, params) if decay else jax.tree.map(lambda _: False, params)

    def apply(decayed, g, y, *leaves):
        like = (g, *leaves)
        return _numerics.leafwise(formula(decayed), g, y, *leaves, scalars=scalars, like=like)

    return _tree.unzip(
        updates, jax.tree.map(apply, decays, updates, params, *state), 1 + len(state)
    )
