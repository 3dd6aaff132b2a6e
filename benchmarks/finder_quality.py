"""How good are the range test's suggestions? A measurement, not a test.

For an MLP (64-64-10) on scikit-learn's digits, several seeds and optimizers: run
``lrjax.find_learning_rate`` (100 steps), train 300 steps with each suggestion, and
compare the full-data loss with the best of a 13-point grid of rates (1e-3 … 10).
Prints, per rule, the median and worst ratio to the grid's best loss.

    python benchmarks/finder_quality.py [--seeds 6]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import lrjax
from lrjax._demo import mlp_init
from lrjax._demo import mlp_loss as loss

OPTIMIZERS = {
    "sgd": lrjax.sgd,
    "sgd+momentum": lambda lr: lrjax.sgd(lr, momentum=0.9),
    "rmsprop": lrjax.rmsprop,
    "adam": lrjax.adam,
}
GRID = np.logspace(-3, 1, 13)


def data():
    x, y = load_digits(return_X_y=True)
    return jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y, jnp.int32)


def init(seed: int):
    return mlp_init(seed, hidden=64)


def train(optimizer, rate, params, batches, everything) -> float:
    tx = optimizer(rate)

    def step(carry, batch):
        params, state = carry
        updates, state = tx.update(jax.grad(loss)(params, batch), state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), batches)
    value = float(loss(params, everything))
    return value if np.isfinite(value) else np.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    x, y = data()
    ratios: dict[str, list[float]] = {"steepest": [], "valley": [], "minimum": []}
    for seed in range(args.seeds):
        params = init(seed)
        index = np.random.default_rng(seed).integers(0, len(x), (300, 64))
        batches = (x[index], y[index])
        for name, optimizer in OPTIMIZERS.items():
            best = min(train(optimizer, rate, params, batches, (x, y)) for rate in GRID)
            result = lrjax.find_learning_rate(loss, params, batches, optimizer, num_steps=100)
            row = []
            for rule, rate in result.suggestions.items():
                value = train(optimizer, rate, params, batches, (x, y)) if rate else np.inf
                ratios[rule].append(value / best)
                row.append(f"{rule} {rate or float('nan'):.3g} ({value / best:.2f}x)")
            print(f"seed {seed} {name:<13} grid best {best:.4f}:  " + ",  ".join(row))
    print()
    for rule, values in ratios.items():
        values = np.asarray(values)
        print(
            f"{rule:<9} median {np.median(values):.2f}x  worst {np.max(values):.2f}x  "
            f"within 1.5x {np.mean(values < 1.5):.0%}  within 3x {np.mean(values < 3):.0%}"
        )


if __name__ == "__main__":
    main()
