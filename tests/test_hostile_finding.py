"""Hostile inputs to the range test and the sweep, argument by argument.

The contract: a wrong value raises ``ValueError`` whose message starts with the
function the user called and names the argument (and, where ``WHOLE_MESSAGES`` or
``REFUSED`` lists it, matches the whole message); a valid value of an unusual kind
(a NumPy scalar, a 0-d array, a JAX scalar, ``np.bool_``) gives exactly the result the
plain Python value gives; a loss that is NaN or infinite gives a result, never a crash.
Every call shares one tiny problem, so the range tests and sweeps compile once (the
refusals that depend on the data use the quadratic of ``problems``). The plots are in
``test_hostile_plots``.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest
from problems import QUADRATIC_START, quadratic_batches, quadratic_loss
from test_sweep_scale import BATCHES as BATCHES_40
from test_sweep_scale import held_out, init_fn

import lrjax

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def loss(w, x):
    """``mean((x·w − 2x)²)``: SGD on it is stable below 1."""
    return jnp.mean((x * w - 2.0 * x) ** 2)


PARAMS = jnp.zeros((), jnp.float32)
BATCHES = jnp.ones((10, 4), jnp.float32)
FINDER = dict(loss_fn=loss, params=PARAMS, batches=BATCHES, optimizer=lrjax.sgd, num_steps=10)
SWEEP = dict(loss_fn=loss, params=PARAMS, batches=BATCHES, optimizer=lrjax.sgd)
SWEEP.update(learning_rates=[0.1, 0.5])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def assert_refused(call, owner, argument, pattern=None):
    with pytest.raises(ValueError, match=f"^{re.escape(owner)}: ") as info:
        call()
    message = str(info.value)
    assert argument in message, message
    if pattern is not None:
        assert re.search(pattern, message), message
    return message


def whole_message(request, owner):
    """The pattern ``WHOLE_MESSAGES`` lists for this case of ``owner``, if any."""
    return WHOLE_MESSAGES.get((owner, request.node.callspec.id))


def cases(argument, values):
    return [pytest.param(argument, value, id=f"{argument}={key}") for key, value in values.items()]


# Never a float hyperparameter, whatever the argument.
NOT_A_NUMBER = {
    "str": "0.5",
    "bool": True,
    "np.bool_": np.bool_(True),
    "None": None,
    "list": [0.5],
    "complex": 0.5 + 0j,
    "1-D numpy": np.array([0.5]),
    "1-D jax": jnp.array([0.5]),
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "float32 overflow": 1e39,
}
# Never a structural integer.
NOT_AN_INTEGER = {
    "2**40": 2**40,
    "float": 3.0,
    "bool": True,
    "np.bool_": np.bool_(True),
    "None": None,
    "str": "10",
    "list": [10],
    "complex": 10 + 0j,
    "1-D numpy": np.array([10]),
    "negative": -1,
    "zero": 0,
}
NOT_A_FLAG = {"int": 1, "zero": 0, "None": None, "str": "yes", "float": 1.0, "list": [True]}
NOT_A_FLAG["1-D numpy"] = np.array([True])
NOT_A_MODE = {"unknown": "log", "empty": "", "upper": "LINEAR", "None": None, "int": 1}
NOT_A_MODE.update({"bool": True, "list": ["linear"]})

NOT_A_FACTORY = {
    "lrjax.adam(1e-3)": lrjax.adam(1e-3),
    "lrjax.sgd(0.1)": lrjax.sgd(0.1),
    "optax.sgd(0.1)": optax.sgd(0.1),
}
NOT_A_FUNCTION = {"None": None, "str": "adam", "int": 3, "list": [lrjax.adam]}
RETURNS_NO_TRANSFORMATION = {
    "None": lambda lr: None,
    "dict": lambda lr: {"init": None, "update": None},
    "the rate": lambda lr: lr,
}
BAD_LOSSES = {
    "tuple": lambda w, x: (loss(w, x), 0.0),
    "vector": lambda w, x: x * w,
    "int": lambda w, x: jnp.int32(1),
    "complex": lambda w, x: loss(w, x).astype(jnp.complex64),
}
BAD_PARAMS = {
    "None": None,
    "str": "w",
    "empty dict": {},
    "empty list": [],
    "int array": jnp.arange(3),
    "bool array": np.array([True]),
    "str leaf": {"w": "x"},
    "Python int": 3,
}
BAD_STACKED = {
    "scalar": jnp.ones(()),
    "zero length": jnp.ones((0, 4)),
    "different lengths": {"a": jnp.ones((10, 4)), "b": jnp.ones((9, 4))},
    "scalar leaf": (jnp.ones((10, 4)), 1.0),
    "empty dict": {},
    "empty tuple": (),
    "str array": {"x": np.array(["a"] * 10)},
}
BAD_BATCHES = dict(BAD_STACKED, **{"None": None, "str": "abc", "int": 3, "float": 3.0})
BAD_BATCHES.update({"empty list": [], "list of str": ["a"] * 10, "short list": [BATCHES[0]] * 3})

FUNCTION_CASES = [
    *cases("optimizer", NOT_A_FACTORY),
    *cases("optimizer", NOT_A_FUNCTION),
    *cases("optimizer", RETURNS_NO_TRANSFORMATION),
    *cases("loss_fn", NOT_A_FUNCTION | {"transformation": lrjax.sgd(0.1)}),
    *cases("loss_fn", BAD_LOSSES),
    *cases("params", BAD_PARAMS),
    *cases("batches", BAD_BATCHES),
]


# ------------------------------------------------------------------ find_learning_rate

FINDER_REFUSED = [
    *FUNCTION_CASES,
    *cases("min_lr", NOT_A_NUMBER | {"negative": -1e-3, "zero": 0.0, "subnormal": 1e-40}),
    *cases("min_lr", {"above max_lr": 20.0, "max_lr in float32": 10.0 - 1e-9}),
    *cases("min_lr", {"steps equal in float32": 10.0 - 1e-6}),
    *cases("max_lr", NOT_A_NUMBER | {"negative": -1.0, "zero": 0.0, "below min_lr": 1e-8}),
    *cases("num_steps", NOT_AN_INTEGER | {"one": 1, "more than the batches": 11}),
    *cases("mode", NOT_A_MODE),
    *cases("smoothing", NOT_A_NUMBER | {"negative": -0.1, "one": 1.0, "1 in float32": 1 - 1e-9}),
    *cases("divergence_threshold", NOT_A_NUMBER | {"negative": -1.0, "one": 1.0, "below": 0.5}),
    *cases("progress", NOT_A_FLAG),
    *cases("stable_rate", NOT_A_FLAG),
]


@pytest.mark.parametrize(("argument", "value"), FINDER_REFUSED)
def test_find_learning_rate_refuses(request, argument, value):
    kwargs = dict(FINDER, **{argument: value})
    owner = "find_learning_rate"
    call = lambda: lrjax.find_learning_rate(**kwargs)
    message = assert_refused(call, owner, argument, whole_message(request, owner))
    if value is NOT_A_FACTORY.get("lrjax.adam(1e-3)"):
        assert "factory" in message and "lrjax.adam" in message, message
    if value is NOT_A_NUMBER["float32 overflow"]:
        assert "1e+39" in message and "inf" not in message, message  # the value as given


# (argument, unusual kind, the plain Python value it stands for)
FINDER_ACCEPTED = [
    ("min_lr", np.float32(1e-3), float(np.float32(1e-3))),
    ("min_lr", np.float64(1e-3), 1e-3),
    ("min_lr", np.array(1e-3), 1e-3),
    ("min_lr", jnp.asarray(1e-3, jnp.float32), float(np.float32(1e-3))),
    ("max_lr", 10, 10.0),
    ("max_lr", np.int64(10), 10.0),
    ("smoothing", 0, 0.0),
    ("smoothing", np.float16(0.5), 0.5),
    ("divergence_threshold", np.int32(4), 4.0),
    ("divergence_threshold", jnp.asarray(3.0), 3.0),
    ("num_steps", np.int64(10), 10),
    ("num_steps", np.uint8(5), 5),
    ("mode", np.str_("linear"), "linear"),
    ("progress", np.bool_(False), False),
    ("params", np.zeros((), np.float32), PARAMS),
    ("params", 0.0, PARAMS),
    ("batches", np.ones((10, 4), np.float32), BATCHES),
    ("batches", list(BATCHES), BATCHES),
    ("batches", iter(np.asarray(BATCHES)), BATCHES),
    ("optimizer", lambda lr: lrjax.sgd(lr), lrjax.sgd),
    ("optimizer", optax.sgd, lrjax.sgd),
]


@pytest.mark.parametrize(("argument", "value", "plain"), FINDER_ACCEPTED)
@pytest.mark.filterwarnings("ignore:find_learning_rate. no suggestion.*:UserWarning")
def test_find_learning_rate_accepts(argument, value, plain):
    got = lrjax.find_learning_rate(**dict(FINDER, **{argument: value}))
    want = lrjax.find_learning_rate(**dict(FINDER, **{argument: plain}))
    np.testing.assert_array_equal(got.learning_rates, want.learning_rates)
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-6)
    assert got.divergence_step == want.divergence_step


@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_find_learning_rate_reports_a_loss_that_is_never_finite(value, stacked):
    """Not finite before any update: a bug in the loss, named, not a crash or a rate."""
    bad = lambda w, x: value * loss(w, x) + value
    batches = BATCHES if stacked else list(BATCHES)
    with pytest.raises(ValueError, match=f"loss_fn returned {value} at the first step"):
        lrjax.find_learning_rate(**dict(FINDER, loss_fn=bad, batches=batches))


@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
def test_find_learning_rate_stops_at_a_nan_in_a_batch(stacked):
    batches = np.array(BATCHES)
    batches[4, 1] = np.nan
    data = batches if stacked else list(batches)
    with pytest.warns(UserWarning, match="no suggestion: the curve has 4 finite points"):
        result = lrjax.find_learning_rate(**dict(FINDER, batches=data))
    assert result.diverged and result.divergence_step == 4
    assert len(result.losses) == 4 and np.all(np.isfinite(result.losses))


# ------------------------------------------------------------------ sweep

NOT_RATES = {
    "str": "0.1",
    "None": None,
    "scalar": 0.1,
    "bool": True,
    "complex": 0.1 + 0j,
    "0-d jax": jnp.asarray(0.1),
    "2-D array": np.array([[0.1]]),
    "empty": [],
    "set": {0.1},
    "generator": (r for r in [0.1]),
}
BAD_RATE = NOT_A_NUMBER | {"negative": -0.1, "zero": 0.0, "subnormal": 1e-46}
SWEEP_REFUSED = [
    *FUNCTION_CASES,
    *cases("learning_rates", NOT_RATES),
    *[
        pytest.param("learning_rates", [0.1, value], id=f"learning_rates=[0.1, {key}]")
        for key, value in BAD_RATE.items()
    ],
    *cases("num_steps", {k: x for k, x in NOT_AN_INTEGER.items() if x is not None}),
    *cases("num_steps", {"more than the batches": 11}),
    *cases("progress", NOT_A_FLAG),
    *cases("batch_size", {k: x for k, x in NOT_AN_INTEGER.items() if x is not None}),
    *cases("eval_every", {k: x for k, x in NOT_AN_INTEGER.items() if x is not None}),
    *cases("eval_every", {"without eval_fn": 5}),
    *cases("eval_fn", {k: x for k, x in NOT_A_FUNCTION.items() if x is not None}),
    *cases("init_fn", {k: x for k, x in NOT_A_FUNCTION.items() if x is not None}),
    *cases("seeds", {"without init_fn": [0]}),
    *cases("mesh", {"str": "cpu", "devices": jax.devices(), "int": 8}),
]
# The grid and the seeds, on a sweep given as hyperparams and init_fn.
GRID = {k: x for k, x in SWEEP.items() if k not in ("learning_rates", "params")}
GRID.update(hyperparams={"learning_rate": [0.1]}, init_fn=lambda key: PARAMS, seeds=[0])
GRID_REFUSED = [
    *cases("hyperparams", {**NOT_RATES, "dict of scalars": {"learning_rate": 0.1}}),
    *cases(
        "hyperparams", {"empty dict": {}, "int key": {1: [0.1]}, "key with space": {"a b": [1.0]}}
    ),
    *[
        pytest.param("hyperparams", {"learning_rate": [0.1, value]}, id=f"hyperparams=[0.1, {key}]")
        for key, value in BAD_RATE.items()
    ],
    *[
        pytest.param(
            "hyperparams", {"learning_rate": [0.1], "momentum": [value]}, id=f"momentum={key}"
        )
        for key, value in NOT_A_NUMBER.items()
    ],
    *cases("hyperparams", {"not an argument": {"learning_rate": [0.1], "betas": [0.9]}}),
    *cases("seeds", {**NOT_RATES, "duplicates": [1, 1], "negative": [-1], "2**40": [2**40]}),
    *cases("seeds", {"float": [1.0], "bool": [True]}),
    *cases("params", {"with init_fn": PARAMS}),
]


@pytest.mark.parametrize(("argument", "value"), GRID_REFUSED)
def test_sweep_refuses_in_a_grid(argument, value):
    kwargs = dict(GRID, **{argument: value})
    assert_refused(lambda: lrjax.sweep(**kwargs), "sweep", argument)


@pytest.mark.parametrize(("argument", "value"), SWEEP_REFUSED)
def test_sweep_refuses(request, argument, value):
    kwargs = dict(SWEEP, **{argument: value})
    message = assert_refused(
        lambda: lrjax.sweep(**kwargs), "sweep", argument, whole_message(request, "sweep")
    )
    if isinstance(value, list) and value[-1:] and value[-1] is NOT_A_NUMBER["float32 overflow"]:
        assert "1e+39" in message and "inf" not in message, message  # the value as given


# The whole message (a pattern) of some of the cases above, by (function, case id).
WHOLE_MESSAGES = {
    ("find_learning_rate", "min_lr=zero"): r"^find_learning_rate: min_lr must be > 0, got 0.0",
    ("find_learning_rate", "min_lr=subnormal"): (
        r"^find_learning_rate: min_lr must be at least 1.17"
    ),
    ("find_learning_rate", "num_steps=one"): (
        r"^find_learning_rate: num_steps must be an integer >= 2, got 1"
    ),
    ("find_learning_rate", "mode=unknown"): (
        r"^find_learning_rate: mode must be one of 'exponential', 'linear'"
    ),
    ("find_learning_rate", "smoothing=one"): (
        r"^find_learning_rate: smoothing must be in \[0, 1\), got 1.0"
    ),
    ("find_learning_rate", "smoothing=1 in float32"): (
        r"^find_learning_rate: smoothing must be < 1 in float32"
    ),
    ("find_learning_rate", "divergence_threshold=one"): (
        r"^find_learning_rate: divergence_threshold must be > 1"
    ),
    ("find_learning_rate", "progress=int"): (
        r"^find_learning_rate: progress must be True or False, got 1"
    ),
    ("sweep", "learning_rates=empty"): r"^sweep: learning_rates must hold at least one rate",
    ("sweep", "learning_rates=[0.1, negative]"): (
        r"^sweep: learning_rates\[1\] must be > 0, got -0.1"
    ),
    ("sweep", "learning_rates=scalar"): (
        r"^sweep: learning_rates must be a list, tuple or 1-D array"
    ),
    ("sweep", "num_steps=zero"): r"^sweep: num_steps must be an integer >= 1",
    ("sweep", "progress=int"): r"^sweep: progress must be True or False",
    ("sweep", "batches=empty dict"): r"^sweep: stacked batches must hold arrays",
}
_IDS = {
    "find_learning_rate": {case.id for case in FINDER_REFUSED},
    "sweep": {case.id for case in SWEEP_REFUSED},
}
assert all(case in _IDS[owner] for owner, case in WHOLE_MESSAGES), "a whole message has no case"


def _finder(**kwargs):
    """The range test on the quadratic of ``problems`` (100 stacked batches)."""
    return lrjax.find_learning_rate(
        quadratic_loss, QUADRATIC_START, quadratic_batches(100), **kwargs
    )


def _sweep(batches=None, **kwargs):
    """A sweep on the quadratic of ``problems`` (50 stacked batches by default)."""
    batches = quadratic_batches(50) if batches is None else batches
    return lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, **kwargs)


def _grid(**kwargs):
    """A sweep on 40 batches of the quadratic, given params unless it has init_fn."""
    params = None if "init_fn" in kwargs else QUADRATIC_START
    return lrjax.sweep(quadratic_loss, params, BATCHES_40, **kwargs)


# Refusals whose message depends on the other arguments or the data: (call, function,
# argument, whole-message pattern or None).
REFUSED = [
    (
        lambda: _finder(min_lr=1.0, max_lr=0.5),
        "find_learning_rate",
        "max_lr",
        r"^find_learning_rate: max_lr must be > min_lr=1.0, got 0.5",
    ),
    (
        lambda: _finder(min_lr=1.0, max_lr=1 + 1e-9),
        "find_learning_rate",
        "max_lr",
        r"^find_learning_rate: max_lr .* in float32",
    ),
    (
        lambda: _finder(min_lr=1.0, max_lr=1 + 1e-6),
        "find_learning_rate",
        "max_lr",
        r"^find_learning_rate: max_lr=1.000001 is too close",
    ),
    (
        lambda: _finder(num_steps=500),
        "find_learning_rate",
        "num_steps",
        r"the stacked batches hold 100 steps, fewer than num_steps=500",
    ),
    (
        lambda: _sweep(learning_rates=[True]),
        "sweep",
        "learning_rates",
        r"^sweep: learning_rates\[0\] must be a real number",
    ),
    (
        lambda: _sweep(learning_rates=[1e39]),
        "sweep",
        "learning_rates",
        r"^sweep: learning_rates\[0\] must be finite .*1e\+39$",
    ),
    (
        lambda: _sweep(learning_rates=[0.1], num_steps=99),
        "sweep",
        "num_steps",
        r"hold 50 steps, fewer than num_steps=99",
    ),
    (
        lambda: _sweep(jnp.zeros((0, 20)), learning_rates=[0.1]),
        "sweep",
        "batches",
        r"^sweep: the stacked batches hold 0 steps",
    ),
    (
        lambda: _sweep({"a": jnp.zeros((5, 20)), "b": jnp.zeros((4, 20))}, learning_rates=[0.1]),
        "sweep",
        "batches",
        r"^sweep: .* share their leading",
    ),
    (
        lambda: _sweep((jnp.zeros((5, 20)), jnp.float32(1.0)), learning_rates=[0.1]),
        "sweep",
        "batches",
        r"^sweep: .* needs a leading step axis",
    ),
    *[
        (lambda kwargs=kwargs: _grid(**kwargs), "sweep", argument, None)
        for kwargs, argument in [
            (dict(learning_rates=[0.1], hyperparams={"learning_rate": [0.1]}), "hyperparams"),
            (dict(), "learning_rates and hyperparams"),
            (dict(hyperparams={}), "hyperparams"),
            (dict(hyperparams=[0.1]), "hyperparams"),
            (dict(hyperparams={"learning_rate": []}), "hyperparams['learning_rate']"),
            (dict(hyperparams={"learning_rate": [-1.0]}), "hyperparams['learning_rate'][0]"),
            (dict(hyperparams={"momentum": [0.5, "x"]}), "hyperparams['momentum'][1]"),
            (dict(hyperparams={"momentum": [np.inf]}), "hyperparams['momentum'][0]"),
            (dict(hyperparams={"not a name": [1.0]}), "hyperparams"),
            (dict(hyperparams={"nesterov_rate": [1.0]}), "optimizer"),
            (dict(learning_rates=[0.1], init_fn=init_fn), "seeds"),
            (dict(learning_rates=[0.1], init_fn=init_fn, seeds=[0, 0]), "seeds"),
            (dict(learning_rates=[0.1], init_fn=init_fn, seeds=[-1]), "seeds[0]"),
            (dict(learning_rates=[0.1], init_fn=init_fn, seeds=[0.5]), "seeds[0]"),
            (dict(learning_rates=[0.1], init_fn=init_fn, seeds=[]), "seeds"),
            (dict(learning_rates=[0.1], init_fn=3, seeds=[0]), "init_fn"),
            (dict(learning_rates=[0.1], eval_fn="x"), "eval_fn"),
            (dict(learning_rates=[0.1], eval_fn=held_out, eval_every=0), "eval_every"),
            (dict(learning_rates=[0.1], eval_fn=lambda p: p), "eval_fn"),
            (dict(learning_rates=[0.1], batch_size=2.0), "batch_size"),
        ]
    ],
]


@pytest.mark.parametrize(
    ("call", "owner", "argument", "pattern"),
    REFUSED,
    ids=[f"{owner}-{argument}-{i}" for i, (_, owner, argument, _) in enumerate(REFUSED)],
)
def test_refused_in_context(call, owner, argument, pattern):
    assert_refused(call, owner, argument, pattern)


def test_sweep_refuses_mismatched_iterable_batches():
    batches = [BATCHES[0], BATCHES[1], BATCHES[2][:3]]
    call = lambda: lrjax.sweep(**dict(SWEEP, batches=batches, num_steps=3))
    assert_refused(call, "sweep", "batches")


SWEEP_ACCEPTED = [
    ("learning_rates", (0.1, 0.5), [0.1, 0.5]),
    ("learning_rates", np.array([0.1, 0.5]), [0.1, 0.5]),
    ("learning_rates", [np.float64(0.1), 1], [0.1, 1.0]),
    # float32 rates as the shortest decimals that are the same float32 values
    ("learning_rates", np.array([0.1, 0.5], np.float32), [0.1, 0.5]),
    ("learning_rates", jnp.array([0.1, 0.5]), [0.1, 0.5]),
    ("learning_rates", [jnp.asarray(0.1), np.array(0.5)], [0.1, 0.5]),
    ("num_steps", np.int64(10), None),
    ("num_steps", 10, None),
    ("progress", np.bool_(False), False),
    ("params", np.zeros((), np.float32), PARAMS),
    ("batches", list(BATCHES), BATCHES),
    ("batch_size", np.int64(1), None),
    ("batch_size", 2, None),
]


@pytest.mark.parametrize(("argument", "value", "plain"), SWEEP_ACCEPTED)
def test_sweep_accepts(argument, value, plain):
    extra = {"num_steps": 10} if argument == "batches" else {}
    got = lrjax.sweep(**dict(SWEEP, **extra, **{argument: value}))
    want = lrjax.sweep(**dict(SWEEP, **{argument: plain}))
    assert got.learning_rates.dtype == np.float64
    np.testing.assert_array_equal(got.learning_rates, want.learning_rates)
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-6)
    assert got.best_learning_rate in list(got.learning_rates)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_sweep_survives_a_loss_that_is_never_finite(value):
    bad = lambda w, x: value * loss(w, x) + value
    result = lrjax.sweep(**dict(SWEEP, loss_fn=bad))
    assert result.diverged.all() and result.best_learning_rate is None
    assert np.all(np.isnan(result.losses)) and np.all(np.isinf(result.final_losses))
    result.plot()
    result.plot(kind="final")


def test_a_traced_argument_is_refused_with_its_name():
    """find_learning_rate and sweep run eagerly: under jit, a clear error, not a crash."""
    find = lambda m: lrjax.find_learning_rate(**dict(FINDER, min_lr=m))
    assert_refused(lambda: jax.jit(find)(1e-3), "find_learning_rate", "min_lr")
    run = lambda r: lrjax.sweep(**dict(SWEEP, learning_rates=r))
    assert_refused(lambda: jax.jit(run)(jnp.ones(2)), "sweep", "learning_rates")
    assert_refused(
        lambda: jax.jit(lambda p: lrjax.sweep(**dict(SWEEP, params=p)))(PARAMS), "sweep", "params"
    )


def test_defaulted_arguments_are_keyword_only():
    with pytest.raises(TypeError, match="positional argument"):
        lrjax.find_learning_rate(loss, PARAMS, BATCHES, lrjax.sgd, 1e-7)  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional argument"):
        lrjax.sweep(loss, PARAMS, BATCHES, lrjax.sgd, [0.1])  # type: ignore[misc]
