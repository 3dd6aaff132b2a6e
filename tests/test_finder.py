"""find_learning_rate: the range test, on problems whose answer is known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import (
    QUADRATIC_START,
    STABLE_LIMIT,
    accuracy,
    digits_batches,
    mlp_init,
    mlp_loss,
    quadratic_batches,
    quadratic_loss,
)

import lrjax


@pytest.mark.parametrize("num_steps", [100, 300])
def test_quadratic_suggestions_lie_in_the_stable_region(num_steps):
    result = lrjax.find_learning_rate(
        quadratic_loss, QUADRATIC_START, quadratic_batches(num_steps), num_steps=num_steps
    )
    assert result.diverged
    # Divergence can only be seen past the stability limit; the smoothing's lag puts the
    # detected point at most a few times beyond it.
    assert STABLE_LIMIT <= result.divergence_learning_rate <= 5 * STABLE_LIMIT
    for name, rate in result.suggestions.items():
        assert rate is not None and 1e-3 < rate < STABLE_LIMIT, name
    assert result.suggestion == result.suggestions["bottom"]
    # The curve ends at the stop and its rates grow geometrically from min_lr.
    assert len(result.learning_rates) == result.divergence_step + 1
    ratios = result.learning_rates[1:] / result.learning_rates[:-1]
    np.testing.assert_allclose(ratios, (10.0 / 1e-7) ** (1 / (num_steps - 1)), rtol=1e-4)
    assert result.learning_rates[0] == pytest.approx(1e-7)


def test_iterable_and_scan_give_the_same_curve():
    batches = quadratic_batches(120)
    stacked = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches, num_steps=120)
    looped = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, list(batches), num_steps=120)
    np.testing.assert_allclose(looped.losses, stacked.losses, rtol=1e-5)
    np.testing.assert_allclose(looped.smoothed_losses, stacked.smoothed_losses, rtol=1e-5)
    np.testing.assert_allclose(looped.learning_rates, stacked.learning_rates)
    assert looped.divergence_step == stacked.divergence_step
    assert stacked.suggestion is not None
    assert looped.suggestions == pytest.approx(stacked.suggestions)


def test_the_loop_stops_consuming_batches_at_divergence():
    seen = []

    def batches():
        for i, batch in enumerate(quadratic_batches(200)):
            seen.append(i)
            yield batch

    result = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches(), num_steps=200)
    assert result.diverged and len(seen) == result.divergence_step + 1 < 200


def test_linear_mode():
    result = lrjax.find_learning_rate(
        quadratic_loss,
        QUADRATIC_START,
        quadratic_batches(100),
        min_lr=1e-3,
        max_lr=1.0,
        num_steps=100,
        mode="linear",
    )
    np.testing.assert_allclose(np.diff(result.learning_rates), (1.0 - 1e-3) / 99, rtol=1e-4)
    assert result.suggestion is not None and result.suggestion < STABLE_LIMIT


def test_a_loss_that_turns_nan_midway_is_handled():
    """NaN never crashes, never enters the curve, never becomes a suggestion."""

    def loss(params, batch):
        step, targets = batch
        return jnp.where(step >= 60, jnp.nan, quadratic_loss(params, targets))

    batches = (jnp.arange(100), quadratic_batches(100))
    for data in (batches, list(zip(*batches, strict=True))):
        result = lrjax.find_learning_rate(loss, QUADRATIC_START, data, min_lr=1e-4)
        assert result.diverged and result.divergence_step == 60
        assert len(result.losses) == 60 and np.all(np.isfinite(result.losses))
        assert np.all(np.isfinite(result.smoothed_losses))
        # The 60 finite steps hold a descent: the suggestions exist, and are finite.
        assert result.suggestion is not None
        assert all(np.isfinite(r) for r in result.suggestions.values() if r is not None)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
def test_a_loss_that_is_not_finite_from_the_first_step(value, stacked):
    """Before any update the rate cannot be the cause: a bug in the loss, said so."""
    loss = lambda params, batch: value * quadratic_loss(params, batch)
    batches = quadratic_batches(20)
    with pytest.raises(ValueError, match="at the first step") as raised:
        lrjax.find_learning_rate(
            loss, QUADRATIC_START, batches if stacked else list(batches), num_steps=20
        )
    assert str(raised.value) == (
        f"find_learning_rate: loss_fn returned {float(value * np.inf)} at the first step, "
        "before any update (rate 1e-07): a bug in the loss or the data, not a learning "
        "rate; check loss_fn(params, batch) on the first batch"
    )


def test_a_nan_in_a_batch_stops_the_test_at_that_step():
    batches = np.array(quadratic_batches(100))
    batches[40, 3] = np.nan
    with pytest.warns(UserWarning, match="no suggestion: the loss does not fall"):
        result = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches)
    assert result.diverged and result.divergence_step == 40 and len(result.losses) == 40


def test_a_negative_loss_is_not_divergence():
    """A loss shifted below 0 (a log-likelihood) stops as the positive one does, where
    ``threshold × min`` would lie below a negative minimum and stop at once."""
    batches = quadratic_batches(100)
    shifted = lambda params, batch: quadratic_loss(params, batch) - 100.0
    positive = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches)
    negative = lrjax.find_learning_rate(shifted, QUADRATIC_START, batches)
    assert np.all(negative.smoothed_losses[:-1] < 0) and negative.divergence_step > 50
    assert STABLE_LIMIT <= negative.divergence_learning_rate <= 5 * STABLE_LIMIT
    assert negative.suggestion is not None and negative.suggestion < STABLE_LIMIT
    np.testing.assert_allclose(negative.losses[:50], positive.losses[:50] - 100.0, rtol=1e-5)


def test_a_curve_too_short_gives_no_suggestion():
    """Divergence at once (min_lr far too high): no suggestion, rather than a bad one."""
    with pytest.warns(UserWarning, match="find_learning_rate: no suggestion: the curve has"):
        result = lrjax.find_learning_rate(
            quadratic_loss,
            QUADRATIC_START,
            quadratic_batches(50),
            min_lr=5.0,
            max_lr=50.0,
            num_steps=50,
        )
    assert result.diverged and result.divergence_step < 5
    assert result.suggestion is None and "lower min_lr" in result.reason
    assert set(result.suggestions.values()) == {None}


@pytest.mark.parametrize("stacked", [True, False])
def test_a_loss_that_does_not_fall_gives_no_suggestion_and_says_why(stacked):
    flat = lambda params, batch: 1.0 + 0.0 * quadratic_loss(params, batch)
    batches = quadratic_batches(100)
    with pytest.warns(UserWarning, match="no suggestion: the loss does not fall"):
        result = lrjax.find_learning_rate(
            flat, QUADRATIC_START, batches if stacked else list(batches)
        )
    assert result.suggestion is None and result.suggestions["bottom"] is None
    assert result.reason.startswith("the loss does not fall")


def test_a_loss_that_turns_nan_while_falling_keeps_the_suggestion_off_the_cliff():
    """A loss that falls to the last finite step and then is NaN: the suggestion stays
    at most a quarter of the rate of the NaN (never next to it)."""

    first = quadratic_loss(QUADRATIC_START, quadratic_batches(1)[0])

    def falling(params, batch):
        loss = quadratic_loss(params, batch)
        return jnp.where(loss < 0.3 * first, jnp.nan, loss)

    result = lrjax.find_learning_rate(falling, QUADRATIC_START, quadratic_batches(100))
    assert result.diverged
    assert np.all(np.diff(result.smoothed_losses[-10:]) < 0)  # still falling at the end
    assert result.suggestion <= result.divergence_learning_rate / 4
    gap = np.searchsorted(result.learning_rates, result.suggestion)
    assert len(result.learning_rates) - gap >= 5


@pytest.mark.parametrize("stacked", [True, False], ids=["scan", "loop"])
def test_params_are_not_modified_and_any_factory_works(stacked):
    """JAX arrays are immutable, so "not modified" means: no leaf is donated (deleted), a
    NumPy leaf (whose memory JAX may share on CPU) keeps its values, the pytree itself
    is not mutated, and the same params give the same curve again."""
    w, b = np.ones(20, np.float32), jnp.zeros(20, jnp.float32)
    params = {"w": w, "b": b}
    loss = lambda p, batch: quadratic_loss(p["w"] + p["b"], batch)
    factory = lambda lr: optax.chain(optax.clip_by_global_norm(10.0), lrjax.sgd(lr, momentum=0.5))
    batches = quadratic_batches(100)
    runs = [
        lrjax.find_learning_rate(loss, params, batches if stacked else list(batches), factory)
        for _ in range(2)
    ]
    assert runs[0].suggestion is not None and runs[0].suggestion < STABLE_LIMIT
    assert list(params) == ["w", "b"] and params["w"] is w and params["b"] is b
    assert not b.is_deleted()
    np.testing.assert_array_equal(w, np.ones(20, np.float32))
    np.testing.assert_array_equal(b, np.zeros(20, np.float32))
    np.testing.assert_array_equal(runs[1].losses, runs[0].losses)


def test_calling_again_does_not_recompile():
    """Same loss_fn, optimizer and shapes: the compiled test is reused whatever the rates,
    mode, smoothing and threshold (the loss is traced once per compilation)."""
    traces = []

    def loss(params, batch):
        traces.append(None)
        return quadratic_loss(params, batch)

    batches = quadratic_batches(50)
    settings = [
        dict(),
        dict(min_lr=1e-3, max_lr=1.0, mode="linear", smoothing=0.5),
        dict(divergence_threshold=2.0, smoothing=0),
    ]
    for kwargs in settings:
        lrjax.find_learning_rate(loss, QUADRATIC_START, batches, num_steps=50, **kwargs)
    assert len(traces) == 1
    for kwargs in settings:
        lrjax.find_learning_rate(loss, QUADRATIC_START, list(batches), num_steps=50, **kwargs)
    assert len(traces) == 2


def test_progress_draws_a_bar(capsys):
    batches = list(quadratic_batches(30))
    lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches, num_steps=30, progress=True)
    assert "range test" in capsys.readouterr().err


def test_a_wide_ramp_is_the_exact_geometric_ramp():
    """1e-30 … 1e30 is a valid range (no inner schedule's limit reaches the user); the
    rates are the float32 rounding of the exact ramp."""
    flat = lambda params, batch: 0.0 * quadratic_loss(params, batch)
    with pytest.warns(UserWarning, match="no suggestion: the loss does not fall"):
        result = lrjax.find_learning_rate(
            flat, QUADRATIC_START, quadratic_batches(61), min_lr=1e-30, max_lr=1e30, num_steps=61
        )
    assert not result.diverged
    exact = np.logspace(-30, 30, 61).astype(np.float32)
    np.testing.assert_array_equal(result.learning_rates, exact)


def test_an_iterable_that_runs_out():
    with pytest.raises(ValueError, match="batches ran out after 30 of num_steps=100"):
        lrjax.find_learning_rate(
            quadratic_loss, QUADRATIC_START, list(quadratic_batches(30)), min_lr=1e-9, max_lr=1e-6
        )


@pytest.mark.parametrize("optimizer", [lrjax.adam, lambda lr: lrjax.sgd(lr, momentum=0.9)])
def test_the_suggestion_trains_an_mlp_on_digits(optimizer):
    """A small real case: the suggested rate, used for 300 steps, classifies well."""
    params = mlp_init(seed=1)
    batches = digits_batches(300, seed=1)
    result = lrjax.find_learning_rate(mlp_loss, params, batches, optimizer, num_steps=100)
    assert result.suggestion is not None
    tx = optimizer(result.suggestion)

    def step(carry, batch):
        params, state = carry
        updates, state = tx.update(jax.grad(mlp_loss)(params, batch), state, params)
        return (optax.apply_updates(params, updates), state), None

    (trained, _), _ = jax.lax.scan(step, (params, tx.init(params)), batches)
    assert accuracy(trained) > 0.93


def test_the_largest_stable_rate_is_marked_when_asked():
    """On a quadratic with Hessian diag(a), gradient descent is stable below 2/max(a)."""
    a = jnp.array([0.5, 2.0, 8.0])
    loss = lambda w, batch: 0.5 * jnp.sum(a * (w - batch) ** 2)
    batches = jnp.zeros((60, 3))
    plain = lrjax.find_learning_rate(loss, jnp.ones(3), batches, num_steps=60)
    assert plain.sharpness is None and plain.stable_rate is None
    for given in (batches, list(batches)):
        result = lrjax.find_learning_rate(loss, jnp.ones(3), given, num_steps=60, stable_rate=True)
        assert result.sharpness == pytest.approx(8.0, rel=1e-5)
        assert result.stable_rate == pytest.approx(0.25, rel=1e-5)
        np.testing.assert_array_equal(result.losses, plain.losses)  # the test is unchanged
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = result.plot()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "2/λ_max: 0.25 (stable for GD)" in labels
    matplotlib.pyplot.close(ax.figure)
    with pytest.raises(ValueError, match=r"^find_learning_rate: stable_rate must be True or"):
        lrjax.find_learning_rate(loss, jnp.ones(3), batches, num_steps=60, stable_rate="yes")
