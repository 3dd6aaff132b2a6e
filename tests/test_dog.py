"""DoG and L-DoG against the authors' reference (dog-optimizer 1.0.3).

Both sides get the same gradients: those of a noisy quadratic at lrjax's parameters,
computed once by lrjax's run, then set as ``p.grad`` in torch. The parameters and the step
sizes (the state's, ``current_learning_rate`` and ``effective_learning_rates``) are
compared after every step (``helpers.relative_error``). Polynomial averaging is in
``test_dog_average``; bad arguments in ``test_hostile_lr_free``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference, import_torch, relative_error

import lrjax
from lrjax import DoGState, LDoGState, dog, polynomial_average, schedules

torch = import_torch()
ref = import_reference("dog")

SHAPES = {"kernel": (7, 5), "bias": (5,), "scale": ()}
# Gradient magnitudes differ per leaf, so L-DoG's per-leaf step sizes differ.
GRAD_SCALES = {"kernel": 1.0, "bias": 1e-3, "scale": 30.0}
NUM_STEPS = 200
# float32: the norms and sums are reductions whose order follows the CPU's vector width
# (XLA on AVX-512 and on AVX2, torch in its own); over 200 steps that moved the
# reps_rel run's relative error from below 2e-6 to 5.0e-6 on an AVX-512 machine. float64
# holds the formulas to 1e-10.
RTOL = {np.float64: 1e-10, np.float32: 1e-5}
SCHEDULE = schedules.cosine_decay(1.0, NUM_STEPS, end_value=0.3)


class Problem:
    """``g = s ⊙ (a ⊙ (x − b) + noise_t)`` per leaf, about 10% of the noise exactly zero;
    the whole gradient is zero at ``zero_steps`` and a leaf's at ``zero_leaves[leaf]``."""

    def __init__(self, seed: int, dtype, zero_steps=(), zero_leaves=None):
        rng = np.random.default_rng(seed)
        zero_leaves = zero_leaves or {}
        self.x0 = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        self.curvature = {k: rng.uniform(0.1, 2.0, s).astype(dtype) for k, s in SHAPES.items()}
        self.target = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        self.noise = {
            k: (rng.standard_normal((NUM_STEPS, *s)) * (rng.random((NUM_STEPS, *s)) > 0.1)).astype(
                dtype
            )
            for k, s in SHAPES.items()
        }
        self.live = {
            k: np.array(
                [t not in zero_steps and t not in zero_leaves.get(k, ()) for t in range(NUM_STEPS)]
            )
            for k in SHAPES
        }

    def arrays(self):
        """The start and the quadratic, as JAX arrays (the noise is fed chunk by chunk)."""
        return tuple(jax.tree.map(jnp.asarray, x) for x in (self.x0, self.curvature, self.target))


def _gradient(params, curvature, target, noise, live):
    return {
        k: jnp.where(live[k], GRAD_SCALES[k] * (curvature[k] * (p - target[k]) + noise[k]), 0)
        for k, p in params.items()
    }


CHUNK = 100  # steps per compiled scan; set_hyperparams may change values between chunks


def _runner(tx, layerwise: bool):
    """``CHUNK`` steps of lrjax in one compiled scan, with the gradients, recording what
    the reference needs (the gradients, the rate values) and what is compared (the
    parameters, the state's step sizes)."""
    traces = []

    @jax.jit
    def run(params, state, curvature, target, noise, live):
        traces.append(None)
        assert len(traces) == 1, "new hyperparameter values retraced the run"

        def step(carry, inputs):
            params, state = carry
            grads = _gradient(params, curvature, target, *inputs)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            record = dict(
                params=params,
                grads=grads,
                updates=updates,
                lr=state.hyperparams.scheduled.get("learning_rate", jnp.zeros([])),
                state_eta=state.step_sizes if layerwise else state.step_size,
            )
            return (params, state), record

        (params, state), history = jax.lax.scan(step, (params, state), (noise, live))
        # What introspection reports after the chunk's last update.
        rates = lrjax.effective_learning_rates(state)
        looked = (lrjax.current_learning_rate(state), {k: rates[k] for k in SHAPES})
        return (params, state), history, looked

    return run


