"""The tasks that decide which rate is right: bundled data, full training protocols.

Each task is a model, data that needs no download (scikit-learn's bundled digits, the
Python standard library's own source as text, a generated regression), a held-out
``eval_fn``, and for each
of two optimizers (``"adamw"``: AdamW with clipping and a no-decay mask; ``"sgdm"``: SGD
with momentum 0.9) a protocol: linear warm-up over the first tenth of the steps, then a
cosine decay to zero, built from the peak rate. ``protocol.optimizer(peak)`` is what a
user trains with; ``protocol.bare(rate)`` is the same optimizer without the schedule, the
one a range test ramps.

    from benchmarks.tasks import TASKS
    task = TASKS["mlp"]()
    task.protocols["adamw"].optimizer(1e-3)
"""

from __future__ import annotations

import dataclasses
import functools
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax
from lrjax import schedules

OPTIMIZERS = ("adamw", "sgdm")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one optimizer trains a task: ``optimizer(peak)`` with its schedule, and the
    same optimizer without the schedule (``bare(rate)``, for a range test)."""

    optimizer: Callable[[Any], optax.GradientTransformation]
    bare: Callable[[Any], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class Task:
    """A model, its data, its held-out score and its protocols."""

    name: str
    kind: str
    init_fn: Callable[[jax.Array], Any]
    loss_fn: Callable[[Any, Any], jax.Array]
    eval_fn: Callable[[Any], jax.Array]
    batches: Any  # stacked: leading axis num_steps
    num_steps: int
    protocols: dict[str, Protocol]

    def params(self, seed: int) -> Any:
        return self.init_fn(jax.random.key(seed))


def _decays(params: Any) -> Any:
    """Weight decay on matrices and kernels only, not on biases, norms or embeddings' scale."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def _protocols(num_steps: int) -> dict[str, Protocol]:
    warmup = num_steps // 10

    def scheduled(peak: Any) -> Any:
        return schedules.warmup(schedules.cosine_decay(peak, num_steps - warmup), warmup)

    def adamw(rate: Any) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(1.0),
            lrjax.adamw(rate, weight_decay=0.01, mask=_decays),
        )

    def sgdm(rate: Any) -> optax.GradientTransformation:
        return lrjax.sgd(rate, momentum=0.9)

    return {
        "adamw": Protocol(lambda peak: adamw(scheduled(peak)), adamw),
        "sgdm": Protocol(lambda peak: sgdm(scheduled(peak)), sgdm),
    }


# -- data ---------------------------------------------------------------------------------


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int32)
    return x[:1500], y[:1500], x[1500:], y[1500:]


@functools.cache
def _teacher() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A generated regression: a fixed random two-layer teacher on 8 Gaussian inputs,
    plus noise (standard deviation 0.1); 2,000 training and 500 held-out points."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2500, 8))
    hidden = np.sin(x @ rng.normal(size=(8, 16)) / np.sqrt(8) * 2)
    y = hidden @ rng.normal(size=16) / 4 + 0.1 * rng.normal(size=2500)
    x, y = x.astype(np.float32), y.astype(np.float32)
    return x[:2000], y[:2000], x[2000:], y[2000:]


# Modules of the standard library whose source is the language model's text.
TEXT_MODULES = ("textwrap.py", "string.py", "shlex.py", "fnmatch.py", "bisect.py", "heapq.py")
VOCAB = 98  # printable ASCII, newline and tab as themselves, anything else as one id


@functools.cache
def _text() -> np.ndarray:
    root = Path(sysconfig.get_paths()["stdlib"])
    text = "".join((root / name).read_text(encoding="utf-8") for name in TEXT_MODULES)
    codes = np.frombuffer(text.encode("ascii", "replace"), np.uint8).astype(np.int32)
    ids = np.where((codes >= 32) & (codes < 127), codes - 30, 0)
    ids = np.where(codes == 10, 1, ids)
    return np.where(codes == 9, 97, ids).astype(np.int32)


def _draw(count: int, num_steps: int, batch_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, count, (num_steps, batch_size))


# -- models -------------------------------------------------------------------------------


def _dense(key: jax.Array, n_in: int, n_out: int) -> dict[str, jax.Array]:
    w = jax.random.normal(key, (n_in, n_out)) * jnp.sqrt(2.0 / n_in)
    return {"w": w, "b": jnp.zeros(n_out)}


