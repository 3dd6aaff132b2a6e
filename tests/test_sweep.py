"""sweep: K learning rates trained in one compiled program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import QUADRATIC_START, STABLE_LIMIT, quadratic_batches, quadratic_loss

import lrjax
from lrjax import schedules

RATES = [0.01, 0.03, 0.1, 0.15, 0.19, 0.25, 0.5]


def single_run(optimizer, rate, batches, loss=quadratic_loss):
    tx = optimizer(rate)

    def step(carry, batch):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, batch)
        updates, state = tx.update(grads, state, params)
        return (jax.tree.map(jnp.add, params, updates), state), value

    _, losses = jax.jit(
        lambda: jax.lax.scan(step, (QUADRATIC_START, tx.init(QUADRATIC_START)), batches)
    )()
    return np.asarray(losses)


def test_best_rate_is_the_fastest_stable_one():
    """Noise-free quadratic: every rate below 2/L converges, faster the larger it is;
    every rate above diverges."""
    batches = jnp.zeros((300, 20), jnp.float32)
    result = lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, learning_rates=RATES)
    rates = np.asarray(RATES)
    np.testing.assert_array_equal(result.diverged, rates > STABLE_LIMIT)
    # The rate as given, not its float32 rounding (0.1899999976158142).
    assert result.best_learning_rate == 0.19 and result.best_learning_rate in RATES
    assert result.learning_rates.tolist() == RATES
    assert np.all(np.isinf(result.final_losses[result.diverged]))
    stable = result.final_losses[~result.diverged]
    assert np.all(np.diff(stable) < 0)  # faster the larger the rate
    assert result.losses.shape == (len(RATES), 300)


@pytest.mark.parametrize(
    "optimizer",
    [
        lrjax.sgd,
        lambda lr: lrjax.adam(lr, b1=0.8),
        lambda lr: lrjax.adam(schedules.warmup(schedules.cosine_decay(lr, 80), 20)),
        lambda lr: lrjax.rmsprop(schedules.one_cycle(lr, 100), momentum=0.5),
    ],
    ids=["sgd", "adam", "adam_warmup_cosine", "rmsprop_one_cycle"],
)
@pytest.mark.filterwarnings("ignore:.* value of the grid; the best may lie beyond it.*:UserWarning")
def test_each_run_equals_its_separate_run(optimizer):
    """vmap over the rate changes nothing: any factory, any schedule built from it."""
    batches = quadratic_batches(100)
    rates = [1e-3, 1e-2, 0.05]
    result = lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, optimizer, learning_rates=rates)
    for i, rate in enumerate(rates):
        np.testing.assert_allclose(
            result.losses[i], single_run(optimizer, rate, batches), rtol=2e-5, atol=1e-7
        )


def test_diverged_runs_never_poison_the_others():
    """A loss that turns NaN for a large rate: that run is reported, the others are
    what they are without it (to the last bit but for the order XLA sums in, which may
    change with the batch size K)."""

    def loss(params, batch):
        value = quadratic_loss(params, batch)
        return jnp.where(value > 1e3, jnp.nan, value)

    batches = quadratic_batches(200)
    everything = lrjax.sweep(loss, QUADRATIC_START, batches, learning_rates=[0.05, 0.1, 0.4, 1.0])
    clean = lrjax.sweep(loss, QUADRATIC_START, batches, learning_rates=[0.05, 0.1])
    np.testing.assert_array_equal(everything.diverged, [False, False, True, True])
    np.testing.assert_allclose(everything.losses[:2], clean.losses, rtol=1e-6)
    assert everything.best_learning_rate == clean.best_learning_rate
    first_nan = np.argmax(np.isnan(everything.losses[2]))
    assert first_nan > 0 and np.all(np.isnan(everything.losses[2, first_nan:]))


def test_all_diverged_gives_no_best_rate():
    result = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, jnp.zeros((300, 20)), learning_rates=[1.0, 2.0]
    )
    assert result.diverged.all() and result.best_learning_rate is None


def test_iterable_batches_and_progress_give_the_same_result():
    batches = quadratic_batches(60)
    stacked = lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, learning_rates=[0.01, 0.1])
    listed = lrjax.sweep(
        quadratic_loss,
        QUADRATIC_START,
        list(batches),
        learning_rates=[0.01, 0.1],
        num_steps=60,
        progress=True,
    )
    np.testing.assert_allclose(listed.losses, stacked.losses, rtol=1e-6)
    shorter = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, batches, learning_rates=[0.01, 0.1], num_steps=25
    )
    np.testing.assert_allclose(shorter.losses, stacked.losses[:, :25], rtol=1e-6)


def test_an_iterable_needs_num_steps():
    with pytest.raises(ValueError, match="num_steps is required when batches is an iterable"):
        lrjax.sweep(
            quadratic_loss, QUADRATIC_START, list(quadratic_batches(5)), learning_rates=[0.1]
        )


def test_iterable_batches_must_stack():
    batches = [jnp.zeros(20), jnp.zeros(20), jnp.zeros(19)]
    with pytest.raises(
        ValueError, match=r"^sweep: batches must all have the structure.*batch 2 differs"
    ):
        lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, learning_rates=[0.1], num_steps=3)


def test_rates_given_as_float32_are_reported_as_given():
    rates = np.asarray([0.01, 0.1, 0.15], np.float32)
    with pytest.warns(UserWarning, match="the best learning_rate, 0.15, is the highest"):
        result = lrjax.sweep(
            quadratic_loss, QUADRATIC_START, jnp.zeros((20, 20)), learning_rates=rates
        )
    assert result.learning_rates.dtype == np.float64
    # The same float32 values, each as the shortest decimal that is it: 0.01, not
    # 0.009999999776482582.
    np.testing.assert_array_equal(result.learning_rates.astype(np.float32), rates)
    assert list(result.learning_rates) == [0.01, 0.1, 0.15]
    assert result.best_learning_rate == 0.15 and np.float32(result.best_learning_rate) in rates


def test_a_nan_in_a_batch_is_reported_not_hidden():
    """Every run sees the batch: all diverge at that step, finite before it."""
    batches = np.array(quadratic_batches(30))
    batches[12, 0] = np.nan
    result = lrjax.sweep(quadratic_loss, QUADRATIC_START, batches, learning_rates=[0.01, 0.1])
    assert result.diverged.all() and result.best_learning_rate is None
    assert np.all(np.isfinite(result.losses[:, :12])) and np.all(np.isnan(result.losses[:, 12:]))
    assert np.all(np.isinf(result.final_losses))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_loss_that_is_not_finite_from_the_first_step(value):
    loss = lambda params, batch: value * quadratic_loss(params, batch)
    result = lrjax.sweep(loss, QUADRATIC_START, quadratic_batches(10), learning_rates=[0.1, 1.0])
    assert result.diverged.all() and np.all(np.isnan(result.losses))
    assert result.best_learning_rate is None


def test_params_are_not_modified():
    """No leaf donated (deleted), a NumPy leaf keeps its values, the pytree is not
    mutated, and the same params give the same losses again."""
    w, b = np.ones(20, np.float32), jnp.zeros(20, jnp.float32)
    params = {"w": w, "b": b}
    loss = lambda p, batch: quadratic_loss(p["w"] + p["b"], batch)
    runs = [
        lrjax.sweep(loss, params, quadratic_batches(30), learning_rates=[0.01, 0.1])
        for _ in range(2)
    ]
    assert list(params) == ["w", "b"] and params["w"] is w and params["b"] is b
    assert not b.is_deleted()
    np.testing.assert_array_equal(w, np.ones(20, np.float32))
    np.testing.assert_array_equal(b, np.zeros(20, np.float32))
    np.testing.assert_array_equal(runs[1].losses, runs[0].losses)


def test_calling_again_does_not_recompile():
    """Same loss_fn, optimizer, shapes and number of rates: the first call traces the
    program (and the two strategies it times), the later ones nothing."""
    traces = []

    def loss(params, batch):
        traces.append(None)
        return quadratic_loss(params, batch)

    counts = []
    for rates in ([0.01, 0.1], [0.03, 0.3], np.asarray([1e-3, 1.0])):
        lrjax.sweep(loss, QUADRATIC_START, quadratic_batches(20), learning_rates=rates)
        counts.append(len(traces))
    assert counts == [3, 3, 3]


@pytest.mark.filterwarnings("ignore:sweep. the best learning_rate.*:UserWarning")
def test_the_strategy_is_timed_once_and_batch_size_overrides_it(monkeypatch):
    from lrjax._finding import _sweep_program

    timed = []
    measure = _sweep_program._measure
    monkeypatch.setattr(_sweep_program, "_fastest", {})
    monkeypatch.setattr(
        _sweep_program, "_measure", lambda *args: timed.append(args[4]) or measure(*args)
    )
    rates = [0.01, 0.03, 0.1]
    first = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(30), learning_rates=rates
    )
    again = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(30), learning_rates=rates
    )
    assert timed == [3]  # once, choosing between 1 and all 3 runs at once
    assert next(iter(_sweep_program._fastest.values())) in (1, 3)
    given = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(30), learning_rates=rates, batch_size=2
    )
    assert timed == [3]
    for other in (again, given):
        np.testing.assert_allclose(other.losses, first.losses, rtol=1e-6)


def test_progress_draws_a_bar(capsys):
    lrjax.sweep(
        quadratic_loss, QUADRATIC_START, quadratic_batches(40), learning_rates=[0.1], progress=True
    )
    assert "sweep of 1 run" in capsys.readouterr().err
