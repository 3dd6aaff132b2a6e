"""Train one copy of the model per learning rate, all in one compiled program."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _base, _loop
from lrjax._sgd import sgd

# With a progress bar the steps run in this many chunks of one compiled program.
PROGRESS_CHUNKS = 20


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """The losses of one training run per learning rate.

    Attributes:
      learning_rates: the K rates, in the order given.
      losses: ``[K, T]``: the loss of each step's batch, before that step's update.
      final_losses: ``[K]``: the mean loss of the last tenth of the steps (at least
        one); ``inf`` for a run that diverged.
      diverged: ``[K]``: whether the run's loss became NaN or infinite; its losses
        from then on are reported as NaN.
      best_learning_rate: the rate with the lowest final loss among the runs that did
        not diverge, or None if all diverged.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    final_losses: np.ndarray
    diverged: np.ndarray
    best_learning_rate: float | None

    def plot(self, ax: Any = None, kind: str = "curves") -> Any:
        """The loss curves (``kind="curves"``) or the final loss against the rate
        (``kind="final"``). Needs matplotlib."""
        from lrjax import plotting

        return plotting.plot_sweep(self, ax=ax, kind=kind)


def sweep(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params,
    batches: Any,
    optimizer: Callable[[Any], optax.GradientTransformation] = sgd,
    *,
    learning_rates: Sequence[float] | np.ndarray | jax.Array,
    num_steps: int | None = None,
    progress: bool = False,
) -> SweepResult:
    """Trains K copies of the model from ``params``, one per learning rate, together.

    All K runs are one compiled program: ``jax.vmap`` over the rate of a ``lax.scan``
    over the steps, so the K optimizers are built from a traced rate (any float
    hyperparameter, any schedule: ``lambda lr: lrjax.adam(warmup(cosine_decay(lr, T),
    100))``). Every run sees the same batches. A run whose loss becomes NaN or
    infinite is reported as diverged; under ``vmap`` the runs share no arithmetic, so
    it never affects the others, and it is left out of ``best_learning_rate``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the starting parameters, shared by every run.
      batches: a stacked pytree whose leaves have a leading step axis, or an iterable of
        batches (stacked here, ``num_steps`` of them).
      optimizer: maps a rate (a traced scalar) to a transformation.
      learning_rates: the K rates (> 0).
      num_steps: steps per run; default: all the stacked batches (required for an
        iterable).
      progress: show a progress bar (the steps then run in 20 chunks of one compiled
        program; needs tqdm).

    Returns:
      A :class:`SweepResult`.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss = lambda w, x: jnp.mean((x * w - 2.0 * x) ** 2)
      >>> batches = jnp.ones((50, 8))
      >>> result = lrjax.sweep(loss, jnp.zeros(()), batches, learning_rates=[0.01, 0.1, 0.3, 3.0])
      >>> result.best_learning_rate, result.diverged.tolist()
      (0.30000001192092896, [False, False, False, True])
    """
    owner = "sweep"
    rates = np.asarray(learning_rates, np.float32)
    if rates.ndim != 1 or len(rates) == 0:
        raise ValueError(
            f"{owner}: learning_rates must be a non-empty 1-D sequence, got {learning_rates!r}"
        )
    _base.check(
        owner, "learning_rates", rates, lambda v: np.isfinite(v) & (v > 0), "finite and > 0"
    )
    if num_steps is not None:
        num_steps = _base.check_integer(owner, "num_steps", num_steps, 1)
    if _loop.is_stacked(batches):
        if num_steps is None:
            num_steps = _loop.stacked_length(owner, batches)
        batches = _loop.take(owner, batches, num_steps)
    else:
        if num_steps is None:
            raise ValueError(f"{owner}: num_steps is required when batches is an iterable")
        listed = list(_loop.iterate(owner, batches, num_steps))
        batches = jax.tree.map(lambda *leaves: jnp.stack(leaves), *listed)

    def train(rate, params, state, alive, batches):
        step = _loop.train_step(loss_fn, optimizer(rate))

        def body(carry, batch):
            params, state, alive = carry
            params, state, loss = step(params, state, batch)
            # The runs share no arithmetic under vmap: a diverged one only reports NaN.
            alive = alive & jnp.isfinite(loss)
            return (params, state, alive), jnp.where(alive, loss, jnp.nan)

        return jax.lax.scan(body, (params, state, alive), batches)

    @jax.jit
    def start(rates):
        return jax.vmap(lambda rate: optimizer(rate).init(params))(rates)

    @jax.jit
    def run(rates, params, state, alive, batches):
        return jax.vmap(train, in_axes=(0, 0, 0, 0, None))(rates, params, state, alive, batches)

    k = len(rates)
    carry = (
        jax.tree.map(lambda p: jnp.broadcast_to(p, (k, *jnp.shape(p))), params),
        start(jnp.asarray(rates)),
        jnp.ones(k, bool),
    )
    chunks = _chunks(num_steps, PROGRESS_CHUNKS if progress else 1)
    bar = _loop.progress_bar(owner, num_steps, progress, f"sweep of {k} rates")
    losses = []
    try:
        for begin, end in chunks:
            chunk = jax.tree.map(lambda b, begin=begin, end=end: b[begin:end], batches)
            carry, chunk_losses = run(jnp.asarray(rates), *carry, chunk)
            losses.append(np.asarray(chunk_losses, np.float64))
            bar.update(end - begin)
    finally:
        bar.close()
    return _result(rates, np.concatenate(losses, axis=1), ~np.asarray(carry[2]))


def _chunks(num_steps: int, count: int) -> list[tuple[int, int]]:
    """Equal chunks (the last one may be shorter: it compiles once more)."""
    size = -(-num_steps // min(count, num_steps))
    return [(b, min(b + size, num_steps)) for b in range(0, num_steps, size)]


def _result(rates: np.ndarray, losses: np.ndarray, diverged: np.ndarray) -> SweepResult:
    tail = max(1, losses.shape[1] // 10)
    final = np.where(diverged, np.inf, np.mean(losses[:, -tail:], axis=1))
    best = None if np.all(diverged) else float(rates[int(np.argmin(final))])
    return SweepResult(
        learning_rates=rates.astype(np.float64),
        losses=losses,
        final_losses=final,
        diverged=diverged,
        best_learning_rate=best,
    )
