"""Run by test_sweep_scale.py: one of two local JAX processes (gloo CPU collectives).

``python sweep_processes_check.py <process_id> <port>``. Each process has 2 CPU devices;
the sweep runs with ``mesh=`` over the 4 devices of both processes, and each process also
runs the same sweep alone, on one device. Prints one JSON object.
"""

import json
import os
import sys


class _Clock:
    """A ``time`` module whose ``perf_counter`` makes one of the two probed batch sizes
    look 100× slower (all at once when prefer_one, else one at a time): the probe runs
    both (compiling), then 1, all, all, 1."""

    def __init__(self, prefer_one: bool):
        # Seconds of each probe call (two readings each): compile 1, compile all, then
        # 1, all, all, 1.
        slow_all, slow_one = [1.0, 1.0, 1.0, 100.0, 100.0, 1.0], [1.0, 1.0, 100.0, 1.0, 1.0, 100.0]
        self.durations = slow_all if prefer_one else slow_one
        self.now, self.calls = 0.0, 0

    def perf_counter(self) -> float:
        if self.calls % 2:
            self.now += self.durations[(self.calls // 2) % len(self.durations)]
        self.calls += 1
        return self.now


def main(process_id: int, port: int) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # Before anything touches a device (the imports below make arrays).
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=process_id,
        initialization_timeout=60,
    )
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh

    sys.path.insert(0, os.path.dirname(__file__))
    from problems import QUADRATIC_START, quadratic_batches, quadratic_loss

    import lrjax
    from lrjax._finding import _sweep_program

    # The sweep times one-at-a-time against all-at-once in each process; here each process
    # is told the opposite answer (process 0: one at a time), so that only the job-wide
    # choice (the first process's) keeps both compiling the same program.
    _sweep_program.time = _Clock(prefer_one=process_id == 0)

    manual = []

    def loss(params, batch):
        # Traced inside shard_map: the mesh's axis is manual there.
        manual.append(sorted(jax.sharding.get_abstract_mesh().manual_axes))
        return quadratic_loss(params, batch)

    kwargs = dict(
        batches=quadratic_batches(30),
        hyperparams={"learning_rate": [0.03, 0.1, 0.15], "momentum": [0.0, 0.5]},
        init_fn=lambda key: QUADRATIC_START + 0.5 * jax.random.normal(key, (20,)),
        seeds=[0, 1],
        eval_fn=lambda p: quadratic_loss(p, jnp.zeros(20)),
        eval_every=10,
    )
    mesh = Mesh(np.array(jax.devices()), ("runs",))
    split = lrjax.sweep(loss, mesh=mesh, **kwargs)
    sharded = bool(manual) and all(axes == ["runs"] for axes in manual)
    alone = lrjax.sweep(quadratic_loss, **kwargs)  # this process's first device only
    difference = max(
        float(np.max(np.abs(alone.losses - split.losses))),
        float(np.max(np.abs(alone.eval_losses - split.eval_losses))),
    )
    report = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
        "sharded": sharded,
        "max_difference": difference,
        "same_best": alone.best == split.best and split.configs == alone.configs,
        "best": split.best,
        "shape": list(split.losses.shape),
    }
    print(json.dumps(report), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
