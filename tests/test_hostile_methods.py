"""Hostile inputs to every method, block and adapter (SPEC §1): each either works as
documented or raises a clear error naming the function the user called."""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import METHOD_NAMES, METHODS, import_torch

import lrjax

# Every public constructor of a transformation, with a valid value for each of its float
# hyperparameters (as keywords) and its boolean flags.
CONSTRUCTORS = {
    "sgd": (
        lrjax.sgd,
        dict(learning_rate=0.1, momentum=0.9, dampening=0.1, weight_decay=0.1),
        ("nesterov",),
    ),
    "adagrad": (
        lrjax.adagrad,
        dict(
            learning_rate=0.1,
            lr_decay=0.1,
            weight_decay=0.1,
            initial_accumulator_value=0.1,
            eps=1e-10,
        ),
        (),
    ),
    "adadelta": (lrjax.adadelta, dict(learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.1), ()),
    "rmsprop": (
        lrjax.rmsprop,
        dict(learning_rate=0.1, decay=0.99, eps=1e-8, weight_decay=0.1, momentum=0.9),
        ("centered",),
    ),
    "adam": (
        lrjax.adam,
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1),
        ("amsgrad",),
    ),
    "adamw": (
        lrjax.adamw,
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1),
        ("amsgrad",),
    ),
    "scale_by_adam": (lrjax.scale_by_adam, dict(b1=0.9, b2=0.999, eps=1e-8), ("amsgrad",)),
    "scale_by_rms": (lrjax.scale_by_rms, dict(decay=0.9, eps=1e-8), ("centered",)),
    "scale_by_adagrad": (
        lrjax.scale_by_adagrad,
        dict(lr_decay=0.1, initial_accumulator_value=0.1, eps=1e-10),
        (),
    ),
    "scale_by_adadelta": (lrjax.scale_by_adadelta, dict(rho=0.9, eps=1e-6), ()),
    "scale_by_momentum": (
        lrjax.scale_by_momentum,
        dict(momentum=0.9, dampening=0.1),
        ("nesterov",),
    ),
    "add_decayed_weights": (lrjax.add_decayed_weights, dict(weight_decay=0.1), ()),
    "scale_by_learning_rate": (lrjax.scale_by_learning_rate, dict(learning_rate=0.1), ()),
    "sgd_hd": (lrjax.sgd_hd, dict(learning_rate=0.1, hyper_lr=1e-3), ()),
    "adam_hd": (
        lrjax.adam_hd,
        dict(learning_rate=0.1, hyper_lr=1e-7, b1=0.9, b2=0.999, eps=1e-8),
        (),
    ),
    "hypergradient": (
        lambda **kw: lrjax.hypergradient(optax.identity(), **kw),
        dict(learning_rate=0.1, hyper_lr=1e-3),
        (),
    ),
    "reduce_on_plateau": (
        lrjax.reduce_on_plateau,
        dict(factor=0.5, threshold=1e-4, min_scale=0.1),
        (),
    ),
}

# Values no float hyperparameter accepts, whatever its range.
NOT_A_NUMBER = {
    "str": "0.1",
    "bool": True,
    "np.bool_": np.True_,
    "None": None,
    "list": [0.1],
    "tuple": (0.1,),
    "complex": 0.1 + 0j,
    "np.complex": np.complex64(0.1),
    "1-D numpy": np.array([0.1]),
    "1-D jax": jnp.array([0.1]),
    "2-D numpy": np.ones((1, 1)),
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": -float("inf"),
    "float32 overflow": 1e39,
    "np.float64 overflow": np.float64(-1e39),
    "jax nan": jnp.asarray(jnp.nan),
    "bool array": jnp.asarray(True),
    "dict": {"value": 0.1},
}

# Values out of each rule's range.
OUT_OF_RANGE = {
    "learning_rate": (-0.1,),
    "b1": (1.0, -0.1),
    "b2": (1.0, 1.5),
    "decay": (1.0, -1e-3),
    "rho": (1.5, -0.1),
    "momentum": (1.5, -0.1),
    "dampening": (1.01, -0.1),
    "eps": (-1e-8,),
    "weight_decay": (-1e-2,),
    "lr_decay": (-1.0,),
    "initial_accumulator_value": (-1.0,),
    "hyper_lr": (-1.0,),
    "factor": (1.0, 0.0, -0.5),
    "threshold": (-1e-4,),
    "min_scale": (1.5, -0.1),
}

FLOAT_CASES = [(owner, arg) for owner, (_, valid, _) in CONSTRUCTORS.items() for arg in valid]


def build(owner, **overrides):
    factory, valid, _ = CONSTRUCTORS[owner]
    return factory(**{**valid, **overrides})


def run(tx, params=None):
    params = {"w": jnp.linspace(-1.0, 1.0, 4), "b": jnp.array(0.5)} if params is None else params
    state = tx.init(params)
    updates, state = tx.update(params, state, params, value=jnp.asarray(1.0))
    return updates, state


@pytest.mark.parametrize(("owner", "arg"), FLOAT_CASES)
@pytest.mark.parametrize("kind", sorted(NOT_A_NUMBER))
def test_float_hyperparameters_refuse_what_is_not_a_finite_real_scalar(owner, arg, kind):
    with pytest.raises(ValueError, match=rf"^{owner}: {arg} must be"):
        build(owner, **{arg: NOT_A_NUMBER[kind]})


@pytest.mark.parametrize(
    ("owner", "arg", "value"),
    [(owner, arg, value) for owner, arg in FLOAT_CASES for value in OUT_OF_RANGE[arg]],
)
def test_float_hyperparameters_refuse_values_out_of_range(owner, arg, value):
    with pytest.raises(ValueError, match=rf"^{owner}: {arg} must be .*, got {value}"):
        build(owner, **{arg: value})


