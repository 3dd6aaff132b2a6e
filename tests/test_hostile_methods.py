"""Hostile inputs to every method, block and adapter: each either works as documented or
raises a clear error naming the function the user called (and, where it is listed in
``WHOLE_MESSAGES`` or ``REFUSED``, the whole message)."""

from __future__ import annotations

import inspect
import re

import chex
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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

# The whole message (a pattern) of some of the swept cases, by (owner, argument, value).
WHOLE_MESSAGES = {
    ("sgd", "learning_rate", -0.1): r"sgd: learning_rate must be finite and >= 0, got -0.1",
    ("sgd", "momentum", 1.5): r"sgd: momentum must be in \[0, 1\], got 1.5",
    ("adagrad", "lr_decay", -1.0): r"adagrad: lr_decay must be finite and >= 0",
    ("adagrad", "initial_accumulator_value", -1.0): (
        r"adagrad: initial_accumulator_value must be finite and >= 0, got -1.0"
    ),
    ("adadelta", "rho", 1.5): r"adadelta: rho must be in \[0, 1\], got 1.5",
    ("rmsprop", "decay", 1.0): r"rmsprop: decay must be in \[0, 1\), got 1.0",
    ("adam", "eps", NOT_A_NUMBER["nan"]): r"adam: eps must be finite in float32, got nan",
    ("adamw", "weight_decay", -0.01): r"adamw: weight_decay must be finite and >= 0",
    ("adam", "learning_rate", NOT_A_NUMBER["inf"]): (
        r"adam: learning_rate must be finite in float32, got inf"
    ),
    ("sgd_hd", "hyper_lr", -1.0): r"sgd_hd: hyper_lr must be finite and >= 0",
    ("reduce_on_plateau", "factor", 1.0): r"reduce_on_plateau: factor must be in \(0, 1\), got 1.0",
    ("reduce_on_plateau", "factor", 0.0): r"reduce_on_plateau: factor must be in \(0, 1\), got 0.0",
    ("reduce_on_plateau", "factor", -0.5): r"factor must be in \(0, 1\), got -0.5",
    (
        "reduce_on_plateau",
        "threshold",
        -1e-4,
    ): r"reduce_on_plateau: threshold must be finite and >= 0",
    ("reduce_on_plateau", "min_scale", 1.5): (
        r"reduce_on_plateau: min_scale must be in \[0, 1\], got 1.5"
    ),
    ("reduce_on_plateau", "patience", -1): (
        r"reduce_on_plateau: patience must be an integer >= 0, got -1"
    ),
}


def build(owner, **overrides):
    factory, valid, _ = CONSTRUCTORS[owner]
    return factory(**{**valid, **overrides})


def run(tx, params=None):
    params = {"w": jnp.linspace(-1.0, 1.0, 4), "b": jnp.array(0.5)} if params is None else params
    state = tx.init(params)
    updates, state = tx.update(params, state, params, value=jnp.asarray(1.0))
    return updates, state


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and isinstance(a, (int, float)) and a == b)


def assert_whole_message(owner: str, arg: str, value, message: str) -> None:
    """If ``WHOLE_MESSAGES`` lists this case, the message matches its pattern."""
    for (known_owner, known_arg, known_value), pattern in WHOLE_MESSAGES.items():
        if (known_owner, known_arg) == (owner, arg) and _same(known_value, value):
            assert re.search(pattern, message), message


PLATEAU_COUNTS = ["patience", "cooldown", "accumulation_steps"]
NOT_A_COUNT = ["3", True, 3.0, None, -1, 2**40, np.int64(2**31), jnp.asarray(3.0), np.array([3])]
_SWEPT = [
    *[(o, a, v) for o, a in FLOAT_CASES for v in [*NOT_A_NUMBER.values(), *OUT_OF_RANGE[a]]],
    *[("reduce_on_plateau", a, v) for a in PLATEAU_COUNTS for v in NOT_A_COUNT],
]
assert all(
    any(k[:2] == case[:2] and _same(k[2], case[2]) for case in _SWEPT) for k in WHOLE_MESSAGES
), "a whole message has no swept case"


