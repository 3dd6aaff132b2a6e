"""Schedule-free AdamW and SGD: the evaluation parameters (``schedule_free_eval_params``)
through optax's wrappers, and the state (parity with the reference is
``test_schedule_free``)."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import (
    ScheduleFreeAdamWState,
    ScheduleFreeSGDState,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)

TREE = {"enc": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.ones(2)}, "head": 0.5}


def _grads(t: int):
    return jax.tree.map(lambda p: jnp.cos(t + 3 * p) * (1 + p), TREE)


def _train(tx, steps=4, repeat=1, update=None) -> tuple[Any, Any, list[Any]]:
    """y and the evaluation parameters after each step (each gradient fed ``repeat``
    times, for optax.MultiSteps)."""
    params, state, xs = TREE, tx.init(TREE), []
    update = update or tx.update
    for t in range(steps):
        for _ in range(repeat):
            updates, state = update(_grads(t), state, params)
            params = optax.apply_updates(params, updates)
        xs.append(schedule_free_eval_params(state, params))
    return params, state, xs


def _x_by_formula(state, params, beta):
    return jax.tree.map(lambda y, z: (y - (1 - beta) * z) / beta, params, state.z)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda tx: tx,
        lambda tx: optax.chain(optax.identity(), tx),
        lambda tx: optax.chain(optax.scale(1.0), optax.chain(tx)),
    ],
    ids=["plain", "chain", "nested_chain"],
)
def test_eval_params_plain_and_chain(wrap):
    params, state, xs = _train(wrap(schedule_free_sgd(0.1, momentum=0.8, warmup_steps=2)))
    is_inner = lambda s: isinstance(s, ScheduleFreeSGDState)
    (inner,) = [s for s in jax.tree.leaves(state, is_leaf=is_inner) if is_inner(s)]
    chex.assert_trees_all_close(xs[-1], _x_by_formula(inner, params, 0.8), rtol=1e-6)
    _, _, expected = _train(schedule_free_sgd(0.1, momentum=0.8, warmup_steps=2))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_multi_steps():
    """MultiSteps averages k gradients; fed each gradient twice, it is the plain run."""
    tx = optax.MultiSteps(schedule_free_sgd(0.1, warmup_steps=2), every_k_schedule=2)
    compiled = jax.jit(tx.update)  # eager, its lax.cond would compile at every call

    def update(*args):
        with jax.numpy_dtype_promotion("standard"):  # optax's MultiSteps divides by an int
            return compiled(*args)

    _, _, xs = _train(tx, repeat=2, update=update)
    _, _, expected = _train(schedule_free_sgd(0.1, warmup_steps=2))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_inject_hyperparams():
    """b1 injected as an array (and warmup_steps static): the state records the β each
    update formed y with; with the defaults nothing needs to be static."""
    factory = optax.inject_hyperparams(schedule_free_adamw, static_args=("warmup_steps",))
    _, _, xs = _train(factory(learning_rate=0.05, b1=0.8, warmup_steps=3))
    _, _, expected = _train(schedule_free_adamw(0.05, b1=0.8, warmup_steps=3))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)
    _, _, xs = _train(optax.inject_hyperparams(schedule_free_sgd)(learning_rate=0.1), steps=2)
    _, _, expected = _train(schedule_free_sgd(0.1), steps=2)
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_under_vmap():
    """A sweep over b1 and the rate: β is a tracer the state does not hold as a
    hyperparameter, and the evaluation still has it."""

    def train(learning_rate, b1):
        tx = schedule_free_adamw(learning_rate, b1=b1)
        y, state = TREE, tx.init(TREE)
        for t in range(3):
            updates, state = tx.update(_grads(t), state, y)
            y = optax.apply_updates(y, updates)
        return schedule_free_eval_params(state, y)

    rates, betas = jnp.array([0.05, 0.01]), jnp.array([0.8, 0.95])
    swept = jax.jit(jax.vmap(train))(rates, betas)
    for i, (rate, beta) in enumerate(zip(rates, betas, strict=True)):
        row = jax.tree.map(lambda a, i=i: a[i], swept)
        chex.assert_trees_all_close(row, train(float(rate), float(beta)), rtol=1e-5)


def _alone(tx, pick):
    """x of ``tx`` trained by itself on the parameters ``pick`` selects from TREE."""
    params = pick(TREE)
    state = tx.init(params)
    for t in range(4):
        updates, state = tx.update(pick(_grads(t)), state, params)
        params = optax.apply_updates(params, updates)
    return schedule_free_eval_params(state, params)


def test_eval_params_partition():
    """Each group's x for its own parameters; a group that is not schedule-free keeps
    its parameters."""
    # A label naming a whole subtree (optax masks it with one MaskedNode).
    tx = optax.partition(
        {"adamw": schedule_free_adamw(0.05), "frozen": optax.set_to_zero()},
        {"enc": "adamw", "head": "frozen"},
    )
    x = _train(tx)[2][-1]
    chex.assert_trees_all_close(
        x["enc"], _alone(schedule_free_adamw(0.05), lambda t: t["enc"]), rtol=1e-6
    )
    assert x["head"] == TREE["head"]
    # Two schedule-free groups side by side within one subtree.
    sgd = schedule_free_sgd(0.1, momentum=0.7)
    tx = optax.partition(
        {"adamw": schedule_free_adamw(0.05), "sgd": sgd},
        {"enc": {"w": "adamw", "b": "sgd"}, "head": "sgd"},
    )
    x = _train(tx)[2][-1]
    alone = _alone(schedule_free_adamw(0.05), lambda t: t["enc"]["w"])
    chex.assert_trees_all_close(x["enc"]["w"], alone, rtol=1e-6)
    alone = _alone(sgd, lambda t: {"b": t["enc"]["b"], "head": t["head"]})
    chex.assert_trees_all_close({"b": x["enc"]["b"], "head": x["head"]}, alone, rtol=1e-6)


def test_eval_params_masked_jit_and_dtypes():
    """optax.masked: masked-out parameters are returned as they are; under jit; x keeps
    each parameter's dtype, complex parameters included."""
    params: Any = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.array([1.0 + 2.0j]), "c": jnp.ones(2)}
    tx = optax.masked(schedule_free_sgd(0.1), {"a": True, "b": True, "c": False})
    state: Any = tx.init(params)
    grads = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.array([0.5 - 1.0j]), "c": jnp.ones(2)}
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    x = jax.jit(schedule_free_eval_params)(state, params)
    chex.assert_trees_all_equal_dtypes(x, params)
    np.testing.assert_array_equal(x["c"], params["c"])  # not trained: as it is
    z = state.inner_state.z["b"]
    expected = (params["b"] - 0.1 * jax.lax.complex(z[..., 0], z[..., 1])) / 0.9
    np.testing.assert_allclose(np.asarray(x["b"]), np.asarray(expected), rtol=1e-6)