@pytest.mark.parametrize(("owner", "arg"), FLOAT_CASES)
@pytest.mark.parametrize("kind", ["np.float32", "np.float64", "0-d numpy", "jax scalar", "int"])
def test_float_hyperparameters_take_every_kind_of_real_scalar(owner, arg, kind):
    value = CONSTRUCTORS[owner][1][arg]
    if kind == "int" and arg == "factor":
        pytest.skip("no integer lies in factor's range (0, 1)")
    converted = {
        "np.float32": np.float32(value),
        "np.float64": np.float64(value),
        "0-d numpy": np.array(value),
        "jax scalar": jnp.asarray(value, jnp.float32),
        "int": 1 if arg == "learning_rate" else 0,
    }[kind]
    updates, state = run(build(owner, **{arg: converted}))
    chex.assert_tree_all_finite((updates, state))


FLAG_CASES = [(owner, flag) for owner, (_, _, flags) in CONSTRUCTORS.items() for flag in flags]


@pytest.mark.parametrize(("owner", "flag"), FLAG_CASES)
@pytest.mark.parametrize("value", ["yes", 1, 0, None, 1.0, jnp.asarray(True)])
def test_flags_take_only_booleans(owner, flag, value):
    with pytest.raises(ValueError, match=rf"^{owner}: {flag} must be True or False"):
        build(owner, **{flag: value})


@pytest.mark.parametrize(("owner", "flag"), FLAG_CASES)
def test_flags_take_numpy_booleans(owner, flag):
    overrides = {flag: np.False_}
    chex.assert_tree_all_finite(run(build(owner, **overrides)))


@pytest.mark.parametrize("arg", ["patience", "cooldown", "accumulation_steps"])
@pytest.mark.parametrize(
    "value", ["3", True, 3.0, None, -1, 2**40, np.int64(2**31), jnp.asarray(3)]
)
def test_plateau_counts_are_concrete_integers(arg, value):
    with pytest.raises(ValueError, match=rf"^reduce_on_plateau: {arg} must be"):
        lrjax.reduce_on_plateau(**{arg: value})


@pytest.mark.parametrize("arg", ["mode", "threshold_mode"])
@pytest.mark.parametrize("value", ["MIN", None, 1, True, ["min"]])
def test_plateau_modes_are_one_of_the_names(arg, value):
    with pytest.raises(ValueError, match=rf"^reduce_on_plateau: {arg} must be one of"):
        lrjax.reduce_on_plateau(**{arg: value})


@pytest.mark.parametrize(
    "value", [jnp.ones(3), jnp.asarray(1 + 1j), jnp.asarray(True), "0.5", None]
)
def test_plateau_value_is_a_real_scalar(value):
    tx = lrjax.reduce_on_plateau()
    state = tx.init(jnp.zeros(2))
    with pytest.raises(
        ValueError, match=r"^reduce_on_plateau: (value must be a real scalar|update needs)"
    ):
        tx.update(jnp.ones(2), state, jnp.zeros(2), value=value)


@pytest.mark.parametrize("direction", [None, "adam", lrjax.adam, 0.1])
def test_hypergradient_direction_is_a_transformation(direction):
    with pytest.raises(ValueError, match=r"^hypergradient: direction must be an optax"):
        lrjax.hypergradient(direction, 0.1, 1e-3)


# ----------------------------------------------------------------- positional traps


@pytest.mark.parametrize("owner", sorted(CONSTRUCTORS))
def test_defaulted_arguments_are_keyword_only(owner):
    """A positional slip (optax's and torch's orders differ) is a TypeError."""
    if owner == "hypergradient":
        signature = inspect.signature(lrjax.hypergradient)
        assert all(p.default is inspect.Parameter.empty for p in signature.parameters.values())
        return
    factory = CONSTRUCTORS[owner][0]
    signature = inspect.signature(factory)
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    # The one value a rate or decay block is about stays positional, as optax's.
    assert positional in ([], ["learning_rate"], ["weight_decay"]), positional
    with pytest.raises(TypeError):
        factory(*([0.1] * (len(positional) + 1)))


def test_optax_positional_order_is_a_type_error():
    with pytest.raises(TypeError):
        lrjax.sgd(0.1, 0.9, True)  # optax's (learning_rate, momentum, nesterov)
    with pytest.raises(TypeError):
        lrjax.adam(1e-3, 0.9)


def test_numpy_arguments_are_copied():
    rate = np.array(0.1)
    tx = lrjax.sgd(rate)
    rate *= 10
    updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    chex.assert_trees_all_close(updates, -0.1 * jnp.ones(2))


def test_signatures_show_the_defaults_as_numbers():
    assert str(inspect.signature(lrjax.adam).parameters["b2"]).endswith("= 0.999")
    assert lrjax.adam.__kwdefaults__["b2"] == 0.999


# ------------------------------------------------------------------------ params

TREE = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -0.25])}


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


# ------------------------------------------------------------- set_hyperparams


@pytest.mark.parametrize("kind", sorted(NOT_A_NUMBER))
def test_set_hyperparams_refuses_what_is_not_a_number(kind):
    state = lrjax.adam(1e-3).init(TREE)
    with pytest.raises(ValueError, match=r"^set_hyperparams: b1 must be"):
        lrjax.set_hyperparams(state, b1=NOT_A_NUMBER[kind])


@pytest.mark.parametrize(("name", "value"), [("b1", 1.0), ("learning_rate", -1.0), ("eps", -1.0)])
def test_set_hyperparams_refuses_values_out_of_range(name, value):
    state = lrjax.adam(1e-3).init(TREE)
    with pytest.raises(ValueError, match=rf"^set_hyperparams: {name} must be"):
        lrjax.set_hyperparams(state, **{name: value})
