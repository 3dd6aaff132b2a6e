"""Prodigy: parity with the authors' reference (prodigyopt 1.1.2) and the lrjax contract.

Both sides train the same smooth problem, a separable quadratic whose gradient each side
computes from its own current parameters (``mask · c · (x − t)``: the same IEEE operations
on both sides; ``mask`` zeroes chosen gradients). Parameters start in [0.5, 1.5] and move
towards targets in [2, 4]: they stay away from 0, so an elementwise relative error means
what it says (``helpers.relative_error``; where the reference's value is exactly 0,
only an exact 0 passes). The curvatures differ by 3000x across the leaves. Bad arguments
are swept in ``test_hostile_lr_free``.

Compiling is most of the cost of these tests, so each compiled run (one ``lax.scan`` of
the whole training) serves every optimizer of its structure: the float hyperparameters
are in the state, not in the program.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference, import_torch, relative_error

import lrjax
from lrjax import ProdigyState, prodigy, schedules

torch = import_torch()
prodigyopt = import_reference("prodigyopt")

SHAPES = {"kernel": (4, 3), "bias": (3,), "scale": ()}
GRAD_SCALES = {"kernel": 1.0, "bias": 1e-2, "scale": 30.0}
NUM_STEPS = 200

# ------------------------------------------------------------------------ the problem


def _problem(seed: int) -> tuple[dict, dict, dict]:
    """Initial parameters, curvatures c and targets t (float64 NumPy)."""
    rng = np.random.default_rng(seed)
    x0 = {k: rng.uniform(0.5, 1.5, s) for k, s in SHAPES.items()}
    curvature = {k: GRAD_SCALES[k] * rng.uniform(0.5, 2.0, s) for k, s in SHAPES.items()}
    target = {k: rng.uniform(2.0, 4.0, s) for k, s in SHAPES.items()}
    return x0, curvature, target


def _sliced_entries(slice_p: int) -> dict:
    """True at the entries Prodigy's estimate reads: every slice_p-th of the flat leaf."""
    out = {}
    for k, s in SHAPES.items():
        flat = np.zeros(int(np.prod(s)), bool)
        flat[::slice_p] = True
        out[k] = flat.reshape(s)
    return out


class Run(NamedTuple):
    """One training run: the hyperparameters, the problem, the zeroed gradients."""

    ours: dict
    seed: int = 0
    dtype: Any = np.float64
    zero_steps: tuple = ()
    zero_slice_p: int | None = None  # zero only the entries the estimate reads
    from_zero: bool = False  # start at x = 0 instead of the problem's x0

    def x0(self) -> dict:
        x0 = _problem(self.seed)[0]
        return {k: np.zeros_like(v) for k, v in x0.items()} if self.from_zero else x0

    def masks(self) -> dict:
        masks = {k: np.ones((NUM_STEPS, *s)) for k, s in SHAPES.items()}
        where = None if self.zero_slice_p is None else _sliced_entries(self.zero_slice_p)
        for step in self.zero_steps:
            for k in SHAPES:
                masks[k][step] = 0.0 if where is None else np.where(where[k], 0.0, 1.0)
        return masks


def _random(seed: int) -> dict:
    """Random hyperparameters (seeded): every float of the default structure."""
    rng = np.random.default_rng(100 + seed)
    return dict(
        learning_rate=float(rng.uniform(0.1, 1.0)),
        b1=float(rng.uniform(0.5, 0.95)),
        b2=float(rng.uniform(0.99, 0.9999)),
        eps=float(10 ** rng.uniform(-9, -6)),
        d0=float(10 ** rng.uniform(-7, -4)),
        d_coef=float(rng.uniform(0.5, 2.0)),
        growth_rate=float(rng.uniform(1.01, 1.5)) if seed % 2 else float("inf"),
    )