def test_eval_params_errors():
    params = {"w": jnp.ones(2)}
    with pytest.raises(
        ValueError, match="schedule_free_eval_params: opt_state holds no schedule-free"
    ):
        schedule_free_eval_params(optax.adam(1e-3).init(params), params)
    state = schedule_free_sgd().init(params)
    with pytest.raises(ValueError, match="schedule_free_eval_params: params do not match"):
        schedule_free_eval_params(state, {"w": jnp.ones(3)})
    with pytest.raises(ValueError, match="schedule_free_eval_params: params do not match"):
        schedule_free_eval_params(state, {"v": jnp.ones(2)})
    doubled = optax.chain(schedule_free_sgd(), schedule_free_sgd()).init(params)
    with pytest.raises(ValueError, match="several schedule-free states"):
        schedule_free_eval_params(doubled, params)


# ---------------------------------------------------------------------- the state


def test_state_fields_and_no_aliasing():
    params = {"w": jnp.arange(3.0), "b": jnp.ones((), jnp.bfloat16)}
    state: Any = jax.jit(schedule_free_adamw(weight_decay=0.1).init)(params)
    assert isinstance(state, ScheduleFreeAdamWState)
    z: Any = state.z
    assert z["w"].unsafe_buffer_pointer() != params["w"].unsafe_buffer_pointer()
    chex.assert_trees_all_equal(state.z, params)  # z starts at the parameters
    chex.assert_trees_all_equal_dtypes(state.z, params)
    assert state.count.dtype == jnp.int32 and state.weight_sum.dtype == jnp.float32
    assert state.interpolation == np.float32(0.9)  # the b1 of the first update
    assert set(state.hyperparams.values) == {
        "learning_rate",
        "b1",
        "b2",
        "eps",
        "weight_decay",
        "r",
        "weight_lr_power",
    }
    for tx in (schedule_free_adamw(), schedule_free_sgd(0.1)):  # eager: no shared buffers
        new = tx.update(params, tx.init(params), params)[1]
        buffers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(new)]
        assert len(set(buffers)) == len(buffers)
    sgd: Any = schedule_free_sgd().init(params)  # a held zero weight decay is left out
    assert "weight_decay" not in sgd.hyperparams.values
    with pytest.raises(ValueError, match="weight_decay"):
        lrjax.set_hyperparams(sgd, weight_decay=0.1)
