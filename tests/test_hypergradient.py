"""Hypergradient descent (Baydin et al., ICLR 2018): the paper's rule, and its claim."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import lrjax

SHAPES = {"w": (4, 3), "b": (3,)}


def gradient_sequence(num_steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # A drift makes consecutive gradients correlated, so α moves visibly.
    drift = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    return [
        {k: (drift[k] + 0.5 * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}
        for _ in range(num_steps)
    ]


def reference(grads, alpha0, beta, direction):
    """The paper's rule in float64: α_t = α_{t−1} + β g_t·d_{t−1}; u_t = −α_t d_t."""
    flat = [np.concatenate([g[k].astype(np.float64).ravel() for k in SHAPES]) for g in grads]
    alpha, previous, state = alpha0, np.zeros_like(flat[0]), None
    alphas, updates = [], []
    for g in flat:
        alpha = alpha + beta * float(g @ previous)
        d, state = direction(g, state)
        alphas.append(alpha)
        updates.append(-alpha * d)
        previous = d
    return np.array(alphas), np.array(updates)


def sgd_direction(g, state):
    return g, state


def adam_direction(b1, b2, eps):
    def direction(g, state):
        t, m, v = state if state is not None else (0, np.zeros_like(g), np.zeros_like(g))
        t, m, v = t + 1, b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        d = (m / (1 - b1**t)) / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
        return d, (t, m, v)

    return direction


def run(tx, grads):
    params = {k: jnp.zeros(s) for k, s in SHAPES.items()}
    state, alphas, updates = tx.init(params), [], []
    for g in grads:
        u, state = jax.jit(tx.update)(g, state, params)
        alphas.append(float(lrjax.current_learning_rate(state)))
        updates.append(np.concatenate([np.asarray(u[k]).ravel() for k in SHAPES]))
    return np.array(alphas), np.array(updates)


def test_sgd_hd_follows_the_rule_exactly():
    grads = gradient_sequence(6)
    alphas, updates = run(lrjax.sgd_hd(0.01, hyper_lr=0.003), grads)
    want_alphas, want_updates = reference(grads, 0.01, 0.003, sgd_direction)
    np.testing.assert_allclose(alphas, want_alphas, rtol=1e-6)
    np.testing.assert_allclose(updates, want_updates, rtol=1e-5, atol=1e-9)
    assert alphas[0] == pytest.approx(0.01)  # d_0 = 0: the first update uses α_0
    assert alphas[-1] > 0.02  # aligned gradients raised the rate


def test_adam_hd_follows_the_rule_exactly():
    grads = gradient_sequence(6, seed=1)
    b1, b2, eps = 0.8, 0.99, 1e-6
    tx = lrjax.adam_hd(1e-3, hyper_lr=1e-4, b1=b1, b2=b2, eps=eps)
    alphas, updates = run(tx, grads)
    want_alphas, want_updates = reference(grads, 1e-3, 1e-4, adam_direction(b1, b2, eps))
    np.testing.assert_allclose(alphas, want_alphas, rtol=1e-6)
    np.testing.assert_allclose(updates, want_updates, rtol=1e-5, atol=1e-10)


def test_any_direction_can_be_wrapped():
    grads = gradient_sequence(5, seed=2)
    tx = lrjax.hypergradient(lrjax.scale_by_rms(decay=0.9), learning_rate=0.01, hyper_lr=1e-3)

    def rms(g, state):
        v = (0.9 * state if state is not None else 0.0) + 0.1 * g * g
        return g / (np.sqrt(v) + 1e-8), v

    alphas, updates = run(tx, grads)
    want_alphas, want_updates = reference(grads, 0.01, 1e-3, rms)
    np.testing.assert_allclose(alphas, want_alphas, rtol=1e-6)
    np.testing.assert_allclose(updates, want_updates, rtol=1e-5, atol=1e-9)


def digits_problem():
    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x / 16.0, jnp.float32)
    labels = jax.nn.one_hot(y, 10)

    def loss(params):
        logits = x @ params["w"] + params["b"]
        return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits), axis=-1))

    return loss, {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}


def final_loss(tx, num_steps=300):
    loss, params = digits_problem()

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(step, (params, tx.init(params)), None, num_steps)
    return float(loss(params)), float(lrjax.current_learning_rate(state))


@pytest.mark.parametrize(
    ("fixed", "adaptive"),
    [
        # Full-batch SGD on this logistic regression does best near rate 1; start 100× lower.
        (lambda: lrjax.sgd(0.01), lambda: lrjax.sgd_hd(0.01, hyper_lr=0.01)),
        # Adam does best near 1e-2; start 100× lower.
        (lambda: lrjax.adam(1e-4), lambda: lrjax.adam_hd(1e-4, hyper_lr=1e-5)),
    ],
    ids=["sgd", "adam"],
)
def test_a_rate_100x_too_small_recovers(fixed, adaptive):
    """The paper's claim: HD makes up for a bad initial rate within the same budget."""
    fixed_loss, _ = final_loss(fixed())
    hd_loss, learned = final_loss(adaptive())
    assert hd_loss < 0.35 * fixed_loss
    assert learned > 10 * float(lrjax.current_learning_rate(fixed().init({"w": jnp.zeros(1)})))


def test_state_jit_and_vmap():
    tx = lrjax.adam_hd()
    params = {k: jnp.ones(s) for k, s in SHAPES.items()}
    state = tx.init(params)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(1e-3)
    assert float(state.hyperparams.values["hyper_lr"]) == pytest.approx(1e-7)
    step = jax.jit(tx.update)
    for g in gradient_sequence(3):
        _, state = step(g, state, params)
    chex.assert_tree_all_finite(state)
    # One run per initial rate, built inside vmap.
    rates = jnp.array([1e-3, 1e-2])
    alphas = jax.vmap(lambda a: run_scan(lrjax.sgd_hd(a, hyper_lr=1e-3)))(rates)
    assert alphas.shape == (2,)
    for a, got in zip(rates, alphas, strict=True):
        assert float(got) == pytest.approx(
            float(run_scan(lrjax.sgd_hd(float(a), hyper_lr=1e-3))), rel=1e-6
        )


def run_scan(tx):
    params = {k: jnp.zeros(s) for k, s in SHAPES.items()}
    grads = jax.tree.map(lambda *g: jnp.stack(g), *gradient_sequence(4))

    def step(state, g):
        _, state = tx.update(g, state, params)
        return state, None

    state, _ = jax.lax.scan(step, tx.init(params), grads)
    return lrjax.current_learning_rate(state)
