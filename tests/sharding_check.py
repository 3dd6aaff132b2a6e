"""Run by test_sharding.py in a subprocess with 8 fake CPU devices (a 2×4 mesh).

For every method: the state from ``jax.jit(tx.init)(params)`` and from an eager
``tx.init`` has each parameter's sharding, jitted updates keep it, and the results equal
the single-device run. Prints one JSON object: method name -> list of failures.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, os.path.dirname(__file__))
from helpers import METHODS

SPECS = {"w": P("x", "y"), "b": P("y"), "r": P(), "v": P(None, "x")}
SHAPES = {"w": (8, 16), "b": (16,), "r": (4, 4), "v": (3, 6)}


def loss(params):
    return sum(jnp.sum(jnp.sin(p) * p) for p in jax.tree.leaves(params))


def run(tx, params, init, steps=3):
    state = init(params)
    step = jax.jit(
        lambda p, s: (lambda u, s: (optax.apply_updates(p, u), s))(
            *tx.update(jax.grad(loss)(p), s, p)
        )
    )
    history = [state]
    for _ in range(steps):
        params, state = step(params, state)
        history.append(state)
    return params, history


def check(name, tx, mesh):
    failures = []
    rng = np.random.default_rng(0)
    host = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    shardings = {k: NamedSharding(mesh, SPECS[k]) for k in SHAPES}
    by_shape = {SHAPES[k]: shardings[k] for k in SHAPES}
    sharded = {k: jax.device_put(v, shardings[k]) for k, v in host.items()}
    single = {k: jax.device_put(v, jax.devices()[0]) for k, v in host.items()}

    for label, init in (("jit(init)", jax.jit(tx.init)), ("init", tx.init)):
        params, history = run(tx, sharded, init)
        for t, state in enumerate(history):
            for leaf in jax.tree.leaves(state):
                want = by_shape.get(leaf.shape)
                if want is not None and not leaf.sharding.is_equivalent_to(want, leaf.ndim):
                    failures.append(
                        f"{label}: state leaf {leaf.shape} after {t} steps has {leaf.sharding}"
                    )
        for k, p in params.items():
            if not p.sharding.is_equivalent_to(shardings[k], p.ndim):
                failures.append(f"{label}: param {k} lost its sharding: {p.sharding}")
        reference, _ = run(tx, single, tx.init)
        for k in SHAPES:
            if not np.allclose(
                np.asarray(params[k]), np.asarray(reference[k]), rtol=1e-6, atol=1e-7
            ):
                failures.append(f"{label}: param {k} differs from the single-device run")
    return failures


def main():
    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("x", "y"))
    report = {name: check(name, factory(1e-2), mesh) for name, factory in METHODS.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
