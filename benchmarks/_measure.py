"""Contenders (one jitted, donated update+apply step each) and how they are measured.

Timings are paired: every round runs each contender once, in a shuffled order, and a
ratio is the median of the per-round ratios. On a shared machine
the load changes from second to second; a ratio taken within one round cancels most of it.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import re
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

# ------------------------------------------------------------------------------ data


def make_tree(size: int, leaves: int, seed: int) -> list[jax.Array]:
    """``leaves`` float32 vectors of ``size // leaves`` standard-normal values."""
    keys = jax.random.split(jax.random.key(seed), leaves)
    return [jax.random.normal(key, (size // leaves,), jnp.float32) for key in keys]


def model_shapes(width: int, blocks: int = 4) -> list[tuple[int, ...]]:
    """The parameter shapes of a GPT-style transformer of model width ``width``: token
    (32·width) and position (2·width) embeddings, ``blocks`` blocks of layer norms,
    attention and a 4·width MLP with biases, and a final layer norm. Its leaves come in
    nine shapes, repeated across blocks, as a model's do (XLA compiles one kernel per
    distinct computation, so equal leaves are cheaper to compile than distinct ones)."""
    d = width
    block = [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,)]
    block += [(d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    return [(32 * d, d), (2 * d, d), *(block * blocks), (d,), (d,)]


def make_model_tree(width: int, seed: int) -> list[jax.Array]:
    """Standard-normal float32 leaves of :func:`model_shapes`."""
    shapes = model_shapes(width)
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [
        jax.random.normal(key, shape, jnp.float32) for key, shape in zip(keys, shapes, strict=True)
    ]


def copy_tree(tree: Any) -> Any:
    """Fresh buffers: each contender donates (and so consumes) its own."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


# ------------------------------------------------------------------------ jax steps


def optimizer_step(tx: optax.GradientTransformation) -> Callable:
    """The training step a user writes: update, then ``optax.apply_updates``."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def streaming_step(params, state, grads):
    """Reads and writes what a method does (params and its state arrays), trivially."""
    return (
        jax.tree.map(jnp.add, params, grads),
        tuple(jax.tree.map(jnp.add, slot, grads) for slot in state),
    )


@dataclasses.dataclass
class Compiled:
    executable: Any
    seconds: float  # trace + lower + compile


def compile_step(step: Callable, params, state, grads) -> Compiled:
    """Compiles from scratch: a fresh function object misses jax's tracing caches."""

    def fresh(params, state, grads):
        return step(params, state, grads)

    jax.clear_caches()  # nothing traced or compiled before counts for this one
    start = time.perf_counter()
    lowered = jax.jit(fresh, donate_argnums=(0, 1)).lower(params, state, grads)
    executable = lowered.compile()
    return Compiled(executable, time.perf_counter() - start)


class JaxContender:
    """A compiled step with its own params and state, run in place (donated)."""

    def __init__(self, step: Callable, params, state, grads, compiled: Compiled | None = None):
        self.step_fn = step
        self.params, self.state, self.grads = copy_tree(params), state, grads
        self.compiled = compiled or compile_step(step, self.params, self.state, grads)

    def clone(self) -> JaxContender:
        """The same executable with its own copies of params and state."""
        state = copy_tree(self.state)
        return JaxContender(self.step_fn, self.params, state, self.grads, self.compiled)

    def recompile_seconds(self) -> float:
        return compile_step(self.step_fn, self.params, self.state, self.grads).seconds

    def __call__(self) -> None:
        self.params, self.state = self.compiled.executable(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))

    def memory(self) -> dict[str, float]:
        """Bytes beyond what donation allows, in units of the parameters' size."""
        stats = self.compiled.executable.memory_analysis()
        params_bytes = sum(x.nbytes for x in self.params)
        fresh_out = stats.output_size_in_bytes - stats.alias_size_in_bytes
        return {
            "temp_mib": stats.temp_size_in_bytes / 2**20,
            "extra": (stats.temp_size_in_bytes + fresh_out) / params_bytes,
        }

    def kernels_per_leaf(self) -> float:
        """Loop fusions over parameter-shaped arrays in the optimised HLO, per leaf."""
        text = self.compiled.executable.as_text()
        entry = text[text.index("\nENTRY") :]
        fusions = 0
        for shape in {tuple(leaf.shape) for leaf in self.params}:
            dims = ",".join(map(str, shape))
            fusions += len(re.findall(rf"= f32\[{dims}\][^=]* fusion\(", entry))
        return fusions / len(self.params)


def jax_contender(tx: optax.GradientTransformation, params, grads) -> JaxContender:
    params = copy_tree(params)
    return JaxContender(optimizer_step(tx), params, tx.init(params), grads)


def streaming_contender(slots: int, params, grads) -> JaxContender:
    state = tuple(copy_tree(params) for _ in range(slots))
    return JaxContender(streaming_step, params, state, grads)


# ---------------------------------------------------------------------------- torch


def torch_contender(class_name: str, kwargs: dict, fused: bool, params, grads):
    """``(step, variant)``: torch's fastest step for the method; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    tensors = [torch.from_numpy(np.array(p)).requires_grad_() for p in params]
    for tensor, g in zip(tensors, grads, strict=True):
        tensor.grad = torch.from_numpy(np.array(g))
    variant = {"fused": True} if fused else {"foreach": True}
    optimizer = getattr(torch.optim, class_name)(tensors, **kwargs, **variant)
    optimizer.step()  # allocates the state, outside the timed rounds
    return optimizer.step, next(iter(variant))


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return f"{torch.__version__} ({torch.get_num_threads()} threads)"


# --------------------------------------------------------------------------- timing


def interleave(contenders: dict[str, Callable[[], None]], rounds: int, warmup: int = 2):
    """Seconds per call of each contender, one list entry per round, and the minor page
    faults per call (a fresh temporary buffer faults in every page, on every call)."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    faults = dict.fromkeys(names, 0)
    order = random.Random(0)
    for _ in range(rounds):
        # a fresh order each round: no contender always follows the same one (a rotation
        # would, and running right after torch, or after a big kernel, is not neutral)
        for name in order.sample(names, len(names)):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - start)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return seconds, {name: count / rounds for name, count in faults.items()}


def paired_ratio(seconds: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b)."""
    if a not in seconds or b not in seconds:
        return float("nan")
    return statistics.median(x / y for x, y in zip(seconds[a], seconds[b], strict=True))


def median_ms(seconds: dict[str, list[float]], name: str) -> float:
    return statistics.median(seconds[name]) * 1e3 if name in seconds else float("nan")


def compile_seconds(contenders: dict[str, JaxContender], repeats: int) -> dict[str, list[float]]:
    """Trace + lower + compile of the jitted, donated step, JAX's caches cleared before
    each, in A B … B A order (the contenders forwards, then backwards). The build that
    made each contender is left out: the first one of a process also pays JAX's own
    warm-up."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(contenders[name].recompile_seconds())
    return times


# -------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    import jaxlib

    info = {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "torch": torch_version() or "not installed",
        "backend": f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "(unset)"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }
    return info
