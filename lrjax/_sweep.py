"""Train one copy of the model per learning rate, all in one compiled program."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _loop
from lrjax import _validation as v
from lrjax._sgd import sgd

OWNER = "sweep"
# With a progress bar the steps run in this many chunks of one compiled program.
PROGRESS_CHUNKS = 20
# Rates below float32's smallest normal number are flushed to 0 on most hardware.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """The losses of one training run per learning rate.

    Attributes:
      learning_rates: ``[K]`` float64: the rates as given, in the order given (the runs
        use them rounded to float32).
      losses: ``[K, T]``: the loss of each step's batch, before that step's update.
      final_losses: ``[K]``: the mean loss of the last tenth of the steps (at least
        one); ``inf`` for a run that diverged.
      diverged: ``[K]``: whether the run's loss became NaN or infinite; its losses
        from then on are reported as NaN.
      best_learning_rate: the rate as given (an element of ``learning_rates``) with the
        lowest final loss among the runs that did not diverge, or None if all diverged.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    final_losses: np.ndarray
    diverged: np.ndarray
    best_learning_rate: float | None

    def plot(self, *, ax: Any = None, kind: str = "curves") -> Any:
        """The loss curves (``kind="curves"``) or the final loss against the rate
        (``kind="final"``) on ``ax`` (default: a new figure); returns the axes.
        Needs matplotlib."""
        from lrjax import plotting

        return plotting._draw_sweep("SweepResult.plot", self, ax, kind)


def sweep(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params,
    batches: Any,
    optimizer: _loop.OptimizerFactory = sgd,
    *,
    learning_rates: Sequence[float] | np.ndarray | jax.Array,
    num_steps: int | None = None,
    progress: bool = False,
) -> SweepResult:
    """Trains K copies of the model from ``params``, one per learning rate, together.

    All K runs are one compiled program: ``jax.vmap`` over the rate of a ``lax.scan``
    over the steps, so the K optimizers are built from a traced float32 rate (any float
    hyperparameter, any schedule: ``lambda lr: lrjax.adam(warmup(cosine_decay(lr, T),
    100))``). Every run sees the same batches. A run whose loss becomes NaN or
    infinite is reported as diverged; under ``vmap`` the runs share no arithmetic, so
    it never affects the others, and it is left out of ``best_learning_rate``. Calling
    it again with the same ``loss_fn``, ``optimizer``, shapes and number of rates
    reuses the compiled program, whatever the rates. ``params`` is not modified.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a real floating-point scalar).
      params: the starting parameters (a pytree of floating-point arrays), shared by
        every run.
      batches: a stacked pytree whose leaves share a leading step axis, or an iterable
        of batches of one structure and shape (stacked here, ``num_steps`` of them).
      optimizer: maps a rate (a traced scalar) to a transformation: the factory, such as
        ``lrjax.adam``, not a transformation already built.
      learning_rates: the K rates: a non-empty list, tuple or 1-D array of real numbers,
        each > 0 (at least float32's smallest normal number 1.2e-38) and finite in
        float32.
      num_steps: steps per run (an integer >= 1); default: all the stacked batches
        (required for an iterable).
      progress: show a progress bar (the steps then run in 20 chunks of one compiled
        program; needs tqdm).

    Returns:
      A :class:`SweepResult`.

    Raises:
      ValueError: for an invalid argument, naming it; nothing is clamped or replaced.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss = lambda w, x: jnp.mean((x * w - 2.0 * x) ** 2)
      >>> batches = jnp.ones((50, 8))
      >>> result = lrjax.sweep(loss, jnp.zeros(()), batches, learning_rates=[0.01, 0.1, 0.3, 3.0])
      >>> result.best_learning_rate, result.diverged.tolist()
      (0.3, [False, False, False, True])
    """
    _loop.check_functions(OWNER, loss_fn, optimizer)
    _loop.check_params(OWNER, params)
    given = _rates(learning_rates)
    if num_steps is not None:
        num_steps = v.check_integer(OWNER, "num_steps", num_steps, 1)
    progress = v.check_flag(OWNER, "progress", progress)
    if _loop.is_stacked(batches):
        batches, num_steps = _loop.take(OWNER, batches, num_steps)
    else:
        iterator = _loop.iterator(OWNER, batches)
        if num_steps is None:
            raise ValueError(f"{OWNER}: num_steps is required when batches is an iterable")
        batches = _loop.stack(OWNER, list(_loop.iterate(OWNER, iterator, num_steps)))

    functions = {"loss_fn": _loop.Static(loss_fn), "optimizer": _loop.Static(optimizer)}
    rates = jnp.asarray(given, jnp.float32)  # rounded once, for computing only
    k = len(given)
    carry = (
        jax.tree.map(lambda p: jnp.broadcast_to(p, (k, *jnp.shape(p))), params),
        _start(rates, params, optimizer=functions["optimizer"]),
        jnp.ones(k, bool),
    )
    bar = _loop.progress_bar(OWNER, num_steps, progress, f"sweep of {k} rate" + "s" * (k != 1))
    losses = []
    try:
        for begin, end in _chunks(num_steps, PROGRESS_CHUNKS if progress else 1):
            chunk = jax.tree.map(lambda b, begin=begin, end=end: b[begin:end], batches)
            steps = jnp.arange(begin, end)
            carry, chunk_losses = _run(rates, *carry, steps, chunk, **functions)
            losses.append(np.asarray(chunk_losses, np.float64))
            bar.update(end - begin)
    finally:
        bar.close()
    return _result(given, np.concatenate(losses, axis=1), ~np.asarray(carry[2]))


