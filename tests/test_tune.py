"""tune_learning_rate: the range test, then successive halving on the sweep engine."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import schedules
from lrjax._finding import _tune

# A noisy linear regression: too low a rate leaves w far from w_true after 64 steps,
# too high a rate leaves it jittering in the noise (or diverges).
KEY, NOISE = jax.random.split(jax.random.key(0))
X = jax.random.normal(KEY, (64, 8, 8))
W_TRUE = jnp.linspace(-1.0, 1.0, 8)
BATCHES = (X, X @ W_TRUE + 0.5 * jax.random.normal(NOISE, (64, 8)))
HELD_OUT = jax.random.normal(jax.random.key(1), (256, 8))


def loss_fn(w, batch):
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def eval_fn(w):
    return jnp.mean((HELD_OUT @ (w - W_TRUE)) ** 2)


def scheduled(peak):
    return lrjax.sgd(schedules.warmup(schedules.cosine_decay(peak, 56), 8))


def tune(**kwargs):
    arguments = dict(optimizer=scheduled, eval_fn=eval_fn) | kwargs
    return lrjax.tune_learning_rate(loss_fn, jnp.zeros(8), BATCHES, **arguments)


def test_rounds_halve_and_the_answer_is_the_best_of_the_last():
    result = tune()
    sizes = [len(r.learning_rates) for r in result.rounds]
    assert sizes == [12, 6, 3, 2]
    assert [r.steps for r in result.rounds] == [8, 16, 32, 64]
    for earlier, later in zip(result.rounds, result.rounds[1:], strict=False):
        # The survivors: neighbouring rates around the best, one more above than below.
        best = int(np.argmin(earlier.scores))
        k = len(later.learning_rates)
        low = min(max(best - (k - 1) // 2, 0), len(earlier.scores) - k)
        np.testing.assert_array_equal(later.learning_rates, earlier.learning_rates[low : low + k])
    last = result.rounds[-1]
    assert result.learning_rate == pytest.approx(last.learning_rates[np.argmin(last.scores)])
    assert isinstance(result.learning_rate, float)
    # The bracket: rates √2 apart, up to 4× the range test's suggestion.
    first = result.rounds[0].learning_rates
    assert np.allclose(first[1:] / first[:-1], math.sqrt(2))
    assert first[-1] == pytest.approx(4 * result.finder.suggestion)


@pytest.mark.parametrize("budget", [1.5, 4.0, 7.0])
def test_steps_used_counts_every_update_and_stays_within_the_budget(budget):
    result = tune(budget=budget)
    starts = [0] + [r.steps for r in result.rounds[:-1]]
    search = sum(
        len(r.learning_rates) * (r.steps - s) for r, s in zip(result.rounds, starts, strict=True)
    )
    assert result.steps_used == len(result.finder.losses) + search
    assert search <= budget * 64
    assert result.steps_used <= (budget + 1) * 64


def test_the_chosen_rate_trains_as_well_as_a_fine_grid():
    """Regret against a grid of 33 rates (2^(1/4) apart) of the same protocol."""
    result = tune()
    grid = np.geomspace(1e-3, 1.0, 41)
    sweep = lrjax.sweep(
        loss_fn, jnp.zeros(8), BATCHES, scheduled, learning_rates=grid, eval_fn=eval_fn
    )
    best = np.min(sweep.scores)
    chosen = lrjax.sweep(
        loss_fn,
        jnp.zeros(8),
        BATCHES,
        scheduled,
        learning_rates=[result.learning_rate],
        eval_fn=eval_fn,
    )
    # Evals span 10 orders of magnitude here: regret as a ratio of log-evals.
    assert np.log(chosen.scores[0]) <= np.log(best) + abs(np.log(best)) * 0.1
    assert grid[np.argmin(sweep.scores)] / 2 <= result.learning_rate


def test_a_second_call_compiles_nothing():
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    tune()  # whatever earlier tests compiled
    other = (BATCHES[0] * 1.5, BATCHES[1] * 1.5)
    start = jnp.ones(8)
    jax.block_until_ready((other, start))
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        tune()
        lrjax.tune_learning_rate(loss_fn, start, other, scheduled, eval_fn=eval_fn)
    finally:
        jax.monitoring.clear_event_listeners()
    assert compiles == []


def test_iterable_batches_equal_stacked_ones():
    stacked = tune()
    listed = [jax.tree.map(lambda b, i=i: b[i], BATCHES) for i in range(64)]
    iterated = lrjax.tune_learning_rate(
        loss_fn, jnp.zeros(8), iter(listed), scheduled, eval_fn=eval_fn, num_steps=64
    )
    assert iterated.learning_rate == stacked.learning_rate
    assert iterated.steps_used == stacked.steps_used


def test_without_eval_fn_the_training_loss_chooses():
    result = tune(eval_fn=None)
    assert result.learning_rate is not None
    assert np.all(np.isfinite(result.rounds[-1].scores))


def test_seed_picks_the_range_tests_batches():
    a, b = tune(seed=0), tune(seed=1)
    assert not np.array_equal(a.finder.losses, b.finder.losses)
    assert tune(seed=0).finder.losses.tolist() == a.finder.losses.tolist()


def test_params_are_not_modified_and_a_flax_module_works():
    nnx = pytest.importorskip("flax.nnx")

    class Linear(nnx.Module):
        def __init__(self, rngs):
            self.layer = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.layer(x)[..., 0]

    model = Linear(nnx.Rngs(0))
    before = np.asarray(model.layer.kernel[...]).copy()
    result = lrjax.tune_learning_rate(
        lambda m, batch: jnp.mean((m(batch[0]) - batch[1]) ** 2),
        model,
        BATCHES,
        scheduled,
        eval_fn=lambda m: jnp.mean((m(HELD_OUT) - HELD_OUT @ W_TRUE) ** 2),
    )
    assert result.learning_rate is not None
    np.testing.assert_array_equal(np.asarray(model.layer.kernel[...]), before)


def test_a_mesh_gives_the_same_answer():
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    assert tune(mesh=mesh).learning_rate == tune().learning_rate


def test_every_rate_diverging_gives_none_and_a_warning():
    # Gradients of 1e30: every rate of the bracket overflows float32.
    huge = lambda w, batch: 1e30 * jnp.sum(w**2) + 0.0 * loss_fn(w, batch)
    with pytest.warns(UserWarning, match="tune_learning_rate"):
        result = lrjax.tune_learning_rate(huge, jnp.ones(8), BATCHES, scheduled)
    assert result.learning_rate is None


def test_plot_draws_the_range_test_and_every_rung():
    plt = pytest.importorskip("matplotlib.pyplot")
    result = tune()
    finder_ax, rungs_ax = result.plot()
    assert finder_ax.get_title() == "learning-rate range test"
    assert len([line for line in rungs_ax.get_lines() if line.get_marker() == "o"]) == 4
    assert f"chosen: {result.learning_rate:.3g}" in [
        t.get_text() for t in rungs_ax.get_legend().get_texts()
    ]
    with pytest.raises(ValueError, match=r"TuneResult\.plot: axes must be two"):
        result.plot(axes=finder_ax)
    plt.close("all")


def test_the_range_test_ramps_the_peak_of_a_scheduled_factory():
    """PeakRamp rebuilds the factory at every step with that step's rate."""
    seen = []

    def factory(rate):
        seen.append(rate)
        return optax.sgd(rate)

    tx = _tune.PeakRamp(factory)(lambda step: 0.1 * (jnp.asarray(step, jnp.float32) + 1))
    state = tx.init(jnp.zeros(2))
    updates, state = tx.update(jnp.ones(2), state)
    updates, state = tx.update(jnp.ones(2), state)
    np.testing.assert_allclose(updates, [-0.2, -0.2])
    assert _tune.PeakRamp(factory) == _tune.PeakRamp(factory)


