"""The compiled program of a sweep: every run trained, evaluated, mapped over in batches
and, given a mesh, split across its devices.

A run is one configuration of hyperparameters from one starting point. The runs are an
axis of arrays (the hyperparameters, parameters, optimizer states), mapped over by
``jax.lax.map(..., batch_size=)``: ``batch_size`` runs are vectorised with ``jax.vmap``
and the batches follow one another inside the same program. Every function here is a
module-level ``jax.jit`` with the user's functions as static arguments, so a second
sweep with the same functions, shapes and dtypes compiles nothing.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax import _chain
from lrjax._finding import _loop
from lrjax._validation import call_user, describe

OWNER = "sweep"


def build(optimizer: Any, hyperparams: dict[str, Any], positional: bool, owner: str = OWNER):
    """The run's transformation: ``optimizer(rate)`` for the ``learning_rates=`` shorthand,
    ``optimizer(**hyperparams)`` for a grid."""
    if positional:
        return _chain.build(owner, optimizer, hyperparams["learning_rate"])
    try:
        tx = optimizer(**hyperparams)
    except TypeError as error:
        names = ", ".join(hyperparams)
        raise ValueError(
            f"{owner}: optimizer must accept the hyperparams as keyword arguments ({names}): "
            f"optimizer(**hyperparams) raised TypeError: {error}"
        ) from None
    return _chain.build(owner, lambda _: tx, None)


def _evaluate(owner: str, eval_fn: Any, params: Any, alive: jax.Array) -> jax.Array:
    value = call_user(owner, "eval_fn", "eval_fn(params)", eval_fn, params)
    dtype = getattr(value, "dtype", None) or np.result_type(value)
    if jnp.shape(value) != () or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"{owner}: eval_fn(params) must return a real floating-point scalar, got "
            f"{describe(value)}"
        )
    return jnp.where(alive, jnp.asarray(value, jnp.float32), jnp.nan)


def _train(
    run, steps, batches, *, loss_fn, optimizer, eval_fn, eval_every, final, positional, owner
):
    """One run over the chunk ``steps``: losses ``[n]`` and evaluations ``[E]``.

    The chunk starts on a multiple of ``eval_every``: ``eval_fn`` sees the parameters
    after every ``eval_every`` steps and, if ``final``, after the chunk's last step.
    """
    hyperparams, params, state, alive = run
    step = _loop.train_step(owner, loss_fn, build(optimizer, hyperparams, positional, owner))

    def body(carry, inputs):
        params, state, alive = carry
        params, state, loss = step(params, state, inputs[1])
        # The runs share no arithmetic: a diverged one only reports NaN.
        alive = alive & jnp.isfinite(loss)
        return (params, state, alive), jnp.where(alive, loss, jnp.nan)

    carry = (params, state, alive)
    # The step numbers give the scan its length even when a batch has no arrays.
    inputs = (steps, batches)
    n = steps.shape[0]
    if eval_fn is None:
        carry, losses = jax.lax.scan(body, carry, inputs)
        return carry, losses, jnp.zeros((0,), jnp.float32)

    def group(carry, inputs):
        carry, losses = jax.lax.scan(body, carry, inputs)
        return carry, (losses, _evaluate(owner, eval_fn, carry[0], carry[2]))

    groups, rest = divmod(n, eval_every)
    head = jax.tree.map(
        lambda x: x[: groups * eval_every].reshape(groups, eval_every, *x.shape[1:]), inputs
    )
    carry, (losses, evals) = jax.lax.scan(group, carry, head)
    losses = losses.reshape(-1)
    if rest:
        tail = jax.tree.map(lambda x: x[groups * eval_every :], inputs)
        carry, more = jax.lax.scan(body, carry, tail)
        losses = jnp.concatenate([losses, more])
        if final:
            evals = jnp.concatenate([evals, _evaluate(owner, eval_fn, carry[0], carry[2])[None]])
    return carry, losses, evals


def _map(function, runs, batch_size: int, count: int):
    """``function`` over the leading (run) axis, ``batch_size`` runs vectorised at a time:
    a sequential ``lax.map`` for 1, one ``vmap`` for all."""
    if batch_size >= count:
        return jax.vmap(function)(runs)
    if batch_size == 1:
        return jax.lax.map(function, runs)
    # lax.map(batch_size=) reshapes with -1, which fails on an empty state leaf.
    batches = -(-count // batch_size)
    pad = batches * batch_size - count

    def split(x):
        x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x
        return x.reshape(batches, batch_size, *x.shape[1:])

    out = jax.lax.map(jax.vmap(function), jax.tree.map(split, runs))
    return jax.tree.map(lambda y: y.reshape(batches * batch_size, *y.shape[2:])[:count], out)


@functools.partial(jax.jit, static_argnames=("optimizer", "init_fn", "positional", "mesh", "owner"))
def start(hyperparams, params, seeds, *, optimizer, init_fn, positional, mesh, owner=OWNER):
    """Every run's starting parameters, optimizer state and ``alive`` flag."""

    def one(hyperparams, seed):
        start = params if init_fn is None else init_fn.value(jax.random.key(seed))
        state = build(optimizer.value, hyperparams, positional, owner).init(start)
        return start, state, jnp.ones((), bool)

    out = jax.vmap(one)(hyperparams, seeds)
    if mesh is not None:
        out = jax.lax.with_sharding_constraint(out, replicated(mesh))
    return out


