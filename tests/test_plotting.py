"""lrjax.plotting renders with the Agg backend (no display) and draws the data given."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from matplotlib.layout_engine import ConstrainedLayoutEngine
from problems import (
    QUADRATIC_START,
    digits_batches,
    mlp_init,
    mlp_loss,
    quadratic_batches,
    quadratic_loss,
)

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
    assert any("bottom" in label and "(suggestion)" in label for label in labels)
    assert "stopped" in labels and ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), result.smoothed_losses)
    fig, given = plt.subplots()
    assert plotting.plot_finder(result, ax=given) is given
    fig.savefig(tmp_path / "finder.png")


def finder_results():
    """A range test that diverges (the quadratic) and one that does not (Adam, digits)."""
    quadratic = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, quadratic_batches(100))
    digits = lrjax.find_learning_rate(mlp_loss, mlp_init(), digits_batches(100), lrjax.adam)
    return {"quadratic": quadratic, "digits": digits}


@pytest.fixture(scope="module")
def finders():
    return finder_results()


def above_the_axis(label: str) -> int:
    """N from a legend label ``"loss (N above the axis)"``, else 0."""
    found = re.search(r"\((\d+) above the axis\)", label)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("name", ["quadratic", "digits"])
def test_finder_axis_shows_the_raw_curve_or_counts_what_it_cuts(finders, name):
    """The raw loss falls far below the smoothed one (the average lags): the axis must
    reach it; what lies above the axis (a divergence) is counted in the legend."""
    result = finders[name]
    ax = result.plot()
    low, high = ax.get_ylim()
    raw, smoothed = ax.lines[0], ax.lines[1]
    np.testing.assert_array_equal(raw.get_ydata(), result.losses)
    losses = result.losses[np.isfinite(result.losses)]
    assert low <= np.min(losses) < high  # nothing of the curve is cut below
    assert above_the_axis(raw.get_label()) == np.sum(losses > high)
    # The smoothed curve, which the suggestions read, is inside the axis up to the step
    # that stopped the test.
    stop = len(result.smoothed_losses) - 1 if result.diverged else None
    before = result.smoothed_losses[:stop]
    assert low <= np.min(before) and np.max(before) <= high
    assert above_the_axis(smoothed.get_label()) == np.sum(result.smoothed_losses > high)
    if name == "quadratic":  # the divergence does leave the axis, and the legend says so
        assert result.diverged and above_the_axis(raw.get_label()) > 0


def test_finder_labels_say_what_each_line_is(finders):
    result = finders["digits"]
    ax = result.plot()
    lines = {line.get_label().split(":")[0]: line for line in ax.lines}
    minimum = lines["minimum"]
    assert minimum.get_xdata()[0] == result.suggestions["minimum"]
    # The rule: a tenth of the rate at the lowest smoothed loss, and the label says so.
    lowest = result.learning_rates[np.nanargmin(result.smoothed_losses)]
    assert result.suggestions["minimum"] == pytest.approx(lowest / 10)
    assert minimum.get_label() == (
        f"minimum: {result.suggestions['minimum']:.2g} (rate at the minimum / 10)"
    )
    assert lines["bottom"].get_label().endswith("(suggestion)")
    assert lines["bottom"].get_xdata()[0] == result.suggestion
    assert "(rate at the bottom / 2)" in lines["bottom"].get_label()


@pytest.mark.parametrize("name", ["quadratic", "digits"])
def test_finder_legend_covers_no_point_of_the_curves(finders, name):
    ax = finders[name].plot()
    ax.figure.canvas.draw()
    box = ax.get_legend().get_window_extent()
    low, high = ax.get_ylim()
    for line in ax.lines[:2]:  # the raw and the smoothed loss
        xy = np.column_stack([line.get_xdata(), line.get_ydata()])
        xy = xy[np.isfinite(xy).all(axis=1) & (xy[:, 1] >= low) & (xy[:, 1] <= high)]
        x, y = ax.transData.transform(xy).T
        inside = (box.x0 <= x) & (x <= box.x1) & (box.y0 <= y) & (y <= box.y1)
        assert not np.any(inside), (line.get_label(), xy[inside])


def test_an_empty_finder_curve_plots():
    """A loss that is NaN from the first update on: one point and where it stopped."""

    def nan_loss(params, batch):
        loss = quadratic_loss(params, batch)
        return jnp.where(jnp.all(params == QUADRATIC_START), loss, jnp.nan)

    with pytest.warns(UserWarning, match="no suggestion: the curve has 1 finite points"):
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
    assert [line.get_label() for line in ax.lines] == ["0.01", "0.1 (best)", "1 (diverged)"]
    assert ax.lines[1].get_linewidth() > ax.lines[0].get_linewidth()  # the best run
    fig, axes = plt.subplots(1, 2)
    assert plotting.plot_sweep(result, ax=axes[0]) is axes[0]
    ax = plotting.plot_sweep(result, ax=axes[1], kind="final")
    assert "diverged" in [line.get_label() for line in ax.lines]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), result.final_losses[:2])
    fig.savefig(tmp_path / "sweep.png")
    with pytest.raises(ValueError, match=r"^plot_sweep: kind must be one of 'curves', 'final'"):
        plotting.plot_sweep(result, kind="table")


@pytest.mark.filterwarnings("ignore:.* value of the grid; the best may lie beyond it.*:UserWarning")
def test_sweep_curves_are_told_apart_by_a_colorbar_of_the_rate():
    rates = np.logspace(-3, -0.9, 16)  # none diverges
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(90), learning_rates=rates
    )
    ax = result.plot()
    bars = [other for other in ax.figure.axes if other is not ax]
    assert len(bars) == 1 and bars[0].get_ylabel() == "learning rate"
    colors = [line.get_color() for line in ax.lines]
    assert len(set(colors)) == 16  # one colour per rate, in the order of the rates
    # The curves are running means of the window the y label names.
    assert ax.get_ylabel() == "loss (3-step running mean)"
    np.testing.assert_allclose(ax.lines[5].get_ydata()[-1], np.mean(result.losses[5, -3:]))
    np.testing.assert_allclose(ax.lines[5].get_ydata()[0], result.losses[5, 0])
    # Only the best run is named: the colorbar reads the others.
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [f"{result.best_learning_rate:.2g} (best)"]


def test_a_diverged_run_leaves_the_axis_and_the_legend_names_it():
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(60), learning_rates=[0.01, 0.1, 1.0]
    )
    ax = result.plot()
    low, high = ax.get_ylim()
    for line, diverged in zip(ax.lines, result.diverged, strict=True):
        curve = line.get_ydata()[np.isfinite(line.get_ydata())]
        assert (np.max(curve) > high) == diverged
        assert low <= np.min(curve)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "1 (diverged)" in legend


def test_the_two_sweep_panels_have_their_own_titles():
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(20), learning_rates=[0.1, 0.05]
    )
    _, axes = plt.subplots(1, 2)
    curves = result.plot(ax=axes[0]).get_title()
    final = result.plot(ax=axes[1], kind="final").get_title()
    assert curves != final
    assert curves == "sweep of 2 learning rates: loss per step"
    assert final == "sweep of 2 learning rates: final loss"


def drawn_plots():
    """Every plot lrjax draws on a figure of its own."""
    finder = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, quadratic_batches(100))
    grid = lrjax.sweep(
        quadratic_loss,
        batches=quadratic_batches(30),
        hyperparams={"learning_rate": [0.01, 0.1], "weight_decay": [0.0, 0.1]},
        init_fn=lambda key: QUADRATIC_START + 0.1 * jax.random.normal(key, (20,)),
        seeds=[0, 1],
        eval_fn=lambda params: quadratic_loss(params, jnp.zeros(20)),
        eval_every=10,
    )
    rates = [{"w": jnp.full(3, 0.1 / (t + 1))} for t in range(10)]
    return {
        "finder": lambda: finder.plot(),
        "plot_finder": lambda: plotting.plot_finder(finder),
        "curves": lambda: grid.plot(),
        "final": lambda: plotting.plot_sweep(grid, kind="final"),
        "schedules": lambda: plotting.plot_schedules(schedules.cosine_decay(0.1, 50), 60, log=True),
        "effective rates": lambda: plotting.plot_effective_rates(rates),
    }


@pytest.mark.parametrize("name", list(drawn_plots()))
def test_a_figure_lrjax_makes_keeps_its_labels_inside_the_canvas(name, tmp_path):
    """Saved as it is (no tight_layout): the axis labels and title are not cut off."""
    ax = drawn_plots()[name]()
    fig = ax.figure
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.savefig(tmp_path / "plot.png")
    canvas = fig.bbox
    texts = [text for text in (ax.xaxis.label, ax.yaxis.label, ax.title) if text.get_text()]
    assert len(texts) >= 2
    for text in texts:
        box = text.get_window_extent()
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1, text
        assert canvas.y0 <= box.y0 and box.y1 <= canvas.y1, text


def test_a_figure_the_user_made_keeps_its_layout():
    finder = lrjax.find_learning_rate(
        quadratic_loss, QUADRATIC_START, quadratic_batches(20), num_steps=20
    )
    fig, ax = plt.subplots()
    assert finder.plot(ax=ax) is ax and fig.get_layout_engine() is None


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
