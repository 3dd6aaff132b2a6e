"""Parameter groups without torch: layerwise_decay's contract, scheduled hyperparameters,
masks, and introspection of optax.partition states."""

from __future__ import annotations

import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import schedules

PARAMS = {
    "embed": {"w": jnp.ones((3, 2))},
    "block": {"w": jnp.full((2, 2), 0.5, jnp.float32), "b": jnp.zeros(2)},
    "head": {"w": jnp.ones((2, 1)), "b": jnp.zeros(1)},
}
LAYERS = {"embed": 0, "block": 1, "head": 2}


def layer_of(path, leaf):
    return LAYERS[path[0].key]


def grads(seed):
    keys = iter(jax.random.split(jax.random.key(seed), 5))
    return jax.tree.map(lambda p: jax.random.normal(next(keys), p.shape), PARAMS)


VALID = dict(optimizer=lrjax.adamw, learning_rate=1e-3, decay=0.5, num_layers=2, layer_of=layer_of)


def build(**changes):
    arguments = {**VALID, **changes}
    optimizer, learning_rate = arguments.pop("optimizer"), arguments.pop("learning_rate")
    return lrjax.layerwise_decay(optimizer, learning_rate, **arguments)


# ------------------------------------------------------------------ bad arguments

NOT_A_NUMBER = ["0.5", True, np.bool_(False), None, [0.5], 1j, jnp.ones(2)]
BAD_ARGUMENTS = [
    *[("learning_rate", value) for value in [*NOT_A_NUMBER, math.nan, math.inf, -1e-3]],
    *[("decay", value) for value in [*NOT_A_NUMBER, math.nan, -math.inf, 0.0, -0.5, 1.5]],
    ("decay", schedules.constant(0.5)),  # one factor per layer, not a schedule
    *[("num_layers", value) for value in [2.0, True, None, "2", [2], 0, -1, 2**31]],
    *[("layer_of", value) for value in ["embed", None, 3, [0, 1, 2], LAYERS]],
    *[("optimizer", value) for value in ["adamw", None, 1e-3, lrjax.adamw(1e-3)]],
    ("learning_rate", lambda step: "not a rate"),
]


def _case_id(case: object) -> str:
    """repr, with memory addresses removed: the same id in every process (pytest-xdist)."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(case))


@pytest.mark.parametrize(("name", "value"), BAD_ARGUMENTS, ids=_case_id)
def test_bad_argument_names_the_helper_and_the_argument(name, value):
    with pytest.raises(ValueError, match=f"^layerwise_decay: {name}"):
        build(**{name: value})


def test_defaulted_and_structural_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        lrjax.layerwise_decay(lrjax.adamw, 1e-3, 0.5, 2, layer_of)  # type: ignore[misc]


@pytest.mark.parametrize("layer", [-1, 3, True, 1.0, "1", None, np.float32(1)], ids=repr)
def test_layer_of_out_of_range_is_refused_at_init(layer):
    tx = build(layer_of=lambda path, leaf: layer if path[0].key == "block" else 0)
    with pytest.raises(ValueError, match=r"layerwise_decay: layer_of must return an integer in "):
        tx.init(PARAMS)


def test_layer_read_from_traced_values_is_refused_with_a_hint():
    tx = build(layer_of=lambda path, leaf: jnp.argmax(leaf.ravel()))
    with pytest.raises(ValueError, match=r"a traced int32.*from the path"):
        jax.jit(tx.init)(PARAMS)


def test_factory_must_build_a_transformation():
    with pytest.raises(ValueError, match=r"layerwise_decay: optimizer\(learning_rate\) must"):
        build(optimizer=lambda lr: lr)


def test_a_lowest_rate_float32_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="layerwise_decay: the rate of layer 0"):
        build(decay=1e-3, num_layers=40, layer_of=lambda path, leaf: 0)


@pytest.mark.parametrize("mask", [[1, 0], "b", {"w": 1}, (0.5,)], ids=repr)
@pytest.mark.parametrize("method", ["sgd", "adam", "adamw", "rmsprop", "add_decayed_weights"])
def test_a_bad_mask_names_the_method(method, mask):
    with pytest.raises(ValueError, match=f"^{method}: mask must be "):
        getattr(lrjax, method)(0.1, mask=mask)


# ------------------------------------------------------------------ what it does


def test_each_layer_has_its_rate_and_trains_like_its_own_optimizer():
    """Layer k is the factory's optimizer at learning_rate · decay^(L − k)."""
    tx = build(optimizer=lambda lr: lrjax.adam(lr, b1=0.8))
    state = tx.init(PARAMS)
    rates = lrjax.current_learning_rate(state)
    assert {k: float(r) for k, r in rates.items()} == pytest.approx({0: 2.5e-4, 1: 5e-4, 2: 1e-3})
    for t in range(3):
        updates, state = tx.update(grads(t), state, PARAMS)
    effective = lrjax.effective_learning_rates(state)
    for name, layer in LAYERS.items():
        alone = lrjax.adam(1e-3 * 0.5 ** (2 - layer), b1=0.8)
        own = alone.init(PARAMS[name])
        for t in range(3):
            own_updates, own = alone.update(grads(t)[name], own, PARAMS[name])
        chex.assert_trees_all_close(updates[name], own_updates, rtol=1e-6)
        chex.assert_trees_all_close(effective[name], lrjax.effective_learning_rates(own), rtol=1e-6)


