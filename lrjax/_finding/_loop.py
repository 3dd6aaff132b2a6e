"""What the range test and the sweep share: checking their inputs, the training step and
reading batches.

Every check names the public function (``owner``) and raises ``ValueError``, so nothing
from JAX's or an inner function's internals reaches the user for a wrong input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _chain
from lrjax._validation import call_user, check_callable, describe, is_concrete

LossFn = Callable[[optax.Params, Any], jax.Array]


class Static:
    """A function as a static argument of ``jax.jit``, compared as JAX compares them.

    Calling ``find_learning_rate`` or ``sweep`` again with the same ``loss_fn`` and
    ``optimizer`` (and shapes) then reuses the compiled program. A callable without a
    usable ``__hash__`` (a class defining ``__eq__`` only) is compared by identity
    instead of failing as a static argument.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        try:
            return hash(self.value)
        except TypeError:
            return id(self.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Static):
            return False
        if other.value is self.value:
            return True
        try:
            return bool(self.value == other.value)
        except Exception:  # an __eq__ that returns arrays or raises: not the same
            return False


# ------------------------------------------------------------------ the arguments


def check_functions(owner: str, loss_fn: Any, optimizer: Any) -> None:
    """``loss_fn`` is callable; ``optimizer`` is a factory, not a built transformation."""
    check_callable(owner, "loss_fn", loss_fn, "a function loss_fn(params, batch) -> scalar")
    _chain.check_factory(owner, optimizer, "lrjax.adam, or lambda lr: lrjax.sgd(lr, momentum=0.9)")