BAD = [
    ({"budget": 0}, "budget must be > 0, got 0"),
    ({"budget": -1.0}, "budget must be > 0, got -1.0"),
    ({"budget": float("nan")}, "budget must be finite in float32, got nan"),
    ({"budget": "4"}, "budget must be a real number"),
    ({"budget": True}, "budget must be a real number (Python or NumPy scalar, 0-d array"),
    ({"budget": None}, "budget must be a real number"),
    ({"budget": [4]}, "budget must be a real number"),
    ({"seed": True}, "seed must be a concrete integer >= 0, got True"),
    ({"seed": None}, "seed must be a concrete integer >= 0, got None"),
    ({"num_steps": "8"}, "num_steps must be a concrete integer >= 8, got '8'"),
    ({"budget": 1.0}, "budget must allow the smallest search (2 rates, 1.12 full runs), got 1.0"),
    ({"num_steps": 4}, "num_steps must be an integer >= 8, got 4"),
    ({"num_steps": 10.0}, "num_steps must be a concrete integer >= 8, got 10.0"),
    ({"num_steps": 100}, "the stacked batches hold 64 steps, fewer than num_steps=100"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"seed": 1.5}, "seed must be a concrete integer >= 0, got 1.5"),
    ({"eval_fn": 3}, "eval_fn must be a function eval_fn(params) -> scalar"),
    ({"mesh": "cpu"}, "mesh must be a jax.sharding.Mesh, got 'cpu'"),
    ({"progress": "yes"}, "progress must be True or False"),
    ({"min_lr": 0.0}, "min_lr must be > 0, got 0.0"),
    ({"max_lr": 1e-8}, "max_lr must be > min_lr=1e-07, got 1e-08"),
    ({"optimizer": lrjax.sgd(0.1)}, "optimizer must be"),
    ({"batches": None}, "batches is required"),
    ({"batches": [BATCHES]}, "num_steps is required when batches is an iterable"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD, ids=[f"{next(iter(c))}-{i}" for i, (c, _) in enumerate(BAD)]
)
def test_bad_arguments_are_named(change, message):
    arguments = dict(loss_fn=loss_fn, params=jnp.zeros(8), batches=BATCHES) | change
    with pytest.raises(ValueError, match=r"^tune_learning_rate: ") as raised:
        lrjax.tune_learning_rate(**arguments)
    assert str(raised.value).startswith("tune_learning_rate: ")
    assert message in str(raised.value), str(raised.value)


def test_user_errors_name_tune_learning_rate():
    with pytest.raises(TypeError, match="tune_learning_rate: calling loss_fn as loss_fn"):
        lrjax.tune_learning_rate(lambda w: w.sum(), jnp.zeros(8), BATCHES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="tune_learning_rate: calling eval_fn as eval_fn"):
            tune(eval_fn=lambda w, batch: w.sum())
