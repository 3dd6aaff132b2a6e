"""Run by test_sweep_scale.py in a subprocess with 8 fake CPU devices (a 2×4 mesh).

A sweep of 12 runs (3 rates × 2 momenta × 2 seeds, padded to 16 for an even split) with
``mesh=`` against the same sweep on one device. Prints one JSON object.
"""

import json
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

sys.path.insert(0, os.path.dirname(__file__))
from problems import QUADRATIC_START, quadratic_batches, quadratic_loss

import lrjax

MANUAL = []


def loss(params, batch):
    # Traced inside shard_map: the mesh's axes are manual there.
    MANUAL.append(sorted(jax.sharding.get_abstract_mesh().manual_axes))
    return quadratic_loss(params, batch)


def main():
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("x", "y"))
    kwargs = dict(
        batches=quadratic_batches(30),
        hyperparams={"learning_rate": [0.03, 0.1, 0.15], "momentum": [0.0, 0.5]},
        init_fn=lambda key: QUADRATIC_START + 0.5 * jax.random.normal(key, (20,)),
        seeds=[0, 1],
        eval_fn=lambda p: quadratic_loss(p, jnp.zeros(20)),
        eval_every=10,
    )
    one = lrjax.sweep(loss, **kwargs)
    MANUAL.clear()
    split = lrjax.sweep(loss, mesh=mesh, **kwargs)
    difference = max(
        float(np.max(np.abs(one.losses - split.losses))),
        float(np.max(np.abs(one.eval_losses - split.eval_losses))),
    )
    report = {
        "devices": len(jax.devices()),
        "sharded": bool(MANUAL) and all(axes == ["x", "y"] for axes in MANUAL),
        "max_difference": difference,
        "same_best": one.best == split.best and split.configs == one.configs,
        "shape": list(split.losses.shape),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
