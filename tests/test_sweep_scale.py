"""sweep at scale: grids of hyperparameters, seeds, held-out evaluation, the execution
strategy (batch_size) and the split over a mesh (in a subprocess with fake devices)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest
from problems import QUADRATIC_START, quadratic_batches, quadratic_loss

import lrjax

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BATCHES = quadratic_batches(40)
GRID = {"learning_rate": [0.03, 0.1], "momentum": [0.0, 0.5]}


def init_fn(key):
    return QUADRATIC_START + 0.5 * jax.random.normal(key, (20,))


def held_out(params):
    return quadratic_loss(params, jnp.zeros(20))


def single_run(tx, params, batches, eval_every=None):
    """The plain run: its losses and the held-out loss every ``eval_every`` steps."""

    def step(carry, batch):
        params, state = carry
        value, grads = jax.value_and_grad(quadratic_loss)(params, batch)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), (value, held_out(params))

    _, (losses, evals) = jax.jit(lambda: jax.lax.scan(step, (params, tx.init(params)), batches))()
    evals = np.asarray(evals)
    return np.asarray(losses), None if eval_every is None else evals[eval_every - 1 :: eval_every]


def test_grid_rows_are_the_cartesian_product_and_equal_single_runs():
    result = lrjax.sweep(quadratic_loss, QUADRATIC_START, BATCHES, lrjax.sgd, hyperparams=GRID)
    want = [{"learning_rate": r, "momentum": m} for r in (0.03, 0.1) for m in (0.0, 0.5)]
    assert result.configs == want and result.grid == want
    assert result.losses.shape == (4, 40) and result.seeds is None
    np.testing.assert_array_equal(result.hyperparams["momentum"], [0.0, 0.5, 0.0, 0.5])
    for row, config in zip(result.losses, want, strict=True):
        plain, _ = single_run(lrjax.sgd(**config), QUADRATIC_START, BATCHES)
        np.testing.assert_allclose(row, plain, rtol=2e-5, atol=1e-7)
    # The fastest configuration, reported as given.
    assert result.best == {"learning_rate": 0.1, "momentum": 0.5}
    assert result.best_learning_rate == 0.1


def test_seeds_train_every_configuration_from_every_initialisation():
    seeds = [0, 7, 3]
    result = lrjax.sweep(
        quadratic_loss, batches=BATCHES, learning_rates=[0.05, 0.15], init_fn=init_fn, seeds=seeds
    )
    assert [c["seed"] for c in result.configs] == seeds * 2
    assert [c["learning_rate"] for c in result.configs] == [0.05] * 3 + [0.15] * 3
    for row, config in zip(result.losses, result.configs, strict=True):
        start = init_fn(jax.random.key(config["seed"]))
        plain, _ = single_run(lrjax.sgd(config["learning_rate"]), start, BATCHES)
        np.testing.assert_allclose(row, plain, rtol=2e-5, atol=1e-7)
    per_config = result.losses.reshape(2, 3, 40)
    np.testing.assert_allclose(result.mean_losses, per_config.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(result.spread_losses, per_config.std(axis=1), rtol=1e-12)
    assert np.all(result.spread_losses[:, 0] > 0)  # different starts
    np.testing.assert_allclose(result.mean_scores, result.final_losses.reshape(2, 3).mean(1))
    assert result.best_learning_rate == 0.15 and result.mean_scores.shape == (2,)


def test_eval_fn_every_eval_every_steps_and_at_the_end():
    result = lrjax.sweep(
        quadratic_loss,
        QUADRATIC_START,
        BATCHES,
        learning_rates=[0.05, 0.1],
        eval_fn=held_out,
        eval_every=15,
        progress=True,  # chunks aligned on the evaluations
    )
    np.testing.assert_array_equal(result.eval_steps, [15, 30, 40])
    for i, rate in enumerate([0.05, 0.1]):
        losses, evals = single_run(lrjax.sgd(rate), QUADRATIC_START, BATCHES, eval_every=1)
        np.testing.assert_allclose(result.losses[i], losses, rtol=2e-5, atol=1e-7)
        np.testing.assert_allclose(result.eval_losses[i], evals[[14, 29, 39]], rtol=2e-5)
    np.testing.assert_array_equal(result.scores, result.eval_losses[:, -1])
    only_end = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, BATCHES, learning_rates=[0.05], eval_fn=held_out
    )
    np.testing.assert_array_equal(only_end.eval_steps, [40])


@pytest.mark.filterwarnings("ignore:.* value of the grid; the best may lie beyond it.*:UserWarning")
def test_eval_fn_picks_the_rate_that_generalises():
    """Six noisy points, twelve features: in 60 steps a larger rate fits the noise (lowest
    training loss), a small one stops early, which the held-out loss prefers."""
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=12).astype(np.float32)
    x = rng.normal(size=(6, 12)).astype(np.float32)
    y = (x @ w_true + 2.0 * rng.normal(size=6)).astype(np.float32)
    x_val = rng.normal(size=(200, 12)).astype(np.float32)
    loss = lambda w, batch: jnp.mean((batch[0] @ w - batch[1]) ** 2)
    batches = (jnp.broadcast_to(x, (60, 6, 12)), jnp.broadcast_to(y, (60, 6)))
    validation = lambda w: jnp.mean((x_val @ w - x_val @ w_true) ** 2)
    rates = [0.003, 0.01, 0.03, 0.1]
    by_training = lrjax.sweep(loss, jnp.zeros(12), batches, learning_rates=rates)
    by_eval = lrjax.sweep(loss, jnp.zeros(12), batches, learning_rates=rates, eval_fn=validation)
    assert not by_training.diverged.any()
    assert by_training.best_learning_rate == 0.1 and np.all(np.diff(by_training.final_losses) < 0)
    assert by_eval.best_learning_rate == 0.003 and np.all(np.diff(by_eval.scores) > 0)


def test_a_second_call_compiles_nothing():
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        calls = [({"learning_rate": [0.01, 0.1], "momentum": [0.0, 0.9]}, [1, 2])]
        calls.append(({"learning_rate": [0.02, 0.2], "momentum": [0.5, 0.7]}, [5, 9]))
        counts = []
        for grid, seeds in calls:
            lrjax.sweep(
                quadratic_loss,
                batches=BATCHES,
                hyperparams=grid,
                init_fn=init_fn,
                seeds=seeds,
                eval_fn=held_out,
                eval_every=10,
            )
            counts.append(len(compiles))
    finally:
        jax.monitoring.clear_event_listeners()
    assert counts[0] > 0 and counts[1] == counts[0], counts


@pytest.mark.filterwarnings("ignore:.* value of the grid; the best may lie beyond it.*:UserWarning")
@pytest.mark.parametrize("batch_size", [2, 64])
def test_batch_size_changes_nothing_but_speed(batch_size):
    rates = [0.01, 0.03, 0.05, 0.1, 0.15]
    got = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, BATCHES, learning_rates=rates, batch_size=batch_size
    )
    for i, rate in enumerate(rates):
        plain, _ = single_run(lrjax.sgd(rate), QUADRATIC_START, BATCHES)
        np.testing.assert_allclose(got.losses[i], plain, rtol=2e-5, atol=1e-7)


def test_a_configuration_with_a_diverged_seed_is_never_best():
    result = lrjax.sweep(
        quadratic_loss,
        batches=jnp.zeros((100, 20)),
        learning_rates=[0.05, 0.195],
        init_fn=lambda key: QUADRATIC_START * jnp.exp(jax.random.normal(key, ())),
        seeds=[0, 1],
        optimizer=lambda lr: lrjax.sgd(lr, momentum=0.0),
    )
    assert result.best_learning_rate == 0.195
    unstable = lrjax.sweep(
        quadratic_loss, QUADRATIC_START, jnp.zeros((100, 20)), learning_rates=[0.05, 0.5]
    )
    assert unstable.diverged.tolist() == [False, True] and unstable.best_learning_rate == 0.05
    assert np.isinf(unstable.mean_scores[1])


def test_params_and_init_fn_exclude_each_other():
    with pytest.raises(ValueError, match=r"^sweep: give params or init_fn, not both"):
        lrjax.sweep(quadratic_loss, QUADRATIC_START, BATCHES, learning_rates=[0.1],
                    init_fn=init_fn, seeds=[0])  # fmt: skip
    with pytest.raises(ValueError, match=r"^sweep: params is required"):
        lrjax.sweep(quadratic_loss, batches=BATCHES, learning_rates=[0.1])
    with pytest.raises(ValueError, match=r"^sweep: batches is required"):
        lrjax.sweep(quadratic_loss, QUADRATIC_START, learning_rates=[0.1])


@pytest.mark.filterwarnings("ignore:.* value of the grid; the best may lie beyond it.*:UserWarning")
def test_grid_plot_draws_a_line_per_weight_decay_and_the_spread():
    result = lrjax.sweep(
        quadratic_loss,
        batches=BATCHES[:10],
        hyperparams={"learning_rate": [0.01, 0.1, 0.15], "weight_decay": [0.0, 0.1]},
        init_fn=init_fn,
        seeds=[0, 1],
    )
    ax = result.plot(kind="final")
    _, labels = ax.get_legend_handles_labels()
    assert "weight_decay=0" in labels and "weight_decay=0.1" in labels, labels
    assert ax.get_xlabel() == "learning rate"
    curves = result.plot()
    assert len(curves.collections) == 6  # a band over the seeds per configuration
    plt.close("all")


def test_mesh_splits_the_runs_and_equals_one_device():
    """8 fake CPU devices (set before JAX starts: a subprocess)."""
    script = os.path.join(os.path.dirname(__file__), "sweep_mesh_check.py")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    done = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices"] == 8 and report["sharded"], report
    assert report["max_difference"] <= 1e-6 and report["same_best"], report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process():
    """A multi-process job (jax.distributed, gloo CPU collectives, 2 local processes with
    2 devices each): the sweep split over all 4 devices equals each process's own sweep."""
    script = os.path.join(os.path.dirname(__file__), "sweep_processes_check.py")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = str(_free_port())
    processes = [
        subprocess.Popen(
            [sys.executable, script, str(i), port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err[-4000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["process"] for r in reports) == [0, 1], reports
    for report in reports:
        assert report["processes"] == 2 and report["devices"] == 4, report
        assert report["local_devices"] == 2 and report["sharded"], report
        assert report["max_difference"] <= 1e-6 and report["same_best"], report
        assert report["shape"] == [12, 30], report
    assert reports[0]["best"] == reports[1]["best"]
