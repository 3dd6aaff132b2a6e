"""Schedule-free AdamW and SGD: parity with the reference (schedulefree 1.4.1).

Both sides train on the same deterministic loss, each at its own parameters:
``g = m · S·(½(y − 2) + 0.3·ξ_t)`` with a fixed noise sequence ξ, a per-leaf scale S
and a mask m that zeroes chosen steps. After every step the trained parameters y are
compared with the reference's (train mode), and the evaluation parameters x with what
the reference's ``optimizer.eval()`` puts into the model. The lrjax side runs as one
compiled ``lax.scan``; hyperparameters are drawn at random (seeded) and set with
``lrjax.set_hyperparams``, so one compiled program serves every draw.
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
from helpers import import_reference, import_torch

import lrjax
from lrjax import (
    ScheduleFreeAdamWState,
    ScheduleFreeSGDState,
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
RTOL = {True: 1e-10, False: 2e-6}  # float64, float32 (SPEC §9)

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


def _relative_error(ours: dict, theirs: dict) -> float:
    """The largest |ours − theirs| relative to |theirs| + the leaf's size at that step
    (so an entry crossing zero is measured against its leaf, not against 0)."""
    worst = 0.0
    for k in SHAPES:
        a, b = ours[k].astype(np.float64), theirs[k].astype(np.float64)
        axes = tuple(range(1, b.ndim))
        size = np.max(np.abs(b), axis=axes, keepdims=True) if axes else np.abs(b)
        worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(b) + size))))
    return worst


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
    return _relative_error(ys, theirs[0]), _relative_error(xs, theirs[1])


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


# ------------------------------------------------------------- evaluation parameters

TREE = {"enc": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.ones(2)}, "head": 0.5}


def _grads(t: int):
    return jax.tree.map(lambda p: jnp.cos(t + 3 * p) * (1 + p), TREE)


def _train(tx, steps=4, repeat=1, update=None) -> tuple[Any, Any, list[Any]]:
    """y and the evaluation parameters after each step (each gradient fed ``repeat``
    times, for optax.MultiSteps)."""
    params, state, xs = TREE, tx.init(TREE), []
    update = update or tx.update
    for t in range(steps):
        for _ in range(repeat):
            updates, state = update(_grads(t), state, params)
            params = optax.apply_updates(params, updates)
        xs.append(schedule_free_eval_params(state, params))
    return params, state, xs


def _x_by_formula(state, params, beta):
    return jax.tree.map(lambda y, z: (y - (1 - beta) * z) / beta, params, state.z)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda tx: tx,
        lambda tx: optax.chain(optax.identity(), tx),
        lambda tx: optax.chain(optax.scale(1.0), optax.chain(tx)),
    ],
    ids=["plain", "chain", "nested_chain"],
)
def test_eval_params_plain_and_chain(wrap):
    params, state, xs = _train(wrap(schedule_free_sgd(0.1, momentum=0.8, warmup_steps=2)))
    is_inner = lambda s: isinstance(s, ScheduleFreeSGDState)
    (inner,) = [s for s in jax.tree.leaves(state, is_leaf=is_inner) if is_inner(s)]
    chex.assert_trees_all_close(xs[-1], _x_by_formula(inner, params, 0.8), rtol=1e-6)
    _, _, expected = _train(schedule_free_sgd(0.1, momentum=0.8, warmup_steps=2))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_multi_steps():
    """MultiSteps averages k gradients; fed each gradient twice, it is the plain run."""
    tx = optax.MultiSteps(schedule_free_sgd(0.1, warmup_steps=2), every_k_schedule=2)
    compiled = jax.jit(tx.update)  # eager, its lax.cond would compile at every call

    def update(*args):
        with jax.numpy_dtype_promotion("standard"):  # optax's MultiSteps divides by an int
            return compiled(*args)

    _, _, xs = _train(tx, repeat=2, update=update)
    _, _, expected = _train(schedule_free_sgd(0.1, warmup_steps=2))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_inject_hyperparams():
    """b1 injected as an array (and warmup_steps static): the state records the β each
    update formed y with; with the defaults nothing needs to be static."""
    factory = optax.inject_hyperparams(schedule_free_adamw, static_args=("warmup_steps",))
    _, _, xs = _train(factory(learning_rate=0.05, b1=0.8, warmup_steps=3))
    _, _, expected = _train(schedule_free_adamw(0.05, b1=0.8, warmup_steps=3))
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)
    _, _, xs = _train(optax.inject_hyperparams(schedule_free_sgd)(learning_rate=0.1), steps=2)
    _, _, expected = _train(schedule_free_sgd(0.1), steps=2)
    chex.assert_trees_all_close(xs, expected, rtol=1e-6)


def test_eval_params_under_vmap():
    """A sweep over b1 and the rate: β is a tracer the state does not hold as a
    hyperparameter, and the evaluation still has it."""

    def train(learning_rate, b1):
        tx = schedule_free_adamw(learning_rate, b1=b1)
        y, state = TREE, tx.init(TREE)
        for t in range(3):
            updates, state = tx.update(_grads(t), state, y)
            y = optax.apply_updates(y, updates)
        return schedule_free_eval_params(state, y)

    rates, betas = jnp.array([0.05, 0.01]), jnp.array([0.8, 0.95])
    swept = jax.jit(jax.vmap(train))(rates, betas)
    for i, (rate, beta) in enumerate(zip(rates, betas, strict=True)):
        row = jax.tree.map(lambda a, i=i: a[i], swept)
        chex.assert_trees_all_close(row, train(float(rate), float(beta)), rtol=1e-5)


def _alone(tx, pick):
    """x of ``tx`` trained by itself on the parameters ``pick`` selects from TREE."""
    params = pick(TREE)
    state = tx.init(params)
    for t in range(4):
        updates, state = tx.update(pick(_grads(t)), state, params)
        params = optax.apply_updates(params, updates)
    return schedule_free_eval_params(state, params)


def test_eval_params_partition():
    """Each group's x for its own parameters; a group that is not schedule-free keeps
    its parameters."""
    # A label naming a whole subtree (optax masks it with one MaskedNode).
    tx = optax.partition(
        {"adamw": schedule_free_adamw(0.05), "frozen": optax.set_to_zero()},
        {"enc": "adamw", "head": "frozen"},
    )
    x = _train(tx)[2][-1]
    chex.assert_trees_all_close(
        x["enc"], _alone(schedule_free_adamw(0.05), lambda t: t["enc"]), rtol=1e-6
    )
    assert x["head"] == TREE["head"]
    # Two schedule-free groups side by side within one subtree.
    sgd = schedule_free_sgd(0.1, momentum=0.7)
    tx = optax.partition(
        {"adamw": schedule_free_adamw(0.05), "sgd": sgd},
        {"enc": {"w": "adamw", "b": "sgd"}, "head": "sgd"},
    )
    x = _train(tx)[2][-1]
    alone = _alone(schedule_free_adamw(0.05), lambda t: t["enc"]["w"])
    chex.assert_trees_all_close(x["enc"]["w"], alone, rtol=1e-6)
    alone = _alone(sgd, lambda t: {"b": t["enc"]["b"], "head": t["head"]})
    chex.assert_trees_all_close({"b": x["enc"]["b"], "head": x["head"]}, alone, rtol=1e-6)


def test_eval_params_masked_jit_and_dtypes():
    """optax.masked: masked-out parameters are returned as they are; under jit; x keeps
    each parameter's dtype, complex parameters included."""
    params: Any = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.array([1.0 + 2.0j]), "c": jnp.ones(2)}
    tx = optax.masked(schedule_free_sgd(0.1), {"a": True, "b": True, "c": False})
    state: Any = tx.init(params)
    grads = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.array([0.5 - 1.0j]), "c": jnp.ones(2)}
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    x = jax.jit(schedule_free_eval_params)(state, params)
    chex.assert_trees_all_equal_dtypes(x, params)
    np.testing.assert_array_equal(x["c"], params["c"])  # not trained: as it is
    z = state.inner_state.z["b"]
    expected = (params["b"] - 0.1 * jax.lax.complex(z[..., 0], z[..., 1])) / 0.9
    np.testing.assert_allclose(np.asarray(x["b"]), np.asarray(expected), rtol=1e-6)


