"""What one ``lrjax.sharpness`` call costs: Hessian-vector products, seconds, compile time.

    python -m benchmarks.sharpness_cost              # three MLPs (about a minute on 2 cores)
    python -m benchmarks.sharpness_cost --quick      # the small ones only: a smoke test
    python -m benchmarks.sharpness_cost --repeats 9  # more timed calls per problem

Problems: ReLU MLPs with a cross-entropy loss on a batch of scikit-learn's 8×8 digits
(the first ``--batch`` images of the tests' shuffle, 256 by default): the tests'
64-16-10 (1,210 parameters, the same weights and images as tests/test_sharpness.py),
the demo's 64-128-10 (9,610) and a 64-960-960-10 (994,570, about 1M).

For each, ``jax.jit(lambda p, b: lrjax.sharpness(loss, p, b))`` at the default 20
iterations:

- **HVPs**: Hessian-vector products per call, counted (a ``jax.debug.callback`` in the
  loss runs once per product's forward pass; the count comes from a separate, untimed
  call). One Lanczos step is one product; ``min(num_iterations, parameters)`` of them.
- **compile**: trace + lower + compile from scratch (JAX's caches cleared, a fresh
  function), the median of ``--compile-repeats``.
- **call**: one compiled call, ``block_until_ready``, the median of ``--repeats`` after a
  warm-up call; **per HVP** divides it by the count.
- **gradient**: one jitted ``jax.grad`` of the same loss on the same batch (median): the
  unit a training step pays. A product costs about two gradients (forward-over-reverse);
  Lanczos adds the reorthogonalisation against the basis (20 dot products and axpys over
  the parameters, twice) and keeps ``20 × parameters`` float32 values.

Nothing here asserts: it measures and reports. Keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/sharpness_cost.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lrjax
from benchmarks._measure import cpu_model

NUM_ITERATIONS = 20  # lrjax.sharpness's default

# name -> hidden widths
PROBLEMS: dict[str, tuple[int, ...]] = {
    "digits MLP 64-16-10 (the tests')": (16,),
    "digits MLP 64-128-10 (the demo's)": (128,),
    "MLP 64-960-960-10 (~1M)": (960, 960),
}
QUICK = ("digits MLP 64-16-10 (the tests')", "digits MLP 64-128-10 (the demo's)")


def digits_batch(size: int) -> tuple[jax.Array, jax.Array]:
    """The first ``size`` images of scikit-learn's digits (shuffled once, seed 0)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:size]
    return jnp.asarray(x[order] / 16.0, jnp.float32), jnp.asarray(y[order], jnp.int32)


def mlp_init(hidden: tuple[int, ...], seed: int = 0) -> list[dict[str, jax.Array]]:
    """Layers 64 → hidden… → 10: hidden kernels with variance 2/fan_in, the readout's
    1/fan_in, biases at zero (with one hidden layer, the values of the tests' and the
    demo's ``lrjax._demo.mlp_init(seed, hidden)``)."""
    widths = (64, *hidden, 10)
    keys = jax.random.split(jax.random.key(seed), len(widths) - 1)
    return [
        {
            "w": jax.random.normal(key, (n_in, n_out))
            * np.float32(np.sqrt((1 if n_out == 10 else 2) / n_in)),
            "b": jnp.zeros(n_out),
        }
        for key, n_in, n_out in zip(keys, widths[:-1], widths[1:], strict=True)
    ]


def mlp_loss(params: list[dict[str, jax.Array]], batch) -> jax.Array:
    """Mean cross-entropy of integer labels."""
    x, y = batch
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    logits = x @ params[-1]["w"] + params[-1]["b"]
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def count_hvps(params, batch) -> int:
    """Forward passes of the loss in one jitted ``sharpness`` call: one per product."""
    calls = []

    def counting_loss(params, batch):
        jax.debug.callback(lambda: calls.append(1))
        return mlp_loss(params, batch)

    jax.block_until_ready(jax.jit(lambda p, b: lrjax.sharpness(counting_loss, p, b))(params, batch))
    jax.effects_barrier()
    return len(calls)


def compile_seconds(params, batch) -> float:
    """Trace + lower + compile from scratch."""

    def fresh(params, batch):
        return lrjax.sharpness(mlp_loss, params, batch)

    jax.clear_caches()
    start = time.perf_counter()
    jax.jit(fresh).lower(params, batch).compile()
    return time.perf_counter() - start


def call_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """The median of ``repeats`` blocked calls, after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(hidden: tuple[int, ...], batch, repeats: int, compile_repeats: int) -> dict:
    params = mlp_init(hidden)
    size = sum(int(np.size(x)) for x in jax.tree.leaves(params))
    hvps = count_hvps(params, batch)
    compile_s = statistics.median(compile_seconds(params, batch) for _ in range(compile_repeats))
    measure_fn = jax.jit(lambda p, b: lrjax.sharpness(mlp_loss, p, b))
    value = float(measure_fn(params, batch))
    call_s = call_seconds(lambda: measure_fn(params, batch), repeats)
    grad_fn = jax.jit(jax.grad(mlp_loss))
    grad_s = call_seconds(lambda: grad_fn(params, batch), max(repeats, 10))
    return {
        "params": size,
        "hvps": hvps,
        "compile_s": compile_s,
        "call_s": call_s,
        "per_hvp_ms": 1e3 * call_s / hvps,
        "grad_ms": 1e3 * grad_s,
        "call_per_grad": call_s / grad_s,
        "sharpness": value,
    }


COLUMNS = (
    ("problem", "{name}"),
    ("params", "{params:,}"),
    ("HVPs", "{hvps}"),
    ("compile s", "{compile_s:.2f}"),
    ("call s", "{call_s:.3f}"),
    ("per HVP ms", "{per_hvp_ms:.2f}"),
    ("gradient ms", "{grad_ms:.2f}"),
    ("call / gradient", "{call_per_grad:.0f}"),
    ("λ_max", "{sharpness:.4g}"),
)


def table(rows: list[dict]) -> str:
    cells = [[head for head, _ in COLUMNS]]
    cells += [[form.format(**row) for _, form in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sharpness_cost", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the two small MLPs only")
    parser.add_argument("--batch", type=int, default=256, help="digits images per batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per problem")
    parser.add_argument("--compile-repeats", type=int, default=3, help="compiles per problem")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.compile_repeats < 1:
        parser.error("--batch, --repeats and --compile-repeats must be at least 1")

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {jax.default_backend()} "
        f"({jax.devices()[0].device_kind}); jax {jax.__version__}, "
        f"python {platform.python_version()}"
    )
    print(
        f"lrjax.sharpness at num_iterations={NUM_ITERATIONS}, float32, jitted; "
        f"batch of {args.batch} digits images; call and gradient: median of "
        f"{args.repeats} (gradient: of {max(args.repeats, 10)}) after a warm-up; compile: "
        f"median of {args.compile_repeats}, caches cleared\n"
    )
    batch = digits_batch(args.batch)
    rows = []
    for name, hidden in PROBLEMS.items():
        if args.quick and name not in QUICK:
            continue
        rows.append({"name": name, **measure(hidden, batch, args.repeats, args.compile_repeats)})
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
