"""lrjax.plotting renders with the Agg backend (no display)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import pytest
from problems import QUADRATIC_START, quadratic_batches, quadratic_loss

import lrjax
from lrjax import plotting, schedules

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_schedules(tmp_path):
    ax = plotting.plot_schedules(
        {"cosine": schedules.cosine_decay(0.1, 100), "one cycle": schedules.one_cycle(0.1, 100)},
        num_steps=120,
    )
    assert len(ax.lines) == 2 and ax.get_legend() is not None
    ax = plotting.plot_schedules(schedules.step_decay(0.1, 30), 100, log=True)
    assert ax.get_yscale() == "log"
    ax.figure.savefig(tmp_path / "schedules.png")
    assert (tmp_path / "schedules.png").stat().st_size > 0


def test_finder_plot_marks_the_suggestions(tmp_path):
    result = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, quadratic_batches(100))
    ax = result.plot()
    labels = [line.get_label() for line in ax.lines]
    assert any("steepest" in label and "(suggestion)" in label for label in labels)
    assert "stopped" in labels and ax.get_xscale() == "log"
    ax.figure.savefig(tmp_path / "finder.png")


def test_sweep_plots(tmp_path):
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(100), learning_rates=[0.01, 0.1, 1.0]
    )
    ax = result.plot()
    assert len(ax.lines) == 3
    fig, axes = plt.subplots(1, 2)
    plotting.plot_sweep(result, axes[0])
    ax = plotting.plot_sweep(result, axes[1], kind="final")
    assert "diverged" in [line.get_label() for line in ax.lines]
    fig.savefig(tmp_path / "sweep.png")
    with pytest.raises(ValueError, match="plot_sweep: kind must be one of 'curves', 'final'"):
        plotting.plot_sweep(result, kind="table")


def test_effective_rate_histories(tmp_path):
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}

    def history(tx):
        def step(state, t):
            grads = jax.tree.map(lambda p: jnp.sin(t + p), params)
            _, state = tx.update(grads, state, params)
            return state, lrjax.effective_learning_rates(state)

        return jax.lax.scan(step, tx.init(params), jnp.arange(50.0))[1]

    stacked = history(lrjax.adagrad(0.1))
    listed = [jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(50)]
    ax = plotting.plot_effective_rates({"adagrad": stacked, "rmsprop": history(lrjax.rmsprop())})
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    plotting.plot_effective_rates(listed)
    ax.figure.savefig(tmp_path / "rates.png")