def _mlp_init(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def _mlp(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _classifier(name, kind, init_fn, apply, num_steps=300, batch_size=64) -> Task:
    x, y, x_test, y_test = _digits()
    index = _draw(len(x), num_steps, batch_size)
    loss_fn = lambda params, batch: _cross_entropy(apply(params, batch[0]), batch[1])
    eval_fn = lambda params: _cross_entropy(apply(params, jnp.asarray(x_test)), y_test)
    batches = (jnp.asarray(x[index]), jnp.asarray(y[index]))
    return Task(name, kind, init_fn, loss_fn, eval_fn, batches, num_steps, _protocols(num_steps))


def logistic() -> Task:
    return _classifier(
        "logistic", "logistic regression, digits", lambda k: _mlp_init(k, (64, 10)), _mlp
    )


def mlp() -> Task:
    return _classifier("mlp", "MLP 64-64-10, digits", lambda k: _mlp_init(k, (64, 64, 10)), _mlp)


def _cnn_init(key: jax.Array) -> dict[str, Any]:
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "c1": jax.random.normal(k1, (3, 3, 1, 8)) * jnp.sqrt(2.0 / 9),
        "b1": jnp.zeros(8),
        "c2": jax.random.normal(k2, (3, 3, 8, 16)) * jnp.sqrt(2.0 / 72),
        "b2": jnp.zeros(16),
        "out": _dense(k3, 4 * 4 * 16, 10),
    }


def _conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """A 3×3 'same' convolution as one matrix product over patches (fast on CPU)."""
    _, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = [
        padded[:, i : i + h : stride, j : j + w : stride] for i in range(3) for j in range(3)
    ]
    return jnp.concatenate(patches, axis=-1) @ kernel.reshape(-1, kernel.shape[-1])


def _cnn(params: dict[str, Any], x: jax.Array) -> jax.Array:
    x = x.reshape(-1, 8, 8, 1)
    x = jax.nn.relu(_conv(x, params["c1"], 1) + params["b1"])
    x = jax.nn.relu(_conv(x, params["c2"], 2) + params["b2"])
    x = x.reshape(x.shape[0], -1)
    return x @ params["out"]["w"] + params["out"]["b"]


def cnn() -> Task:
    return _classifier("cnn", "CNN 8-16 conv, digits", _cnn_init, _cnn)


def autoencoder(num_steps: int = 300, batch_size: int = 64) -> Task:
    x, _, x_test, _ = _digits()
    index = _draw(len(x), num_steps, batch_size)
    init_fn = lambda k: _mlp_init(k, (64, 32, 8, 32, 64))
    loss_fn = lambda params, batch: jnp.mean((_mlp(params, batch) - batch) ** 2)
    eval_fn = lambda params: loss_fn(params, jnp.asarray(x_test))
    return Task(
        "autoencoder",
        "autoencoder 64-32-8-32-64, digits",
        init_fn,
        loss_fn,
        eval_fn,
        jnp.asarray(x[index]),
        num_steps,
        _protocols(num_steps),
    )


def regression(num_steps: int = 300, batch_size: int = 32) -> Task:
    x, y, x_test, y_test = _teacher()
    index = _draw(len(x), num_steps, batch_size)
    init_fn = lambda k: _mlp_init(k, (8, 64, 64, 1))
    loss_fn = lambda params, batch: jnp.mean((_mlp(params, batch[0])[:, 0] - batch[1]) ** 2)
    eval_fn = lambda params: loss_fn(params, (jnp.asarray(x_test), jnp.asarray(y_test)))
    batches = (jnp.asarray(x[index]), jnp.asarray(y[index]))
    return Task(
        "regression",
        "regression MLP 8-64-64-1, generated teacher",
        init_fn,
        loss_fn,
        eval_fn,
        batches,
        num_steps,
        _protocols(num_steps),
    )


# The character-level language model: one pre-norm transformer block.
WIDTH, HEADS, CONTEXT = 32, 2, 32


def _lm_init(key: jax.Array) -> dict[str, Any]:
    keys = jax.random.split(key, 6)
    scale = WIDTH**-0.5
    normal = lambda k, shape, s: jax.random.normal(k, shape) * s
    return {
        "embed": normal(keys[0], (VOCAB, WIDTH), 1.0),
        "position": normal(keys[1], (CONTEXT, WIDTH), 0.1),
        "qkv": normal(keys[2], (WIDTH, 3 * WIDTH), scale),
        "proj": normal(keys[3], (WIDTH, WIDTH), scale),
        "up": normal(keys[4], (WIDTH, 4 * WIDTH), scale),
        "down": normal(keys[5], (4 * WIDTH, WIDTH), (4 * WIDTH) ** -0.5),
        "norm1": jnp.ones(WIDTH),
        "norm2": jnp.ones(WIDTH),
        "norm3": jnp.ones(WIDTH),
    }


def _norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    x = x - x.mean(-1, keepdims=True)
    return x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + 1e-5) * scale


def _lm(params: dict[str, Any], tokens: jax.Array) -> jax.Array:
    n = tokens.shape[-1]
    x = params["embed"][tokens] + params["position"][:n]
    q, k, v = jnp.split(_norm(x, params["norm1"]) @ params["qkv"], 3, axis=-1)
    heads = lambda t: t.reshape(*t.shape[:-1], HEADS, WIDTH // HEADS).swapaxes(-2, -3)
    q, k, v = heads(q), heads(k), heads(v)
    logits = q @ k.swapaxes(-1, -2) / jnp.sqrt(WIDTH // HEADS)
    logits = jnp.where(jnp.tril(jnp.ones((n, n), bool)), logits, -1e9)
    mixed = (jax.nn.softmax(logits) @ v).swapaxes(-2, -3).reshape(*x.shape)
    x = x + mixed @ params["proj"]
    x = x + jax.nn.gelu(_norm(x, params["norm2"]) @ params["up"]) @ params["down"]
    return _norm(x, params["norm3"]) @ params["embed"].T


def language_model(num_steps: int = 300, batch_size: int = 16) -> Task:
    ids = _text()
    split = int(0.9 * len(ids))
    train, test = ids[:split], ids[split:]
    starts = _draw(split - CONTEXT - 1, num_steps, batch_size)
    windows = starts[..., None] + np.arange(CONTEXT + 1)
    test_starts = np.arange(0, len(test) - CONTEXT - 1, CONTEXT)[:256]
    held_out = jnp.asarray(test[test_starts[:, None] + np.arange(CONTEXT + 1)])

    def loss_fn(params: Any, batch: jax.Array) -> jax.Array:
        return _cross_entropy(_lm(params, batch[..., :-1]), batch[..., 1:])

    return Task(
        "lm",
        "char transformer LM (1 block, width 32), stdlib source",
        _lm_init,
        loss_fn,
        lambda params: loss_fn(params, held_out),
        jnp.asarray(train[windows]),
        num_steps,
        _protocols(num_steps),
    )


TASKS: dict[str, Callable[[], Task]] = {
    "logistic": logistic,
    "mlp": mlp,
    "cnn": cnn,
    "autoencoder": autoencoder,
    "lm": language_model,
    "regression": regression,
}