def test_eval_params_errors():
    params = {"w": jnp.ones(2)}
    with pytest.raises(
        ValueError, match="schedule_free_eval_params: opt_state holds no schedule-free"
    ):
        schedule_free_eval_params(optax.adam(1e-3).init(params), params)
    state = schedule_free_sgd().init(params)
    with pytest.raises(ValueError, match="schedule_free_eval_params: params do not match"):
        schedule_free_eval_params(state, {"w": jnp.ones(3)})
    with pytest.raises(ValueError, match="schedule_free_eval_params: params do not match"):
        schedule_free_eval_params(state, {"v": jnp.ones(2)})
    doubled = optax.chain(schedule_free_sgd(), schedule_free_sgd()).init(params)
    with pytest.raises(ValueError, match="several schedule-free states"):
        schedule_free_eval_params(doubled, params)


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


def test_state_fields_and_no_aliasing():
    params = {"w": jnp.arange(3.0), "b": jnp.ones((), jnp.bfloat16)}
    state: Any = jax.jit(schedule_free_adamw(weight_decay=0.1).init)(params)
    assert isinstance(state, ScheduleFreeAdamWState)
    z: Any = state.z
    assert z["w"].unsafe_buffer_pointer() != params["w"].unsafe_buffer_pointer()
    chex.assert_trees_all_equal(state.z, params)  # z starts at the parameters
    chex.assert_trees_all_equal_dtypes(state.z, params)
    assert state.count.dtype == jnp.int32 and state.weight_sum.dtype == jnp.float32
    assert state.interpolation == np.float32(0.9)  # the b1 of the first update
    assert set(state.hyperparams.values) == {
        "learning_rate",
        "b1",
        "b2",
        "eps",
        "weight_decay",
        "r",
        "weight_lr_power",
    }
    for tx in (schedule_free_adamw(), schedule_free_sgd(0.1)):  # eager: no shared buffers
        new = tx.update(params, tx.init(params), params)[1]
        buffers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(new)]
        assert len(set(buffers)) == len(buffers)
    sgd: Any = schedule_free_sgd().init(params)  # a held zero weight decay is left out
    assert "weight_decay" not in sgd.hyperparams.values
    with pytest.raises(ValueError, match="weight_decay"):
        lrjax.set_hyperparams(sgd, weight_decay=0.1)


