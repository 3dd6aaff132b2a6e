"""Schedule-free AdamW and SGD: parity with the reference (schedulefree 1.4.1).

Both sides train on the same deterministic loss, each at its own parameters:
``g = m · S·(½(y − 2) + 0.3·ξ_t)`` with a fixed noise sequence ξ, a per-leaf scale S
and a mask m that zeroes chosen steps. After every step the trained parameters y are
compared with the reference's (train mode), and the evaluation parameters x with what
the reference's ``optimizer.eval()`` puts into the model. The lrjax side runs as one
compiled ``lax.scan``; hyperparameters are drawn at random (seeded) and set with
``lrjax.set_hyperparams``, so one compiled program serves every draw. Errors are relative
to |reference| + each leaf's size at the step (``helpers.relative_error``). The
evaluation parameters through optax's wrappers, and the state, are in
``test_schedule_free_eval``; bad arguments in ``test_hostile_lr_free``.
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference, import_torch, relative_error
from test_schedule_free_eval import TREE, _grads

import lrjax
from lrjax import (
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
    schedules,
)

torch = import_torch()
schedulefree = import_reference("schedulefree")

SHAPES = {"kernel": (7, 5), "bias": (5,), "scale": ()}
# Gradient magnitudes differ per leaf (AdamW's per-parameter rates differ; SGD's
# curvatures differ).
SCALES = {"kernel": 1.0, "bias": 1e-3, "scale": 3.0}
NUM_STEPS = 200
RTOL = {True: 1e-10, False: 2e-6}  # float64, float32

FACTORIES = {"adamw": schedule_free_adamw, "sgd": schedule_free_sgd}
REFERENCES = {"adamw": "AdamWScheduleFree", "sgd": "SGDScheduleFree"}
PEAK = {"adamw": 0.01, "sgd": 0.1}


def _structures(method: str) -> dict[str, dict]:
    """The options that change the compiled program; the values are drawn per seed."""
    schedule = schedules.warmup(  # starts at 0: the reference's zero-weight branch
        schedules.cosine_decay(PEAK[method], NUM_STEPS, end_value=PEAK[method] / 10), 40
    )
    structures = {
        "plain": {},
        "full": dict(learning_rate=schedule, warmup_steps=25, weight_decay=0.01),
    }
    if method == "adamw":
        structures["eps0"] = dict(eps=0.0)
    return structures


# (method, structure, float64): float32 runs every option at once (each compiled
# program costs seconds).
PARITY_CASES = [
    (m, s, f64) for m in FACTORIES for s, f64 in (("plain", True), ("full", True), ("full", False))
]


def _draw(method: str, structure: str, seed: int) -> dict:
    """Random hyperparameters (lrjax names) for ``seed``; seed 0 of ``plain``: defaults."""
    if structure == "plain" and seed == 0:
        return {}
    rng = np.random.default_rng(100 + seed)
    values = dict(
        r=float(rng.uniform(0.2, 2.0)) if seed % 2 else 0.0,
        weight_lr_power=0.0 if seed == 1 else float(rng.uniform(0.5, 4.0)),
    )
    if structure != "full":  # a schedule drives the rate there
        low, high = (-3, -1.5) if method == "adamw" else (-2, -0.7)
        values["learning_rate"] = float(10 ** rng.uniform(low, high))
    if structure == "full":
        values["weight_decay"] = float(10 ** rng.uniform(-3, -1))
    if method == "adamw":
        values.update(b1=float(rng.uniform(0.5, 0.95)), b2=float(rng.uniform(0.95, 0.9999)))
        if structure != "eps0":
            values["eps"] = float(10 ** rng.uniform(-8, -6))
    else:
        values["momentum"] = float(rng.uniform(0.5, 0.95))
    return values


def _reference_kwargs(method: str, options: dict) -> dict:
    """The reference's arguments for lrjax's ``options`` (a schedule's rate is set at
    every step)."""
    names = {"learning_rate": "lr"}
    kwargs = {names.get(k, k): x for k, x in options.items() if k not in ("b1", "b2")}
    if callable(kwargs.get("lr")):
        del kwargs["lr"]
    if method == "adamw":
        kwargs["betas"] = (options.get("b1", 0.9), options.get("b2", 0.999))
        if kwargs.get("eps") == 0.0:  # the limit ε → 0 that lrjax takes at 0/0
            kwargs["eps"] = 1e-300
    return kwargs


def _problem(seed: int, dtype) -> tuple[dict, dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    p0 = {k: np.asarray(2 + rng.normal(size=s), dtype) for k, s in SHAPES.items()}
    noise = {
        k: np.asarray(0.3 * SCALES[k] * rng.normal(size=(NUM_STEPS, *s)), dtype)
        for k, s in SHAPES.items()
    }
    return p0, noise, np.ones(NUM_STEPS, dtype)


def _loss_gradient(y, noise, mask, scale):
    """``m · (S·½(y − 2) + noise)``, in the same order of operations on both sides."""
    return mask * (scale * (0.5 * (y - 2)) + noise)


@functools.cache
def _compiled(method: str, structure: str, f64: bool):
    """The structure's compiled ``init`` and a compiled run giving, after every step, y,
    x and the scheduled rate the step used."""
    tx = FACTORIES[method](**_structures(method)[structure])

    def run(state, y, noise, mask, scale):
        def step(carry, inputs):
            y, state = carry
            n, m = inputs
            grads = jax.tree.map(lambda y, n, s: _loss_gradient(y, n, m, s), y, n, scale)
            updates, state = tx.update(grads, state, y)
            y = optax.apply_updates(y, updates)
            rate = state.hyperparams.scheduled.get("learning_rate", state.step_size)
            return (y, state), (y, schedule_free_eval_params(state, y), rate)

        return jax.lax.scan(step, (y, state), (noise, mask))[1]

    return jax.jit(tx.init), jax.jit(run)  # eager, each operation would compile on its own


def _lrjax_run(method, structure, values, p0, noise, mask, f64):
    init, run = _compiled(method, structure, f64)
    with jax.enable_x64(f64):
        y = {k: jnp.asarray(p) for k, p in p0.items()}
        state = init(y)
        if values:
            state = lrjax.set_hyperparams(state, **values)
        dtype = jnp.float64 if f64 else jnp.float32
        scale = {k: jnp.asarray(s, dtype) for k, s in SCALES.items()}
        return jax.tree.map(np.asarray, run(state, y, noise, jnp.asarray(mask), scale))


def _reference_run(method, kwargs, p0, noise, mask, rates=None):
    """The reference in train mode, ``lr`` set to ``rates[t]`` before step t when given;
    x read through ``eval()`` after every step, and the train-mode parameters put back
    exactly (eval then train would round them)."""
    params = [torch.tensor(p0[k]) for k in SHAPES]
    opt = getattr(schedulefree, REFERENCES[method])(params, **kwargs)
    opt.train()
    ys = {k: [] for k in SHAPES}
    xs = {k: [] for k in SHAPES}
    dtype = params[0].dtype
    scales = {k: torch.tensor(SCALES[k], dtype=dtype) for k in SHAPES}
    for t in range(len(mask)):
        if rates is not None:
            for group in opt.param_groups:
                group["lr"] = float(rates[t])
        m = torch.tensor(mask[t])
        for p, k in zip(params, SHAPES, strict=True):
            p.grad = _loss_gradient(p.detach(), torch.tensor(noise[k][t]), m, scales[k])
        opt.step()
        trained = [p.detach().clone() for p in params]
        opt.eval()
        for p, y, k in zip(params, trained, SHAPES, strict=True):
            ys[k].append(y.numpy())
            xs[k].append(p.detach().numpy().copy())
        opt.train()
        with torch.no_grad():
            for p, y in zip(params, trained, strict=True):
                p.copy_(y)
    return {k: np.stack(ys[k]) for k in SHAPES}, {k: np.stack(xs[k]) for k in SHAPES}


def _parity(method, structure, seed, f64, mask=None):
    """The largest relative errors of y and x against the reference over every step."""
    dtype = np.float64 if f64 else np.float32
    p0, noise, ones = _problem(seed, dtype)
    mask = ones if mask is None else mask.astype(dtype)
    values = _draw(method, structure, seed)
    options = {**_structures(method)[structure], **values}
    ys, xs, rates = _lrjax_run(method, structure, values, p0, noise, mask, f64)
    schedule = options.get("learning_rate")
    if callable(schedule):  # the reference's rate is set to the value lrjax used ...
        expected = np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(NUM_STEPS)))
        np.testing.assert_allclose(rates, expected, rtol=1e-6)  # ... schedule(t) at step t
    kwargs = _reference_kwargs(method, options)
    theirs = _reference_run(method, kwargs, p0, noise, mask, rates if callable(schedule) else None)
    # Errors relative to |theirs| + the leaf's size at the step, so an entry crossing
    # zero is measured against its leaf, not against 0 (max(|theirs|, size) would be up to
    # twice as strict: float32 x then misses 2e-6 by a hair).
    error_y = relative_error(ys, theirs[0], floor="step", combine="sum")
    return error_y, relative_error(xs, theirs[1], floor="step", combine="sum")


@pytest.mark.parametrize(
    ("method", "structure", "f64"),
    PARITY_CASES,
    ids=[f"{m}-{s}-{'float64' if f else 'float32'}" for m, s, f in PARITY_CASES],
)
def test_parity_with_reference(method, structure, f64):
    """Every option (warm-up, a schedule as the rate, weight decay, r, weight_lr_power),
    the defaults and random hyperparameters; ε = 0 is in the zero-gradient test."""
    for seed in (0, 1, 2):
        error_y, error_x = _parity(method, structure, seed, f64)
        assert error_y < RTOL[f64], (seed, error_y)
        assert error_x < RTOL[f64], (seed, error_x)


@pytest.mark.parametrize(
    ("method", "structure"), [("adamw", "full"), ("adamw", "eps0"), ("sgd", "full")]
)
def test_zero_gradients_as_the_reference(method, structure):
    """An all-zero first gradient, and zero gradients later, are steps as any other.
    With ε = 0 the reference divides 0/0 into NaN there; lrjax takes the limit ε → 0
    (a zero step), which the reference gives with ε = 1e-300 in float64."""
    mask = np.ones(NUM_STEPS)
    mask[[0, 1, 50, 51, 52, 120]] = 0
    error_y, error_x = _parity(method, structure, 3, True, mask=mask)
    assert error_y < 1e-10 and error_x < 1e-10


def test_reference_zero_eps_zero_gradient_is_nan():
    """What lrjax departs from: the reference's ε = 0 turns a zero first gradient into NaN
    (lrjax's zero step is checked against ε = 1e-300 above)."""
    params = torch.zeros(3, dtype=torch.float64)
    opt = schedulefree.AdamWScheduleFree([params], eps=0.0)
    opt.train()
    params.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    assert torch.isnan(params).all()


@pytest.mark.parametrize("method", list(FACTORIES))
def test_bfloat16_params_jit_no_retrace(method):
    """bf16 parameters: bf16 updates and x, float32 scalars, finite, close to the
    reference's float32 run; one trace, also across set_hyperparams."""
    options = dict(learning_rate=0.05 if method == "adamw" else 0.1, warmup_steps=3)
    tx = FACTORIES[method](**options, weight_decay=0.01)
    p0, noise, mask = _problem(5, np.float32)
    steps = 30
    chex.clear_trace_counter()  # the other method's run traced this same function

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(y, state, noise):
        grads = jax.tree.map(
            lambda y, n, s: _loss_gradient(y, n, jnp.ones([], y.dtype), s), y, noise, scales
        )
        updates, state = tx.update(grads, state, y)
        chex.assert_trees_all_equal_dtypes(updates, grads)
        return optax.apply_updates(y, updates), state

    scales = {k: jnp.asarray(s, jnp.bfloat16) for k, s in SCALES.items()}
    y: Any = {k: jnp.asarray(p, jnp.bfloat16) for k, p in p0.items()}
    state: Any = tx.init(y)
    rates = np.full(steps, options["learning_rate"])
    for t in range(steps):
        if t == steps // 2:
            state = lrjax.set_hyperparams(state, learning_rate=0.04)
            rates[t:] = 0.04
        y, state = step(y, state, {k: jnp.asarray(n[t], jnp.bfloat16) for k, n in noise.items()})
    x: Any = schedule_free_eval_params(state, y)
    chex.assert_tree_all_finite((y, state, x))
    for name in ("lr_max", "weight_sum", "step_size"):
        assert getattr(state, name).dtype == jnp.float32
    assert state.count.dtype == jnp.int32
    chex.assert_trees_all_equal_dtypes(x, y)
    kwargs = _reference_kwargs(method, {**options, "weight_decay": 0.01})
    ys, xs = _reference_run(method, kwargs, p0, noise, mask[:steps], rates)
    for ours, theirs in ((y, ys), (x, xs)):
        for k in SHAPES:
            np.testing.assert_allclose(
                np.asarray(ours[k], np.float32), theirs[k][-1], rtol=2e-2, atol=5e-2
            )


# ---------------------------------------------------------------------- introspection


@pytest.mark.parametrize("method", list(FACTORIES))
def test_current_and_effective_learning_rates(method):
    """current_learning_rate is the warmed-up rate the reference applied
    (``scheduled_lr``), also after set_hyperparams; effective_learning_rates is it
    times AdamW's per-parameter factor (1 for SGD)."""
    tx = FACTORIES[method](0.05, warmup_steps=4)
    leaves, treedef = jax.tree.flatten(TREE)
    params = [torch.tensor(np.asarray(p, np.float32)) for p in leaves]
    opt = getattr(schedulefree, REFERENCES[method])(params, lr=0.05, warmup_steps=4)
    opt.train()
    y, state = TREE, tx.init(TREE)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.05 / 4)
    for t in range(6):
        if t == 3:
            state = lrjax.set_hyperparams(state, learning_rate=0.02)
            opt.param_groups[0]["lr"] = 0.02
        grads = _grads(t)
        for p, g in zip(params, jax.tree.leaves(grads), strict=True):
            p.grad = torch.tensor(np.asarray(g))
        opt.step()
        updates, state = tx.update(grads, state, y)
        y = optax.apply_updates(y, updates)
        rate = opt.param_groups[0]["scheduled_lr"]
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(rate, rel=1e-6)
        if method == "adamw":
            correction = 1 - 0.999 ** (t + 1)
            factors = [
                1 / (np.sqrt(opt.state[p]["exp_avg_sq"].numpy() / correction) + 1e-8)
                for p in params
            ]
        else:
            factors = [np.ones(p.shape) for p in params]
        expected = jax.tree.unflatten(treedef, [rate * f for f in factors])
        chex.assert_trees_all_close(lrjax.effective_learning_rates(state), expected, rtol=1e-5)
    assert optax.tree.get(state, "learning_rate") == pytest.approx(0.02)


# -------------------------------------------------------------------------- bad calls


@pytest.mark.parametrize("method", list(FACTORIES))
def test_keyword_only_and_update_needs_params(method):
    with pytest.raises(TypeError):
        FACTORIES[method](0.1, 0.9)  # type: ignore[misc]
    tx = FACTORIES[method]()
    state = tx.init(jnp.ones(2))
    with pytest.raises(ValueError, match=f"{FACTORIES[method].__name__}: update needs params"):
        tx.update(jnp.ones(2), state)
    with pytest.raises(ValueError, match="parameters must be floating-point"):
        tx.init(jnp.ones(2, jnp.int32))
