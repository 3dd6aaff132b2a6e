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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax import _chain
from lrjax._finding import _loop
from lrjax._validation import call_user, describe

OWNER = "sweep"


def build(optimizer: Any, hyperparams: dict[str, Any], positional: bool):
    """The run's transformation: ``optimizer(rate)`` for the ``learning_rates=`` shorthand,
    ``optimizer(**hyperparams)`` for a grid."""
    if positional:
        return _chain.build(OWNER, optimizer, hyperparams["learning_rate"])
    try:
        tx = optimizer(**hyperparams)
    except TypeError as error:
        names = ", ".join(hyperparams)
        raise ValueError(
            f"{OWNER}: optimizer must accept the hyperparams as keyword arguments ({names}): "
            f"optimizer(**hyperparams) raised TypeError: {error}"
        ) from None
    return _chain.build(OWNER, lambda _: tx, None)


def _evaluate(eval_fn: Any, params: Any, alive: jax.Array) -> jax.Array:
    value = call_user(OWNER, "eval_fn", "eval_fn(params)", eval_fn, params)
    dtype = getattr(value, "dtype", None) or np.result_type(value)
    if jnp.shape(value) != () or not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"{OWNER}: eval_fn(params) must return a real floating-point scalar, got "
            f"{describe(value)}"
        )
    return jnp.where(alive, jnp.asarray(value, jnp.float32), jnp.nan)


def _train(run, steps, batches, *, loss_fn, optimizer, eval_fn, eval_every, final, positional):
    """One run over the chunk ``steps``: losses ``[n]`` and evaluations ``[E]``.

    The chunk starts on a multiple of ``eval_every``: ``eval_fn`` sees the parameters
    after every ``eval_every`` steps and, if ``final``, after the chunk's last step.
    """
    hyperparams, params, state, alive = run
    step = _loop.train_step(OWNER, loss_fn, build(optimizer, hyperparams, positional))

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
        return carry, (losses, _evaluate(eval_fn, carry[0], carry[2]))

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
            evals = jnp.concatenate([evals, _evaluate(eval_fn, carry[0], carry[2])[None]])
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


@functools.partial(jax.jit, static_argnames=("optimizer", "init_fn", "positional", "mesh"))
def start(hyperparams, params, seeds, *, optimizer, init_fn, positional, mesh):
    """Every run's starting parameters, optimizer state and ``alive`` flag."""

    def one(hyperparams, seed):
        start = params if init_fn is None else init_fn.value(jax.random.key(seed))
        state = build(optimizer.value, hyperparams, positional).init(start)
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


def auto_batch_size(count: int, mesh: Mesh | None) -> int:
    """How many runs are vectorised at once when ``batch_size`` is not given.

    On accelerators all of a device's runs (one vmap). On CPU the runs follow one
    another: XLA's CPU backend already spreads one run's operations over the cores, and
    vectorising runs was measured slower or no faster (benchmarks/README.md).
    """
    devices = mesh.devices.flat if mesh is not None else jax.devices()
    per_device = -(-count // (mesh.devices.size if mesh is not None else 1))
    if all(device.platform == "cpu" for device in devices):
        return 1
    return per_device