# The held hyperparameters live in the state, so one compiled run serves all their values:
# a run is compiled once per structure (which options are given) and dtype.
_RUNNERS: dict = {}


def run_lrjax(ours: dict, layerwise: bool, problem: Problem, changes=None) -> tuple[Any, dict]:
    """lrjax's run; ``changes[t]`` are hyperparameters set before update t (t = 0 or
    ``CHUNK``)."""
    tx = dog(**ours, layerwise=layerwise)
    x0, curvature, target = problem.arrays()
    structure = ("init_eta" in ours, bool(ours.get("weight_decay")))
    dtypes = tuple(sorted({str(x.dtype) for x in jax.tree.leaves(x0)}))
    key = (structure, callable(ours.get("learning_rate")), layerwise, dtypes)
    if key not in _RUNNERS:
        _RUNNERS[key] = _runner(tx, layerwise)
    changes = changes or {}
    assert set(changes) <= set(range(0, NUM_STEPS, CHUNK))
    params, state = x0, tx.init(x0)
    chunks, looked = [], []
    for start in range(0, NUM_STEPS, CHUNK):
        if start in changes:
            state = lrjax.set_hyperparams(state, **changes[start])
        inputs = jax.tree.map(lambda x, s=start: x[s : s + CHUNK], (problem.noise, problem.live))
        (params, state), history, seen = _RUNNERS[key](params, state, curvature, target, *inputs)
        chunks.append(history)
        looked.append(seen)
    history = jax.tree.map(lambda *xs: np.concatenate(xs), *jax.device_get(chunks))
    history["current"], history["effective"] = jax.tree.map(
        lambda *xs: np.stack(xs), *jax.device_get(looked)
    )
    return state, history


def run_reference(
    x0: dict, kwargs: dict, layerwise: bool, history: dict, scheduled=False, changes=None
):
    """The reference's parameters and step sizes after each step, fed lrjax's gradients
    (and the rate lrjax's schedule gave, as ``param_groups[0]["lr"]``)."""
    tensors = {k: torch.nn.Parameter(torch.tensor(np.asarray(x))) for k, x in x0.items()}
    optimizer = (ref.LDoG if layerwise else ref.DoG)(list(tensors.values()), **kwargs)
    group = optimizer.param_groups[0]
    params: dict[str, list] = {k: [] for k in SHAPES}
    etas = []
    for t in range(NUM_STEPS):
        if scheduled:
            group["lr"] = float(history["lr"][t])
        for name, value in (changes or {}).get(t, {}).items():
            group["lr" if name == "learning_rate" else name] = value
        for k, tensor in tensors.items():
            tensor.grad = torch.tensor(history["grads"][k][t])
        optimizer.step()
        for k, tensor in tensors.items():
            params[k].append(tensor.detach().numpy().copy())
        etas.append([float(eta) for eta in group["eta"]])
    return {k: np.stack(x) for k, x in params.items()}, np.array(etas)


def params_error(ours: dict, theirs: dict) -> float:
    """The largest error relative to each leaf's magnitude over the run (coordinates
    cross zero, where a relative error means nothing)."""
    return relative_error(ours, theirs, floor="leaf")


def eta_errors(history: dict, theirs_etas: np.ndarray, layerwise: bool) -> dict[str, float]:
    """Errors of the state's η (every step), and of current_learning_rate and
    effective_learning_rates (after each chunk), against the reference's η."""
    if layerwise:
        state_etas = np.stack([history["state_eta"][k] for k in SHAPES], axis=1)
    else:
        state_etas = history["state_eta"][:, None]
    looked = theirs_etas[CHUNK - 1 :: CHUNK]
    # L-DoG reports the largest step size as its current learning rate.
    current = np.max(looked, axis=1) if layerwise else looked[:, 0]
    effective = max(
        relative_error(
            history["effective"][k].reshape(len(looked), -1), looked[:, i : i + 1], floor=1e-300
        )
        for i, k in enumerate(SHAPES)
    )
    return {
        "eta": relative_error(state_etas, theirs_etas, floor=1e-300),
        "current": relative_error(history["current"], current, floor=1e-300),
        "effective": effective,
    }


