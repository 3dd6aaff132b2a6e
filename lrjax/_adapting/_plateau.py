"""Reduce the learning rate when a monitored metric stops improving."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _blocks, _hyperparams, _numerics, _tree
from lrjax._registry import register_rate_factor
from lrjax._validation import check_choice, check_integer, default, show


class ReduceOnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`.

    ``scale`` multiplies the updates (the rate is ``base rate × scale``); ``best`` is the
    best metric so far, ``bad_steps`` and ``cooldown_left`` are torch's
    ``num_bad_epochs`` and ``cooldown_counter``; ``value_sum`` and ``value_count``
    accumulate the metric over the ``accumulation_steps`` of one decision.
    """

    count: jax.Array
    scale: jax.Array
    best: jax.Array
    bad_steps: jax.Array
    cooldown_left: jax.Array
    value_sum: jax.Array
    value_count: jax.Array
    hyperparams: _hyperparams.HyperparamsState


register_rate_factor(ReduceOnPlateauState, lambda state: state.scale)


def reduce_on_plateau(
    *,
    factor: float | jax.Array = default(0.1),
    patience: int = 10,
    threshold: float | jax.Array = default(1e-4),
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_scale: float | jax.Array = default(0.0),
    mode: str = "min",
    accumulation_steps: int = 1,
) -> optax.GradientTransformationExtraArgs:
    """Scales the updates down by ``factor`` when the metric stops improving.

    The semantics of ``torch.optim.lr_scheduler.ReduceLROnPlateau``, as a transformation
    that composes: put it after any method, with any schedule, in ``optax.chain``; the
    rate becomes ``schedule(t) × scale`` (what :func:`lrjax.current_learning_rate`
    reports). Its ``update`` takes the monitored metric as ``value=``::

        tx = optax.chain(lrjax.adam(warmup(cosine_decay(1e-3, 10_000), 500)),
                         lrjax.reduce_on_plateau(patience=5))
        updates, state = tx.update(grads, state, params, value=loss)

    Every ``accumulation_steps`` updates (an "epoch") the mean of the values received
    makes one decision, exactly as ``scheduler.step(mean)`` in torch: a value is an
    improvement when it beats ``best`` by the threshold (``rel``: ``v < best·(1 −
    threshold)`` in ``min`` mode, ``v > best·(1 + threshold)`` in ``max``; ``abs``:
    ``v < best − threshold`` / ``v > best + threshold``); otherwise it is a bad step, but
    bad steps in a cooldown are not counted; when the bad steps exceed ``patience`` the
    scale becomes ``max(scale·factor, min_scale)`` and a cooldown of ``cooldown``
    decisions starts. The update that receives the deciding value already applies the
    new scale (torch: the rate after ``scheduler.step(v)``).

    To decide on a validation metric measured once per epoch, pass the latest
    measurement at every update and set ``accumulation_steps`` to the number of updates
    per epoch: each decision then sees that epoch's value.

    Differences from torch: ``min_scale`` is relative to the base rate (torch's
    ``min_lr`` is absolute), torch's ``eps`` (skip reductions smaller than it) has no
    counterpart, and a non-finite value (NaN, ±inf) is never an improvement (torch
    takes −inf in ``min`` mode as a new best, after which nothing improves).

    Args:
      factor: the reduction factor, in (0, 1).
      patience: bad decisions tolerated before a reduction (>= 0).
      threshold: the margin an improvement must beat (>= 0).
      threshold_mode: ``"rel"`` or ``"abs"``.
      cooldown: decisions after a reduction during which bad steps are not counted.
      min_scale: the floor of the scale, in [0, 1].
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      accumulation_steps: updates per decision (>= 1); their values are averaged.

    ``factor``, ``threshold`` and ``min_scale`` may each be a schedule ``step -> value``,
    as every float hyperparameter of lrjax may: it is evaluated at the number of updates
    done, and a reduction uses the value at its own update (e.g. cut harder later in
    training). A schedule's values are the caller's to keep in range: they are not
    checked at run time.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs ``value=``.

    torch: ``ReduceLROnPlateau(optimizer, mode, factor, patience, threshold,
    threshold_mode, cooldown, min_lr=base_lr·min_scale, eps=0)``.
    """
    owner = "reduce_on_plateau"
    hp = _hyperparams.check_hyperparams(
        owner, factor=factor, threshold=threshold, min_scale=min_scale
    )
    hyperparams = _hyperparams.Hyperparams(**hp)
    patience = check_integer(owner, "patience", patience, 0)
    cooldown = check_integer(owner, "cooldown", cooldown, 0)
    accumulation_steps = check_integer(owner, "accumulation_steps", accumulation_steps, 1)
    check_choice(owner, "mode", mode, ("min", "max"))
    check_choice(owner, "threshold_mode", threshold_mode, ("rel", "abs"))
    worst = jnp.inf if mode == "min" else -jnp.inf

    def init_fn(params: optax.Params) -> ReduceOnPlateauState:
        del params
        f32 = jnp.float32
        return ReduceOnPlateauState(
            count=_tree.zeros_count(),
            scale=jnp.ones([], f32),
            best=jnp.full([], worst, f32),
            bad_steps=_tree.zeros_count(),
            cooldown_left=_tree.zeros_count(),
            value_sum=jnp.zeros([], f32),
            value_count=_tree.zeros_count(),
            hyperparams=hyperparams.init(),
        )

    def improves(value: jax.Array, best: jax.Array, threshold: jax.Array) -> jax.Array:
        if mode == "min":
            bar = best * (1 - threshold) if threshold_mode == "rel" else best - threshold
            better = value < bar
        else:
            bar = best * (1 + threshold) if threshold_mode == "rel" else best + threshold
            better = value > bar
        return better & jnp.isfinite(value)

    def update_fn(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau: update needs the monitored metric, got value=None; "
                "call tx.update(updates, state, params, value=loss)"
            )
        hp = hyperparams.read(state.hyperparams, state.count)
        f32 = jnp.float32
        if not isinstance(value, (int, float, np.integer, np.floating, np.ndarray, jax.Array)):
            raise ValueError(
                f"{owner}: value must be a real scalar (the monitored metric), got {show(value)}"
            )
        value = jnp.asarray(value)
        real = jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)
        if value.shape != () or not real:
            raise ValueError(
                f"{owner}: value must be a real scalar (the monitored metric), got an array "
                f"of dtype {value.dtype} and shape {value.shape}"
            )
        value = value.astype(f32)
        value_sum = state.value_sum + value
        value_count = state.value_count + 1
        decide = value_count >= accumulation_steps
        mean = value_sum / value_count.astype(f32)

        better = improves(mean, state.best, _numerics.cast(hp.value("threshold"), f32))
        best = jnp.where(better, mean, state.best)
        bad_steps = jnp.where(better, 0, state.bad_steps + 1)
        in_cooldown = state.cooldown_left > 0
        cooldown_left = jnp.where(in_cooldown, state.cooldown_left - 1, 0)
        bad_steps = jnp.where(in_cooldown, 0, bad_steps)
        reduce = bad_steps > patience
        factor = _numerics.cast(hp.value("factor"), f32)
        floor = _numerics.cast(hp.value("min_scale"), f32)
        scale = jnp.where(reduce, jnp.maximum(state.scale * factor, floor), state.scale)
        cooldown_left = jnp.where(reduce, cooldown, cooldown_left)
        bad_steps = jnp.where(reduce, 0, bad_steps)

        def pick(new: jax.Array, old: jax.Array) -> jax.Array:
            return jnp.where(decide, new, old)

        new_state = ReduceOnPlateauState(
            count=_tree.increment(state.count),
            scale=pick(scale, state.scale),
            best=pick(best, state.best),
            bad_steps=pick(bad_steps, state.bad_steps).astype(jnp.int32),
            cooldown_left=pick(cooldown_left, state.cooldown_left).astype(jnp.int32),
            value_sum=jnp.where(decide, 0.0, value_sum).astype(f32),
            value_count=jnp.where(decide, 0, value_count).astype(jnp.int32),
            hyperparams=hp.state,
        )
        return _blocks.scale_tree(updates, new_state.scale), new_state

    return _tree.as_method(owner, optax.GradientTransformationExtraArgs(init_fn, update_fn))