# A schedule starting at 0: the reference takes no step at a zero rate (k stays).
WARMUP_COSINE = schedules.warmup(schedules.cosine_decay(1.0, NUM_STEPS, end_value=0.1), 3)
# The structural options all on, with the coupled decay: the second compiled program.
EVERY_OPTION = dict(
    weight_decay=0.05,
    decouple=False,
    safeguard_warmup=True,
    use_bias_correction=True,
    b3=0.6,
    slice_p=2,
    learning_rate=WARMUP_COSINE,
)
OPTIONS = {
    "defaults": {},
    "random_0": _random(0),
    "random_1": _random(1),
    "random_2": _random(2),
    "no_momentum": dict(b1=0.0, learning_rate=0.5),
    "growth_rate": dict(growth_rate=1.05),
    "d0_d_coef": dict(d0=1e-4, d_coef=0.5, learning_rate=0.7),
    "decoupled_decay": dict(weight_decay=0.05, learning_rate=0.5),
    "every_option": EVERY_OPTION,
}
NO_DECAY = dict(EVERY_OPTION, weight_decay=0.0)  # coupled decay would make g ≠ 0
RUNS = {
    **{name: Run(ours) for name, ours in OPTIONS.items()},
    **{f"{name}_f32": Run(OPTIONS[name], dtype=np.float32) for name in OPTIONS},
    # ‖s‖₁ = 0: the reference returns before the step, only m, v (and s) move.
    "zero_first": Run(OPTIONS["defaults"], zero_steps=(0, 1)),
    "zero_first_f32": Run(OPTIONS["defaults"], dtype=np.float32, zero_steps=(0, 1)),
    # s remembers earlier gradients: a later zero gradient is an ordinary step.
    "zero_later": Run(OPTIONS["random_1"], zero_steps=(0, 30, 31, 32)),
    # With β3 = 0 s forgets at once: a later zero gradient is skipped too (k stays).
    "zero_later_b3_zero": Run(dict(NO_DECAY, b3=0.0), zero_steps=(0, 40, 41)),
    # Zero only where the estimate looks (slice_p = 2): skipped, yet m and v move (the
    # schedule's zero rate skips step 0 whatever the gradient).
    "zero_sliced_entries": Run(NO_DECAY, zero_steps=(1, 2), zero_slice_p=2),
    # bf16 cannot resolve the first steps (d0·lr ≈ 1e-6) next to 1, so start at 0.
    "from_zero_bf16": Run(OPTIONS["defaults"], seed=4, dtype=jnp.bfloat16, from_zero=True),
    "from_zero_f32": Run(OPTIONS["defaults"], seed=4, dtype=np.float32, from_zero=True),
}

# ------------------------------------------------------------------------- lrjax side


def _structure(ours: dict) -> tuple:
    rate = ours.get("learning_rate", 1.0)
    return (
        ours.get("decouple", True),
        ours.get("use_bias_correction", False),
        ours.get("safeguard_warmup", False),
        ours.get("slice_p", 1),
        ours.get("b3") is not None,
        rate if callable(rate) else None,
    )


TRACES: collections.Counter = collections.Counter()


@functools.cache
def _runner(structure: tuple, dtype_name: str):
    """A compiled training run for every optimizer of this structure: it is built from one
    of them and given the state of another (which holds that one's values)."""
    decouple, correction, safeguard, slice_p, has_b3, schedule = structure
    tx = prodigy(
        1.0 if schedule is None else schedule,
        b3=0.5 if has_b3 else None,
        decouple=decouple,
        use_bias_correction=correction,
        safeguard_warmup=safeguard,
        slice_p=slice_p,
    )

    @jax.jit
    def run(state, params, curvature, target, masks):
        TRACES[structure, dtype_name] += 1  # other values, set_hyperparams: no retrace

        def body(carry, mask):
            params, state = carry
            grads = jax.tree.map(
                lambda m, c, x, t: m * (c * (x - t)), mask, curvature, params, target
            )
            updates, new_state = tx.update(grads, state, params)
            state = cast(ProdigyState, new_state)
            chex.assert_trees_all_equal_dtypes(updates, grads)
            params = optax.apply_updates(params, updates)
            rate = state.hyperparams.scheduled.get("learning_rate", state.step_size)
            record = dict(params=params, exp_avg=state.exp_avg, exp_avg_sq=state.exp_avg_sq)
            record.update(d=state.d, step_size=state.step_size, k=state.k, lr=rate)
            return (params, state), record

        (_, state), history = jax.lax.scan(body, (params, state), masks)
        return state, history

    return run


