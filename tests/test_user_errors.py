"""What a user sees off the happy path: short errors that name the function called, user
functions that fail on their signature, and what a sweep says about its own grid."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import plotting, schedules

LONG = list(range(100_000))


def quadratic_loss(params, batch):
    return jnp.sum((params["w"] - batch) ** 2)


PARAMS = {"w": jnp.zeros(3)}
BATCHES = jnp.ones((40, 3))

# Each call shows a huge value in its error: the message names the function and stays short.
LONG_VALUE_CALLS = {
    "cosine_decay": lambda: schedules.cosine_decay(LONG, 10),
    "step_decay": lambda: schedules.step_decay(0.1, 10, gamma=np.arange(10_000.0)),
    "adam": lambda: lrjax.adam(b1="x" * 10_000),
    "adam mask": lambda: lrjax.adam(1e-3, weight_decay=0.1, mask={"w": LONG}),
    "sgd nesterov": lambda: lrjax.sgd(0.1, nesterov=LONG),
    "find_learning_rate": lambda: lrjax.find_learning_rate(
        {"w": np.zeros(100_000)}, quadratic_loss, BATCHES
    ),
    "sweep": lambda: lrjax.sweep(quadratic_loss, PARAMS, BATCHES, learning_rates=[LONG]),
    "sweep hyperparams": lambda: lrjax.sweep(
        quadratic_loss, PARAMS, BATCHES, hyperparams={"b1": "x" * 10_000}
    ),
    "effective_learning_rates": lambda: lrjax.effective_learning_rates(
        lrjax.sgd(0.1).init(jnp.zeros(3)), {"w": "y" * 10_000}
    ),
    "set_hyperparams": lambda: lrjax.set_hyperparams(
        lrjax.sgd(0.1).init(jnp.zeros(3)), learning_rate=LONG
    ),
    "reduce_on_plateau": lambda: lrjax.reduce_on_plateau(mode="m" * 10_000),
}


@pytest.mark.parametrize("name", sorted(LONG_VALUE_CALLS))
def test_a_long_value_is_abbreviated_in_the_error(name):
    with pytest.raises((ValueError, TypeError)) as error:
        LONG_VALUE_CALLS[name]()
    message = str(error.value)
    assert message.startswith(name.split()[0] + ":"), message[:200]
    assert len(message) < 600, len(message)


def test_an_nnx_state_passed_as_loss_fn_is_named_not_printed():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(256, 256, rngs=nnx.Rngs(0))
    state = nnx.state(model)
    with pytest.raises(ValueError, match=r"^find_learning_rate: loss_fn must be .* got a State$"):
        lrjax.find_learning_rate(state, quadratic_loss, BATCHES)


def test_an_optimizer_factory_without_its_argument_names_the_argument():
    with pytest.raises(TypeError, match=r"^sweep: calling optimizer as optimizer\(learning_rate\)"):
        lrjax.sweep(
            quadratic_loss,
            PARAMS,
            BATCHES,
            learning_rates=[0.1],
            optimizer=lambda: lrjax.adam(1e-3),
        )
    with pytest.raises(TypeError) as error:
        lrjax.find_learning_rate(
            quadratic_loss, PARAMS, BATCHES, num_steps=20, optimizer=lambda: lrjax.adam(1e-3)
        )
    assert str(error.value).startswith("find_learning_rate: calling optimizer")
    assert isinstance(error.value.__cause__, TypeError)  # chained to what Python said


def test_an_eval_fn_with_the_wrong_signature_names_the_argument():
    with pytest.raises(TypeError, match=r"^sweep: calling eval_fn as eval_fn\(params\)") as error:
        lrjax.sweep(quadratic_loss, PARAMS, BATCHES, learning_rates=[0.1], eval_fn=quadratic_loss)
    assert "missing 1 required positional argument" in str(error.value.__cause__)


def test_a_loss_fn_with_the_wrong_signature_names_the_argument():
    with pytest.raises(TypeError, match=r"^sweep: calling loss_fn as loss_fn\(params, batch\)"):
        lrjax.sweep(lambda params: jnp.sum(params["w"]), PARAMS, BATCHES, learning_rates=[0.1])


@pytest.mark.parametrize("params", ["abc", {"w": "abc"}, {"w": object()}, [1, "a"]])
def test_effective_learning_rates_refuses_params_that_give_no_shapes(params):
    state = lrjax.sgd(0.1).init(jnp.zeros(3))
    with pytest.raises(ValueError, match=r"^effective_learning_rates: params must be"):
        lrjax.effective_learning_rates(state, params)


def test_effective_learning_rates_takes_shapes():
    state = lrjax.sgd(0.1).init(jnp.zeros(3))
    shapes = {"w": jax.ShapeDtypeStruct((2, 3), jnp.float32), "b": 1.0}
    rates = lrjax.effective_learning_rates(state, shapes)
    assert rates["w"].shape == (2, 3) and float(rates["b"]) == pytest.approx(0.1)


def test_a_best_rate_at_the_top_of_the_grid_is_said():
    with pytest.warns(UserWarning, match="sweep: the best learning_rate, 0.01, is the highest"):
        result = lrjax.sweep(
            quadratic_loss, PARAMS, BATCHES, learning_rates=jnp.logspace(-4, -2, 3)
        )
    assert result.at_edge == {"learning_rate": "highest"}
    assert result.best_learning_rate == 0.01  # as given, not 0.009999999776482582
    assert repr(result.best) == "{'learning_rate': 0.01}"


def test_a_best_rate_inside_the_grid_says_nothing():
    result = lrjax.sweep(quadratic_loss, PARAMS, BATCHES, learning_rates=[0.01, 0.3, 3.0])
    assert result.best_learning_rate == 0.3
    assert result.at_edge == {}


def test_rates_given_in_float32_are_the_same_float32_values():
    rates = jnp.logspace(-3, -1, 5)
    with pytest.warns(UserWarning, match="edge|highest|lowest"):
        result = lrjax.sweep(quadratic_loss, PARAMS, BATCHES, learning_rates=rates)
    np.testing.assert_array_equal(result.learning_rates.astype(np.float32), np.asarray(rates))
    # each the shortest decimal that is the given float32: 0.01, not 0.009999999776482582
    assert [float(rate) for rate in result.learning_rates] == [
        float(str(rate)) for rate in np.asarray(rates)
    ]


def test_plot_sweep_names_itself():
    result = lrjax.sweep(quadratic_loss, PARAMS, BATCHES, learning_rates=[0.01, 0.3, 3.0])
    with pytest.raises(ValueError, match=r"^plot_sweep: kind must be one of"):
        plotting.plot_sweep(result, kind="final2")
    with pytest.raises(ValueError, match=r"^SweepResult\.plot: kind must be one of"):
        result.plot(kind="final2")


def test_a_sweep_chosen_by_eval_plots_the_eval_curves():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    result = lrjax.sweep(
        quadratic_loss,
        PARAMS,
        BATCHES,
        learning_rates=[0.01, 0.3, 3.0],
        eval_fn=lambda params: quadratic_loss(params, jnp.full(3, 0.9)),
        eval_every=10,
    )
    ax = result.plot()
    marked = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(marked) == 3  # a held-out curve per rate
    assert [list(line.get_xdata()) for line in marked] == [list(result.eval_steps)] * 3
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "eval_fn (chose the best)" in labels
    matplotlib.pyplot.close(ax.figure)


def test_a_narrow_log_loss_axis_reads_as_plain_numbers():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    # Losses between about 2.6 and 2.9: less than a decade on a log axis.
    with pytest.warns(UserWarning, match="highest value of the grid"):
        result = lrjax.sweep(
            lambda params, batch: 2.6 + 0.3 * jnp.exp(-jnp.sum(params["w"] ** 2)) + 0 * batch[0],
            {"w": jnp.full(3, 0.1)},
            BATCHES,
            learning_rates=[0.01, 0.1, 0.3],
        )
    ax = result.plot(kind="final")
    ax.figure.canvas.draw()
    labels = [tick.get_text() for tick in ax.get_yticklabels(which="both") if tick.get_text()]
    assert labels and not any("10^" in label or "times" in label for label in labels), labels
    matplotlib.pyplot.close(ax.figure)


def test_a_plateau_factor_may_be_a_schedule():
    """A scheduled factor is evaluated at the update that reduces: harder cuts later."""
    factor = schedules.piecewise_constant([5], [0.5, 0.1])
    tx = optax.chain(lrjax.sgd(1.0), lrjax.reduce_on_plateau(factor=factor, patience=0))
    params = jnp.zeros(2)
    state = tx.init(params)
    scales = []
    for _ in range(8):
        _, state = tx.update(jnp.ones(2), state, params, value=jnp.asarray(1.0))
        scales.append(float(lrjax.current_learning_rate(state)))
    # No improvement after the first value: a cut at every later decision.
    assert scales[1] == pytest.approx(0.5) and scales[2] == pytest.approx(0.25)
    assert scales[-1] == pytest.approx(scales[-2] * 0.1)
