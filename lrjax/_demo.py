"""The main job: a rate from the range test, a rate tuned within a budget, training with
warm-up + cosine at the tuned one, and plots of it all.

An MLP (64-128-10) on scikit-learn's bundled 8×8 digits: no download, two minutes at
most on a 2-core CPU.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax
from lrjax import schedules

PROG = "python -m lrjax demo"
BATCH_SIZE = 64
HIDDEN = 128
CHUNKS = 5  # progress lines per training run


class DemoError(Exception):
    """A problem the user can fix, reported as one line."""


def run(out: str, steps: int, seed: int) -> int:
    try:
        return _run(out, steps, seed)
    except DemoError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


def _run(out: str, steps: int, seed: int) -> int:
    if steps < 100:
        raise DemoError(f"--steps must be at least 100, got {steps}")
    if seed < 0:
        raise DemoError(f"--seed must be >= 0, got {seed}")
    plt = _pyplot()
    _prepare(out)
    data = _digits(seed)
    (x_train, _), (x_test, _) = data
    print(
        f"lrjax demo: MLP 64-{HIDDEN}-10 on scikit-learn's digits "
        f"({len(x_train)} train / {len(x_test)} test), {steps} steps of {BATCH_SIZE}"
    )
    params = mlp_init(seed)
    batches = _batches(data, steps, seed)
    loss_fn = mlp_loss

    # 1. The range test: the fast answer, from one short run.
    print("\n1. range test (Adam, rate from 1e-7 to 10 over 100 steps): the fast answer")
    started = time.perf_counter()
    finder = lrjax.find_learning_rate(loss_fn, params, _head(batches, 100), lrjax.adam)
    if finder.suggestion is None:
        raise DemoError(f"the range test found no descent to suggest a rate from: {finder.reason}")
    suggested = finder.suggestion
    stop = "" if not finder.diverged else f", stopped at {finder.divergence_learning_rate:.3g}"
    print(f"   suggestion {suggested:.3g}{stop}  [{time.perf_counter() - started:.1f}s]")

    # 2. The tuner: the thorough answer, full runs chosen by held-out loss.
    warmup_steps = steps // 10
    warm_cosine = lambda lr: schedules.warmup(
        schedules.cosine_decay(lr, steps - warmup_steps), warmup_steps
    )
    validation = _validation(data)
    print(
        f"\n2. tune_learning_rate: Adam with warm-up + cosine over {steps} steps, rates chosen "
        "by the loss on a held-out fifth of the training data: the thorough answer"
    )
    started = time.perf_counter()
    tuned = lrjax.tune_learning_rate(
        loss_fn,
        params,
        batches,
        lambda lr: lrjax.adam(warm_cosine(lr)),
        eval_fn=lambda p: mlp_loss(p, validation),
    )
    if tuned.learning_rate is None:
        raise DemoError("every rate the tuner tried diverged")
    rate = tuned.learning_rate
    for rung in tuned.rounds:
        shown = ", ".join(
            f"{r:.3g}: {'diverged' if not np.isfinite(v) else f'{v:.3f}'}"
            for r, v in zip(rung.learning_rates, rung.scores, strict=True)
        )
        print(f"   after {rung.steps:>4} steps  {shown}")
    print(
        f"   tuned rate {rate:.3g} ({tuned.steps_used} steps in all, "
        f"{tuned.steps_used / steps:.1f} runs' worth)  [{time.perf_counter() - started:.1f}s]"
    )
    print(
        f"   training uses the tuned rate: it was chosen by held-out loss after full runs of "
        f"this very protocol; the suggestion ({suggested:.3g}) comes from 100 steps at "
        "constant rates, a first guess"
    )

    # 3. Training with the tuned rate, and contrasts on the same budget.
    adagrad_finder = lrjax.find_learning_rate(loss_fn, params, _head(batches, 100), lrjax.adagrad)
    adagrad_rate = adagrad_finder.suggestion or 1e-2
    runs = [
        ("adam", "warm-up + cosine", rate, lambda: lrjax.adam(warm_cosine(rate))),
        ("adam", "warm-up + cosine", suggested, lambda: lrjax.adam(warm_cosine(suggested))),
        ("adam", "constant", rate, lambda: lrjax.adam(rate)),
        ("adagrad", "constant", adagrad_rate, lambda: lrjax.adagrad(adagrad_rate)),
    ]
    print(
        f"\n3. training ({steps} steps): the tuned rate, the suggestion, a constant rate, "
        "and Adagrad at its own range test's suggestion"
    )
    results = []
    for method, schedule, lr, build in runs:
        results.append(_train(f"{method} ({schedule}, {lr:.2g})", build(), params, batches, data))

    print("\n   method    schedule           rate       test accuracy   time")
    for (method, schedule, lr, _), result in zip(runs, results, strict=True):
        print(
            f"   {method:<9} {schedule:<18} {lr:<10.3g} {100 * result['accuracy']:>8.1f}%"
            f"        {result['seconds']:.1f}s"
        )

    roles = [" (tuned)", " (suggested)", "", " (its own range test)"]
    _plots(plt, out, finder, tuned, warm_cosine(rate), rate, steps, runs, results, roles)
    print(f"\nplots written to {os.path.abspath(out)}")
    return 0


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DemoError("the demo needs matplotlib: pip install -e '.[examples]'") from None
    return plt


def _prepare(out: str) -> None:
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".lrjax-write-test")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as error:
        raise DemoError(f"cannot write to --out {out!r}: {error.strerror or error}") from None


def _digits(seed: int):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DemoError("the demo needs scikit-learn: pip install -e '.[examples]'") from None
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int32)
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def mlp_init(seed: int, hidden: int = HIDDEN) -> dict[str, jax.Array]:
    """A 64 → hidden → 10 ReLU MLP for the 8×8 digits (also the tests' and benchmarks')."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {
        "w1": jax.random.normal(k1, (64, hidden)) * np.sqrt(2 / 64),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 10)) * np.sqrt(1 / hidden),
        "b2": jnp.zeros(10),
    }