def run_lrjax(run: Run, x0=None, state=None):
    """(final state, history) of lrjax's Prodigy from ``x0`` and ``state`` (by default
    the run's and a fresh one); float64 under x64."""
    with jax.enable_x64(run.dtype == np.float64):
        as_jax = lambda tree: {k: jnp.asarray(v, run.dtype) for k, v in tree.items()}
        params = as_jax(run.x0() if x0 is None else x0)
        if state is None:
            state = prodigy(**run.ours).init(params)
        _, curvature, target = _problem(run.seed)
        runner = _runner(_structure(run.ours), np.dtype(run.dtype).name)
        state, history = runner(
            state, params, as_jax(curvature), as_jax(target), as_jax(run.masks())
        )
        history = jax.tree.map(lambda x: np.asarray(x).astype(np.float64), history)
        return state, history


@functools.cache
def lrjax_run(name: str):
    return run_lrjax(RUNS[name])


# ----------------------------------------------------------------------- reference side


def _theirs(ours: dict) -> dict:
    names = {"learning_rate": "lr", "b3": "beta3"}
    theirs = {names.get(k, k): v for k, v in ours.items() if k not in ("b1", "b2")}
    if callable(theirs.get("lr")):
        theirs["lr"] = 1.0  # set at each step to the schedule's value
    theirs["betas"] = (ours.get("b1", 0.9), ours.get("b2", 0.999))
    return theirs


def run_reference(run: Run, rates=None, optimizer=None):
    """(history, optimizer) of prodigyopt.Prodigy; ``rates[i]`` is the rate of step i."""
    _, curvature, target = _problem(run.seed)
    as_torch = lambda a: torch.from_numpy(np.asarray(a, run.dtype))
    if optimizer is None:
        tensors = [as_torch(run.x0()[k]).clone().requires_grad_(True) for k in SHAPES]
        optimizer = prodigyopt.Prodigy(tensors, **_theirs(run.ours))
    group = optimizer.param_groups[0]
    tensors, masks = group["params"], run.masks()
    b1, b2 = group["betas"]
    trees = ("params", "exp_avg", "exp_avg_sq")
    history: dict[str, Any] = {name: {k: [] for k in SHAPES} for name in trees}
    history.update(d=[], step_size=[], k=[])
    for i in range(NUM_STEPS):
        if rates is not None:
            group["lr"] = float(rates[i])
        k = group["k"]
        correction = 1.0
        if group["use_bias_correction"]:
            correction = (1 - b2 ** (k + 1)) ** 0.5 / (1 - b1 ** (k + 1))
        history["step_size"].append(group["d"] * group["lr"] * correction)  # its dlr
        with torch.no_grad():
            for name, p in zip(SHAPES, tensors, strict=True):
                mask, c, t = (as_torch(a) for a in (masks[name][i], curvature[name], target[name]))
                p.grad = mask * (c * (p - t))
        optimizer.step()
        for name, p in zip(SHAPES, tensors, strict=True):
            history["params"][name].append(p.detach().numpy().astype(np.float64))
            for moment in trees[1:]:  # with β1 = 0 the reference keeps no exp_avg
                value = optimizer.state[p].get(moment, torch.full(p.shape, torch.nan))
                history[moment][name].append(value.numpy().astype(np.float64))
        history["d"].append(group["d"])
        history["k"].append(group["k"])
    history = {
        **{name: {k: np.stack(v) for k, v in history[name].items()} for name in trees},
        **{k: np.array(v) for k, v in history.items() if k not in trees},
    }
    return history, optimizer


@functools.cache
def reference_run(name: str):
    """The reference's run; with a schedule, fed the rates lrjax's run used."""
    run = RUNS[name]
    rates = lrjax_run(name)[1]["lr"] if callable(run.ours.get("learning_rate")) else None
    return run_reference(run, rates=rates)


