"""The sweep case: K learning rates in one ``lrjax.sweep`` program vs K compiled runs.

The K separate runs are what a user writes without ``lrjax.sweep``: a Python loop that
builds the optimizer for each rate and jit-compiles a new training-loop function for it
(so each one compiles). Both sides are timed end to end, compile
included, since that is the time a user waits for the K loss curves.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax

K = 16
# A run is bounded when its loss never exceeds this many times its first loss.
BOUND = 2.0


def _problem(quick: bool):
    """A small MLP regression with ``steps`` batches stacked on a leading axis."""
    steps, batch, width = (10, 32, 16) if quick else (200, 128, 256)
    keys = jax.random.split(jax.random.key(0), 5)
    x = jax.random.normal(keys[0], (steps, batch, 32))
    y = jnp.sin(x @ jax.random.normal(keys[1], (32, 1)))
    params = {
        "w1": jax.random.normal(keys[2], (32, width)) / np.sqrt(32),
        "b1": jnp.zeros(width),
        "w2": jax.random.normal(keys[3], (width, 1)) / np.sqrt(width),
        "b2": jnp.zeros(1),
    }
    return params, (x, y), steps


def loss_fn(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def _train(tx: optax.GradientTransformation, params, batches):
    def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    _, losses = jax.lax.scan(step, (params, tx.init(params)), batches)
    return losses


def sweep_case(quick: bool) -> dict[str, Any]:
    """Times the one-program sweep and the separate runs, and compares their losses."""
    optimizer = lrjax.sgd
    params, batches, steps = _problem(quick)
    rates = np.geomspace(1e-3, 1.0, K).astype(np.float32)

    start = time.perf_counter()
    rates_array = jnp.asarray(rates)
    result = lrjax.sweep(loss_fn, params, batches, optimizer=optimizer, learning_rates=rates_array)
    swept = np.asarray(jax.block_until_ready(result.losses))
    sweep_s = time.perf_counter() - start

    start = time.perf_counter()
    separate = []
    for rate in rates:
        train = jax.jit(functools.partial(_train, optimizer(float(rate))))
        separate.append(np.asarray(train(params, batches)))
    separate_s = time.perf_counter() - start

    # Only a bounded run is reproducible to rounding. Past the edge of stability a run is
    # chaotic (the quick case's rate 1.0 climbs to ~8e3, finite): any change of float32
    # rounding, thread scheduling included, moves its curve, so comparing it would test
    # the thread pool. Which runs are bounded is read from the separate runs.
    separate = np.stack(separate)
    diverged = np.asarray(result.diverged)
    bounded = np.all(np.isfinite(separate), axis=1)
    bounded &= np.max(np.where(bounded[:, None], separate, 0.0), axis=1) <= BOUND * separate[:, 0]
    matching = 0
    if swept.shape == separate.shape:
        close = np.all(np.isclose(swept, separate, rtol=1e-4, atol=1e-6), axis=1)
        matching = int(np.sum(close & bounded))
    return {
        "k": K,
        "steps": steps,
        "params": sum(x.size for x in jax.tree.leaves(params)),
        "sweep_s": sweep_s,
        "separate_s": separate_s,
        "ratio": sweep_s / separate_s,
        "matching": matching,
        "bounded": int(bounded.sum()),
        "bound": BOUND,
        "diverged": int(diverged.sum()),
    }
