"""What the range test and the sweep share: the training step and reading batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

LossFn = Callable[[optax.Params, Any], jax.Array]


def train_step(loss_fn: LossFn, tx: optax.GradientTransformation):
    """``(params, state, batch) -> (params, state, loss)``: one step of gradient descent.

    The loss is the one of ``params`` on ``batch``, before the update.
    """

    def step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, jnp.asarray(loss, jnp.float32)

    return step


def is_stacked(batches: Any) -> bool:
    """A stacked pytree of batches (leading axis = step) rather than an iterable of them.

    Arrays, dicts and tuples (including NamedTuples) are stacked pytrees; lists,
    iterators, generators and data loaders are sequences of batches.
    """
    return isinstance(batches, (jax.Array, np.ndarray, dict, tuple))


def stacked_length(owner: str, batches: Any) -> int:
    """The number of steps a stacked pytree of batches holds (its shortest leading axis)."""
    leaves = jax.tree.leaves(batches)
    if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
        raise ValueError(
            f"{owner}: a stacked pytree of batches needs array leaves with a leading step "
            f"axis, got leaves of shapes {[np.shape(leaf) for leaf in leaves]}"
        )
    return min(int(np.shape(leaf)[0]) for leaf in leaves)


def take(owner: str, batches: Any, num_steps: int) -> Any:
    """The first ``num_steps`` batches of a stacked pytree; a ``ValueError`` if it is short."""
    available = stacked_length(owner, batches)
    if available < num_steps:
        raise ValueError(
            f"{owner}: the stacked batches hold {available} steps, fewer than num_steps={num_steps}"
        )
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[:num_steps], batches)


def iterate(owner: str, batches: Iterable[Any], num_steps: int) -> Iterator[Any]:
    """Exactly ``num_steps`` batches from an iterable; a ``ValueError`` if it runs out."""
    iterator = iter(batches)
    for t in range(num_steps):
        try:
            yield next(iterator)
        except StopIteration:
            raise ValueError(
                f"{owner}: batches ran out after {t} of num_steps={num_steps} batches"
            ) from None


def progress_bar(owner: str, total: int, enabled: bool, description: str):
    """A tqdm bar when ``enabled``, else a stand-in with the same ``update``/``close``."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{owner}: progress=True needs tqdm (pip install 'lrjax[progress]')"
        ) from None
    return tqdm(total=total, desc=description, leave=False)


class _NoBar:
    def update(self, n: int = 1) -> None:
        del n

    def set_postfix(self, **kwargs: Any) -> None:
        del kwargs

    def close(self) -> None:
        pass
