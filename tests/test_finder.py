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
    assert result.suggestion == result.suggestions["steepest"]
    # The curve ends at the stop and its rates grow geometrically from min_lr.
    assert len(result.learning_rates) == result.divergence_step + 1
    ratios = result.learning_rates[1:] / result.learning_rates[:-1]
    np.testing.assert_allclose(ratios, (10.0 / 1e-7) ** (1 / (num_steps - 1)), rtol=1e-4)
    assert result.learning_rates[0] == pytest.approx(1e-7)


def test_iterable_and_scan_give_the_same_curve():
    batches = quadratic_batches(120)
    stacked = lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, batches, num_steps=120)
    looped = lrjax.find_learning_rate(
        quadratic_loss, QUADRATIC_START, list(batches), num_steps=120, progress=True
    )
    np.testing.assert_allclose(looped.losses, stacked.losses, rtol=1e-5)
    np.testing.assert_allclose(looped.smoothed_losses, stacked.smoothed_losses, rtol=1e-5)
    np.testing.assert_allclose(looped.learning_rates, stacked.learning_rates)
    assert looped.divergence_step == stacked.divergence_step
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
        result = lrjax.find_learning_rate(loss, QUADRATIC_START, data, num_steps=100)
        assert result.diverged and result.divergence_step == 60
        assert len(result.losses) == 60 and np.all(np.isfinite(result.losses))
        assert all(np.isfinite(r) for r in result.suggestions.values() if r is not None)


def test_a_curve_too_short_gives_no_suggestion():
    """Divergence at once (min_lr far too high): no suggestion, rather than a bad one."""
    result = lrjax.find_learning_rate(
        quadratic_loss,
        QUADRATIC_START,
        quadratic_batches(50),
        min_lr=5.0,
        max_lr=50.0,
        num_steps=50,
    )
    assert result.diverged and result.divergence_step < 5
    assert result.suggestion is None
    assert result.suggestions == {"steepest": None, "valley": None, "minimum": None}


def test_params_are_not_modified_and_any_factory_works():
    params = {"w": jnp.ones(20, jnp.float32)}
    before = jax.tree.map(np.array, params)
    factory = lambda lr: optax.chain(optax.clip_by_global_norm(10.0), lrjax.sgd(lr, momentum=0.5))
    result = lrjax.find_learning_rate(
        lambda p, b: quadratic_loss(p["w"], b), params, quadratic_batches(100), factory
    )
    assert result.suggestion is not None and result.suggestion < STABLE_LIMIT
    np.testing.assert_array_equal(params["w"], before["w"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(min_lr=0.0), r"find_learning_rate: min_lr must be finite and > 0, got 0.0"),
        (dict(min_lr=1.0, max_lr=0.5), r"find_learning_rate: max_lr must be > min_lr=1.0, got 0.5"),
        (dict(num_steps=1), r"find_learning_rate: num_steps must be an integer >= 2, got 1"),
        (dict(mode="log"), r"mode must be one of 'exponential', 'linear', got 'log'"),
        (dict(smoothing=1.0), r"find_learning_rate: smoothing must be in \[0, 1\), got 1.0"),
        (dict(divergence_threshold=1.0), r"divergence_threshold must be > 1, got 1.0"),
        (dict(num_steps=500), r"the stacked batches hold 100 steps, fewer than num_steps=500"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lrjax.find_learning_rate(quadratic_loss, QUADRATIC_START, quadratic_batches(100), **kwargs)


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