def _rates(learning_rates: Any) -> np.ndarray:
    """The rates as given (float64), each checked by the rules of float hyperparameters."""
    checked = v.check_floats(OWNER, "learning_rates", learning_rates, v.positive, "> 0")
    if not all(v.is_concrete(rate) for rate in checked):
        raise ValueError(
            f"{OWNER}: learning_rates must be concrete ({OWNER} runs eagerly), got "
            f"{v.show(learning_rates)}"
        )
    if not checked:
        raise ValueError(f"{OWNER}: learning_rates must hold at least one rate, got an empty one")
    given = np.asarray([float(rate) for rate in checked], np.float64)
    for i, rate in enumerate(given):
        if rate < FLOAT32_TINY:
            raise ValueError(
                f"{OWNER}: learning_rates[{i}] must be at least {FLOAT32_TINY:.8g} (float32's "
                "smallest normal number; smaller rates are 0 on most hardware), got "
                f"{v.show(list(learning_rates)[i])}"
            )
    return given


@functools.partial(jax.jit, static_argnames=("optimizer",))
def _start(rates, params, *, optimizer):
    return jax.vmap(lambda rate: _loop.build(OWNER, optimizer.value, rate).init(params))(rates)


@functools.partial(jax.jit, static_argnames=("loss_fn", "optimizer"))
def _run(rates, params, state, alive, steps, batches, *, loss_fn, optimizer):
    def train(rate, params, state, alive):
        tx = _loop.build(OWNER, optimizer.value, rate)
        step = _loop.train_step(OWNER, loss_fn.value, tx)

        def body(carry, inputs):
            params, state, alive = carry
            params, state, loss = step(params, state, inputs[1])
            # The runs share no arithmetic under vmap: a diverged one only reports NaN.
            alive = alive & jnp.isfinite(loss)
            return (params, state, alive), jnp.where(alive, loss, jnp.nan)

        # The step numbers give the scan its length even when a batch has no arrays.
        return jax.lax.scan(body, (params, state, alive), (steps, batches))

    return jax.vmap(train)(rates, params, state, alive)


def _chunks(num_steps: int, count: int) -> list[tuple[int, int]]:
    """Equal chunks (the last one may be shorter: it compiles once more)."""
    size = -(-num_steps // min(count, num_steps))
    return [(b, min(b + size, num_steps)) for b in range(0, num_steps, size)]


def _result(rates: np.ndarray, losses: np.ndarray, diverged: np.ndarray) -> SweepResult:
    tail = max(1, losses.shape[1] // 10)
    final = np.where(diverged, np.inf, np.mean(losses[:, -tail:], axis=1))
    best = None if np.all(diverged) else float(rates[int(np.argmin(final))])
    return SweepResult(
        learning_rates=rates,
        losses=losses,
        final_losses=final,
        diverged=diverged,
        best_learning_rate=best,
    )
