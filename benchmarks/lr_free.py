"""The learning-rate-free methods against a tuned Adam, and against optax.contrib's versions.

    python -m benchmarks.lr_free                   # the full benchmark (several minutes)
    python -m benchmarks.lr_free --quick           # tiny sizes: a smoke test
    python -m benchmarks.lr_free --markdown PATH   # also write the tables as Markdown

Quality: scikit-learn's digits (8×8 images, 1437 training and 360 test images, split once
with a fixed seed), an MLP 64-128-10 (ReLU), 300 steps, full batch and minibatches of 128,
5 seeds (initialisation and batch order). Each learning-rate-free method runs at its
defaults; Adam runs on a 5-point grid of rates (1e-4 … 1e-2, the best point chosen by
mean test accuracy, which favours Adam) and at the range test's suggestion
(``lrjax.find_learning_rate`` on the first seed's minibatches). Reported: the final
training loss (on the whole training set) and the test accuracy, mean ± spread (half the
range) over the seeds; for the schedule-free methods at their evaluation parameters (x).

Speed: each method's jitted, donated update step on 1M parameters in 10 leaves against
optax.contrib's version of the same method at the same hyperparameters, timed in rounds
of A B B A order; the ratio is the median over rounds of (A + A) / (B + B), and optax
against itself, measured the same way, is the noise floor.

Nothing here asserts: it measures and reports.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

if __package__ in (None, ""):  # run as `python benchmarks/lr_free.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lrjax

SEEDS = 5
ADAM_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)

# Each method at its defaults: lrjax's, and optax.contrib's version of it where one exists
# (at the same hyperparameters: the reference's defaults, where they differ from optax's).
METHODS: dict[str, Callable[[], optax.GradientTransformation]] = {
    "schedule_free_adamw": lambda: lrjax.schedule_free_adamw(),
    "schedule_free_sgd": lambda: lrjax.schedule_free_sgd(),
    "prodigy": lambda: lrjax.prodigy(),
    "dadapt_adam": lambda: lrjax.dadapt_adam(),
    "dadapt_sgd": lambda: lrjax.dadapt_sgd(),
    "dog": lambda: lrjax.dog(),
    "dog (layerwise: L-DoG)": lambda: lrjax.dog(layerwise=True),
}
OPTAX: dict[str, Callable[[], optax.GradientTransformation]] = {
    "schedule_free_adamw": lambda: optax.contrib.schedule_free_adamw(),
    "schedule_free_sgd": lambda: optax.contrib.schedule_free_sgd(),
    "prodigy": lambda: optax.contrib.prodigy(),
    "dadapt_adam": lambda: optax.contrib.dadapt_adamw(),
    "dog": lambda: optax.contrib.dog(),
}
SCHEDULE_FREE = ("schedule_free_adamw", "schedule_free_sgd")


# ------------------------------------------------------------------------------ data


def digits(quick: bool):
    """(x_train, y_train, x_test, y_test): the digits, split 80/20 with a fixed seed."""
    try:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
    except ImportError:  # pragma: no cover - depends on the environment
        rng = np.random.default_rng(0)
        x, y = rng.random((1797, 64)) * 16, rng.integers(0, 10, 1797)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    if quick:
        order = order[:300]
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


def init_params(key: jax.Array, hidden: int) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (64, hidden)) / 8.0,
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 10)) / np.sqrt(hidden),
        "b2": jnp.zeros(10),
    }


def logits(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def loss_fn(params, batch):
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def batch_indices(seed: int, steps: int, train_size: int, batch: int | None) -> np.ndarray:
    """Each step's training examples: all of them (full batch) or a shuffled minibatch."""
    if batch is None:
        return np.tile(np.arange(train_size), (steps, 1))
    rng = np.random.default_rng(1000 + seed)
    epochs = -(-steps * batch // train_size)
    order = np.concatenate([rng.permutation(train_size) for _ in range(epochs)])
    return order[: steps * batch].reshape(steps, batch)


# -------------------------------------------------------------------------- quality


def eval_params(name: str, state: Any, params: Any) -> Any:
    """The parameters a method is evaluated at (x for the schedule-free methods)."""
    return lrjax.schedule_free_eval_params(state, params) if name in SCHEDULE_FREE else params


def train(name: str, make: Callable[[], Any], data, steps: int, batch, hidden: int):
    """Every seed's final training loss, test accuracy and per-step learning rate."""
    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data)
    indices = jnp.asarray(
        np.stack([batch_indices(s, steps, len(x_train), batch) for s in range(SEEDS)])
    )

    @jax.jit
    def run(key, index):
        tx = make()
        params = init_params(key, hidden)

        def step(carry, i):
            params, state = carry
            grads = jax.grad(loss_fn)(params, (x_train[i], y_train[i]))
            updates, state = tx.update(grads, state, params)
            rate = lrjax.current_learning_rate(state)
            return (optax.apply_updates(params, updates), state), rate

        (params, state), rates = jax.lax.scan(step, (params, tx.init(params)), index)
        final = eval_params(name, state, params)
        loss = loss_fn(final, (x_train, y_train))
        accuracy = jnp.mean(jnp.argmax(logits(final, x_test), -1) == y_test)
        return loss, accuracy, rates

    keys = jax.random.split(jax.random.key(0), SEEDS)
    losses, accuracies, rates = [], [], []
    for seed in range(SEEDS):
        loss, accuracy, rate = run(keys[seed], indices[seed])
        losses.append(float(loss))
        accuracies.append(float(accuracy))
        rates.append(np.asarray(rate, np.float64))
    return np.array(losses), np.array(accuracies), np.stack(rates)


