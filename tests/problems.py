"""Problems whose answers are known, shared by the finder, sweep and plotting tests, and
the noisy quadratic of the D-Adaptation tests."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _demo

# A quadratic with curvatures in [0.1, 10]: plain SGD is stable below 2 / 10 = 0.2.
CURVATURES = jnp.logspace(-1, 1, 20, dtype=jnp.float32)
STABLE_LIMIT = 2.0 / 10.0


def quadratic_loss(params, batch):
    """``½ Σ λ_i (θ_i − b_i)²``: the batch holds noisy targets around 0."""
    return 0.5 * jnp.sum(CURVATURES * jnp.square(params - batch))


def quadratic_batches(num_steps: int, noise: float = 0.05, seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(0.0, noise, (num_steps, 20)), jnp.float32)


QUADRATIC_START = jnp.ones(20, jnp.float32)


@functools.cache
def digits():
    """scikit-learn's 8×8 digits, scaled to [0, 1], split 1500 train / 297 test."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int32)
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


def mlp_init(seed: int = 0, hidden: int = 64):
    return _demo.mlp_init(seed, hidden)


mlp_logits, mlp_loss = _demo.mlp_logits, _demo.mlp_loss


def digits_batches(num_steps: int, batch_size: int = 64, seed: int = 0):
    (x, y), _ = digits()
    index = np.random.default_rng(seed).integers(0, len(x), (num_steps, batch_size))
    return jnp.asarray(x[index]), jnp.asarray(y[index])


def accuracy(params) -> float:
    _, (x, y) = digits()
    return float(np.mean(np.argmax(np.asarray(mlp_logits(params, x)), axis=1) == y))


# ------------------------------------------------------- D-Adaptation's noisy quadratic

SIGNED_SHAPES = {"kernel": (4, 3), "bias": (3,), "scale": ()}
# Gradient magnitudes differ per leaf: the sums that drive D-Adaptation's d mix them.
SIGNED_GRAD_SCALES = {"kernel": 1.0, "bias": 1e-2, "scale": 30.0}


class SignedQuadratic:
    """``g = scale · (a ⊙ (x − b) + noise_t)`` per leaf; x₀ and b share their signs, so
    the parameters stay away from zero (each starts and ends on the same side of it)."""

    def __init__(self, seed: int, num_steps: int = 200):
        rng = np.random.default_rng(seed)
        shapes = SIGNED_SHAPES
        signs = {k: rng.choice([-1.0, 1.0], s) for k, s in shapes.items()}
        self.x0 = {k: signs[k] * rng.uniform(1.0, 2.0, s) for k, s in shapes.items()}
        self.target = {k: signs[k] * rng.uniform(1.0, 2.0, s) for k, s in shapes.items()}
        self.curvature = {k: rng.uniform(0.5, 2.0, s) for k, s in shapes.items()}
        self.noise = [
            {k: 0.05 * rng.standard_normal(s) for k, s in shapes.items()} for _ in range(num_steps)
        ]

    def gradient(self, params: dict, t: int, dtype) -> dict:
        return {
            k: (
                SIGNED_GRAD_SCALES[k]
                * (
                    self.curvature[k] * (np.asarray(p, np.float64) - self.target[k])
                    + self.noise[t][k]
                )
            ).astype(dtype)
            for k, p in params.items()
        }