def check_params(owner: str, params: Any) -> None:
    """``params`` is a non-empty pytree of concrete floating-point (or complex) arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(
            f"{owner}: params must be a pytree with at least one floating-point array, "
            f"got {describe(params)}"
        )
    for path, leaf in leaves:
        where = jax.tree_util.keystr(path) or "params"
        if isinstance(leaf, jax.Array) and not is_concrete(leaf):
            raise ValueError(
                f"{owner}: params must be concrete ({owner} runs eagerly and reads the "
                f"losses back), got a tracer at {where}; call {owner} outside jax.jit"
            )
        dtype = _dtype(leaf)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            raise ValueError(
                f"{owner}: params must be a pytree of floating-point arrays, got "
                f"{describe(leaf)} at {where}"
            )


def _dtype(leaf: Any) -> Any:
    """The dtype of an array-like leaf, or None for anything else (str, objects)."""
    if isinstance(leaf, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return leaf.dtype
    if isinstance(leaf, (int, float, complex)):
        return np.result_type(leaf)
    return None


# ------------------------------------------------------------------ the training step


def train_step(owner: str, loss_fn: LossFn, tx: optax.GradientTransformation):
    """``(params, state, batch) -> (params, state, loss)``: one step of gradient descent.

    The loss is the one of ``params`` on ``batch``, before the update, as float32.
    """

    def checked_loss(params, batch):
        loss = call_user(owner, "loss_fn", "loss_fn(params, batch)", loss_fn, params, batch)
        check_loss(owner, loss)
        return loss

    def step(params, state, batch):
        loss, grads = jax.value_and_grad(checked_loss)(params, batch)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, jnp.asarray(loss, jnp.float32)

    return step


def check_loss(owner: str, loss: Any) -> None:
    """At trace time: ``loss_fn`` returned a real floating-point scalar."""
    what = f"{owner}: loss_fn(params, batch) must return a real floating-point scalar"
    if isinstance(loss, tuple):
        raise ValueError(
            f"{what}, got a tuple of {len(loss)}; return the loss alone (a loss_fn with "
            "auxiliary outputs needs a wrapper)"
        )
    dtype = _dtype(loss)
    if dtype is None:
        raise ValueError(f"{what}, got {describe(loss)}")
    if jnp.shape(loss) != () or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{what}, got {dtype} of shape {jnp.shape(loss)}")


# ------------------------------------------------------------------ batches


def is_stacked(batches: Any) -> bool:
    """A stacked pytree of batches (leading axis = step) rather than an iterable of them.

    Arrays, dicts and tuples (including NamedTuples) are stacked pytrees; lists,
    iterators, generators and data loaders are sequences of batches.
    """
    return isinstance(batches, (jax.Array, np.ndarray, dict, tuple))


def take(owner: str, batches: Any, num_steps: int | None) -> tuple[Any, int]:
    """The first ``num_steps`` (default: all) batches of a stacked pytree, and their number.

    Every leaf must be a numeric array with the same leading (step) axis, at least
    ``num_steps`` and at least 1 long.
    """
    leaves = jax.tree_util.tree_leaves_with_path(batches)
    if not leaves:
        raise ValueError(
            f"{owner}: stacked batches must hold arrays with a leading step axis, got "
            f"{describe(batches)} with no arrays in it"
        )
    lengths = {}
    for path, leaf in leaves:
        where = jax.tree_util.keystr(path) or "batches"
        dtype = _dtype(leaf)
        if dtype is None or not (jnp.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(
                f"{owner}: stacked batches must hold numeric arrays, got {describe(leaf)} "
                f"at {where}"
            )
        if np.ndim(leaf) == 0:
            raise ValueError(
                f"{owner}: every leaf of stacked batches needs a leading step axis, got a "
                f"scalar at {where}"
            )
        lengths[where] = int(np.shape(leaf)[0])
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"{owner}: the leaves of stacked batches must share their leading (step) axis, "
            f"got lengths {lengths}"
        )
    available = next(iter(lengths.values()))
    if num_steps is None and available == 0:
        raise ValueError(f"{owner}: the stacked batches hold 0 steps (an empty leading axis)")
    needed = available if num_steps is None else num_steps
    if available < needed:
        raise ValueError(
            f"{owner}: the stacked batches hold {available} steps, fewer than num_steps={needed}"
        )
    return jax.tree.map(lambda leaf: jnp.asarray(leaf)[:needed], batches), needed


def iterate(owner: str, iterator: Iterator[Any], num_steps: int) -> Iterator[Any]:
    """Exactly ``num_steps`` batches from ``iterator`` (see :func:`iterator`); a
    ``ValueError`` if it runs out."""
    for t in range(num_steps):
        try:
            batch = next(iterator)
        except StopIteration:
            raise ValueError(
                f"{owner}: batches ran out after {t} of num_steps={num_steps} batches"
            ) from None
        _check_batch(owner, t, batch)
        yield batch


def iterator(owner: str, batches: Any) -> Iterator[Any]:
    """An iterator over ``batches``; a ``ValueError`` for what is no iterable of batches."""
    # A string iterates over its characters: never a sequence of batches.
    if not isinstance(batches, (str, bytes)) and batches is not None:
        try:
            return iter(batches)
        except TypeError:
            pass
    raise ValueError(
        f"{owner}: batches must be a stacked pytree (an array, dict or tuple whose leaves "
        f"have a leading step axis) or an iterable of batches, got {describe(batches)}"
    )


def _check_batch(owner: str, index: int, batch: Any) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        dtype = _dtype(leaf)
        if dtype is None or not (jnp.issubdtype(dtype, np.number) or dtype == np.bool_):
            where = f"batch {index}{jax.tree_util.keystr(path)}"
            raise ValueError(
                f"{owner}: batches must hold numeric arrays, got {describe(leaf)} at {where}"
            )


def stack(owner: str, batches: list[Any]) -> Any:
    """The batches of an iterable stacked along a new leading axis, checked to match."""
    first = jax.tree.structure(batches[0])
    shapes = [(np.shape(x), _dtype(x)) for x in jax.tree.leaves(batches[0])]
    for i, batch in enumerate(batches[1:], 1):
        if jax.tree.structure(batch) != first or shapes != [
            (np.shape(x), _dtype(x)) for x in jax.tree.leaves(batch)
        ]:
            raise ValueError(
                f"{owner}: batches must all have the structure, shapes and dtypes of the "
                f"first (they are stacked into one array per leaf); batch {i} differs"
            )
    return jax.tree.map(lambda *leaves: jnp.stack([jnp.asarray(x) for x in leaves]), *batches)


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

    def close(self) -> None:
        pass
