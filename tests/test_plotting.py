"""lrjax.plotting renders with the Agg backend (no display) and draws the data given."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
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
    cosine, cycle = schedules.cosine_decay(0.1, 100), schedules.one_cycle(0.1, 100)
    ax = plotting.plot_schedules({"cosine": cosine, "one cycle": cycle}, num_steps=120)
    assert [line.get_label() for line in ax.lines] == ["cosine", "one cycle"]
    assert ax.get_legend() is not None
    steps = np.arange(120)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), steps)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), jax.vmap(cosine)(steps), rtol=1e-6)
    ax = plotting.plot_schedules(schedules.step_decay(0.1, 30), 100, log=True, legend=False)
    assert ax.get_yscale() == "log" and ax.get_legend() is None
    ax.figure.savefig(tmp_path / "schedules.png")
    assert (tmp_path / "schedules.png").stat().st_size > 0


def test_a_sequence_of_schedules_is_labelled_by_repr():
    pair = [schedules.constant(0.1), schedules.step_decay(0.1, 30)]
    ax = plotting.plot_schedules(pair, 50)
    assert [line.get_label() for line in ax.lines] == [repr(s) for s in pair]


def test_finder_plot_marks_the_suggestions(tmp_path):
    result = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, quadratic_batches(100))
    ax = result.plot()
    labels = [line.get_label() for line in ax.lines]
    assert any("steepest" in label and "(suggestion)" in label for label in labels)
    assert "stopped" in labels and ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), result.smoothed_losses)
    fig, given = plt.subplots()
    assert plotting.plot_finder(result, ax=given) is given
    fig.savefig(tmp_path / "finder.png")


def test_an_empty_finder_curve_plots():
    """A loss that is NaN from the first step: nothing to draw but where it stopped."""
    nan_loss = lambda params, batch: jnp.nan * quadratic_loss(params, batch)
    result = lrjax.find_learning_rate(
        nan_loss, QUADRATIC_START, quadratic_batches(10), num_steps=10
    )
    ax = result.plot()
    assert "stopped" in [line.get_label() for line in ax.lines]


def test_sweep_plots(tmp_path):
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(100), learning_rates=[0.01, 0.1, 1.0]
    )
    ax = result.plot()
    assert [line.get_label() for line in ax.lines] == ["0.01", "0.1", "1 (diverged)"]
    assert ax.lines[1].get_linewidth() > ax.lines[0].get_linewidth()  # the best run
    fig, axes = plt.subplots(1, 2)
    assert plotting.plot_sweep(result, ax=axes[0]) is axes[0]
    ax = plotting.plot_sweep(result, ax=axes[1], kind="final")
    assert "diverged" in [line.get_label() for line in ax.lines]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), result.final_losses[:2])
    fig.savefig(tmp_path / "sweep.png")
    with pytest.raises(ValueError, match=r"^plot_sweep: kind must be one of 'curves', 'final'"):
        plotting.plot_sweep(result, kind="table")


def test_losses_that_are_not_positive_keep_a_linear_axis():
    """A log axis cannot show a negative loss (a log-likelihood): the axis stays linear."""
    shifted = lambda params, batch: quadratic_loss(params, batch) - 100.0
    result = lrjax.sweep(shifted, QUADRATIC_START, quadratic_batches(20), learning_rates=[0.1])
    assert result.plot().get_yscale() == "linear"
    assert result.plot(kind="final").get_yscale() == "linear"


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
    assert [line.get_label() for line in ax.lines] == ["adagrad", "rmsprop"]
    assert ax.get_yscale() == "log"
    # Adagrad's rates only shrink: its median falls over the steps.
    median = ax.lines[0].get_ydata()
    assert len(median) == 50 and np.all(np.diff(median) <= 0) and median[-1] < median[0]
    # A list of per-step trees draws the same curve as the stacked tree.
    other = plotting.plot_effective_rates(listed, quantiles=[0.25, 0.75])
    np.testing.assert_allclose(other.lines[0].get_ydata(), median, rtol=1e-6)
    ax.figure.savefig(tmp_path / "rates.png")


def test_defaulted_arguments_are_keyword_only():
    finder = lrjax.find_learning_rate(
        quadratic_loss, QUADRATIC_START, quadratic_batches(20), num_steps=20
    )
    swept = lrjax.sweep(quadratic_loss, QUADRATIC_START, quadratic_batches(5), learning_rates=[0.1])
    _, ax = plt.subplots()
    calls = [
        lambda: plotting.plot_schedules(schedules.constant(0.1), 10, ax),
        lambda: plotting.plot_finder(finder, ax),
        lambda: plotting.plot_sweep(swept, ax),
        lambda: plotting.plot_effective_rates([{"w": jnp.ones(2)}], ax),
        lambda: finder.plot(ax),
        lambda: swept.plot(ax),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="positional argument"):
            call()


def test_a_log_axis_needs_a_positive_rate():
    with pytest.raises(ValueError, match=r"^plot_schedules: log=True needs a rate > 0"):
        plotting.plot_schedules(schedules.constant(0.0), 10, log=True)
