"""optax's own tools on lrjax states: tree utilities, wrappers, bf16, x64."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax
import pytest
from helpers import ALL_METHODS, LR_FREE_NAMES, METHOD_NAMES, METHODS

import lrjax

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -0.25])}


def grads(t, like=PARAMS):
    return jax.tree.map(lambda p, q: jnp.cos(p * (t + 1.0)).astype(q.dtype), PARAMS, like)


def train(tx, state, params=PARAMS, steps=20, **extra):
    for t in range(steps):
        updates, state = tx.update(grads(t, params), state, params, **extra)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_tree_get_reads_the_one_learning_rate(name):
    state = METHODS[name](0.05).init(PARAMS)
    assert float(optax.tree.get(state, "learning_rate")) == pytest.approx(0.05)
    injected = optax.inject_hyperparams(lrjax.adam)(learning_rate=0.05).init(PARAMS)
    assert float(optax.tree.get(injected, "learning_rate")) == pytest.approx(0.05)
    chained = optax.chain(lrjax.adam(0.05), lrjax.reduce_on_plateau()).init(PARAMS)
    assert float(optax.tree.get(chained, "learning_rate")) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("name", "value", "build"),
    [
        ("b1", 0.3, lambda **kw: lrjax.adam(1e-2, **kw)),
        ("b2", 0.95, lambda **kw: lrjax.adam(1e-2, **kw)),
        ("decay", 0.5, lambda **kw: lrjax.rmsprop(1e-2, **kw)),
        ("rho", 0.6, lambda **kw: lrjax.adadelta(1.0, **kw)),
        ("momentum", 0.5, lambda **kw: lrjax.sgd(1e-2, **{"momentum": 0.9, **kw})),
        ("learning_rate", 0.2, lambda **kw: lrjax.adamw(**{"learning_rate": 1e-2, **kw})),
    ],
)
def test_tree_set_sets_exactly_what_it_names(name, value, build):
    """No hidden second copy: the run after optax.tree.set is the run built with the value."""
    state = optax.tree.set(build().init(PARAMS), **{name: value})
    params, _ = train(build(), state)
    expected, _ = train(build(**{name: value}), build(**{name: value}).init(PARAMS))
    chex.assert_trees_all_close(params, expected, rtol=1e-6, atol=1e-7)


def test_inject_hyperparams_holds_no_copies():
    """The injected rate is the one value of that name: the inner state copies nothing."""
    tx = optax.inject_hyperparams(lrjax.adam)(learning_rate=0.1, b1=0.8)
    state = tx.init(PARAMS)
    assert set(state.hyperparams) == {"learning_rate", "b1"}
    assert optax.tree.get(state, "b1") == state.hyperparams["b1"]
    assert optax.tree.get(state, "b2") is not None  # held by the inner adam
    _, state = train(tx, state, steps=2)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.1)
    rates = lrjax.effective_learning_rates(state)
    chex.assert_trees_all_equal_shapes(rates, PARAMS)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_inject_hyperparams_with_bf16_params(name):
    """inject_hyperparams casts what it injects to bf16; lrjax's defaults stay exact."""
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    injected = optax.inject_hyperparams(lambda learning_rate: METHODS[name](learning_rate))(
        learning_rate=1e-2
    )
    rate = float(jnp.asarray(1e-2, jnp.bfloat16))
    reference = METHODS[name](rate)
    got, _ = train(injected, injected.init(params), params, steps=5)
    expected, _ = train(reference, reference.init(params), params, steps=5)
    chex.assert_trees_all_equal(got, expected)


def test_inject_hyperparams_rounding_to_an_invalid_value_is_explained():
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    tx = optax.inject_hyperparams(lrjax.adam)(learning_rate=1e-3, b2=0.999)
    with pytest.raises(ValueError, match=r"adam: b2 must be in \[0, 1\), got 1.0 .*bfloat16"):
        tx.init(params)
    exact = optax.inject_hyperparams(lrjax.adam, hyperparam_dtype=jnp.float32)(b2=0.999)
    chex.assert_tree_all_finite(train(exact, exact.init(params), params, steps=2))


WRAPPERS = {
    "inject_hyperparams": lambda name: optax.inject_hyperparams(
        lambda learning_rate: ALL_METHODS[name](learning_rate)
    )(learning_rate=1e-2),
    "masked": lambda name: optax.masked(ALL_METHODS[name](1e-2), {"w": True, "b": False}),
    "apply_if_finite": lambda name: optax.apply_if_finite(ALL_METHODS[name](1e-2), 3),
    "partition": lambda name: optax.partition(
        {"all": ALL_METHODS[name](1e-2)}, {"w": "all", "b": "all"}
    ),
    "chain_plateau": lambda name: optax.chain(ALL_METHODS[name](1e-2), lrjax.reduce_on_plateau()),
}


# Wrappers that pass values into the method (inject_hyperparams casts them to float64)
# or multiply its rate meet every method; the others wrap all methods alike.
X64_CASES = [
    (name, wrapper)
    for wrapper in sorted(WRAPPERS)
    for name in (
        METHOD_NAMES + LR_FREE_NAMES
        if wrapper in ("inject_hyperparams", "chain_plateau")
        else ["sgd_nesterov", "adam_amsgrad", "rmsprop_centered", "prodigy", "dog"]
    )
]


@pytest.mark.parametrize(("name", "wrapper"), X64_CASES)
def test_x64_and_strict_promotion_through_every_wrapper(name, wrapper):
    """Strict promotion is on for the whole suite (conftest); here with float64 too."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
        tx = WRAPPERS[wrapper](name)
        state = tx.init(params)
        for t in range(2):
            g = jax.tree.map(lambda p, t=t: jnp.cos(p * (t + 1.0)), params)
            updates, state = tx.update(g, state, params, value=jnp.asarray(1.0))
            params = optax.apply_updates(params, updates)
        chex.assert_trees_all_equal_dtypes(updates, params)
        chex.assert_tree_all_finite(params)
        rate = float(lrjax.current_learning_rate(state))
        # A learning-rate-free method reports the step size it estimated.
        assert rate == pytest.approx(1e-2) if name in METHODS else 0 < rate < float("inf")


@pytest.mark.parametrize("name", ["sgd_dampening", "adagrad", "adam_amsgrad"])
def test_multisteps_under_x64(name):
    # optax's MultiSteps itself divides by an int: it needs standard promotion.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
        tx = optax.MultiSteps(METHODS[name](1e-2), 2)
        params, state = train(tx, tx.init(params), params, steps=4)
        chex.assert_tree_all_finite(params)
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(1e-2)


def test_donating_an_injected_bf16_state_runs():
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    tx = optax.inject_hyperparams(lrjax.adam)(learning_rate=1e-2)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    params, state = jax.tree.map(jnp.copy, params), tx.init(params)
    for _ in range(3):
        params, state = step(params, state)
    buffers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves((params, state))]
    assert len(buffers) == len(set(buffers))