def run_both(
    options: dict, layerwise: bool, problem: Problem, changes=None
) -> tuple[Any, dict, dict, np.ndarray]:
    """lrjax's run and the reference's on the same gradients: (lrjax's final state, its
    history, the reference's parameters, the reference's step sizes)."""
    theirs = {("lr" if k == "learning_rate" else k): x for k, x in options.items()}
    scheduled = callable(theirs.get("lr"))
    if scheduled:
        del theirs["lr"]
    state, history = run_lrjax(options, layerwise, problem, changes)
    theirs_params, theirs_etas = run_reference(
        problem.x0, theirs, layerwise, history, scheduled, changes
    )
    return state, history, theirs_params, theirs_etas


def run_parity(options: dict, *, layerwise: bool, dtype, seed: int, changes=None):
    """The largest relative errors of the parameters and step sizes over the run."""
    _, history, theirs_params, theirs_etas = run_both(
        options, layerwise, Problem(seed, dtype), changes
    )
    return {
        "params": params_error(history["params"], theirs_params),
        **eta_errors(history, theirs_etas, layerwise),
    }


def assert_errors(errors: dict[str, float], dtype) -> None:
    for name, err in errors.items():
        assert err <= RTOL[dtype], f"{name}: relative error {err:.3g} > {RTOL[dtype]:.0e}"


# The random hyperparameters below also cover learning_rate, reps_rel, eps, weight_decay.
OPTIONS = {
    "defaults": {},
    "reps_rel": {"reps_rel": 1e-4},
    "weight_decay": {"weight_decay": 1e-2},
    # Every option at once, with a schedule as the rate (the reference's
    # param_groups[0]["lr"] is set to the schedule's value before each step).
    "schedule_and_all": {
        "learning_rate": SCHEDULE,
        "reps_rel": 1e-5,
        "eps": 1e-6,
        "weight_decay": 3e-3,
        "init_eta": 1e-4,
    },
}
LAYERWISE = pytest.mark.parametrize("layerwise", [False, True], ids=["dog", "ldog"])


@LAYERWISE
@pytest.mark.parametrize("name", ["defaults", "weight_decay", "schedule_and_all"])
def test_matches_reference_float64(name, layerwise):
    with jax.enable_x64(True):
        errors = run_parity(OPTIONS[name], layerwise=layerwise, dtype=np.float64, seed=1)
    assert_errors(errors, np.float64)


@LAYERWISE
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_random_hyperparameters(seed, layerwise):
    rng = np.random.default_rng(100 + seed)
    options = {
        "learning_rate": float(rng.uniform(0.5, 1.2)),
        "reps_rel": float(10 ** rng.uniform(-7, -3)),
        "eps": float(10 ** rng.uniform(-10, -5)),
        "weight_decay": float(10 ** rng.uniform(-4, -2)),
    }
    with jax.enable_x64(True):
        errors = run_parity(options, layerwise=layerwise, dtype=np.float64, seed=10 + seed)
    assert_errors(errors, np.float64)


# In float32 the parameters differ from torch's by an ulp now and then (torch applies
# p − ηg with one rounding, a fused multiply-add; lrjax returns −ηg and optax adds it), and
# DoG's distance ‖x − x0‖ magnifies that by |x|/‖x − x0‖, up to 1e4 in the first steps.
# Over seeds the errors are 1e-7 to 1e-6, now and then up to 4e-6 in L-DoG's η.
@LAYERWISE
@pytest.mark.parametrize("name", ["defaults", "reps_rel"])
def test_matches_reference_float32(name, layerwise):
    errors = run_parity(OPTIONS[name], layerwise=layerwise, dtype=np.float32, seed=3)
    assert_errors(errors, np.float32)


# ------------------------------------------------------------------ zero gradients


