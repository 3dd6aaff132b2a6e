"""The sweep case: K learning rates in one ``lrjax.sweep`` against the loop a user writes.

The loop (B) is what a user writes without ``lrjax.sweep``: ONE jitted training scan that
takes the rate as an argument (lrjax's hyperparameters live in the state, so it compiles
once), called K times; the other thing a user writes is that scan under ``jax.vmap`` over
the K rates, one ``jax.jit`` (C). The sweep (A) is ``lrjax.sweep`` of the same K rates. Both train
the digits-like MLP (64-128-10, batch 128, 300 steps, SGD with momentum 0.9).

- first call: each side with functions it has never seen, compile included (what a user
  waits for once);
- repeated call: paired rounds in A B B A order, the ratio of each round's sums, the
  median over rounds; an A A self-pair measured the same way is the noise floor.

``python -m benchmarks._sweep`` also measures K = 1, 4, 16, 64.
"""

from __future__ import annotations

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
    """The digits-like MLP: sklearn's 8×8 digits when available, else random inputs."""
    steps, batch, hidden = (10, 32, 16) if quick else (300, 128, 128)
    rng = np.random.default_rng(0)
    try:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    except ImportError:  # pragma: no cover - depends on the environment
        x = rng.random((1797, 64), np.float32)
        y = rng.integers(0, 10, 1797).astype(np.int32)
    index = rng.integers(0, len(x), (steps, batch))
    keys = jax.random.split(jax.random.key(0), 2)
    params = {
        "w1": jax.random.normal(keys[0], (64, hidden)) / 8.0,
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(keys[1], (hidden, 10)) / np.sqrt(hidden),
        "b2": jnp.zeros(10),
    }
    return params, (jnp.asarray(x[index]), jnp.asarray(y[index])), steps


def loss_fn(params, batch):
    x, y = batch
    hidden = jax.nn.relu(x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def optimizer(rate):
    return lrjax.sgd(rate, momentum=0.9)


def _loop_fn():
    """A fresh jitted training scan taking the rate as an argument (compiles on first use)."""

    def train(rate, params, batches):
        tx = optimizer(rate)

        def step(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        return jax.lax.scan(step, (params, tx.init(params)), batches)[1]

    return jax.jit(train)


def _sides(params, batches, rates, loss=loss_fn, train=None):
    train = train or _loop_fn()
    together = jax.jit(jax.vmap(train.__wrapped__, in_axes=(0, None, None)))
    stacked = jnp.asarray(rates, jnp.float32)

    def sweep():
        return lrjax.sweep(loss, params, batches, optimizer, learning_rates=rates).losses

    def loop():
        return np.stack([np.asarray(train(jnp.float32(r), params, batches)) for r in rates])

    def vmapped():
        return np.asarray(together(stacked, params, batches))

    return sweep, loop, vmapped


def _timed(function) -> tuple[float, Any]:
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def _paired(a, b, rounds: int) -> float:
    """Median over rounds of (a + a) / (b + b), timed in A B B A order."""
    ratios = []
    for _ in range(rounds):
        t1, _ = _timed(a)
        t2, _ = _timed(b)
        t3, _ = _timed(b)
        t4, _ = _timed(a)
        ratios.append((t1 + t4) / (t2 + t3))
    return float(np.median(ratios))


def measure(quick: bool, k: int, rounds: int) -> dict[str, Any]:
    params, batches, steps = _problem(quick)
    rates = list(np.geomspace(1e-3, 1.0, k))
    # First call: functions neither side has seen, so both compile.
    fresh_loss = lambda p, b: loss_fn(p, b)
    sweep, loop, vmapped = _sides(params, batches, rates, loss=fresh_loss)
    sweep_first, swept = _timed(sweep)
    loop_first, separate = _timed(loop)
    vmapped()  # compiles
    repeat = {
        "ratio": _paired(sweep, loop, rounds),
        "vmap_ratio": _paired(sweep, vmapped, rounds),
        "self": _paired(loop, loop, rounds),
        "sweep_s": min(_timed(sweep)[0] for _ in range(2)),
        "loop_s": min(_timed(loop)[0] for _ in range(2)),
        "vmap_s": min(_timed(vmapped)[0] for _ in range(2)),
    }
    return {
        "k": k,
        "steps": steps,
        "params": sum(x.size for x in jax.tree.leaves(params)),
        "first_sweep_s": sweep_first,
        "first_loop_s": loop_first,
        "first_ratio": sweep_first / loop_first,
        **repeat,
        "swept": np.asarray(swept),
        "separate": separate,
    }


def sweep_case(quick: bool) -> dict[str, Any]:
    """K=16: the repeated-call ratio (paired) and whether the loss curves agree."""
    found = measure(quick, K, rounds=1 if quick else 5)
    swept, separate = found.pop("swept"), found.pop("separate")
    # Only a bounded run is reproducible to rounding: past the edge of stability a run is
    # chaotic, and any change of float32 rounding moves its curve. Which runs are
    # bounded is read from the separate runs.
    bounded = np.all(np.isfinite(separate), axis=1)
    bounded &= np.max(np.where(bounded[:, None], separate, 0.0), axis=1) <= BOUND * separate[:, 0]
    close = np.all(np.isclose(swept, separate, rtol=1e-4, atol=1e-6), axis=1)
    return {
        **found,
        "separate_s": found["loop_s"],
        "matching": int(np.sum(close & bounded)),
        "bounded": int(bounded.sum()),
        "bound": BOUND,
        "diverged": int(np.sum(~np.all(np.isfinite(swept), axis=1))),
    }


def main() -> None:
    print(f"backend {jax.default_backend()}, {jax.device_count()} device(s)")
    print(
        "| K | first call sweep / loop (s) | ratio | repeated sweep / loop / vmap (s) | "
        "vs loop | vs vmap | A A |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for k in (1, 4, 16, 64):
        m = measure(False, k, rounds=3 if k == 64 else 5)
        print(
            f"| {k} | {m['first_sweep_s']:.2f} / {m['first_loop_s']:.2f} | "
            f"{m['first_ratio']:.2f} | {m['sweep_s']:.2f} / {m['loop_s']:.2f} / "
            f"{m['vmap_s']:.2f} | {m['ratio']:.2f} | {m['vmap_ratio']:.2f} | {m['self']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