def range_test_rate(data, steps: int, batch: int, hidden: int) -> float:
    """The range test's suggestion for Adam on the first seed's minibatches."""
    x_train, y_train, _, _ = data
    index = batch_indices(0, 100, len(x_train), batch)
    params = init_params(jax.random.split(jax.random.key(0), SEEDS)[0], hidden)
    batches = (jnp.asarray(x_train[index]), jnp.asarray(y_train[index]))
    result = lrjax.find_learning_rate(loss_fn, params, batches, lrjax.adam, num_steps=100)
    return float(result.suggestion) if result.suggestion is not None else 1e-3


def quality(quick: bool) -> list[dict[str, Any]]:
    steps, hidden = (30, 16) if quick else (300, 128)
    data = digits(quick)
    suggestion = range_test_rate(data, steps, 32 if quick else 128, hidden)
    rows = []
    for setting, batch in (("full batch", None), ("minibatch 128", 32 if quick else 128)):
        for name, make in METHODS.items():
            loss, accuracy, rates = train(name, make, data, steps, batch, hidden)
            rows.append(_row(setting, name, loss, accuracy, rates))
        grid = []
        for rate in ADAM_GRID:
            loss, accuracy, rates = train("adam", lambda r=rate: lrjax.adam(r), data, steps,
                                          batch, hidden)  # fmt: skip
            grid.append(_row(setting, f"adam {rate:g}", loss, accuracy, rates))
        best = max(grid, key=lambda row: row["accuracy"])
        rows.append({**best, "method": f"adam, best of the grid ({best['method'][5:]})"})
        loss, accuracy, rates = train(
            "adam", lambda: lrjax.adam(suggestion), data, steps, batch, hidden
        )
        rows.append(_row(setting, f"adam at the range test's {suggestion:.2g}", loss, accuracy,
                         rates))  # fmt: skip
        rows.extend(grid)
    return rows


def _row(setting, method, loss, accuracy, rates) -> dict[str, Any]:
    final_rate = rates[:, -1]
    return {
        "setting": setting,
        "method": method,
        "loss": float(np.mean(loss)),
        "loss_spread": float(np.ptp(loss) / 2),
        "accuracy": float(np.mean(accuracy)),
        "accuracy_spread": float(np.ptp(accuracy) / 2),
        "final_rate": float(np.median(final_rate)),
        "rates": rates,
    }


# ---------------------------------------------------------------------------- speed


