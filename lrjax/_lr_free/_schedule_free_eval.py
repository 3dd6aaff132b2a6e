"""The parameters a schedule-free run is evaluated at, recovered from its state."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax import _numerics, _tree
from lrjax._lr_free._schedule_free import ScheduleFreeAdamWState, ScheduleFreeSGDState
from lrjax._registry import find, is_masked
from lrjax._validation import is_concrete


def schedule_free_eval_params(opt_state: optax.OptState, params: optax.Params) -> optax.Params:
    """The parameters to evaluate a schedule-free method at: the average x.

    .. math:: x = \\frac{y - (1 - \\beta)\\, z}{\\beta}

    where y are the parameters being trained (``params``), z the base sequence held in
    ``opt_state`` and β the interpolation (``b1`` of :func:`schedule_free_adamw`,
    ``momentum`` of :func:`schedule_free_sgd`) that the most recent update formed y with.
    This is what the reference's ``optimizer.eval()`` puts into the model (which takes
    the group's current β: the two differ only when β is changed between an update and
    the evaluation). Evaluate, and save checkpoints, at x; keep training from y.

    The schedule-free state is found anywhere in ``opt_state``: alone, inside
    ``optax.chain``, ``optax.MultiSteps``, ``optax.inject_hyperparams``, ``optax.masked``
    or ``optax.partition`` (each group gives its own parameters' x). Parameters no
    schedule-free state trains are returned unchanged.

    Args:
      opt_state: the optimizer state.
      params: the parameters y the training updates, as ``optax.apply_updates`` left
        them.

    Returns:
      A pytree like ``params``, in the parameters' dtypes.

    Raises:
      ValueError: when ``opt_state`` holds no schedule-free state, or ``params`` does not
        match it.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = optax.chain(optax.clip_by_global_norm(1.0), lrjax.schedule_free_sgd(0.1))
      >>> params = jnp.array([1.0]); state = tx.init(params)
      >>> for _ in range(2):  # z: 1 → 0.9 → 0.8; x: 1 → 0.9 → (0.9 + 0.8)/2
      ...     updates, state = tx.update(jnp.array([1.0]), state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> params  # y = 0.1·z + 0.9·x
      Array([0.84499997], dtype=float32)
      >>> lrjax.schedule_free_eval_params(state, params)
      Array([0.85], dtype=float32)
    """
    owner = "schedule_free_eval_params"
    # Inside chain, MultiSteps, inject_hyperparams, masked and partition: each keeps its
    # inner states as pytree children.
    found = find(
        opt_state, lambda node: isinstance(node, (ScheduleFreeAdamWState, ScheduleFreeSGDState))
    )
    if not found:
        raise ValueError(
            f"{owner}: opt_state holds no schedule-free state (of schedule_free_adamw or "
            "schedule_free_sgd)"
        )
    # For each parameter a schedule-free state trains (by its path): z and β.
    averaged: dict[Any, tuple[jax.Array, jax.Array]] = {}
    for state in found:
        beta = state.interpolation
        if is_concrete(beta) and float(beta) == 0:
            raise ValueError(
                f"{owner}: the interpolation β (b1, momentum) is 0 in opt_state, so y = z "
                "and the average x cannot be recovered from them"
            )
        for path, z in jax.tree_util.tree_leaves_with_path(state.z, is_leaf=is_masked):
            if is_masked(z):
                continue
            if path in averaged:
                raise ValueError(
                    f"{owner}: several schedule-free states train the parameter at "
                    f"{jax.tree_util.keystr(path)}"
                )
            averaged[path] = (z, beta)

    def average(path: Any, y: Any) -> Any:
        entry = averaged.pop(path, None)
        if entry is None:
            return y
        z, beta = entry
        y = jnp.asarray(y)
        real = _tree.as_real(y)  # a complex parameter is held as (real, imaginary) pairs
        if real.shape != z.shape:
            raise ValueError(
                f"{owner}: params do not match opt_state: the parameter at "
                f"{jax.tree_util.keystr(path)} has shape {y.shape}, its z {z.shape}"
            )
        dtype = _numerics.compute_dtype(z.dtype)
        b = _numerics.cast(beta, dtype)
        x = (real.astype(dtype) - (1 - b) * z.astype(dtype)) / b
        return _tree.as_complex_like(x.astype(real.dtype), y)

    x = jax.tree_util.tree_map_with_path(average, params)
    if averaged:
        missing = ", ".join(jax.tree_util.keystr(path) for path in averaged)
        raise ValueError(
            f"{owner}: params do not match opt_state: it trains parameters at {missing}, "
            "which params lacks"
        )
    return x
