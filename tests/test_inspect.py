"""Introspection: current_learning_rate and effective_learning_rates."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

PARAMS = {"w": jnp.ones((4, 3), jnp.float32), "b": jnp.zeros((3,), jnp.float32)}


def random_grads(seed, scale=1.0):
    key_w, key_b = jax.random.split(jax.random.key(seed))
    return {
        "w": scale * jax.random.normal(key_w, (4, 3)),
        "b": scale * jax.random.normal(key_b, (3,)),
    }


def run(tx, num_steps, scale=1.0):
    state = tx.init(PARAMS)
    for t in range(num_steps):
        updates, state = tx.update(random_grads(t, scale), state, PARAMS)
    return updates, state


# (method, the array the effective rate multiplies, read from the state after the update)
SELF_CONSISTENT = [
    (lambda: lrjax.adam(3e-3), lambda s, g: s[0].mu),
    (lambda: lrjax.adam(3e-3, amsgrad=True), lambda s, g: s[0].mu),
    (lambda: lrjax.adamw(3e-3, weight_decay=0.0), lambda s, g: s[0].mu),
    (lambda: lrjax.adagrad(0.1, lr_decay=0.05), lambda s, g: g),
    (lambda: lrjax.rmsprop(0.01), lambda s, g: g),
    (lambda: lrjax.rmsprop(0.01, centered=True), lambda s, g: g),
    (lambda: lrjax.sgd(0.1, momentum=0.9), lambda s, g: s[0].trace),
]


@pytest.mark.parametrize(("build", "direction"), SELF_CONSISTENT)
def test_effective_rates_reproduce_the_update(build, direction):
    """The last update is exactly −(effective rate) × (the (momentum) gradient)."""
    tx = build()
    _, state = run(tx, 7)
    grads = random_grads(7)
    updates, state = tx.update(grads, state, PARAMS)
    rates = lrjax.effective_learning_rates(state)
    expected = jax.tree.map(lambda r, d: -r * d, rates, direction(state, grads))
    chex.assert_trees_all_close(updates, expected, rtol=2e-6, atol=1e-9)


def test_rmsprop_momentum_rate_is_the_preconditioned_rate():
    """With momentum the rate on the raw gradient is η/(√E[g²] + ε); the buffer then
    accumulates (rate/η)·g, and the update is −η × buffer."""
    tx = lrjax.rmsprop(0.01, momentum=0.9)
    _, state = run(tx, 5)
    rates = lrjax.effective_learning_rates(state)
    expected = jax.tree.map(lambda v: 0.01 / (np.sqrt(v) + 1e-8), state[0].square_avg)
    chex.assert_trees_all_close(rates, expected, rtol=1e-6)
    grads = random_grads(5)
    updates, new_state = tx.update(grads, state, PARAMS)
    rates = lrjax.effective_learning_rates(new_state)
    trace = jax.tree.map(lambda b, r, g: 0.9 * b + r / 0.01 * g, state[1].trace, rates, grads)
    chex.assert_trees_all_close(new_state[1].trace, trace, rtol=1e-5)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda b: -0.01 * b, trace), rtol=1e-5)


def test_adadelta_effective_rate_formula():
    tx = lrjax.adadelta(0.5, rho=0.8, eps=1e-4)
    _, state = run(tx, 5)
    direction = state[0]
    expected = jax.tree.map(
        lambda v, u: 0.5 * np.sqrt(u + 1e-4) / np.sqrt(v + 1e-4),
        direction.square_avg,
        direction.acc_delta,
    )
    chex.assert_trees_all_close(lrjax.effective_learning_rates(state), expected, rtol=1e-6)


def test_adam_before_any_update_reports_the_first_step():
    state = lrjax.adam(1e-3).init(PARAMS)
    rates = lrjax.effective_learning_rates(state)
    # v = 0: the first step's factor is (η / (1 − β1)) / ε.
    chex.assert_trees_all_close(
        rates, jax.tree.map(lambda p: jnp.full_like(p, 1e-2 / 1e-8), PARAMS)
    )


def test_plain_sgd_needs_params_for_the_shape():
    state = lrjax.sgd(0.1).init(PARAMS)
    with pytest.raises(ValueError, match="pass params="):
        lrjax.effective_learning_rates(state)
    rates = lrjax.effective_learning_rates(state, PARAMS)
    chex.assert_trees_all_close(rates, jax.tree.map(lambda p: jnp.full_like(p, 0.1), PARAMS))


def test_adagrad_rates_shrink_while_rmsprop_and_adam_recover():
    """Large gradients, then small ones: Adagrad's rates never come back (its sum only
    grows); RMSprop's and Adam's running averages forget, and their rates rise again."""

    def history(tx):
        @jax.jit
        def step(state, t):
            scale = jnp.where(t < 50, 10.0, 0.1)
            _, state = tx.update(random_grads(t, scale), state, PARAMS)
            return state, jnp.mean(lrjax.effective_learning_rates(state)["w"])

        _, rates = jax.lax.scan(step, tx.init(PARAMS), jnp.arange(800))
        return np.asarray(rates)

    adagrad = history(lrjax.adagrad(0.1))
    rmsprop = history(lrjax.rmsprop(0.01))
    adam = history(lrjax.adam(0.001))
    assert np.all(np.diff(adagrad) <= 0)
    assert adagrad[-1] < 1.01 * adagrad[49]
    # RMSprop (α = 0.99) forgets within a few hundred steps; Adam (β2 = 0.999) more slowly.
    assert rmsprop[-1] > 10 * rmsprop[49]
    assert adam[-1] > 2 * adam[49]
    assert np.all(np.diff(rmsprop[100:]) > 0) and np.all(np.diff(adam[100:]) > 0)


def test_introspection_through_wrappers():
    schedule = lambda count: 0.1 / (1.0 + jnp.asarray(count, jnp.float32))
    tx = optax.MultiSteps(
        optax.chain(optax.clip_by_global_norm(1.0), lrjax.rmsprop(schedule)), every_k_schedule=2
    )
    state = tx.init(PARAMS)
    with jax.numpy_dtype_promotion("standard"):  # optax's MultiSteps divides by an int
        for t in range(4):
            _, state = tx.update(random_grads(t), state, PARAMS)
    # Two inner updates happened: the last one used schedule(1).
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.05)
    inner = state.inner_opt_state[1][0]
    expected = jax.tree.map(lambda v: 0.05 / (np.sqrt(v) + 1e-8), inner.square_avg)
    chex.assert_trees_all_close(lrjax.effective_learning_rates(state), expected, rtol=1e-6)

    injected = optax.inject_hyperparams(lrjax.adam)(learning_rate=0.02, b1=0.5)
    state = injected.init(PARAMS)
    _, state = injected.update(random_grads(0), state, PARAMS)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.02)
    direct = lrjax.adam(0.02, b1=0.5)
    _, direct_state = direct.update(random_grads(0), direct.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(
        lrjax.effective_learning_rates(state), lrjax.effective_learning_rates(direct_state)
    )