def test_a_schedule_as_the_rate_scales_every_layer():
    schedule = schedules.cosine_decay(1e-3, 10)
    tx = build(learning_rate=schedule)
    state = tx.init(PARAMS)
    for t in range(4):
        _, state = tx.update(grads(t), state, PARAMS)
    rates = lrjax.current_learning_rate(state)
    expected = {k: float(schedule(3)) * 0.5 ** (2 - k) for k in range(3)}
    assert {k: float(r) for k, r in rates.items()} == pytest.approx(expected, rel=1e-6)


def test_mask_as_a_tree_inside_the_layers():
    """A mask tree like the full parameters works in each layer's masked view."""
    no_bias = jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "w", PARAMS)
    tx = build(optimizer=lambda lr: lrjax.adamw(lr, weight_decay=0.5, mask=no_bias))
    zero = jax.tree.map(jnp.zeros_like, PARAMS)
    params = jax.tree.map(lambda p: p + 1.0, PARAMS)
    updates, _ = tx.update(zero, tx.init(params), params)
    # A zero gradient: only the decay moves the weights (−η_k·λ·θ); biases stay.
    assert float(jnp.abs(updates["head"]["b"]).max()) == 0.0
    chex.assert_trees_all_close(updates["head"]["w"], -1e-3 * 0.5 * params["head"]["w"])
    chex.assert_trees_all_close(updates["embed"]["w"], -2.5e-4 * 0.5 * params["embed"]["w"])


def test_jit_no_retrace_and_setting_one_groups_rate():
    tx = build()
    state = jax.jit(tx.init)(PARAMS)  # groups under a jitted init
    chex.assert_trees_all_close(state, tx.init(PARAMS))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    params, state = step(PARAMS, state, grads(0))
    # One group's rate, set without a retrace (set_hyperparams on the whole state would
    # give every layer the same rate).
    head = lrjax.set_hyperparams(state.inner_states[2], learning_rate=3e-3)
    state = state._replace(inner_states={**state.inner_states, 2: head})
    params, state = step(params, state, grads(1))
    rates = lrjax.current_learning_rate(state)
    assert float(rates[2]) == pytest.approx(3e-3) and float(rates[1]) == pytest.approx(5e-4)