def assert_parity(ours: dict, theirs: dict, rtol: float, steps=slice(None), d_rtol=None):
    """Parameters, d and the step size applied (the reference's dlr) every step; k equal."""
    assert relative_error(ours["params"], theirs["params"], steps=steps) <= rtol
    scalars = lambda h: {"d": h["d"], "step_size": h["step_size"]}
    assert relative_error(scalars(ours), scalars(theirs), steps=steps) <= (d_rtol or rtol)
    np.testing.assert_array_equal(ours["k"][steps], theirs["k"][steps])


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_float64_matches_reference(name):
    assert_parity(lrjax_run(name)[1], reference_run(name)[0], rtol=1e-10)


def test_schedule_starting_at_zero_skips_the_first_step():
    history = lrjax_run("every_option")[1]
    assert history["lr"][0] == 0 and history["k"][0] == 0 and history["k"][-1] == NUM_STEPS - 1


@pytest.mark.parametrize("name", ["defaults", "random_0", "decoupled_decay"])
def test_float32_matches_reference(name):
    """rtol 1e-6 over the first 10 steps and 1e-4 over 200.

    D is measured from x₀ − x, which in the first steps is a few ulps of x: a parameter
    one ulp apart moves d by ~1e-5, so d and the step size are held to 1e-4.
    """
    actual, expected = lrjax_run(f"{name}_f32")[1], reference_run(f"{name}_f32")[0]
    assert_parity(actual, expected, rtol=1e-6, steps=slice(0, 10), d_rtol=1e-4)
    assert_parity(actual, expected, rtol=1e-4)


def test_set_hyperparams_matches_setting_the_reference_param_groups():
    """The rate and a decay that was 0 at construction, changed mid-training."""
    run = RUNS["random_2"]
    state, first = lrjax_run("random_2")
    with jax.enable_x64(True):
        state = lrjax.set_hyperparams(state, learning_rate=0.25, weight_decay=0.02)
    last = {k: v[-1] for k, v in first["params"].items()}
    _, second = run_lrjax(run, x0=last, state=state)
    _, optimizer = run_reference(run)
    optimizer.param_groups[0].update(lr=0.25, weight_decay=0.02)
    expected, _ = run_reference(run, optimizer=optimizer)
    assert_parity(second, expected, rtol=1e-10)
    assert second["step_size"][0] == pytest.approx(0.25 * first["d"][-1], rel=1e-12)


# --------------------------------------------------------------------- zero gradients


@pytest.mark.parametrize(
    "name",
    ["zero_first", "zero_later", "zero_later_b3_zero", "zero_sliced_entries", "zero_first_f32"],
)
def test_zero_gradients_match_reference(name):
    state, actual = lrjax_run(name)
    expected, optimizer = reference_run(name)
    rtol = 1e-10 if RUNS[name].dtype == np.float64 else 1e-4
    assert_parity(actual, expected, rtol=rtol)
    chex.assert_tree_all_finite(state._replace(hyperparams=None))  # growth_rate may be inf
    # The first update was skipped: the parameters are the initial ones, k stayed...
    for k, x0 in RUNS[name].x0().items():
        np.testing.assert_array_equal(actual["params"][k][0], x0.astype(RUNS[name].dtype))
    assert actual["k"][0] == 0
    # ... but m and v moved as the reference's did (m while it is not a sum of rounding
    # noise, which it becomes near the minimum: over 50 steps, 10 in float32).
    assert relative_error(actual["exp_avg_sq"], expected["exp_avg_sq"]) <= rtol
    steps = slice(0, 50 if rtol < 1e-6 else 10)
    assert relative_error(actual["exp_avg"], expected["exp_avg"], steps=steps) <= rtol
    group = optimizer.param_groups[0]
    assert float(state.d_numerator) == pytest.approx(group["d_numerator"], rel=rtol)


# ------------------------------------------------------------------------------ bf16