@pytest.mark.parametrize(("owner", "arg"), FLOAT_CASES)
@pytest.mark.parametrize("kind", sorted(NOT_A_NUMBER))
def test_float_hyperparameters_refuse_what_is_not_a_finite_real_scalar(owner, arg, kind):
    with pytest.raises(ValueError, match=rf"^{owner}: {arg} must be") as info:
        build(owner, **{arg: NOT_A_NUMBER[kind]})
    assert_whole_message(owner, arg, NOT_A_NUMBER[kind], str(info.value))


@pytest.mark.parametrize(
    ("owner", "arg", "value"),
    [(owner, arg, value) for owner, arg in FLOAT_CASES for value in OUT_OF_RANGE[arg]],
)
def test_float_hyperparameters_refuse_values_out_of_range(owner, arg, value):
    with pytest.raises(ValueError, match=rf"^{owner}: {arg} must be .*, got {value}") as info:
        build(owner, **{arg: value})
    assert_whole_message(owner, arg, value, str(info.value))


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


@pytest.mark.parametrize("arg", PLATEAU_COUNTS)
@pytest.mark.parametrize("value", NOT_A_COUNT)
def test_plateau_counts_are_concrete_integers(arg, value):
    with pytest.raises(ValueError, match=rf"^reduce_on_plateau: {arg} must be") as info:
        lrjax.reduce_on_plateau(**{arg: value})
    assert_whole_message("reduce_on_plateau", arg, value, str(info.value))


@pytest.mark.parametrize("arg", PLATEAU_COUNTS)
@pytest.mark.parametrize("value", [np.int64(3), np.array(3), jnp.asarray(3)])
def test_plateau_counts_are_what_operator_index_accepts(arg, value):
    """A concrete 0-d integer array is a count, as Python's operator.index says."""
    state = lrjax.reduce_on_plateau(**{arg: value}).init(jnp.zeros(2))
    expected = lrjax.reduce_on_plateau(**{arg: 3}).init(jnp.zeros(2))
    chex.assert_trees_all_equal(state, expected)


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


# Refusals with their whole message (a pattern), for values and combinations the sweeps
# above do not make.
REFUSED = [
    (lambda: lrjax.sgd(0.1, nesterov=True), r"sgd: nesterov requires momentum > 0"),
    (
        lambda: lrjax.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True),
        r"sgd: nesterov requires momentum > 0 and dampening 0",
    ),
    (lambda: lrjax.sgd(0.1, weight_decay=-1.0), r"sgd: weight_decay must be finite and >= 0"),
    (lambda: lrjax.adagrad(0.1, eps=-1e-10), r"adagrad: eps must be finite and >= 0"),
    (lambda: lrjax.adam(b1=1.5), r"adam: b1 must be in \[0, 1\), got 1.5"),
    (lambda: lrjax.adam(b2=-0.1), r"adam: b2 must be in \[0, 1\), got -0.1"),
    (lambda: lrjax.adam(jnp.array([0.1, -0.1])), r"adam: learning_rate must be a real number"),
    (
        lambda: lrjax.hypergradient(optax.identity(), lambda t: 0.1, 1e-3),
        "learning_rate must be a number or an array",
    ),
    (
        lambda: lrjax.reduce_on_plateau(cooldown=-2),
        r"reduce_on_plateau: cooldown must be an integer >= 0, got -2",
    ),
    (
        lambda: lrjax.reduce_on_plateau(mode="minimum"),
        r"reduce_on_plateau: mode must be one of 'min', 'max', got 'minimum'",
    ),
    (
        lambda: lrjax.reduce_on_plateau(threshold_mode="relative"),
        r"threshold_mode must be one of 'rel', 'abs'",
    ),
    (
        lambda: lrjax.reduce_on_plateau(accumulation_steps=0),
        r"accumulation_steps must be an integer >= 1, got 0",
    ),
    (
        lambda: lrjax.reduce_on_plateau(patience=2.5),
        r"patience must be a concrete integer >= 0, got 2.5",
    ),
]


@pytest.mark.parametrize(("call", "message"), REFUSED)
def test_refused_with_the_whole_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


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


# ------------------------------------------------------------- set_hyperparams

TREE = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -0.25])}


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
