"""reduce_on_plateau: torch's ReduceLROnPlateau semantics, as a composable transformation."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_torch

import lrjax
from lrjax import schedules

BASE_LR = 0.1

SETTINGS = [
    dict(),
    dict(patience=0),
    dict(patience=3, cooldown=2),
    dict(patience=2, threshold=0.05, threshold_mode="abs"),
    dict(patience=1, threshold=0.02, threshold_mode="rel", factor=0.5),
    dict(patience=2, mode="max"),
    dict(patience=1, mode="max", threshold_mode="abs", threshold=0.01, cooldown=1),
    dict(patience=1, factor=0.3, min_scale=0.05),
    dict(patience=0, factor=0.5, min_scale=0.2, cooldown=3),
]


def metric_sequence(seed: int, length: int, mode: str) -> np.ndarray:
    """A noisy loss curve that improves, plateaus and gets worse, in float32 values."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate(
        [
            np.linspace(1.0, 0.3, length // 3),
            np.full(length // 3, 0.3),
            np.linspace(0.3, 0.5, length - 2 * (length // 3)),
        ]
    )
    values = trend + rng.normal(0.0, 0.02, length)
    values = values if mode == "min" else 1.0 - values
    return values.astype(np.float32)


def torch_rates(settings: dict, metrics: np.ndarray) -> list[float]:
    torch = import_torch()
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=BASE_LR)
    kwargs = {k: v for k, v in settings.items() if k != "min_scale"}
    kwargs["min_lr"] = BASE_LR * settings.get("min_scale", 0.0)
    # torch's eps (skip reductions smaller than eps) has no counterpart in lrjax.
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, eps=0.0, **kwargs)
    rates = []
    for value in metrics:
        optimizer.step()
        scheduler.step(float(value))
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def lrjax_rates(settings: dict, metrics: np.ndarray, accumulation_steps: int = 1):
    tx = optax.chain(
        lrjax.sgd(BASE_LR),
        lrjax.reduce_on_plateau(**settings, accumulation_steps=accumulation_steps),
    )
    params = jnp.zeros(1)

    def step(state, value):
        updates, state = tx.update(jnp.ones(1), state, params, value=value)
        return state, (lrjax.current_learning_rate(state), -updates[0])

    _, (rates, applied) = jax.lax.scan(step, tx.init(params), jnp.asarray(metrics))
    return np.asarray(rates), np.asarray(applied)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_matches_torch(settings, seed):
    metrics = metric_sequence(seed, 150, settings.get("mode", "min"))
    expected = torch_rates(settings, metrics)
    rates, applied = lrjax_rates(settings, metrics)
    # torch's rates are float64; ours float32, which flushes rates below ~1e-38 to zero.
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-30)
    # The update that receives v_t already applies the scale decided after v_t.
    np.testing.assert_allclose(applied, expected, rtol=1e-5, atol=1e-30)
    assert np.min(expected) < BASE_LR, "the sequence must trigger at least one reduction"


@pytest.mark.parametrize("seed", [0, 1])
def test_accumulation_averages_an_epoch(seed):
    """k values per decision == torch stepped once per epoch on the epoch's mean."""
    k, settings = 4, dict(patience=1, factor=0.5)
    per_step = metric_sequence(seed, 160, "min")
    epochs = per_step.reshape(-1, k).astype(np.float64).mean(axis=1)
    expected = np.repeat(torch_rates(settings, epochs), k)
    rates, _ = lrjax_rates(settings, per_step, accumulation_steps=k)
    # After update i, (i + 1) // k decisions have been made; before the first, the base rate.
    decisions = (np.arange(len(rates)) + 1) // k
    want = np.where(decisions == 0, BASE_LR, expected[np.maximum(decisions * k - 1, 0)])
    np.testing.assert_allclose(rates, want, rtol=1e-5)
    assert np.min(want) < BASE_LR


def test_non_finite_values_are_no_improvement():
    settings = dict(patience=2)
    clean = np.array([1.0, 0.9, 0.8, 0.85, 0.85, 0.7, 0.7], np.float32)
    dirty = clean.copy()
    dirty[[1, 4]] = [np.nan, -np.inf]
    rates, _ = lrjax_rates(settings, dirty)
    tx = lrjax.reduce_on_plateau(**settings)
    state = tx.init(jnp.zeros(1))
    for value in dirty:
        _, state = tx.update(jnp.zeros(1), state, value=value)
    assert np.isfinite(float(state.best)) and float(state.best) == pytest.approx(0.7)
    chex.assert_tree_all_finite(state)
    # NaN and -inf count as bad steps: the same rates as if they were "no better" values.
    as_bad = clean.copy()
    as_bad[[1, 4]] = [2.0, 2.0]
    expected, _ = lrjax_rates(settings, as_bad)
    np.testing.assert_allclose(rates, expected)


def test_missing_value_is_a_clear_error():
    tx = optax.chain(lrjax.adam(1e-3), lrjax.reduce_on_plateau())
    state = tx.init(jnp.zeros(2))
    with pytest.raises(ValueError, match="reduce_on_plateau: update needs the monitored metric"):
        tx.update(jnp.ones(2), state, jnp.zeros(2))


def test_composes_with_a_schedule_under_jit():
    """Effective rate = schedule × scale, for any method; one compiled step."""
    schedule = schedules.warmup(schedules.cosine_decay(1e-2, 200), 20)
    tx = optax.chain(lrjax.adam(schedule), lrjax.reduce_on_plateau(patience=3, factor=0.5))
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state, value):
        traces.append(1)
        updates, state = tx.update({"w": jnp.ones(3)}, state, params, value=value)
        return optax.apply_updates(params, updates), state

    values = [1.0, 0.5] + [0.6] * 10
    for t, value in enumerate(values):
        params, state = step(params, state, value)
        scale = float(state[1].scale)
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(
            float(schedule(t)) * scale, rel=1e-6
        )
    assert len(traces) == 1
    assert float(state[1].scale) == 0.25  # two reductions: after 4 and 8 bad steps


def test_factor_and_floor_are_settable():
    tx = lrjax.reduce_on_plateau(patience=0, factor=0.5)
    state = lrjax.set_hyperparams(tx.init(jnp.zeros(1)), factor=0.1, min_scale=0.05)
    for value in [1.0, 2.0, 2.0, 2.0]:
        _, state = tx.update(jnp.zeros(1), state, value=value)
    assert float(state.scale) == pytest.approx(0.05)
