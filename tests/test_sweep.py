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
    assert result.best_learning_rate == pytest.approx(0.19)
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(learning_rates=[]), r"sweep: learning_rates must be a non-empty 1-D sequence"),
        (dict(learning_rates=[0.1, -0.1]), r"sweep: learning_rates must be finite and > 0"),
        (dict(learning_rates=[0.1], num_steps=0), r"sweep: num_steps must be an integer >= 1"),
        (dict(learning_rates=[0.1], num_steps=99), r"hold 50 steps, fewer than num_steps=99"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lrjax.sweep(quadratic_loss, QUADRATIC_START, quadratic_batches(50), **kwargs)


def test_an_iterable_needs_num_steps():
    with pytest.raises(ValueError, match="num_steps is required when batches is an iterable"):
        lrjax.sweep(
            quadratic_loss, QUADRATIC_START, list(quadratic_batches(5)), learning_rates=[0.1]
        )