def test_bf16_params_train_like_float32():
    """Scalar estimates stay float32, updates are bf16, and the run follows float32's."""
    (state16, h16), (state32, h32) = lrjax_run("from_zero_bf16"), lrjax_run("from_zero_f32")
    for leaf in ("d", "d_max", "d_numerator", "step_size"):
        assert getattr(state16, leaf).dtype == jnp.float32
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state16.exp_avg))
    chex.assert_tree_all_finite(state16._replace(hyperparams=None))
    assert float(state16.d) == pytest.approx(float(state32.d), rel=0.05)
    for k in SHAPES:
        np.testing.assert_allclose(h16["params"][k][-1], h32["params"][k][-1], rtol=0.03)


# --------------------------------------------------------------------- introspection


@pytest.mark.parametrize("name", ["defaults", "no_momentum", "every_option"])
def test_introspection_reports_the_step_the_reference_applied(name):
    state, _ = lrjax_run(name)
    history, optimizer = reference_run(name)
    with jax.enable_x64(True):
        initial = prodigy(**RUNS[name].ours).init(
            {k: jnp.asarray(v) for k, v in RUNS[name].x0().items()}
        )
        first_rate = float(lrjax.current_learning_rate(initial))
        rate = float(lrjax.current_learning_rate(state))
        rates = lrjax.effective_learning_rates(state)
    # Before any update: the first update's step size, d0·lr (with its bias correction).
    assert first_rate == pytest.approx(history["step_size"][0], rel=1e-12)
    assert rate == pytest.approx(history["step_size"][-1], rel=1e-10)
    group = optimizer.param_groups[0]
    for k, p in zip(SHAPES, group["params"], strict=True):
        v = optimizer.state[p]["exp_avg_sq"].numpy()
        factor = 1.0 if group["betas"][0] > 0 else group["d"]  # β1 = 0: dlr·d·g/denom
        expected = history["step_size"][-1] * factor / (np.sqrt(v) + group["d"] * group["eps"])
        np.testing.assert_allclose(rates[k], expected, rtol=1e-10)


# ------------------------------------------------------------ jit and hyperparameters


def test_one_compiled_run_serves_other_values_and_set_hyperparams():
    """The float32 runs of two optimizers and of a state changed by set_hyperparams share
    one trace, and the changes take effect."""
    state, history = lrjax_run("defaults_f32")
    lrjax_run("random_0_f32")  # other values, same program
    run = RUNS["defaults_f32"]
    last = {k: v[-1] for k, v in history["params"].items()}
    frozen = lrjax.set_hyperparams(state, learning_rate=0.0, b2=0.99, d_coef=2.0)
    assert float(frozen.hyperparams.values["b2"]) == pytest.approx(0.99)
    state, still = run_lrjax(run, x0=last, state=frozen)
    for k in SHAPES:  # a zero rate: nothing moves, no step is counted
        np.testing.assert_array_equal(still["params"][k][-1], last[k])
    assert int(state.k) == int(frozen.k)
    state = optax.tree.set(state, learning_rate=jnp.asarray(0.5, jnp.float32))
    state, moved = run_lrjax(run, x0=last, state=state)
    assert not np.array_equal(moved["params"]["kernel"][-1], last["kernel"])
    assert int(state.k) == int(frozen.k) + NUM_STEPS
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.5 * float(state.d))
    assert TRACES[_structure(run.ours), "float32"] == 1
    assert all(count == 1 for count in TRACES.values())
    with pytest.raises(ValueError, match="set_hyperparams: learning_rate must be"):
        lrjax.set_hyperparams(state, learning_rate=-1.0)
    with pytest.raises(ValueError, match="nothing in opt_state holds a hyperparameter"):
        lrjax.set_hyperparams(state, momentum=0.9)


# ------------------------------------------------------------------------- bad calls


def test_keyword_only_and_params_needed():
    with pytest.raises(TypeError):
        prodigy(1.0, 0.9)  # type: ignore[misc]
    tx = prodigy()
    with pytest.raises(ValueError, match="prodigy: parameters must be floating-point"):
        tx.init(jnp.arange(3))
    params = jnp.ones(3)
    with pytest.raises(ValueError, match="prodigy: update needs params"):
        tx.update(params, tx.init(params))
