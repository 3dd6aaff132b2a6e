"""The learning-rate range test: train briefly while the rate grows, watch the loss."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _base, _loop, schedules
from lrjax._sgd import sgd

OptimizerFactory = Callable[[Any], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class FinderResult:
    """The curve of a range test and the rates it suggests.

    Attributes:
      learning_rates: the rate of each step, up to where the test stopped.
      losses: the loss of each step's batch, before that step's update.
      smoothed_losses: the debiased exponential moving average of ``losses`` that the
        stop rule watches.
      suggestion: the recommended rate (``suggestions["valley"]``), or None when the
        curve is too short to suggest anything (lower ``min_lr``).
      suggestions: ``{"steepest", "valley", "minimum"}`` → rate or None (see
        :func:`find_learning_rate` for the rules).
      diverged: whether the test stopped because the loss diverged.
      divergence_step: the step at which it stopped, or None.
      divergence_learning_rate: the rate of that step, or None.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float | None
    suggestions: dict[str, float | None]
    diverged: bool
    divergence_step: int | None
    divergence_learning_rate: float | None

    def plot(self, ax: Any = None) -> Any:
        """Loss against rate (log scale), suggestions marked. Needs matplotlib."""
        from lrjax import plotting

        return plotting.plot_finder(self, ax=ax)


def find_learning_rate(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params,
    batches: Any,
    optimizer: OptimizerFactory = sgd,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_threshold: float = 4.0,
    progress: bool = False,
) -> FinderResult:
    """The learning-rate range test (Smith, 2017): the rate grows until the loss diverges.

    From ``params``, ``num_steps`` steps of ``optimizer`` are taken while the rate grows
    from ``min_lr`` to ``max_lr`` (geometrically, or linearly with ``mode="linear"``):
    the optimizer factory receives the ramp as its schedule. The loss is smoothed by a
    debiased moving average ``s_t = EMA_t / (1 − smoothing^(t+1))``; the test stops at
    the first step whose loss is not finite or whose ``s_t`` exceeds
    ``divergence_threshold × min(s)``, and the curve ends there (a non-finite loss is
    left out of it). ``params`` is not modified.

    ``batches`` is either a stacked pytree (an array, dict or tuple whose leaves have a
    leading axis of at least ``num_steps``: the whole test then runs as one compiled
    ``lax.scan``), or an iterable of batches such as a list or a data loader (a jitted
    step in a Python loop that stops consuming batches at divergence; a tqdm bar when
    ``progress=True``). Both give the same curve on the same data.

    The suggestions read the smoothed curve ``s`` against ``log10(rate)`` over its
    finite points (NaN never becomes a suggestion), on the descent: from a tenth of the
    way into the curve, where the average has settled, to the minimum of ``s``, since a
    rate past the minimum is never a good one:

    * ``steepest`` (the ``suggestion``): where ``s`` falls fastest, the most negative
      ``ds/dlog10(rate)``;
    * ``valley``: the middle, in log-rate, of the stretch around the steepest point
      where ``s`` falls at least 30% as fast: the centre of the descent rather than
      its single steepest point;
    * ``minimum``: a tenth of the rate at the minimum of ``s``, the classic rule of
      thumb, and the most conservative.

    On the digits MLP of ``benchmarks/finder_quality.py`` (6 seeds × SGD, SGD with momentum,
    RMSprop, Adam, 300 training steps) ``steepest`` trained to a median 1.07× (worst
    2.9×) the loss of the best rate of a 13-point grid, ``valley`` 1.34× (2.8×) and
    ``minimum`` 2.5× (4.6×). Keeping the search before the minimum is what makes
    ``steepest`` safe: unrestricted, it picked a rate at the cliff in 5 of 24 runs.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the starting parameters (a pytree).
      batches: a stacked pytree of batches or an iterable of batches.
      optimizer: maps a rate or schedule to a transformation, e.g. ``lrjax.adam`` or
        ``lambda lr: optax.chain(optax.clip_by_global_norm(1.0), lrjax.sgd(lr, 0.9))``.
      min_lr: the first rate (> 0).
      max_lr: the last rate (> min_lr).
      num_steps: the number of steps (>= 2).
      mode: ``"exponential"`` or ``"linear"`` growth.
      smoothing: the moving average's decay, in [0, 1).
      divergence_threshold: the stop factor (> 1).
      progress: show a progress bar (iterable batches only; needs tqdm).

    Returns:
      A :class:`FinderResult`.

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
      https://arxiv.org/abs/1506.01186
    """
    owner = "find_learning_rate"
    _base.check(owner, "min_lr", min_lr, lambda v: np.isfinite(v) & (v > 0), "finite and > 0")
    _base.check(
        owner, "max_lr", max_lr, lambda v: np.isfinite(v) & (v > min_lr), f"> min_lr={min_lr}"
    )
    num_steps = _base.check_integer(owner, "num_steps", num_steps, 2)
    _base.check_choice(owner, "mode", mode, ("exponential", "linear"))
    _base.check(owner, "smoothing", smoothing, lambda v: (v >= 0) & (v < 1), "in [0, 1)")
    _base.check(owner, "divergence_threshold", divergence_threshold, lambda v: v > 1, "> 1")
    if mode == "exponential":
        growth = (max_lr / min_lr) ** (1.0 / (num_steps - 1))
        ramp = schedules.exponential_decay(min_lr, growth, end_value=max_lr)
    else:
        ramp = schedules.linear(min_lr, max_lr, num_steps - 1)
    tx = optimizer(ramp)
    step = _loop.train_step(loss_fn, tx)

    def watch(loss, t, average, best):
        """The stop rule: debiased EMA of the loss against its best value so far."""
        average = smoothing * average + (1 - smoothing) * loss
        smoothed = average / (1 - smoothing ** (t + 1).astype(jnp.float32))
        finite = jnp.isfinite(loss) & jnp.isfinite(smoothed)
        best = jnp.where(finite, jnp.minimum(best, smoothed), best)
        diverged = ~finite | (smoothed > divergence_threshold * best)
        return average, best, smoothed, diverged

    if _loop.is_stacked(batches):
        batches = _loop.take(owner, batches, num_steps)
        losses, smoothed, stopped = _run_scan(step, watch, tx, params, batches)
    else:
        losses, smoothed, stopped = _run_loop(
            owner, step, watch, tx, params, batches, num_steps, progress
        )
    rates = np.asarray(jax.vmap(ramp)(jnp.arange(num_steps)), np.float64)
    return _result(rates, losses, smoothed, stopped)