@LAYERWISE
def test_zero_gradients_match_reference(layerwise):
    """An all-zero first gradient and two later ones: zero steps, then DoG goes on."""
    with jax.enable_x64(True):
        problem = Problem(4, np.float64, zero_steps=(0, 5, 6))
        _, history, theirs_params, theirs_etas = run_both({}, layerwise, problem)
    assert params_error(history["params"], theirs_params) <= 1e-10
    for name, err in eta_errors(history, theirs_etas, layerwise).items():
        assert err <= 1e-10, name
    for k in SHAPES:
        np.testing.assert_array_equal(history["params"][k][0], problem.x0[k])
        np.testing.assert_array_equal(history["updates"][k][5], 0)
        assert np.all(np.isfinite(history["params"][k]))
    assert np.all(np.asarray(jax.tree.leaves(history["state_eta"])) > 0)


@LAYERWISE
def test_zero_first_gradient_with_init_eta_never_moves(layerwise):
    """With ``init_eta`` the reference has r_ε = 0: after a zero first gradient r̄, and so
    every later η, stay 0, and the parameters never move. lrjax does the same."""
    options = OPTIONS["schedule_and_all"]  # init_eta, and weight decay set to 0 below
    with jax.enable_x64(True):
        problem = Problem(4, np.float64, zero_steps=(0,))
        changes = {0: {"weight_decay": 0.0}}
        _, history, theirs_params, theirs_etas = run_both(options, layerwise, problem, changes)
    assert params_error(history["params"], theirs_params) == 0
    etas = np.asarray(jax.tree.leaves(history["state_eta"]))
    assert np.all(etas[:, 0] == options["init_eta"]) and np.all(etas[:, 1:] == 0)
    assert np.all(theirs_etas[1:] == 0)
    for k in SHAPES:
        np.testing.assert_array_equal(history["params"][k][-1], problem.x0[k])


@LAYERWISE
def test_zero_gradient_without_eps_takes_the_limit(layerwise):
    """ε = 0 and a zero first gradient (of the whole tree, and of one leaf alone): the
    reference stops (it asserts G > 0); lrjax takes the limit ε → 0: the step is zero, η
    is recorded as 0, and the run equals the reference's with ε = 1e-300."""
    with jax.enable_x64(True):
        problem = Problem(5, np.float64, zero_steps=(0,), zero_leaves={"bias": (1,)})
        _, history = run_lrjax({"eps": 0.0}, layerwise, problem)
        theirs_params, _ = run_reference(problem.x0, {"eps": 1e-300}, layerwise, history)
        with pytest.raises(AssertionError, match="strictly positive"):
            run_reference(problem.x0, {"eps": 0.0}, layerwise, history)
    assert params_error(history["params"], theirs_params) <= 1e-10
    first = history["state_eta"]
    assert np.all(np.asarray(jax.tree.leaves(jax.tree.map(lambda x: x[0], first))) == 0)
    if layerwise:  # the bias has seen only zeros until step 2
        assert history["state_eta"]["bias"][1] == 0 and history["state_eta"]["kernel"][1] > 0
    for k in SHAPES:
        assert np.all(np.isfinite(history["params"][k]))


# ------------------------------------------------------------------- dtypes, jit


@LAYERWISE
def test_bfloat16_parameters(layerwise):
    """State scalars stay float32, updates come back in bf16, finite and close to the
    float32 run. (The step must exceed half a bf16 ulp to move a parameter, hence the
    larger reps_rel.)"""
    options = {"reps_rel": 1e-2}
    problem = Problem(6, np.float32)
    _, reference = run_lrjax(options, layerwise, problem)
    low = Problem(6, np.float32)
    for field in ("x0", "curvature", "target", "noise"):
        setattr(low, field, jax.tree.map(lambda x: x.astype(jnp.bfloat16), getattr(low, field)))
    final, history = run_lrjax(options, layerwise, low)
    for scalar in jax.tree.leaves((final.r_max, final.sum_sq_grads, history["state_eta"])):
        assert scalar.dtype == np.float32
    for k in SHAPES:
        assert history["updates"][k].dtype == jnp.bfloat16
        assert final.x0[k].dtype == jnp.bfloat16
        ours = history["params"][k][:50].astype(np.float32)
        assert np.all(np.isfinite(ours))
        scale = np.max(np.abs(reference["params"][k][:50]))
        np.testing.assert_allclose(ours, reference["params"][k][:50], atol=0.05 * scale)


