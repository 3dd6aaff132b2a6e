"""Hostile parameter trees for every method: integer and Python float leaves, empty, None
and zero-size leaves, mixed float dtypes, float64 under x64, complex parameters (pairs of
reals, as torch treats them), and the zero step of eps = 0 at a zero gradient. Hostile
arguments are in ``test_hostile_methods``."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import METHOD_NAMES, METHODS, import_torch

import lrjax


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_integer_parameters_are_refused(name, dtype):
    params = {"w": jnp.ones(3, dtype)}
    with pytest.raises(
        ValueError, match=r"parameters must be floating-point arrays, got .* at \['w'\]"
    ):
        METHODS[name](1e-2).init(params)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_python_float_leaves_work_as_arrays_do(name):
    tx = METHODS[name](1e-2)
    params = {"a": 1.0, "b": -2.0}
    arrays = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    updates, _ = tx.update(params, tx.init(params), params)
    expected, _ = tx.update(arrays, tx.init(arrays), arrays)
    chex.assert_trees_all_close(updates, expected)
    optax.apply_updates(params, updates)


@pytest.mark.parametrize("name", METHOD_NAMES)
@pytest.mark.parametrize(
    "params", [{}, (), {"w": None, "b": jnp.ones(2)}, {"z": jnp.zeros((0, 3))}]
)
def test_empty_none_and_zero_size_parameters(name, params):
    tx = METHODS[name](1e-2)
    updates, state = tx.update(params, tx.init(params), params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    chex.assert_trees_all_equal_shapes(updates, params)
    chex.assert_tree_all_finite(state)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_mixed_float_dtypes_keep_each_leaf_dtype(name):
    params = {
        "bf16": jnp.ones(3, jnp.bfloat16),
        "f16": jnp.ones(3, jnp.float16),
        "f32": jnp.ones(3, jnp.float32),
    }
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-4), params)  # f16: g² underflows
    tx = METHODS[name](1e-2)
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
    chex.assert_trees_all_equal_dtypes(updates, params)
    chex.assert_tree_all_finite(updates)
    # float16 state is kept in float32; the f16 update is the f32 one, rounded.
    f16_state = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(state)
        if jax.tree_util.keystr(path).endswith("['f16']")
    ]
    assert all(leaf.dtype == jnp.float32 for leaf in f16_state)
    chex.assert_trees_all_close(
        updates["f16"].astype(jnp.float32), updates["f32"], rtol=2e-3, atol=6e-8
    )  # 6e-8: float16's spacing below its smallest normal number


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_float64_mixed_with_float32_under_x64(name):
    with jax.enable_x64(True):
        params = {"f64": jnp.ones(3, jnp.float64), "f32": jnp.ones(3, jnp.float32)}
        tx = METHODS[name](1e-2)
        updates, _ = tx.update(params, tx.init(params), params)
        chex.assert_trees_all_equal_dtypes(updates, params)
        chex.assert_trees_all_close(updates["f32"], updates["f64"].astype(jnp.float32), rtol=1e-6)


@pytest.mark.parametrize(
    ("build_lrjax", "build_torch"),
    [
        (
            lambda: lrjax.sgd(0.1, momentum=0.9, nesterov=True),
            lambda t, q: t.optim.SGD([q], lr=0.1, momentum=0.9, nesterov=True),
        ),
        (
            lambda: lrjax.adagrad(0.1, lr_decay=0.01),
            lambda t, q: t.optim.Adagrad([q], lr=0.1, lr_decay=0.01),
        ),
        (lambda: lrjax.adadelta(1.0), lambda t, q: t.optim.Adadelta([q], lr=1.0)),
        (
            lambda: lrjax.rmsprop(0.01, centered=True, momentum=0.9),
            lambda t, q: t.optim.RMSprop([q], lr=0.01, centered=True, momentum=0.9),
        ),
        (
            lambda: lrjax.adam(0.01, amsgrad=True, weight_decay=0.1),
            lambda t, q: t.optim.Adam([q], lr=0.01, amsgrad=True, weight_decay=0.1),
        ),
        (lambda: lrjax.adamw(0.01), lambda t, q: t.optim.AdamW([q], lr=0.01)),
    ],
    ids=["sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamw"],
)
def test_complex_parameters_are_pairs_of_reals_as_in_torch(build_lrjax, build_torch):
    torch = import_torch()
    rng = np.random.default_rng(0)
    start = (rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))).astype(np.complex64)
    tx = build_lrjax()
    params, state = jnp.asarray(start), tx.init(jnp.asarray(start))
    reference = torch.tensor(start, requires_grad=True)
    optimizer = build_torch(torch, reference)
    for _ in range(100):
        grad = (rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))).astype(np.complex64)
        updates, state = tx.update(jnp.asarray(grad), state, params)
        params = optax.apply_updates(params, updates)
        reference.grad = torch.tensor(grad)
        optimizer.step()
    assert params.dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(params), reference.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "build_tx",
    [
        lambda: lrjax.adam(0.1, eps=0.0),
        lambda: lrjax.rmsprop(0.1, eps=0.0),
        lambda: lrjax.adagrad(0.1, eps=0.0),
        lambda: lrjax.adadelta(eps=0.0),
    ],
)
def test_zero_eps_and_a_zero_gradient_make_a_zero_step(build_tx):
    """torch returns NaN here (0/0); lrjax takes the limit ε → 0 of a zero gradient: 0."""
    tx = build_tx()
    params = jnp.array([1.0, 2.0])
    updates, state = tx.update(jnp.array([0.0, 1.0]), tx.init(params), params)
    assert float(updates[0]) == 0.0
    chex.assert_tree_all_finite((updates, state))