def _run_scan(step, watch, tx, params, batches):
    @jax.jit
    def run(params, batches):
        def body(carry, inputs):
            params, state, average, best, done = carry
            t, batch = inputs

            def live(_):
                new_params, new_state, loss = step(params, state, batch)
                new_average, new_best, smoothed, diverged = watch(loss, t, average, best)
                carry = (new_params, new_state, new_average, new_best, diverged)
                return carry, (loss, smoothed, jnp.array(True))

            def frozen(_):  # after the stop: skip the work
                nan = jnp.full([], jnp.nan, jnp.float32)
                return (params, state, average, best, done), (nan, nan, jnp.array(False))

            return jax.lax.cond(done, frozen, live, None)

        f32 = jnp.float32
        init = (params, tx.init(params), jnp.zeros([], f32), jnp.full([], jnp.inf, f32), False)
        steps = jnp.arange(jax.tree.leaves(batches)[0].shape[0])
        (*_, done), outputs = jax.lax.scan(body, init, (steps, batches))
        return outputs, done

    (losses, smoothed, ran), done = run(params, batches)
    executed = int(np.sum(np.asarray(ran)))
    stopped = executed - 1 if bool(done) else None
    losses = np.asarray(losses, np.float64)[:executed]
    return losses, np.asarray(smoothed, np.float64)[:executed], stopped


def _run_loop(owner, step, watch, tx, params, batches, num_steps, progress):
    step = jax.jit(step)
    watch = jax.jit(watch)
    state = tx.init(params)
    average, best = jnp.zeros([], jnp.float32), jnp.full([], jnp.inf)
    losses, smoothed, stopped = [], [], None
    bar = _loop.progress_bar(owner, num_steps, progress, "range test")
    try:
        for t, batch in enumerate(_loop.iterate(owner, batches, num_steps)):
            params, state, loss = step(params, state, batch)
            average, best, s, diverged = watch(loss, jnp.asarray(t), average, best)
            losses.append(float(loss))
            smoothed.append(float(s))
            bar.update()
            if bool(diverged):
                stopped = t
                break
    finally:
        bar.close()
    return np.asarray(losses, np.float64), np.asarray(smoothed, np.float64), stopped


def _result(rates, losses, smoothed, stopped) -> FinderResult:
    end = len(losses)
    if stopped is not None and not (
        np.isfinite(losses[stopped]) and np.isfinite(smoothed[stopped])
    ):
        end = stopped  # a non-finite point is not part of the curve
    suggestions = suggest(rates[:end], smoothed[:end])
    return FinderResult(
        learning_rates=rates[:end],
        losses=losses[:end],
        smoothed_losses=smoothed[:end],
        suggestion=suggestions["steepest"],
        suggestions=suggestions,
        diverged=stopped is not None,
        divergence_step=stopped,
        divergence_learning_rate=None if stopped is None else float(rates[stopped]),
    )


MIN_POINTS = 5


def suggest(rates: np.ndarray, smoothed: np.ndarray) -> dict[str, float | None]:
    """The three suggestions of :func:`find_learning_rate` for a curve (finite points)."""
    keep = np.isfinite(rates) & np.isfinite(smoothed) & (rates > 0)
    rates, smoothed = rates[keep], smoothed[keep]
    none: dict[str, float | None] = {"steepest": None, "valley": None, "minimum": None}
    if len(rates) < MIN_POINTS:
        return none
    bottom = int(np.argmin(smoothed))
    suggestions = dict(none, minimum=float(rates[bottom] / 10))
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
