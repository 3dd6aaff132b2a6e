"""Train one copy of the model per configuration of hyperparameters (and per seed), all in
one compiled program."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _numerics
from lrjax._finding import _loop
from lrjax._finding import _sweep_program as program
from lrjax._finding._results import SweepResult, result
from lrjax._methods._sgd import sgd
from lrjax._validation import (
    check_callable,
    check_flag,
    check_floats,
    check_integer,
    check_integers,
    describe,
    is_concrete,
    positive,
    show,
)

OWNER = "sweep"
# With a progress bar the steps run in this many chunks of one compiled program.
PROGRESS_CHUNKS = 20
# Rates below float32's smallest normal number are flushed to 0 on most hardware.

__all__ = ["SweepResult", "sweep"]


def sweep(
    loss_fn: Callable[[optax.Params, Any], jax.Array],
    params: optax.Params | None = None,
    batches: Any = None,
    optimizer: Callable[..., optax.GradientTransformation] = sgd,
    *,
    learning_rates: Sequence[float] | np.ndarray | jax.Array | None = None,
    hyperparams: Mapping[str, Sequence[float] | np.ndarray | jax.Array] | None = None,
    init_fn: Callable[[jax.Array], optax.Params] | None = None,
    seeds: Sequence[int] | np.ndarray | None = None,
    eval_fn: Callable[[optax.Params], jax.Array] | None = None,
    eval_every: int | None = None,
    num_steps: int | None = None,
    batch_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = False,
) -> SweepResult:
    """Trains one copy of the model per configuration (and seed), all together.

    The configurations are ``learning_rates`` (``optimizer(rate)`` for each) or the grid
    (cartesian product) of ``hyperparams`` (``optimizer(**configuration)``, the last
    name varying fastest); with ``seeds``, every configuration is trained from
    ``init_fn(jax.random.key(seed))`` for each seed (seeds varying fastest of all). A
    run is one configuration from one seed. All runs are one compiled program: the
    optimizers are built from traced float32 values (any float hyperparameter, any
    schedule: ``lambda lr: lrjax.adam(warmup(cosine_decay(lr, T), 100))``) and every run
    sees the same batches. A run whose loss becomes NaN or infinite is reported as
    diverged; the runs share no arithmetic, so it never affects the others.

    The best configuration has the lowest mean over seeds of the final ``eval_fn``
    value when ``eval_fn`` is given, else of the final training loss; a configuration
    with a diverged run (or a non-finite evaluation) is never the best. Calling it again
    with the same functions, shapes, dtypes and number of runs compiles nothing,
    whatever the values. ``params`` is not modified.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (a real floating-point scalar).
      params: the starting parameters (a pytree of floating-point arrays), shared by
        every run; give either ``params`` or ``init_fn`` and ``seeds``.
      batches: a stacked pytree whose leaves share a leading step axis, or an iterable
        of batches of one structure and shape (stacked here, ``num_steps`` of them).
      optimizer: the factory, such as ``lrjax.adam``: it maps a rate (a traced scalar)
        to a transformation, or takes the ``hyperparams`` as keyword arguments.
      learning_rates: the rates (one axis): a non-empty list, tuple or 1-D array of real
        numbers, each > 0 (at least float32's smallest normal number) and finite in
        float32. Give exactly one of ``learning_rates`` and ``hyperparams``.
      hyperparams: ``{name: values}``, a non-empty mapping of keyword arguments of
        ``optimizer`` to non-empty lists of real numbers finite in float32
        (``"learning_rate"`` ones as ``learning_rates``).
      init_fn: ``init_fn(key) -> params``, the starting parameters of a seed.
      seeds: the seeds (distinct non-negative integers), with ``init_fn``.
      eval_fn: ``eval_fn(params) -> scalar`` (e.g. the loss on held-out data), evaluated
        after the last step and every ``eval_every`` steps.
      eval_every: steps between evaluations (an integer >= 1; needs ``eval_fn``);
        default: only after the last step.
      num_steps: steps per run (an integer >= 1); default: all the stacked batches
        (required for an iterable).
      batch_size: how many runs are vectorised at once (an integer >= 1, as in
        ``jax.lax.map``); the others follow in the same program. Default: the faster of
        all of a device's runs and one at a time, timed on the first sweep of these
        functions and shapes (on its first 16 steps) and remembered.
      mesh: a ``jax.sharding.Mesh``: the runs are split evenly across its devices (all
        its axes), also across the processes of a ``jax.distributed`` job; every
        process gets all the results.
      progress: show a progress bar (the steps then run in 20 chunks of one compiled
        program; needs tqdm).

    Returns:
      A :class:`SweepResult`, one row per run.

    Raises:
      ValueError: for an invalid argument, naming it; nothing is clamped or replaced.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> loss = lambda w, x: jnp.mean((x * w - 2.0 * x) ** 2)
      >>> batches = jnp.ones((50, 8))
      >>> result = lrjax.sweep(loss, jnp.zeros(()), batches, learning_rates=[0.01, 0.1, 0.3, 3.0])
      >>> result.best_learning_rate, result.diverged.tolist()
      (0.3, [False, False, False, True])
      >>> grid = lrjax.sweep(
      ...     loss, jnp.zeros(()), batches, lrjax.sgd,
      ...     hyperparams={"learning_rate": [0.1, 0.3], "momentum": [0.0, 0.5]},
      ... )
      >>> grid.configs[1], grid.losses.shape
      ({'learning_rate': 0.1, 'momentum': 0.5}, (4, 50))
    """
    _loop.check_functions(OWNER, loss_fn, optimizer)
    names, grid, positional = _grid(learning_rates, hyperparams)
    start, seeds = _starts(params, init_fn, seeds)
    if eval_fn is not None:
        check_callable(OWNER, "eval_fn", eval_fn, "a function eval_fn(params) -> scalar")
    if eval_every is not None:
        eval_every = check_integer(OWNER, "eval_every", eval_every, 1)
        if eval_fn is None:
            raise ValueError(f"{OWNER}: eval_every={eval_every} needs eval_fn, got eval_fn=None")
    if num_steps is not None:
        num_steps = check_integer(OWNER, "num_steps", num_steps, 1)
    if batch_size is not None:
        batch_size = check_integer(OWNER, "batch_size", batch_size, 1)
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(f"{OWNER}: mesh must be a jax.sharding.Mesh, got {describe(mesh)}")
    progress = check_flag(OWNER, "progress", progress)
    if batches is None:
        raise ValueError(f"{OWNER}: batches is required (a stacked pytree or an iterable)")
    if _loop.is_stacked(batches):
        batches, num_steps = _loop.take(OWNER, batches, num_steps)
    else:
        iterator = _loop.iterator(OWNER, batches)
        if num_steps is None:
            raise ValueError(f"{OWNER}: num_steps is required when batches is an iterable")
        batches = _loop.stack(OWNER, list(_loop.iterate(OWNER, iterator, num_steps)))

    # One row per run: configurations in grid order, seeds fastest.
    rows = [(config, seed) for config in grid for seed in (seeds if seeds else [None])]
    count = len(rows)
    devices = 1 if mesh is None else mesh.devices.size
    padded = rows + rows[:1] * (-count % devices)  # an even split; the copies are dropped
    values = {
        name: np.asarray([config[i] for config, _ in padded], np.float32)
        for i, name in enumerate(names)
    }
    seed_ids = np.asarray([0 if seed is None else seed for _, seed in padded], np.uint32)
    every = eval_every or num_steps
    static = dict(
        loss_fn=_loop.Static(loss_fn),
        optimizer=_loop.Static(optimizer),
        eval_fn=None if eval_fn is None else _loop.Static(eval_fn),
        eval_every=every,
        positional=positional,
        owner=OWNER,
    )
    inputs = (values, start, seed_ids)
    if mesh is not None:
        inputs, batches = program.to_mesh((inputs, batches), mesh)
    runs = (
        inputs[0],
        *program.start(
            *inputs,
            optimizer=static["optimizer"],
            init_fn=None if init_fn is None else _loop.Static(init_fn),
            positional=positional,
            mesh=mesh,
        ),
    )
    if batch_size is None:
        steps = np.arange(num_steps, dtype=np.int32)
        steps = steps if mesh is None else program.to_mesh(steps, mesh)
        batch_size = program.fastest_batch_size(runs, steps, batches, mesh=mesh, **static)
    chunks = _chunks(num_steps, PROGRESS_CHUNKS if progress else 1, every if eval_fn else 1)
    what = f"sweep of {count} run" + "s" * (count != 1)
    bar = _loop.progress_bar(OWNER, num_steps, progress, what)
    losses, evals = [], []
    try:
        for begin, end in chunks:
            chunk = jax.tree.map(lambda b, begin=begin, end=end: b[begin:end], batches)
            steps = np.arange(begin, end, dtype=np.int32)
            if mesh is not None:
                steps = program.to_mesh(steps, mesh)
            (params_, state, alive), chunk_losses, chunk_evals = program.run(
                runs,
                steps,
                chunk,
                final=end == num_steps,
                batch_size=batch_size,
                mesh=mesh,
                **static,
            )
            runs = (runs[0], params_, state, alive)
            losses.append(np.asarray(chunk_losses, np.float64)[:count])
            evals.append(np.asarray(chunk_evals, np.float64)[:count])
            bar.update(end - begin)
    finally:
        bar.close()
    eval_steps = None
    if eval_fn is not None:
        eval_steps = np.asarray(
            [*range(every, num_steps + 1, every), *([num_steps] * bool(num_steps % every))]
        )
    swept = result(
        names=names,
        rows=rows,
        losses=np.concatenate(losses, axis=1),
        diverged=~np.asarray(runs[3], bool)[:count],
        eval_steps=eval_steps,
        eval_losses=None if eval_fn is None else np.concatenate(evals, axis=1),
        num_seeds=len(seeds) if seeds else 0,
    )
    for name, end in swept.at_edge.items():
        value = (swept.best or {})[name]
        warnings.warn(
            f"{OWNER}: the best {name}, {value!r}, is the {end} value of the grid; "
            "the best may lie beyond it: extend the grid that way",
            UserWarning,
            stacklevel=2,
        )
    return swept


def _grid(learning_rates: Any, hyperparams: Any) -> tuple[list[str], list[tuple], bool]:
    """The names, the configurations (as given, float64) and whether the optimizer takes
    the rate positionally (the ``learning_rates`` shorthand)."""
    if (learning_rates is None) == (hyperparams is None):
        given = "both" if hyperparams is not None else "neither"
        raise ValueError(
            f"{OWNER}: give exactly one of learning_rates and hyperparams, got {given}"
        )
    if learning_rates is not None:
        rates = _values("learning_rates", learning_rates, rate=True)
        return ["learning_rate"], [(rate,) for rate in rates], True
    if not isinstance(hyperparams, Mapping) or not hyperparams:
        raise ValueError(
            f"{OWNER}: hyperparams must be a non-empty mapping {{name: values}}, got "
            f"{describe(hyperparams)}"
        )
    axes = {}
    for name, values in hyperparams.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"{OWNER}: hyperparams' names must be keyword arguments of optimizer, "
                f"got {show(name)}"
            )
        axes[name] = _values(f"hyperparams[{name!r}]", values, rate=name == "learning_rate")
    return list(axes), list(itertools.product(*axes.values())), False


def _values(name: str, values: Any, *, rate: bool) -> list[float]:
    """One axis as given (float64), each value checked by the rules of float hyperparameters."""
    condition, requirement = (positive, "> 0") if rate else (None, "")
    checked = check_floats(OWNER, name, values, condition, requirement)
    if not all(is_concrete(value) for value in checked):
        raise ValueError(
            f"{OWNER}: {name} must be concrete ({OWNER} runs eagerly), got {show(values)}"
        )
    if not checked:
        what = "rate" if rate else "value"
        raise ValueError(f"{OWNER}: {name} must hold at least one {what}, got an empty one")
    # As given: a float32 (or narrower) value as the shortest decimal that is the same
    # float32, 0.01 and not 0.009999999776482582.
    dtypes = [getattr(values, "dtype", None)] * len(checked)
    if not hasattr(values, "dtype"):
        dtypes = [getattr(value, "dtype", None) for value in values]
    given = [_as_given(float(value), dtype) for value, dtype in zip(checked, dtypes, strict=True)]
    for i, value in enumerate(given):
        if rate and value < _numerics.FLOAT32_TINY:
            raise ValueError(
                f"{OWNER}: {name}[{i}] must be at least {_numerics.FLOAT32_TINY:.8g} (float32's "
                "smallest normal number; smaller rates are 0 on most hardware), got "
                f"{show(list(values)[i])}"
            )
    return given


def _as_given(value: float, dtype: Any) -> float:
    if dtype is None or np.dtype(dtype).kind != "f" or np.dtype(dtype).itemsize >= 8:
        return value
    return float(str(np.asarray(value, dtype)[()]))


def _starts(params: Any, init_fn: Any, seeds: Any) -> tuple[Any, list[int]]:
    """The shared parameters (or None) and the seeds (empty without ``init_fn``)."""
    if init_fn is None:
        if seeds is not None:
            raise ValueError(f"{OWNER}: seeds needs init_fn(key) -> params, got init_fn=None")
        if params is None:
            raise ValueError(f"{OWNER}: params is required (or init_fn and seeds)")
        _loop.check_params(OWNER, params)
        return params, []
    check_callable(OWNER, "init_fn", init_fn, "a function init_fn(key) -> params")
    if params is not None:
        raise ValueError(
            f"{OWNER}: give params or init_fn, not both (init_fn builds each seed's params)"
        )
    if seeds is None:
        raise ValueError(f"{OWNER}: init_fn needs seeds (a list of integers), got seeds=None")
    checked = list(check_integers(OWNER, "seeds", seeds, 0, 2**32 - 1))
    if not checked:
        raise ValueError(f"{OWNER}: seeds must hold at least one seed, got an empty one")
    if len(set(checked)) != len(checked):
        raise ValueError(f"{OWNER}: seeds must be distinct, got {show(seeds)}")
    return None, checked


def _chunks(num_steps: int, count: int, align: int) -> list[tuple[int, int]]:
    """About ``count`` chunks, each starting on a multiple of ``align`` (an evaluation
    falls on a chunk's boundary); the last one may be shorter (it compiles once more)."""
    size = -(-num_steps // min(count, num_steps))
    size = -(-size // align) * align
    return [(b, min(b + size, num_steps)) for b in range(0, num_steps, size)]