def _tree(size: int, leaves: int, seed: int) -> list[jax.Array]:
    keys = jax.random.split(jax.random.key(seed), leaves)
    return [jax.random.normal(key, (size // leaves,), jnp.float32) for key in keys]


def _stepper(tx: optax.GradientTransformation, size: int, leaves: int, steps: int):
    """A timed call: ``steps`` jitted, donated update+apply steps from a fresh state."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    params = _tree(size, leaves, 0)
    grads = _tree(size, leaves, 1)
    # optax.contrib's states share buffers with the params (donating both then fails):
    # fresh copies, as a user of it must make.
    carry = [params, jax.tree.map(lambda x: jnp.array(x, copy=True), tx.init(params))]
    carry[0], carry[1] = step(*carry, grads)  # compile
    jax.block_until_ready(carry)

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            carry[0], carry[1] = step(carry[0], carry[1], grads)
        jax.block_until_ready(carry)
        return time.perf_counter() - start

    return timed


def _paired(a: Callable[[], float], b: Callable[[], float], rounds: int) -> float:
    """Median over rounds of (a + a) / (b + b), in A B B A order."""
    ratios = []
    for _ in range(rounds):
        t1, t2, t3, t4 = a(), b(), b(), a()
        ratios.append((t1 + t4) / (t2 + t3))
    return float(statistics.median(ratios))


def speed(quick: bool, rounds: int) -> list[dict[str, Any]]:
    size, leaves, steps = (2**14, 10, 5) if quick else (2**20, 10, 20)
    rows = []
    for name, make_optax in OPTAX.items():
        ours = _stepper(METHODS[name](), size, leaves, steps)
        theirs = _stepper(make_optax(), size, leaves, steps)
        again = _stepper(make_optax(), size, leaves, steps)
        rows.append(
            {
                "method": name,
                "ratio": _paired(ours, theirs, rounds),
                "noise": _paired(again, theirs, rounds),
                "lrjax_ms": 1e3 * min(ours() for _ in range(3)) / steps,
                "optax_ms": 1e3 * min(theirs() for _ in range(3)) / steps,
            }
        )
    return rows


# --------------------------------------------------------------------------- report


def markdown(quality_rows, speed_rows, quick: bool) -> str:
    lines = [
        "## Learning-rate-free methods" + (" (quick)" if quick else ""),
        "",
        "Digits MLP 64-128-10, 300 steps, 5 seeds: final training loss and test accuracy,",
        "mean ± half the range over the seeds; the step size each method applied at the end",
        "(median over the seeds).",
        "",
    ]
    for setting in dict.fromkeys(row["setting"] for row in quality_rows):
        lines += [
            f"### {setting}",
            "",
            "| method | training loss | test accuracy (%) | final step size |",
            "|---|---|---|---|",
        ]
        for row in quality_rows:
            if row["setting"] != setting:
                continue
            lines.append(
                f"| {row['method']} | {row['loss']:.4f} ± {row['loss_spread']:.4f} "
                f"| {100 * row['accuracy']:.1f} ± {100 * row['accuracy_spread']:.1f} "
                f"| {row['final_rate']:.3g} |"
            )
        lines.append("")
    lines += [
        "### Step time against optax.contrib",
        "",
        "Update+apply step on 1M parameters in 10 leaves, jitted and donated; ratio = lrjax /",
        "optax.contrib, median of A B B A rounds; noise = optax against itself.",
        "",
        "| method | lrjax (ms) | optax.contrib (ms) | ratio | noise |",
        "|---|---|---|---|---|",
    ]
    for row in speed_rows:
        lines.append(
            f"| {row['method']} | {row['lrjax_ms']:.3f} | {row['optax_ms']:.3f} "
            f"| {row['ratio']:.2f} | {row['noise']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.lr_free",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown")
    args = parser.parse_args(argv)
    quality_rows = quality(args.quick)
    speed_rows = speed(args.quick, 2 if args.quick else args.rounds)
    text = markdown(quality_rows, speed_rows, args.quick)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
