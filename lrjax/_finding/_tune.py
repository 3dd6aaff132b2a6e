"""A tuned rate within a budget: the range test, then successive halving over a bracket
of peak rates, every rung one compiled program of the sweep engine."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _chain
from lrjax._finding import _finder, _loop
from lrjax._finding import _sweep_program as program
from lrjax._finding._results import FinderResult, TuneResult, TuneRound
from lrjax._finding._sweep import _as_given
from lrjax._methods._sgd import sgd
from lrjax._validation import (
    check_callable,
    check_flag,
    check_float,
    check_integer,
    describe,
    positive,
    show,
)

OWNER = "tune_learning_rate"
# The range test's length: at most this, and at most a quarter of the run (its factory's
# own schedule, warm-up and decay, then bends the ramp little: see PeakRamp).
FINDER_STEPS = 100
# Where the rungs end, as fractions of the run: the runs left after each are halved.
RUNG_ENDS = (1 / 8, 1 / 4, 1 / 2, 1)
# The bracket's spacing: neighbouring rates differ by this factor.
SPACING = math.sqrt(2)
# The bracket's top, as a multiple of the range test's suggestion (the rate at the
# bottom of its curve / 2): from there it reaches down as far as the budget allows.
TOP = 4.0
MAX_RATES = 64


def tune_learning_rate(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params,
    batches: Any,
    optimizer: _chain.OptimizerFactory = sgd,
    *,
    eval_fn: Callable[[optax.Params], jax.Array] | None = None,
    num_steps: int | None = None,
    budget: float = 4.0,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    seed: int = 0,
    progress: bool = False,
    mesh: jax.sharding.Mesh | None = None,
) -> TuneResult:
    """A tuned peak rate for a full training run, within ``budget`` runs' worth of steps.

    First the range test (:func:`find_learning_rate`, from ``min_lr`` to ``max_lr``
    over ``min(100, num_steps // 4)`` steps on batches spread over the run, picked by
    ``seed``). Then successive halving over a bracket of peak rates ``√2`` apart, from
    ``4 ×`` the range test's suggestion down: every rate trains from ``params`` with
    ``optimizer(rate)`` (its own schedule, built from the peak rate, over the whole
    ``num_steps``) on the same batches; after 1/8, 1/4 and 1/2 of the steps half of
    them train on and the rest stop: the neighbouring rates around the best score so
    far (by ``eval_fn``, else by the training loss of the last tenth of the stretch),
    one more above it than below, since early scores favour lower rates (on the digits
    MLP of the benchmark this cut the worst regret from 51% to 20% against keeping
    the best half by score). After the last step the best is the answer. Runs that
    diverge stop at once. How many rates the bracket holds follows from ``budget``:
    the most whose halving costs at most ``budget × num_steps`` update steps (11 or 12 for the
    default 4). Every rung is one compiled program of the :func:`sweep` engine: a
    second call with the same functions and shapes compiles nothing.

    The range test calls ``optimizer`` with each step's rate as a traced scalar, so a
    factory that builds a schedule from its peak rate (warm-up, decay) shapes the range
    test's rates by its own schedule too: over the first quarter of a warm-up + cosine
    run that is the warm-up (where the ramp's rates are tiny anyway) and a decay of at
    most 15%. Only the bracket's place comes from the range test.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a real floating-point scalar).
      params: the starting parameters (a pytree of floating-point arrays, or a flax nnx
        Module whose state is one), shared by every run; not modified.
      batches: a stacked pytree whose leaves share a leading step axis, or an iterable
        of batches of one structure and shape (``num_steps`` of them are stacked).
      optimizer: the factory ``rate -> transformation`` of the full run, its schedule
        built from the peak rate: e.g. ``lambda lr: lrjax.adamw(warmup(cosine_decay(lr,
        T - W), W))``.
      eval_fn: ``eval_fn(params) -> scalar`` (e.g. the loss on held-out data): what
        chooses, at every rung; default: the training loss.
      num_steps: the full run's length (an integer >= 8); default: all the stacked
        batches (required for an iterable).
      budget: the search's steps in full runs (> 0; the range test's steps are on top:
        ``steps_used <= (budget + 1) × num_steps``).
      min_lr: the range test's first rate (> 0).
      max_lr: the range test's last rate (> min_lr).
      seed: picks the range test's batches (an integer >= 0).
      progress: show a progress bar (needs tqdm).
      mesh: a ``jax.sharding.Mesh`` the runs are split across, as in :func:`sweep`.

    Returns:
      A :class:`TuneResult`.

    Raises:
      ValueError: for an invalid argument, naming it; nothing is clamped or replaced.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss = lambda w, x: jnp.mean((x * w - 2.0 * x) ** 2)  # SGD is stable below 1
      >>> tuned = lrjax.tune_learning_rate(loss, jnp.zeros(()), jnp.ones((64, 8)))
      >>> round(tuned.learning_rate, 2), tuned.steps_used <= 5 * 64
      (0.26, True)
    """
    _loop.check_functions(OWNER, loss_fn, optimizer)
    _loop.check_params(OWNER, params)
    if eval_fn is not None:
        check_callable(OWNER, "eval_fn", eval_fn, "a function eval_fn(params) -> scalar")
    if num_steps is not None:
        num_steps = check_integer(OWNER, "num_steps", num_steps, len(RUNG_ENDS) * 2)
    budget = float(check_float(OWNER, "budget", budget, positive, "> 0"))
    seed = check_integer(OWNER, "seed", seed, 0, 2**32 - 1)
    progress = check_flag(OWNER, "progress", progress)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(f"{OWNER}: mesh must be a jax.sharding.Mesh, got {describe(mesh)}")
    if batches is None:
        raise ValueError(f"{OWNER}: batches is required (a stacked pytree or an iterable)")
    if _loop.is_stacked(batches):
        batches, num_steps = _loop.take(OWNER, batches, num_steps)
        if num_steps < 2 * len(RUNG_ENDS):
            raise ValueError(
                f"{OWNER}: batches must hold at least {2 * len(RUNG_ENDS)} steps (the "
                f"search's rungs), got {num_steps}"
            )
    else:
        iterator = _loop.iterator(OWNER, batches)
        if num_steps is None:
            raise ValueError(f"{OWNER}: num_steps is required when batches is an iterable")
        batches = _loop.stack(OWNER, list(_loop.iterate(OWNER, iterator, num_steps)))
    finder_steps = max(2, min(FINDER_STEPS, num_steps // 4))
    ramp = _finder.check_ramp(OWNER, min_lr, max_lr, finder_steps, "exponential")
    ends = _rung_ends(num_steps)
    count = _count(budget, ends, num_steps)

    bar = _loop.progress_bar(OWNER, finder_steps + _cost(count, ends), progress, "tune")
    try:
        picked = np.sort(np.random.default_rng(seed).choice(num_steps, finder_steps, replace=False))
        finder = _finder.range_test(
            OWNER,
            loss_fn,
            params,
            jax.tree.map(lambda b: b[picked], batches),
            PeakRamp(optimizer),
            ramp,
        )
        bar.update(len(finder.losses))
        rates = bracket(finder, count, float(ramp[0]), float(ramp[-1]))
        rounds, chosen, used = _halve(
            loss_fn, params, batches, optimizer, eval_fn, rates, ends, mesh, bar
        )
    finally:
        bar.close()
    if chosen is None:
        warnings.warn(
            f"{OWNER}: every rate of the bracket {rates[0]:.3g}–{rates[-1]:.3g} diverged; "
            "learning_rate is None: lower min_lr or check the loss",
            UserWarning,
            stacklevel=2,
        )
    return TuneResult(
        learning_rate=chosen,
        finder=finder,
        rounds=tuple(rounds),
        steps_used=len(finder.losses) + used,
    )


@dataclasses.dataclass(frozen=True)
class PeakRamp:
    """The range test of a factory of full runs: ``optimizer`` rebuilt at every step
    from that step's rate (a traced scalar), its state carried over. Compared by the
    factory, so a second range test reuses the compiled program."""

    optimizer: Any

    def __call__(self, schedule: Any) -> optax.GradientTransformationExtraArgs:
        def build(rate):
            return _chain.build(OWNER, self.optimizer, rate)

        def init(params):
            return jnp.zeros([], jnp.int32), build(jnp.asarray(schedule(0))).init(params)

        def update(updates, state, params=None, **extra):
            count, inner = state
            tx = optax.with_extra_args_support(build(schedule(count)))
            updates, inner = tx.update(updates, inner, params, **extra)
            return updates, (optax.safe_increment(count), inner)

        return optax.GradientTransformationExtraArgs(init, update)


def _rung_ends(num_steps: int) -> list[int]:
    return sorted({max(1, round(fraction * num_steps)) for fraction in RUNG_ENDS})


def _survivors(count: int, rungs: int) -> list[int]:
    """How many runs train in each rung: all, then the better half of the last."""
    alive = [count]
    for _ in range(rungs - 1):
        alive.append(max(1, -(-alive[-1] // 2)))
    return alive


def _cost(count: int, ends: list[int]) -> int:
    starts = [0, *ends[:-1]]
    alive = _survivors(count, len(ends))
    return sum(n * (end - start) for n, start, end in zip(alive, starts, ends, strict=True))


def _count(budget: float, ends: list[int], num_steps: int) -> int:
    """The most rates whose halving fits in ``budget`` full runs (at least 2)."""
    limit = budget * num_steps
    if _cost(2, ends) > limit:
        raise ValueError(
            f"{OWNER}: budget must allow the smallest search (2 rates, "
            f"{_cost(2, ends) / num_steps:.3g} full runs), got {show(budget)}"
        )
    count = 2
    while count < MAX_RATES and _cost(count + 1, ends) <= limit:
        count += 1
    return count


def bracket(finder: FinderResult, count: int, low: float, high: float) -> np.ndarray:
    """``count`` rates ``√2`` apart below ``4 ×`` the suggestion (within the tested
    range), or spread over the whole range when the range test suggests nothing."""
    if finder.suggestion is None:
        return np.geomspace(low, high, count)
    top = min(TOP * finder.suggestion, high)
    return top * SPACING ** -np.arange(count)[::-1]


def _halve(loss_fn, params, batches, optimizer, eval_fn, rates, ends, mesh, bar):
    """Successive halving: the rounds, the chosen rate (or None) and the steps used."""
    devices = 1 if mesh is None else mesh.devices.size
    values = {"learning_rate": np.asarray(rates, np.float32)}
    static = dict(
        loss_fn=_loop.Static(loss_fn),
        optimizer=_loop.Static(optimizer),
        eval_fn=None if eval_fn is None else _loop.Static(eval_fn),
        positional=True,
        owner=OWNER,
    )
    alive_rates = np.asarray(rates, np.float64)
    runs = _pad(values, devices)
    seeds = np.zeros(len(runs["learning_rate"]), np.uint32)
    inputs = (runs, params, seeds)
    if mesh is not None:
        inputs = program.to_mesh(inputs, mesh)
    state = (
        inputs[0],
        *program.start(
            *inputs,
            optimizer=static["optimizer"],
            init_fn=None,
            positional=True,
            mesh=mesh,
            owner=OWNER,
        ),
    )
    rounds, used, begin = [], 0, 0
    for position, end in enumerate(ends):
        count = len(alive_rates)
        steps = np.arange(begin, end, dtype=np.int32)
        chunk = jax.tree.map(lambda b, begin=begin, end=end: b[begin:end], batches)
        if mesh is not None:
            steps, chunk = program.to_mesh((steps, chunk), mesh)
        rung = dict(static, eval_every=end - begin)
        size = program.fastest_batch_size(state, steps, chunk, mesh=mesh, **rung)
        (params_, opt_state, alive_), losses, evals = program.run(
            state, steps, chunk, final=True, batch_size=size, mesh=mesh, **rung
        )
        used += count * (end - begin)
        bar.update(count * (end - begin))
        losses = np.asarray(losses, np.float64)[:count]
        alive = np.asarray(alive_, bool)[:count]
        if eval_fn is not None:
            scores = np.asarray(evals, np.float64)[:count, -1]
        else:
            tail = max(1, (end - begin) // 10)
            scores = losses[:, -tail:].mean(axis=1)
        scores = np.where(alive & np.isfinite(scores), scores, np.inf)
        rounds.append(TuneRound(learning_rates=alive_rates, steps=end, scores=scores))
        begin = end
        if not np.any(np.isfinite(scores)):
            return rounds, None, used
        if position == len(ends) - 1:
            break
        keep = _keep(scores, _survivors(count, 2)[1])
        alive_rates = alive_rates[keep]
        index = np.concatenate([keep, np.repeat(keep[:1], -len(keep) % devices)])
        state = _select((state[0], params_, opt_state, alive_), index)
    best = int(np.argmin(rounds[-1].scores))
    return rounds, _as_given(float(rounds[-1].learning_rates[best]), np.float32), used


def _keep(scores: np.ndarray, count: int) -> np.ndarray:
    """The indices (rates ascending) of the ``count`` runs that train on, finite only.

    Early scores favour lower rates (a higher rate pays for its noise before its decay),
    so the window around the best reaches one step further up than down."""
    count = min(count, int(np.sum(np.isfinite(scores))))
    best = int(np.argmin(scores))
    low = min(max(best - (count - 1) // 2, 0), len(scores) - count)
    window = np.arange(low, low + count)
    return window[np.isfinite(scores[window])]


@jax.jit
def _select(runs: Any, index: Any) -> Any:
    return jax.tree.map(lambda x: x[index], runs)


def _pad(values: dict[str, np.ndarray], devices: int) -> dict[str, np.ndarray]:
    return {k: np.concatenate([v, np.repeat(v[:1], -len(v) % devices)]) for k, v in values.items()}