@LAYERWISE
def test_set_hyperparams_matches_setting_param_groups(layerwise):
    """``set_hyperparams`` before the first update (where r_ε and ε enter) and mid-run is
    torch's ``param_groups[0][name] = value`` at the same step; the compiled step is not
    retraced (the runner asserts one trace)."""
    changes = {
        0: {"learning_rate": 0.9, "reps_rel": 3e-5, "eps": 1e-4},
        100: {"learning_rate": 0.5, "eps": 1.0},  # ε enters only the first update
    }
    with jax.enable_x64(True):
        state, history, theirs_params, theirs_etas = run_both(
            {}, layerwise, Problem(8, np.float64), changes
        )
    assert params_error(history["params"], theirs_params) <= 1e-10
    for name, err in eta_errors(history, theirs_etas, layerwise).items():
        assert err <= 1e-10, name
    assert float(state.hyperparams.values["learning_rate"]) == 0.5


def test_set_hyperparams_names_what_the_state_holds():
    state = dog(init_eta=1e-3).init(jnp.zeros(3))
    changed = lrjax.set_hyperparams(state, init_eta=2e-3)  # the first update's step size
    assert float(lrjax.current_learning_rate(changed)) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="'reps_rel'"):  # ignored with init_eta
        lrjax.set_hyperparams(state, reps_rel=1e-4)
    with pytest.raises(ValueError, match="weight_decay"):  # a held zero leaves it out
        lrjax.set_hyperparams(state, weight_decay=1e-4)
    with pytest.raises(ValueError, match="set_hyperparams: eps must be"):
        lrjax.set_hyperparams(state, eps=-1.0)


# --------------------------------------------------------------- introspection, state


def test_state_before_the_first_update():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3, jnp.float16)}
    state: Any = dog().init(params)
    assert isinstance(state, DoGState)
    assert float(lrjax.current_learning_rate(state)) == 0  # η_0 depends on g_0
    state = dog(init_eta=1e-3).init(params)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(1e-3)
    rates = lrjax.effective_learning_rates(state)
    assert rates["w"].shape == (2, 3) and rates["b"].shape == (3,)
    assert state.x0["b"].dtype == np.float32  # float16 state is kept in float32
    for scalar in (state.r_max, state.sum_sq_grads, state.step_size):
        assert scalar.dtype == np.float32
    layered = dog(layerwise=True, init_eta=2e-3).init(params)
    assert isinstance(layered, LDoGState)
    assert float(lrjax.current_learning_rate(layered)) == pytest.approx(2e-3)
    assert jax.tree.structure(layered.step_sizes) == jax.tree.structure(params)


def test_x0_is_a_copy():
    params = {"w": jnp.arange(3.0), "b": jnp.ones(2)}
    for init in (dog().init, jax.jit(dog(layerwise=True).init)):
        state: Any = init(params)
        for k, x in params.items():
            assert state.x0[k].unsafe_buffer_pointer() != x.unsafe_buffer_pointer()
            np.testing.assert_array_equal(state.x0[k], x)


@LAYERWISE
def test_empty_tree(layerwise):
    tx = dog(layerwise=layerwise)
    updates, state = jax.jit(tx.update)({}, tx.init({}), {})
    assert updates == {}
    assert float(lrjax.current_learning_rate(state)) >= 0


# ------------------------------------------------------------------- bad calls


def test_keyword_only_and_bad_calls():
    with pytest.raises(TypeError):
        dog(1.0, 1e-6)  # type: ignore[misc]
    with pytest.raises(TypeError):
        polynomial_average(8.0)  # type: ignore[misc]
    tx = dog()
    with pytest.raises(ValueError, match="dog: update needs params"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    with pytest.raises(ValueError, match="dog: parameters must be floating-point"):
        tx.init(jnp.arange(3))
