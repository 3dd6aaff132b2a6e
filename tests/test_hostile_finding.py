"""Hostile inputs to the range test, the sweep and the plots, argument by argument.

The contract (SPEC §1): a wrong value raises ``ValueError`` whose message starts with
the function the user called and names the argument; a valid value of an unusual kind
(a NumPy scalar, a 0-d array, a JAX scalar, ``np.bool_``) gives exactly the result the
plain Python value gives; a loss that is NaN or infinite gives a result, never a crash.
Every call shares one tiny problem, so the range tests and sweeps compile once.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

import lrjax
from lrjax import plotting, schedules

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


def assert_refused(call, owner, argument):
    with pytest.raises(ValueError, match=f"^{re.escape(owner)}: ") as info:
        call()
    message = str(info.value)
    assert argument in message, message
    return message


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
]


@pytest.mark.parametrize(("argument", "value"), FINDER_REFUSED)
def test_find_learning_rate_refuses(argument, value):
    kwargs = dict(FINDER, **{argument: value})
    message = assert_refused(
        lambda: lrjax.find_learning_rate(**kwargs), "find_learning_rate", argument
    )
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
def test_find_learning_rate_accepts(argument, value, plain):
    got = lrjax.find_learning_rate(**dict(FINDER, **{argument: value}))
    want = lrjax.find_learning_rate(**dict(FINDER, **{argument: plain}))
    np.testing.assert_array_equal(got.learning_rates, want.learning_rates)
    np.testing.assert_allclose(got.losses, want.losses, rtol=1e-6)
    assert got.divergence_step == want.divergence_step


@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_find_learning_rate_survives_a_loss_that_is_never_finite(value, stacked):
    bad = lambda w, x: value * loss(w, x) + value
    batches = BATCHES if stacked else list(BATCHES)
    result = lrjax.find_learning_rate(**dict(FINDER, loss_fn=bad, batches=batches))
    assert result.diverged and result.divergence_step == 0 and result.suggestion is None
    assert len(result.losses) == 0
    result.plot()


@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
def test_find_learning_rate_stops_at_a_nan_in_a_batch(stacked):
    batches = np.array(BATCHES)
    batches[4, 1] = np.nan
    data = batches if stacked else list(batches)
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
def test_sweep_refuses(argument, value):
    kwargs = dict(SWEEP, **{argument: value})
    message = assert_refused(lambda: lrjax.sweep(**kwargs), "sweep", argument)
    if isinstance(value, list) and value[-1:] and value[-1] is NOT_A_NUMBER["float32 overflow"]:
        assert "1e+39" in message and "inf" not in message, message  # the value as given


def test_sweep_refuses_mismatched_iterable_batches():
    batches = [BATCHES[0], BATCHES[1], BATCHES[2][:3]]
    call = lambda: lrjax.sweep(**dict(SWEEP, batches=batches, num_steps=3))
    assert_refused(call, "sweep", "batches")


ROUNDED = [float(np.float32(r)) for r in (0.1, 0.5)]  # what float32 rates were given as
SWEEP_ACCEPTED = [
    ("learning_rates", (0.1, 0.5), [0.1, 0.5]),
    ("learning_rates", np.array([0.1, 0.5]), [0.1, 0.5]),
    ("learning_rates", [np.float64(0.1), 1], [0.1, 1.0]),
    ("learning_rates", np.array([0.1, 0.5], np.float32), ROUNDED),
    ("learning_rates", jnp.array([0.1, 0.5]), ROUNDED),
    ("learning_rates", [jnp.asarray(0.1), np.array(0.5)], [float(np.float32(0.1)), 0.5]),
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


# ------------------------------------------------------------------ the plots


@pytest.fixture(scope="module")
def results():
    return lrjax.find_learning_rate(**FINDER), lrjax.sweep(**SWEEP)


NOT_AXES = {"str": "ax", "int": 1, "bool": True, "list": [None], "figure": "figure"}
NOT_AXES["grid"] = "grid"  # built when the case runs (a figure per case)
NOT_A_KIND = {"unknown": "table", "None": None, "int": 1, "bool": True, "list": ["curves"]}
NOT_A_RESULT = {"None": None, "str": "result", "dict": {}, "array": np.ones(3)}
NOT_SCHEDULES = {"None": None, "str": "cosine", "int": 3, "empty list": [], "empty dict": {}}
NOT_SCHEDULES.update({"list of None": [None], "dict of int": {"a": 3}})
NOT_SCHEDULES.update({"optimizer": lrjax.sgd(0.1), "factory": lrjax.sgd})
NOT_SCHEDULES["vector"] = lambda step: jnp.ones(3) * step.astype(jnp.float32)
NOT_SCHEDULES["complex"] = lambda step: step.astype(jnp.complex64)
NOT_HISTORIES = {"None": None, "str": "rates", "int": 3, "empty list": [], "empty dict": {}}
NOT_HISTORIES.update({"empty history": {"a": []}, "str leaves": [{"w": "x"}]})
NOT_HISTORIES.update({"no step axis": {"a": jnp.float32(1.0)}})
NOT_HISTORIES["ragged"] = [{"w": jnp.ones(2)}, {"w": jnp.ones(3)}]
NOT_HISTORIES["complex"] = [{"w": jnp.ones(2, jnp.complex64)}]
NOT_QUANTILES = NOT_A_NUMBER | {"reversed": (0.9, 0.1), "one": (0.1,), "three": (0.1, 0.5, 0.9)}
NOT_QUANTILES.update({"nan": (np.nan, 0.9), "negative": (-0.1, 0.9), "above 1": (0.1, 1.5)})
NOT_QUANTILES.update({"bool": (True, 0.9), "overflow": (0.1, 1e39)})
RATE_HISTORY = [{"w": jnp.full(3, 0.1)}, {"w": jnp.full(3, 0.2)}]


def plot_cases():
    """Every argument of every plot: (owner, call of (results, value), argument, values)."""
    p, s, h = plotting, schedules.constant(0.1), RATE_HISTORY
    table = [
        ("plot_finder", lambda r, x: p.plot_finder(x), "result", NOT_A_RESULT),
        ("plot_finder", lambda r, x: p.plot_finder(r[1]), "result", {"sweep": 0}),
        ("plot_finder", lambda r, x: p.plot_finder(r[0], ax=x), "ax", NOT_AXES),
        ("plot_sweep", lambda r, x: p.plot_sweep(x), "result", NOT_A_RESULT),
        ("plot_sweep", lambda r, x: p.plot_sweep(r[0]), "result", {"finder": 0}),
        ("plot_sweep", lambda r, x: p.plot_sweep(r[1], ax=x), "ax", NOT_AXES),
        ("plot_sweep", lambda r, x: p.plot_sweep(r[1], kind=x), "kind", NOT_A_KIND),
        ("FinderResult.plot", lambda r, x: r[0].plot(ax=x), "ax", NOT_AXES),
        ("SweepResult.plot", lambda r, x: r[1].plot(ax=x), "ax", NOT_AXES),
        ("SweepResult.plot", lambda r, x: r[1].plot(kind=x), "kind", NOT_A_KIND),
        ("plot_schedules", lambda r, x: p.plot_schedules(x, 10), "schedules", NOT_SCHEDULES),
        ("plot_schedules", lambda r, x: p.plot_schedules(s, x), "num_steps", NOT_AN_INTEGER),
        ("plot_schedules", lambda r, x: p.plot_schedules(s, 10, log=x), "log", NOT_A_FLAG),
        ("plot_schedules", lambda r, x: p.plot_schedules(s, 10, legend=x), "legend", NOT_A_FLAG),
        ("plot_schedules", lambda r, x: p.plot_schedules(s, 10, ax=x), "ax", NOT_AXES),
    ]
    rates = "plot_effective_rates"
    table.append((rates, lambda r, x: p.plot_effective_rates(x), "histories", NOT_HISTORIES))
    table.append((rates, lambda r, x: p.plot_effective_rates(h, ax=x), "ax", NOT_AXES))
    table.append(
        (rates, lambda r, x: p.plot_effective_rates(h, quantiles=x), "quantiles", NOT_QUANTILES)
    )
    return [
        pytest.param(call, owner, argument, value, id=f"{owner}-{argument}={key}")
        for owner, call, argument, values in table
        for key, value in values.items()
    ]


@pytest.mark.parametrize(("call", "owner", "argument", "value"), plot_cases())
def test_plots_refuse(results, call, owner, argument, value):
    if argument == "ax" and value in ("figure", "grid"):
        value = plt.figure() if value == "figure" else plt.subplots(1, 2)[1]
    assert_refused(lambda: call(results, value), owner, argument)


def test_plots_accept_unusual_kinds(results):
    finder, swept = results
    _, ax = plt.subplots()
    drawn = plotting.plot_schedules(schedules.constant(0.1), np.int64(10), log=np.bool_(True))
    np.testing.assert_allclose(drawn.lines[0].get_ydata(), np.full(10, 0.1))
    assert plotting.plot_finder(finder, ax=ax) is ax
    assert swept.plot(kind=np.str_("final")).get_xscale() == "log"
    for quantiles in ([0.25, 0.75], np.array([0.25, 0.75]), (0, 1)):
        line = plotting.plot_effective_rates(RATE_HISTORY, quantiles=quantiles).lines[0]
        np.testing.assert_allclose(line.get_ydata(), [0.1, 0.2], rtol=1e-6)