# ------------------------------------------------------------------------- bad inputs

FLOAT_ARGUMENTS = {
    "adamw": ["learning_rate", "b1", "b2", "eps", "weight_decay", "r", "weight_lr_power"],
    "sgd": ["learning_rate", "momentum", "weight_decay", "r", "weight_lr_power"],
}
BAD_FLOATS = {"negative": -1.0, "nan": float("nan"), "wrong_type": "0.1", "bool": True}


@pytest.mark.parametrize("kind", list(BAD_FLOATS))
@pytest.mark.parametrize(
    ("method", "name"), [(m, n) for m, names in FLOAT_ARGUMENTS.items() for n in names]
)
def test_bad_float_arguments(method, name, kind):
    owner = FACTORIES[method].__name__
    with pytest.raises(ValueError, match=f"^{owner}: {name} must be"):
        FACTORIES[method](**{name: BAD_FLOATS[kind]})


@pytest.mark.parametrize(
    ("method", "name", "value"),
    [
        ("adamw", "b1", 0.0),
        ("sgd", "momentum", 0.0),
        ("sgd", "momentum", 1.0),
        ("adamw", "b1", jnp.asarray(0.0)),
    ],
)
def test_interpolation_must_be_inside_the_unit_interval(method, name, value):
    owner = FACTORIES[method].__name__
    with pytest.raises(ValueError, match=rf"^{owner}: {name} must be in \(0, 1\)"):
        FACTORIES[method](**{name: value})


@pytest.mark.parametrize("method", list(FACTORIES))
@pytest.mark.parametrize("value", [-1, 2.5, True, None, np.int64(2**31), jnp.asarray(3)])
def test_bad_warmup_steps(method, value):
    owner = FACTORIES[method].__name__
    with pytest.raises(ValueError, match=f"^{owner}: warmup_steps must be"):
        FACTORIES[method](warmup_steps=value)


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
