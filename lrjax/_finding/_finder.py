"""The learning-rate range test: train briefly while the rate grows, watch the loss."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _chain, _numerics
from lrjax._finding import _loop
from lrjax._finding._results import FinderResult
from lrjax._finding._sharpness import sharpness
from lrjax._methods._sgd import sgd
from lrjax._validation import (
    Condition,
    check_choice,
    check_flag,
    check_float,
    check_integer,
    is_concrete,
    positive,
    show,
    unit_open,
)

OWNER = "find_learning_rate"


def find_learning_rate(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params,
    batches: Any,
    optimizer: _chain.OptimizerFactory = sgd,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_threshold: float = 4.0,
    progress: bool = False,
    stable_rate: bool = False,
) -> FinderResult:
    """The learning-rate range test (Smith, 2017): the rate grows until the loss diverges.

    From ``params``, ``num_steps`` steps of ``optimizer`` are taken while the rate grows
    from ``min_lr`` to ``max_lr`` (geometrically, or linearly with ``mode="linear"``):
    the optimizer factory receives the ramp as its schedule (``step -> rate``, float32).
    The loss is smoothed by a debiased moving average
    ``s_t = EMA_t / (1 − smoothing^(t+1))``; the test stops at the first step whose loss
    is not finite or whose ``s_t`` exceeds ``divergence_threshold × min(s)`` (for a
    negative minimum: rises ``(divergence_threshold − 1) × |min(s)|`` above it), and the
    curve ends there (a non-finite loss is left out of it). ``params`` is not modified
    (nor donated): it can be used again.

    ``batches`` is either a stacked pytree (an array, dict or tuple whose leaves share a
    leading axis of at least ``num_steps``: the whole test then runs as one compiled
    ``lax.scan``), or an iterable of batches such as a list or a data loader (a jitted
    step in a Python loop that stops consuming batches at divergence; a tqdm bar when
    ``progress=True``). Both give the same curve on the same data. Calling it again
    with the same ``loss_fn``, ``optimizer``, shapes and ``num_steps`` reuses the
    compiled program, whatever the rates, ``smoothing`` and threshold.

    The ``suggestion`` is half the rate at the bottom of the curve: the raw losses
    smoothed against ``log10(rate)`` by a centred Gaussian (σ = 0.15 decades; centred,
    so unlike the moving average it does not lag behind the rate), its lowest point
    divided by 2, and at most a quarter of the rate where the test stopped, so it never
    lies next to the divergence. A curve with no usable descent (lowest in its first
    tenth, or falling less than 3 × the losses' jitter about the smoothed curve) has
    ``suggestion=None``, the ``reason`` and a warning. A loss that is not finite at the
    first step, before any update, is a bug in the loss or the data: a ``ValueError``.
    ``suggestions`` also holds the older rules read off the moving average (over the
    descent: from a tenth of the way in to its minimum): ``steepest``, where it falls
    fastest; ``valley``, the middle of the stretch that falls at least 30% as fast;
    ``minimum``, a tenth of the rate at its minimum.

    The suggestion is a first guess from one short run. On the twelve protocols of
    ``benchmarks/finder_quality.py`` (six tasks × AdamW and SGD with momentum, warm-up
    + cosine, ground truth from a grid of peak rates trained to the end over many
    seeds) its worst regret (held-out loss at the rate over the best one's, minus one)
    was 65%, against 92% for ``valley``, 139% for ``minimum``, 598% for ``steepest``
    and more for fastai's and Lightning's rules; the best peak rate of a scheduled run
    can lie 20× below the bottom of the curve or near it.
    :func:`tune_learning_rate` spends a few runs' worth of steps to get closer.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a real floating-point scalar).
      params: the starting parameters (a pytree of floating-point arrays).
      batches: a stacked pytree of batches or an iterable of batches.
      optimizer: maps a rate or schedule to a transformation, e.g. ``lrjax.adam`` or
        ``lambda lr: optax.chain(optax.clip_by_global_norm(1.0), lrjax.sgd(lr,
        momentum=0.9))``: the factory, not a transformation already built.
      min_lr: the first rate (> 0, at least float32's smallest normal number 1.2e-38).
      max_lr: the last rate (> min_lr in float32, finite in float32).
      num_steps: the number of steps (an integer >= 2).
      mode: ``"exponential"`` or ``"linear"`` growth.
      smoothing: the moving average's decay, in [0, 1) (in float32).
      divergence_threshold: the stop factor (> 1 in float32).
      progress: show a progress bar (iterable batches only; needs tqdm).

    With ``stable_rate=True`` the result also holds the sharpness ``λ_max`` of the loss
    at ``params`` on the first batch (:func:`lrjax.sharpness`, 20 Lanczos steps of
    Hessian-vector products) and ``2/λ_max``, the largest rate at which gradient descent
    is stable on the local quadratic model, which ``.plot()`` marks; with momentum μ the
    limit is ``2(1 + μ)/λ_max``, for Adam see :func:`lrjax.stability`.

    Returns:
      A :class:`FinderResult`.

    Raises:
      ValueError: for an invalid argument, naming it; nothing is clamped or replaced.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss = lambda w, x: jnp.mean((x * w - 2.0 * x) ** 2)  # SGD is stable below 1
      >>> result = lrjax.find_learning_rate(loss, jnp.zeros(()), jnp.ones((100, 8)))
      >>> result.diverged, round(result.suggestion, 2)
      (True, 0.54)

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
      https://arxiv.org/abs/1506.01186
    """
    _loop.check_functions(OWNER, loss_fn, optimizer)
    _loop.check_params(OWNER, params)
    rates = check_ramp(OWNER, min_lr, max_lr, num_steps, mode)
    smoothing = _number(OWNER, "smoothing", smoothing, unit_open, "in [0, 1)")
    if np.float32(smoothing) == 1:
        raise ValueError(
            f"{OWNER}: smoothing must be < 1 in float32 (the average would never move), "
            f"got {show(smoothing)}"
        )
    threshold = _number(OWNER, "divergence_threshold", divergence_threshold, _above_one, "> 1")
    if np.float32(threshold) == 1:
        raise ValueError(
            f"{OWNER}: divergence_threshold must be > 1 in float32, got {show(threshold)}"
        )
    progress = check_flag(OWNER, "progress", progress)
    stable_rate = check_flag(OWNER, "stable_rate", stable_rate)

    return range_test(
        OWNER,
        loss_fn,
        params,
        batches,
        optimizer,
        rates,
        smoothing=smoothing,
        threshold=threshold,
        progress=progress,
        stable_rate=stable_rate,
    )


def check_ramp(owner: str, min_lr: Any, max_lr: Any, num_steps: Any, mode: Any) -> np.ndarray:
    """The rates of the ramp, every argument checked for ``owner``."""
    given = {"min_lr": min_lr, "max_lr": max_lr}  # for messages, as the user wrote them
    min_lr = _number(owner, "min_lr", min_lr, positive, "> 0")
    if min_lr < _numerics.FLOAT32_TINY:
        raise ValueError(
            f"{owner}: min_lr must be at least {_numerics.FLOAT32_TINY:.8g} (float32's "
            "smallest normal number; smaller rates are 0 on most hardware), got "
            f"{show(given['min_lr'])}"
        )
    max_lr = _number(owner, "max_lr", max_lr, positive, "> 0")
    if not np.float32(max_lr) > np.float32(min_lr):
        flat = " in float32 (the ramp would be flat)" if max_lr > min_lr else ""
        raise ValueError(
            f"{owner}: max_lr must be > min_lr={show(given['min_lr'])}{flat}, "
            f"got {show(given['max_lr'])}"
        )
    num_steps = check_integer(owner, "num_steps", num_steps, 2)
    mode = check_choice(owner, "mode", mode, ("exponential", "linear"))
    rates = ramp(min_lr, max_lr, num_steps, mode)
    if np.any(np.diff(rates) <= 0):
        raise ValueError(
            f"{owner}: max_lr={show(given['max_lr'])} is too close to min_lr="
            f"{show(given['min_lr'])} for num_steps={num_steps}: consecutive rates of the "
            "ramp are equal in float32; widen the range or take fewer steps"
        )
    return rates


def range_test(
    owner: str,
    loss_fn: Any,
    params: Any,
    batches: Any,
    optimizer: Any,
    rates: np.ndarray,
    *,
    smoothing: float = 0.98,
    threshold: float = 4.0,
    progress: bool = False,
    stable_rate: bool = False,
) -> FinderResult:
    """The range test over ``rates`` with checked arguments; errors name ``owner``."""
    num_steps = len(rates)
    functions = {
        "loss_fn": _loop.Static(loss_fn),
        "optimizer": _loop.Static(optimizer),
        "owner": owner,
    }
    settings = (jnp.asarray(rates), jnp.float32(smoothing), jnp.float32(threshold))
    if _loop.is_stacked(batches):
        batches, _ = _loop.take(owner, batches, num_steps)
        first = jax.tree.map(lambda b: b[0], batches)
        (losses, smoothed, ran), done = _scan(params, batches, *settings, **functions)
        executed = int(np.sum(np.asarray(ran)))
        stopped = executed - 1 if bool(done) else None
        losses = np.asarray(losses, np.float64)[:executed]
        smoothed = np.asarray(smoothed, np.float64)[:executed]
    else:
        iterator = _loop.iterator(owner, batches)
        first = next(iterator, None)
        iterator = itertools.chain([] if first is None else [first], iterator)
        bar = _loop.progress_bar(owner, num_steps, progress, "range test")
        try:
            losses, smoothed, stopped = _run_loop(params, iterator, settings, functions, bar)
        finally:
            bar.close()
    result = _result(owner, rates.astype(np.float64), losses, smoothed, stopped)
    if stable_rate and first is not None:
        curvature = float(sharpness(loss_fn, params, first))
        largest = 2 / curvature if curvature > 0 else None
        result = dataclasses.replace(result, sharpness=curvature, stable_rate=largest)
    return result


def _number(owner: str, name: str, value: Any, condition: Condition, requirement: str) -> float:
    """A float argument, checked by the library's rules, as a concrete Python float."""
    if isinstance(value, jax.Array) and not is_concrete(value):
        raise ValueError(
            f"{owner}: {name} must be a concrete number ({owner} runs eagerly), got {show(value)}"
        )
    return float(check_float(owner, name, value, condition, requirement))


def _above_one(x: np.ndarray) -> Any:
    return x > 1


def ramp(min_lr: float, max_lr: float, num_steps: int, mode: str) -> np.ndarray:
    """The rate of every step, computed in float64 and rounded once to float32."""
    fraction = np.arange(num_steps, dtype=np.float64) / (num_steps - 1)
    if mode == "exponential":
        rates = min_lr * (max_lr / min_lr) ** fraction
    else:
        rates = min_lr + (max_lr - min_lr) * fraction
    rates[-1] = max_lr  # exactly, whatever the rounding of the power
    return rates.astype(np.float32)


def _schedule(rates: jax.Array) -> Callable[[Any], jax.Array]:
    """The ramp as the schedule the optimizer receives: a lookup in the rate table."""
    last = rates.shape[0] - 1
    return lambda step: rates[jnp.clip(jnp.asarray(step), 0, last)]


def _watch(loss, t, average, best, smoothing, threshold):
    """The stop rule: debiased EMA of the loss against its best value so far."""
    average = smoothing * average + (1 - smoothing) * loss
    smoothed = average / (1 - smoothing ** (t + 1).astype(jnp.float32))
    finite = jnp.isfinite(loss) & jnp.isfinite(smoothed)
    best = jnp.where(finite, jnp.minimum(best, smoothed), best)
    # threshold × best for a positive best; the same rise above a negative one (a
    # log-likelihood), where threshold × best would lie below it and stop at once.
    diverged = ~finite | (smoothed > best + (threshold - 1) * jnp.abs(best))
    return average, best, smoothed, diverged


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "owner"))
def _scan(params, batches, rates, smoothing, threshold, *, loss_fn, optimizer, owner):
    tx = _chain.build(owner, optimizer.value, _schedule(rates))
    step = _loop.train_step(owner, loss_fn.value, tx)

    def body(carry, inputs):
        params, state, average, best, done = carry
        t, batch = inputs

        def live(_):
            new_params, new_state, loss = step(params, state, batch)
            new_average, new_best, smoothed, diverged = _watch(
                loss, t, average, best, smoothing, threshold
            )
            carry = (new_params, new_state, new_average, new_best, diverged)
            return carry, (loss, smoothed, jnp.array(True))

        def frozen(_):  # after the stop: skip the work
            nan = jnp.full([], jnp.nan, jnp.float32)
            return (params, state, average, best, done), (nan, nan, jnp.array(False))

        return jax.lax.cond(done, frozen, live, None)

    f32 = jnp.float32
    init = (params, tx.init(params), jnp.zeros([], f32), jnp.full([], jnp.inf, f32), False)
    (*_, done), outputs = jax.lax.scan(body, init, (jnp.arange(rates.shape[0]), batches))
    return outputs, done


@functools.partial(jax.jit, static_argnames=("optimizer", "owner"))
def _init(params, rates, *, optimizer, owner):
    return _chain.build(owner, optimizer.value, _schedule(rates)).init(params)


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer", "owner"))
def _step(
    params,
    state,
    batch,
    t,
    average,
    best,
    rates,
    smoothing,
    threshold,
    *,
    loss_fn,
    optimizer,
    owner,
):
    tx = _chain.build(owner, optimizer.value, _schedule(rates))
    params, state, loss = _loop.train_step(owner, loss_fn.value, tx)(params, state, batch)
    average, best, smoothed, diverged = _watch(loss, t, average, best, smoothing, threshold)
    return params, state, average, best, loss, smoothed, diverged


def _run_loop(params, iterator, settings, functions, bar):
    rates = settings[0]
    state = _init(params, rates, optimizer=functions["optimizer"], owner=functions["owner"])
    average, best = jnp.zeros([], jnp.float32), jnp.full([], jnp.inf, jnp.float32)
    losses, smoothed, stopped = [], [], None
    for t, batch in enumerate(_loop.iterate(OWNER, iterator, rates.shape[0])):
        params, state, average, best, loss, s, diverged = _step(
            params, state, batch, jnp.int32(t), average, best, *settings, **functions
        )
        losses.append(float(loss))
        smoothed.append(float(s))
        bar.update()
        if bool(diverged):
            stopped = t
            break
    return np.asarray(losses, np.float64), np.asarray(smoothed, np.float64), stopped


def _result(owner, rates, losses, smoothed, stopped) -> FinderResult:
    if len(losses) and not np.isfinite(losses[0]):
        raise ValueError(
            f"{owner}: loss_fn returned {losses[0]} at the first step, before any update "
            f"(rate {rates[0]:.3g}): a bug in the loss or the data, not a learning rate; "
            "check loss_fn(params, batch) on the first batch"
        )
    end = len(losses)
    if stopped is not None and not (
        np.isfinite(losses[stopped]) and np.isfinite(smoothed[stopped])
    ):
        end = stopped  # a non-finite point is not part of the curve
    cliff = None if stopped is None else float(rates[stopped])
    suggestions, reason = suggest(rates[:end], losses[:end], smoothed[:end], cliff)
    if reason is not None:
        warnings.warn(f"{owner}: no suggestion: {reason}", UserWarning, stacklevel=4)
    return FinderResult(
        learning_rates=rates[:end],
        losses=losses[:end],
        smoothed_losses=smoothed[:end],
        suggestion=suggestions["bottom"],
        suggestions=suggestions,
        diverged=stopped is not None,
        divergence_step=stopped,
        divergence_learning_rate=cliff,
        reason=reason,
    )


MIN_POINTS = 5
# The suggestion: the bottom of the loss smoothed in log-rate by a centred Gaussian of
# this width (decades; centred, so it does not lag as the moving average does), ...
BOTTOM_WIDTH = 0.15
# ... divided by this, and at most the rate where the test stopped divided by CLIFF.
BOTTOM_FACTOR = 2.0
CLIFF = 4.0
# A descent must fall this many times the loss's jitter about its smoothed curve.
DESCENT = 3.0


def centred(rates: np.ndarray, losses: np.ndarray, width: float = BOTTOM_WIDTH) -> np.ndarray:
    """``losses`` smoothed against ``log10(rates)`` by a centred Gaussian kernel."""
    x = np.log10(rates)
    weights = np.exp(-0.5 * ((x[:, None] - x[None, :]) / width) ** 2)
    return weights @ losses / weights.sum(axis=1)


def suggest(
    rates: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, cliff: float | None = None
) -> tuple[dict[str, float | None], str | None]:
    """The suggestions of :func:`find_learning_rate` for a curve (finite points) that
    stopped at the rate ``cliff`` (None: it did not), and why there is none."""
    keep = np.isfinite(rates) & np.isfinite(losses) & np.isfinite(smoothed) & (rates > 0)
    rates, losses, smoothed = rates[keep], losses[keep], smoothed[keep]
    names = ("bottom", "steepest", "valley", "minimum")
    suggestions: dict[str, float | None] = dict.fromkeys(names)
    if len(rates) < MIN_POINTS:
        return suggestions, (
            f"the curve has {len(rates)} finite points (fewer than {MIN_POINTS}): the loss "
            "diverged almost at once; lower min_lr"
        )
    reason = None
    curve = centred(rates, losses)
    bottom = int(np.argmin(curve))
    start = max(1, len(rates) // 10)
    # A usable descent falls from the start clearly more than the loss jitters about
    # its smoothed curve (and by more than rounding).
    drop = float(np.max(curve[:start]) - curve[bottom])
    jitter = float(np.median(np.abs(losses - curve)))
    floor = 1e-3 * float(np.max(np.abs(curve[:start])))
    if bottom < start or not drop > max(DESCENT * jitter, floor):
        reason = (
            f"the loss does not fall: its smoothed curve drops {drop:.3g} from the start to "
            f"its lowest point (rate {rates[bottom]:.3g}), against a jitter of {jitter:.3g}; "
            "lower min_lr, raise max_lr, or check that the loss depends on params"
        )
    else:
        rate = rates[bottom] / BOTTOM_FACTOR
        if cliff is not None:
            rate = min(rate, cliff / CLIFF)
        suggestions["bottom"] = float(max(rate, rates[0]))
    suggestions.update(_classic(rates, smoothed))
    return suggestions, reason


def _classic(rates: np.ndarray, smoothed: np.ndarray) -> dict[str, float | None]:
    """The rules read off the moving average: ``steepest``, ``valley``, ``minimum``."""
    bottom = int(np.argmin(smoothed))
    suggestions: dict[str, float | None] = {"minimum": float(rates[bottom] / 10)}
    # The descent: from a tenth of the way in (the average is still settling) to the
    # lowest point (a rate past the minimum is never a good one).
    start = max(1, len(rates) // 10)
    if bottom - start < 2:
        return suggestions
    log_rates = np.log10(rates)
    slopes = np.gradient(smoothed, log_rates)[start : bottom + 1]
    steepest = int(np.argmin(slopes))
    if not slopes[steepest] < 0:
        return suggestions
    suggestions["steepest"] = float(rates[start + steepest])
    # The valley: the stretch around the steepest point falling at least 30% as fast.
    steep = slopes <= 0.3 * slopes[steepest]
    low, high = steepest, steepest
    while low > 0 and steep[low - 1]:
        low -= 1
    while high < len(steep) - 1 and steep[high + 1]:
        high += 1
    span = log_rates[start + low : start + high + 1]
    middle = int(np.argmin(np.abs(span - 0.5 * (span[0] + span[-1]))))
    suggestions["valley"] = float(rates[start + low + middle])
    return suggestions