def test_built_inside_vmap_over_rate_and_decay():
    def first_update(lr, decay):
        tx = build(optimizer=lrjax.sgd, learning_rate=lr, decay=decay)
        updates, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
        return updates["embed"]["w"][0, 0]

    out = jax.vmap(first_update)(jnp.array([1e-3, 2e-3]), jnp.array([0.5, 0.1]))
    np.testing.assert_allclose(out, [-1e-3 * 0.25, -2e-3 * 0.01], rtol=1e-6)


# ------------------------------------------------------ scheduled hyperparameters


SCHEDULED = [
    ("adamw", "weight_decay", dict(weight_decay=schedules.linear(0.1, 0.0, 10))),
    ("sgd", "momentum", dict(momentum=schedules.linear(0.9, 0.5, 10))),
    ("adam", "b1", dict(b1=schedules.linear(0.9, 0.5, 10))),
]


@pytest.mark.parametrize(("method", "name", "kwargs"), SCHEDULED, ids=lambda x: str(x)[:12])
def test_scheduled_value_is_readable_and_not_settable(method, name, kwargs):
    tx = getattr(lrjax, method)(1e-2, **kwargs)
    state = tx.init(PARAMS)
    schedule = kwargs[name]
    assert float(optax.tree.get(state, name)) == pytest.approx(float(schedule(0)))
    for t in range(3):
        _, state = tx.update(grads(t), state, PARAMS)
    # The value the most recent update used: schedule(2).
    assert float(optax.tree.get(state, name)) == pytest.approx(float(schedule(2)))
    with pytest.raises(ValueError, match=f"set_hyperparams: {name} is driven by a schedule"):
        lrjax.set_hyperparams(state, **{name: 0.5})


def test_scheduled_rate_of_a_layer_is_not_settable():
    state = build(learning_rate=schedules.cosine_decay(1e-3, 10)).init(PARAMS)
    with pytest.raises(ValueError, match="learning_rate is driven by a schedule"):
        lrjax.set_hyperparams(state, learning_rate=1e-3)


# ------------------------------------------------------- introspection of groups


def test_frozen_group_has_no_effective_rate():
    tx = optax.partition(
        {"train": lrjax.adam(1e-3), "frozen": optax.set_to_zero()},
        {"embed": "frozen", "block": "train", "head": "train"},
    )
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"groups \['frozen'\] hold no lrjax learning rate"):
        lrjax.effective_learning_rates(state)


def test_groups_labelled_by_a_prefix_tree_merge():
    """Labels that are a prefix of the parameters mask whole subtrees: the groups' trees
    differ in structure, and their rates still merge into one tree like the parameters."""
    tx = optax.partition(
        {"backbone": lrjax.adam(1e-4), "head": lrjax.rmsprop(1e-2)},
        {"embed": "backbone", "block": "backbone", "head": "head"},
    )
    state = jax.jit(tx.init)(PARAMS)
    _, state = tx.update(grads(0), state, PARAMS)
    rates = lrjax.effective_learning_rates(state)
    assert jax.tree.structure(rates) == jax.tree.structure(PARAMS)
    rms = state.inner_states["head"].inner_state[0].square_avg["head"]
    expected = jax.tree.map(lambda v: 1e-2 / (jnp.sqrt(v) + 1e-8), rms)
    chex.assert_trees_all_close(rates["head"], expected, rtol=1e-6)
    assert set(lrjax.current_learning_rate(state)) == {"backbone", "head"}


def test_plain_sgd_group_fills_with_params():
    tx = optax.partition(
        {"adam": lrjax.adam(1e-3), "sgd": lrjax.sgd(0.1)},
        {"embed": "sgd", "block": "adam", "head": "adam"},
    )
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match="pass params="):
        lrjax.effective_learning_rates(state)
    rates = lrjax.effective_learning_rates(state, PARAMS)
    chex.assert_trees_all_close(rates["embed"], {"w": jnp.full((3, 2), 0.1)})
    assert rates["head"]["w"].shape == (2, 1)