def mlp_logits(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def mlp_loss(params, batch):
    """Mean cross-entropy of integer labels."""
    x, y = batch
    log_probs = jax.nn.log_softmax(mlp_logits(params, x))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def _validation(data):
    """The last fifth of the training split: what the tuner chooses by."""
    (x, y), _ = data
    cut = int(0.8 * len(x))
    return jnp.asarray(x[cut:]), jnp.asarray(y[cut:])


def _batches(data, steps: int, seed: int):
    (x, y), _ = data
    x, y = x[: int(0.8 * len(x))], y[: int(0.8 * len(y))]
    index = np.random.default_rng(seed + 1).integers(0, len(x), (steps, BATCH_SIZE))
    return jnp.asarray(x[index]), jnp.asarray(y[index])


def _head(batches, n: int):
    return jax.tree.map(lambda b: b[:n], batches)


def _accuracy(params, data) -> float:
    _, (x, y) = data
    return float(np.mean(np.argmax(np.asarray(mlp_logits(params, x)), axis=1) == y))


def _train(label: str, tx: optax.GradientTransformation, params, batches, data) -> dict[str, Any]:
    started = time.perf_counter()

    @jax.jit
    def chunk(params, state, batches):
        def step(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(mlp_loss)(params, batch)
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, state), losses = jax.lax.scan(step, (params, state), batches)
        return params, state, losses

    steps = len(batches[0])
    size = steps // CHUNKS
    state, losses = tx.init(params), []
    for i in range(CHUNKS):
        end = steps if i == CHUNKS - 1 else (i + 1) * size
        params, state, chunk_losses = chunk(params, state, _slice(batches, i * size, end))
        losses.append(np.asarray(chunk_losses))
        print(
            f"   {label:<28} step {end:>5}/{steps}  loss {float(np.mean(losses[-1][-20:])):.4f}"
            f"  test accuracy {100 * _accuracy(params, data):5.1f}%"
        )
    return {
        "losses": np.concatenate(losses),
        "accuracy": _accuracy(params, data),
        "seconds": time.perf_counter() - started,
    }


def _slice(batches, begin: int, end: int):
    return jax.tree.map(lambda b: b[begin:end], batches)


def _plots(
    plt, out, finder, tuned, schedule: Callable, rate: float, steps: int, runs, results, roles
):
    from lrjax import plotting

    def save(fig, name):
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    finder.plot(ax=ax)
    save(fig, "finder.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    tuned.plot(axes=axes)
    save(fig, "tune.png")

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    plotting.plot_schedules(
        {"warm-up + cosine": schedule, "constant": schedules.constant(rate)}, steps, ax=ax
    )
    ax.set_title(f"the learning rate of the Adam runs (peak {rate:.3g})")
    save(fig, "schedule.png")

    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    window = 20
    for (method, schedule_name, lr, _), result, role in zip(runs, results, roles, strict=True):
        smooth = np.convolve(result["losses"], np.ones(window) / window, mode="valid")
        label = f"{method}, {schedule_name}, {lr:.2g}{role}: {100 * result['accuracy']:.1f}%"
        ax.plot(np.arange(window - 1, len(result["losses"])), smooth, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss ({window}-step mean)")
    ax.set_title("training curves, test accuracy in the legend")
    ax.legend(fontsize="small")
    save(fig, "training.png")
