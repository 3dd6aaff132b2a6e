"""Hostile inputs to the plots (``lrjax.plotting`` and the results' ``plot``), argument by
argument: a wrong value raises ``ValueError`` whose message starts with the function the
user called and names the argument; a valid value of an unusual kind draws what the plain
value draws. The results come from the tiny problem of ``test_hostile_finding``."""

from __future__ import annotations

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from test_hostile_finding import (
    FINDER,
    NOT_A_FLAG,
    NOT_A_NUMBER,
    NOT_AN_INTEGER,
    SWEEP,
    assert_refused,
)

import lrjax
from lrjax import plotting, schedules

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


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
