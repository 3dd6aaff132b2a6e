"""D-Adaptation Adam and SGD without the reference: a zero first gradient, dtypes, jit
and the state (their parity with dadaptation 3.2 is ``test_dadapt``)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import SIGNED_SHAPES as SHAPES
from problems import SignedQuadratic as Problem

import lrjax
from lrjax import DAdaptAdamState, DAdaptSGDState, dadapt_adam, dadapt_sgd

FACTORIES = {"adam": dadapt_adam, "sgd": dadapt_sgd}


def jitted_update(tx):
    """A jitted ``(grads, state, params) -> (updates, state, new params)`` of ``tx``."""

    @jax.jit
    def update(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return updates, state, optax.apply_updates(params, updates)

    return update


# ----------------------------------------------------------------- zero gradients


def test_zero_first_gradient_moves_nothing():
    params = {k: jnp.ones(s) for k, s in SHAPES.items()}
    zeros = jax.tree.map(jnp.zeros_like, params)
    for kind, ours in (("adam", {}), ("sgd", {"momentum": 0.9})):
        tx = FACTORIES[kind](**ours)
        state = tx.init(params)
        update = jitted_update(tx)
        updates, new_state, _ = update(zeros, state, params)
        chex.assert_trees_all_equal(updates, zeros)
        assert int(new_state.k) == 0
        chex.assert_trees_all_equal(
            (new_state.d, new_state.numerator_weighted), (state.d, state.numerator_weighted)
        )
        # The next gradient is the first one: d starts to move, nothing is NaN.
        for _ in range(5):
            updates, new_state, _ = update(params, new_state, params)
            chex.assert_tree_all_finite((updates, new_state.d, new_state.numerator_weighted))
        assert float(new_state.d) > float(state.d)


# -------------------------------------------------------------------- dtypes, jit


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_bfloat16_params(kind):
    problem = Problem(0, 50)
    ours = {"learning_rate": 0.1} if kind == "adam" else {"learning_rate": 0.3, "momentum": 0.9}
    tx = FACTORIES[kind](**ours)
    results = {}
    update = jitted_update(tx)
    for dtype in (jnp.bfloat16, jnp.float32):
        params = {k: jnp.asarray(x, dtype) for k, x in problem.x0.items()}
        state = tx.init(params)
        for t in range(50):
            grads = problem.gradient(params, t, np.float32)
            grads = {k: jnp.asarray(g, dtype) for k, g in grads.items()}
            updates, state, params = update(grads, state, params)
            leaves = jax.tree.leaves((updates, params))
            assert all(leaf.dtype == dtype for leaf in leaves)
        assert state.d.dtype == state.numerator_weighted.dtype == jnp.float32
        assert state.step_size.dtype == jnp.float32
        chex.assert_tree_all_finite(params)
        results[dtype] = params
    assert float(results[jnp.float32]["kernel"].std()) > 0
    for k in SHAPES:
        np.testing.assert_allclose(
            np.asarray(results[jnp.bfloat16][k], np.float32),
            np.asarray(results[jnp.float32][k]),
            rtol=0.05,
        )


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_float64_state_under_x64(kind):
    with jax.enable_x64(True):
        state = FACTORIES[kind]().init({"a": jnp.zeros(2, jnp.float64), "b": jnp.zeros(2)})
        assert state.d.dtype == state.step_size.dtype == jnp.float64
        state = FACTORIES[kind]().init({"a": jnp.zeros(2, jnp.float32)})
        assert state.d.dtype == jnp.float32


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_jit_does_not_retrace_and_counters_saturate(kind):
    chex.clear_trace_counter()
    options = {"use_bias_correction": True} if kind == "adam" else {"momentum": 0.5}
    tx = FACTORIES[kind](weight_decay=0.01, **options)
    params = {k: jnp.ones(s) for k, s in SHAPES.items()}

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = tx.update(params, state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    for t in range(5):
        if t == 2:  # a new value of a held hyperparameter is data, not code
            state = lrjax.set_hyperparams(state, learning_rate=0.5, growth_rate=1.1)
        params, state = step(params, state)
    top = jnp.iinfo(jnp.int32).max
    state = state._replace(count=jnp.full_like(state.count, top), k=jnp.full_like(state.k, top))
    params, state = step(params, state)
    assert int(state.count) == int(state.k) == top
    chex.assert_tree_all_finite((params, state.d, state.step_size))


def test_params_are_needed():
    grads = jnp.ones(2)
    for owner, tx in (("dadapt_sgd", dadapt_sgd()), ("dadapt_adam", dadapt_adam(weight_decay=0.1))):
        state = tx.init(grads)
        with pytest.raises(ValueError, match=f"{owner}: update needs params"):
            jax.eval_shape(tx.update, grads, state)
    tx = dadapt_adam()  # no decay: the parameters are not read
    updates, _ = jax.eval_shape(tx.update, grads, tx.init(grads))
    assert updates.shape == grads.shape


# ---------------------------------------------------------------------- the state


def test_state_is_settable_by_name():
    state = dadapt_adam(b2=0.99).init(jnp.zeros(2))
    assert float(optax.tree.get(state, "b2")) == pytest.approx(0.99)
    state = optax.tree.set(state, b1=0.5)
    assert float(optax.tree.get(state, "b1")) == 0.5
    state = lrjax.set_hyperparams(dadapt_sgd(momentum=0.5).init(jnp.zeros(2)), momentum=0.8)
    assert float(optax.tree.get(state, "momentum")) == pytest.approx(0.8)
    assert isinstance(state, DAdaptSGDState)
    assert isinstance(dadapt_adam().init(jnp.zeros(2)), DAdaptAdamState)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_keyword_only(kind):
    with pytest.raises(TypeError):
        FACTORIES[kind](1.0, 0.9)