@functools.partial(
    jax.jit,
    static_argnames=(
        "loss_fn",
        "optimizer",
        "eval_fn",
        "eval_every",
        "final",
        "positional",
        "batch_size",
        "mesh",
        "owner",
    ),
)
def run(runs, steps, batches, *, batch_size, mesh, **static):
    """Trains the runs over the chunk ``steps``: the new runs, losses ``[R, n]`` and
    evaluations ``[R, E]``."""
    static = {k: (s.value if isinstance(s, _loop.Static) else s) for k, s in static.items()}

    def local(runs, steps, batches):
        size = runs[3].shape[0]
        train = lambda run: _train(run, steps, batches, **static)
        return _map(train, runs, min(batch_size, size), size)

    if mesh is None:
        return local(runs, steps, batches)
    axes = PartitionSpec(tuple(mesh.axis_names))
    split = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(axes, PartitionSpec(), PartitionSpec()),
        out_specs=axes,
        check_vma=False,
    )
    # Replicated results: every process of a multi-process job can read all of them.
    return jax.lax.with_sharding_constraint(split(runs, steps, batches), replicated(mesh))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def to_mesh(tree: Any, mesh: Mesh) -> Any:
    """Host values as global arrays replicated over ``mesh`` (every process holds them all,
    so this works in a multi-process job too)."""
    sharding = replicated(mesh)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


# How many steps the strategies are timed on, and the choices measured so far.
PROBE_STEPS = 16
_fastest: dict[Any, int] = {}


def fastest_batch_size(runs: Any, steps: Any, batches: Any, *, mesh: Mesh | None, **static) -> int:
    """How many runs to vectorise at once when ``batch_size`` is not given: measured.

    All of a device's runs in one ``vmap``, or one run after another: which is faster
    depends on the model, the number of runs and the hardware (one ``vmap`` was 0.84×
    the loop's time for 16 runs of a small MLP on CPU, and 1.8× it for a CNN whose
    convolutions already fill the cores). The first sweep of a program times both on
    its first steps (each compiled once, then run in A B B A order) and keeps the
    faster; later sweeps of the same functions and shapes reuse the choice.
    """
    count = int(runs[3].shape[0])
    per_device = -(-count // (1 if mesh is None else mesh.devices.size))
    if per_device == 1:
        return 1
    shapes = jax.tree.map(lambda x: (x.shape, str(x.dtype)), (runs, batches))
    key = (
        tuple(sorted(static.items(), key=lambda item: item[0])),
        jax.tree.structure(shapes),
        tuple(jax.tree.leaves(shapes)),
        mesh,
    )
    if key not in _fastest:
        _fastest[key] = _measure(runs, steps, batches, mesh, per_device, static)
    return _fastest[key]


def _measure(runs, steps, batches, mesh, per_device, static) -> int:
    n = min(PROBE_STEPS, int(steps.shape[0]))
    head = jax.tree.map(lambda x: x[:n], (steps, batches))
    probe = dict(static, eval_fn=None, eval_every=n, final=False)
    candidates = (1, per_device)
    seconds = dict.fromkeys(candidates, 0.0)

    def call(size: int) -> float:
        began = time.perf_counter()
        jax.block_until_ready(run(runs, *head, batch_size=size, mesh=mesh, **probe))
        return time.perf_counter() - began

    for size in candidates:
        call(size)  # compiles
    for size in (*candidates, *candidates[::-1]):
        seconds[size] += call(size)
    fastest = min(candidates, key=seconds.__getitem__)
    if mesh is not None and jax.process_count() > 1:
        # Every process must compile the same program: each timed its own copy, and the
        # first process's choice is the job's.
        fastest = int(multihost_utils.broadcast_one_to_all(np.int32(fastest)))
    return fastest
