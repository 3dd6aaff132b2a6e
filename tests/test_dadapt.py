"""D-Adaptation Adam and SGD against the authors' reference (dadaptation 3.2).

Both sides get the same gradients: those of a noisy quadratic at lrjax's current
parameters (``problems.SignedQuadratic``), computed once in NumPy, fed to lrjax and set
as ``p.grad`` in torch. The parameters are compared after every step. The quadratic's
parameters stay away from zero (each starts and ends on the same side of it), so an
error relative to each entry (``helpers.relative_error``) means one. Dtypes, jit and the
state are in ``test_dadapt_state``; bad arguments in ``test_hostile_lr_free``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference, import_torch, relative_error
from problems import SignedQuadratic as Problem

import lrjax
from lrjax import dadapt_adam, dadapt_sgd, schedules

torch = import_torch()
ref = import_reference("dadaptation")

NUM_STEPS = 200
FACTORIES = {"adam": dadapt_adam, "sgd": dadapt_sgd}
REFERENCES = {"adam": ref.DAdaptAdam, "sgd": ref.DAdaptSGD}
# DAdaptSGD raises these on an all-zero first gradient and on lr = 0; lrjax moves nothing.
REFERENCE_FAILS = (ZeroDivisionError, UnboundLocalError)


def reference_kwargs(kind: str, ours: dict) -> dict:
    """The reference's arguments for lrjax's."""
    theirs = {"lr": ours.get("learning_rate", 1.0)}
    if kind == "adam":
        theirs["betas"] = (ours.get("b1", 0.9), ours.get("b2", 0.999))
        names = ("eps", "weight_decay", "decouple", "use_bias_correction", "d0", "growth_rate")
    else:
        names = ("momentum", "weight_decay", "d0", "growth_rate")
    theirs.update({name: ours[name] for name in names if name in ours})
    return theirs


_UPDATES: dict = {}


def shared_update(kind: str, ours: dict, tx):
    """A jitted ``(grads, state, params) -> (updates, state, new params)`` of ``tx``,
    shared by the optimizers of one structure (the flags, and which held values are
    zero): their float hyperparameters live in the state, so one compiled update serves
    them all. A schedule is code: not shared."""

    @jax.jit
    def update(grads, state, params):
        updates, state = tx.update(grads, state, params)
        new_params = None if params is None else optax.apply_updates(params, updates)
        return updates, state, new_params

    if callable(ours.get("learning_rate")):
        return update
    flags = (bool(ours.get(name, False)) for name in ("decouple", "use_bias_correction"))
    zeros = (ours.get("weight_decay", 0.0) == 0, ours.get("eps", 1e-8) == 0)
    return _UPDATES.setdefault((kind, *flags, *zeros), update)


def run_parity(
    kind: str,
    ours: dict,
    *,
    dtype,
    seed: int = 0,
    num_steps: int = NUM_STEPS,
    schedule=None,
    zero_steps=(),
    rates: dict | None = None,
) -> np.ndarray:
    """Runs lrjax and the reference side by side on the same gradients.

    ``schedule``: lrjax gets it as ``learning_rate``, the reference its value at each
    step in ``param_groups[0]["lr"]``. ``rates``: {step: lr} set before that step with
    ``set_hyperparams`` and in ``param_groups``. Returns each step's largest relative
    error of the parameters and of d.
    """
    problem = Problem(seed, num_steps)
    theirs = reference_kwargs(kind, ours)
    if schedule is not None:  # the reference's rate is set at each step
        ours, theirs["lr"] = {**ours, "learning_rate": schedule}, 1.0
    tx = FACTORIES[kind](**ours)
    params = {k: jnp.asarray(x, dtype) for k, x in problem.x0.items()}
    state = (jax.jit(tx.init) if schedule is not None else tx.init)(params)
    tensors = {k: torch.tensor(np.asarray(x)) for k, x in params.items()}
    optimizer = REFERENCES[kind](list(tensors.values()), **theirs)
    update = shared_update(kind, ours, tx)
    errors = []
    for t in range(num_steps):
        grads = problem.gradient(params, t, dtype)
        if t in zero_steps:
            grads = jax.tree.map(np.zeros_like, grads)
        if rates and t in rates:
            state = lrjax.set_hyperparams(state, learning_rate=rates[t])
            optimizer.param_groups[0]["lr"] = rates[t]
        _, state, params = update(grads, state, params)
        if schedule is not None:  # the value lrjax's update used (jit may round it apart)
            optimizer.param_groups[0]["lr"] = float(state.hyperparams.scheduled["learning_rate"])
        for k, tensor in tensors.items():
            tensor.grad = torch.tensor(grads[k])
        try:
            optimizer.step()
        except REFERENCE_FAILS:
            assert kind == "sgd"  # checked to change nothing in test_sgd_reference_failures
        d = optimizer.param_groups[0]["d"]
        errors.append(
            max(
                relative_error(params, {k: x.numpy() for k, x in tensors.items()}),
                relative_error(float(state.d), d),
            )
        )
    assert np.isfinite(np.asarray(state.d))
    return np.array(errors)


def check_float64(kind: str, ours: dict, **kwargs) -> None:
    with jax.enable_x64(True):
        errors = run_parity(kind, ours, dtype=np.float64, **kwargs)
    assert errors.max() < 1e-10, errors.max()


# ---------------------------------------------------------------- float64 parity

ADAM_OPTIONS = {
    "defaults": {},
    "coupled_decay": {"weight_decay": 0.05},
    "bias_correction": {"use_bias_correction": True},
    "d0": {"d0": 1e-3},
    "growth_rate": {"growth_rate": 1.05},
    "decoupled_decay_all": {
        "learning_rate": 0.5,
        "b1": 0.8,
        "b2": 0.99,
        "eps": 1e-6,
        "weight_decay": 0.01,
        "decouple": True,
        "use_bias_correction": True,
        "d0": 1e-4,
        "growth_rate": 1.2,
    },
}
SGD_OPTIONS = {
    "defaults": {},
    "momentum": {"momentum": 0.9},
    "weight_decay": {"weight_decay": 0.05},
    "d0": {"d0": 1e-3},
    "growth_rate": {"growth_rate": 1.05},
    "all": {
        "learning_rate": 0.5,
        "momentum": 0.7,
        "weight_decay": 0.01,
        "d0": 1e-4,
        "growth_rate": 1.2,
    },
}
OPTIONS = [("adam", name) for name in ADAM_OPTIONS] + [("sgd", name) for name in SGD_OPTIONS]


@pytest.mark.parametrize(("kind", "option"), OPTIONS)
def test_float64_parity(kind, option):
    options = (ADAM_OPTIONS if kind == "adam" else SGD_OPTIONS)[option]
    check_float64(kind, options)


def draw(kind: str, seed: int) -> dict:
    """Random hyperparameters, with the options of one of the cases above (drawn too)."""
    rng = np.random.default_rng(seed)
    options = ADAM_OPTIONS if kind == "adam" else SGD_OPTIONS
    flags = {k: x for k, x in options[rng.choice(sorted(options))].items() if isinstance(x, bool)}
    decays = rng.random() < 0.5 or flags.get("decouple", False)
    ours = {
        **flags,
        "learning_rate": float(10 ** rng.uniform(-1, 0)),
        "d0": float(10 ** rng.uniform(-8, -4)),
        "growth_rate": float(rng.choice([np.inf, rng.uniform(1.01, 2.0)])),
        "weight_decay": float(10 ** rng.uniform(-3, -1)) if decays else 0.0,
    }
    if kind == "adam":
        ours.update(
            b1=float(rng.uniform(0.0, 0.95)),
            b2=float(rng.uniform(0.9, 0.9999)),
            eps=float(10 ** rng.uniform(-10, -6)),
        )
    else:
        ours["momentum"] = float(rng.choice([0.0, rng.uniform(0.5, 0.95)]))
    return ours


@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_float64_parity_random_hyperparameters(kind, seed):
    check_float64(kind, draw(kind, seed), seed=seed)


def test_float64_parity_schedule():
    # Adam: the rate reaches 0 at step 150, where the reference updates nothing.
    check_float64("adam", {}, schedule=schedules.linear(1.0, 0.0, 150))
    check_float64(
        "sgd", {"momentum": 0.9}, schedule=schedules.cosine_decay(1.0, NUM_STEPS, end_value=0.1)
    )


def test_float64_parity_set_hyperparams():
    check_float64("adam", {"use_bias_correction": True}, rates={20: 0.3, 60: 0.0, 70: 1.0})
    check_float64("sgd", {"momentum": 0.5}, rates={20: 0.3, 60: 2.0})


# ---------------------------------------------------------------- float32 parity

# Over the first steps the defaults (lr = 1), whose loss later spikes on this small
# problem; over 200 steps a smaller multiplier, where it does not.
FLOAT32_CASES = {
    "adam_defaults": ("adam", {}, 10, 1e-6),
    "adam_d0_200": ("adam", {"d0": 1e-3, "learning_rate": 0.3}, NUM_STEPS, 1e-4),
    "adam_200": ("adam", {"learning_rate": 0.1}, NUM_STEPS, 1e-4),
    "adam_options_200": (
        "adam",
        {"learning_rate": 0.1, "weight_decay": 0.01, "decouple": True, "use_bias_correction": True},
        NUM_STEPS,
        1e-4,
    ),
    "sgd_defaults": ("sgd", {}, 10, 1e-6),
    "sgd_d0_200": ("sgd", {"d0": 1e-2}, NUM_STEPS, 1e-4),
    "sgd_momentum_200": ("sgd", {"learning_rate": 0.3, "momentum": 0.9}, NUM_STEPS, 1e-4),
}


@pytest.mark.parametrize("case", sorted(FLOAT32_CASES))
def test_float32_parity(case):
    kind, ours, num_steps, rtol = FLOAT32_CASES[case]
    errors = run_parity(kind, ours, dtype=np.float32, num_steps=num_steps)
    assert errors[:10].max() < 1e-6, errors[:10].max()
    assert errors.max() < rtol, errors.max()


# ----------------------------------------------------------------- zero gradients


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_zero_gradients_first_and_later(kind):
    """The first two gradients and two later ones are all zero, as in the reference;
    DAdaptSGD raises on a zero first gradient (test_sgd_reference_failures)."""
    check_float64(kind, {}, zero_steps=(0, 1, 30, 31), num_steps=60)
    check_float64(kind, {"weight_decay": 0.05}, zero_steps=(0, 30), num_steps=60)


def test_sgd_reference_failures():
    """DAdaptSGD raises on an all-zero first gradient and on lr = 0, changing nothing of
    its parameters or counters; lrjax's update is then a zero step that leaves d, k and
    the sums as they are."""
    problem = Problem(0, 2)
    with jax.enable_x64(True):
        tensors = {k: torch.tensor(x) for k, x in problem.x0.items()}
        optimizer = ref.DAdaptSGD(list(tensors.values()))
        group = optimizer.param_groups[0]

        def reference_step(grads, error=None):
            before = [x.clone() for x in tensors.values()]
            for k, x in tensors.items():
                x.grad = torch.tensor(grads[k])
            if error is None:
                return optimizer.step()
            with pytest.raises(error):
                optimizer.step()
            assert all(torch.equal(x, y) for x, y in zip(tensors.values(), before, strict=True))

        tx = dadapt_sgd()
        update = shared_update("sgd", {}, tx)
        params = {k: jnp.asarray(x) for k, x in problem.x0.items()}
        state = tx.init(params)
        zeros = jax.tree.map(np.zeros_like, problem.x0)
        reference_step(zeros, ZeroDivisionError)
        assert group["k"] == 0
        updates, state, params = update(zeros, state, params)
        assert int(state.k) == 0
        chex.assert_trees_all_equal(updates, zeros)

        grads = problem.gradient(params, 0, np.float64)
        reference_step(grads)
        _, state, params = update(grads, state, params)
        assert relative_error(params, {k: x.numpy() for k, x in tensors.items()}) < 1e-12

        group["lr"] = 0.0
        reference_step(grads, UnboundLocalError)
        assert group["k"] == 1
        state = lrjax.set_hyperparams(state, learning_rate=0.0)
        updates, new_state, _ = update(grads, state, params)
        chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, params))
        chex.assert_trees_all_equal(
            (new_state.k, new_state.d, new_state.numerator_weighted, new_state.s),
            (state.k, state.d, state.numerator_weighted, state.s),
        )


# ------------------------------------------------------------------ introspection


def test_adam_rates_are_the_applied_step():
    """With β1 = 0 the reference's step is −λ g / (√v + ε) exactly: the effective rates
    times the gradient; current_learning_rate is λ (with the bias correction)."""
    with jax.enable_x64(True):
        problem = Problem(0, 30)
        ours = {"b1": 0.0, "use_bias_correction": True, "learning_rate": 0.5}
        tx = dadapt_adam(**ours)
        update = shared_update("adam", ours, tx)
        params = {k: jnp.asarray(x) for k, x in problem.x0.items()}
        state = tx.init(params)
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(
            1e-6 * 0.5 * np.sqrt(1 - 0.999), rel=1e-12
        )
        tensors = {k: torch.tensor(x) for k, x in problem.x0.items()}
        optimizer = ref.DAdaptAdam(list(tensors.values()), **reference_kwargs("adam", ours))
        for t in range(30):
            grads = problem.gradient(params, t, np.float64)
            group = optimizer.param_groups[0]
            k = group["k"]
            dlr = group["d"] * group["lr"] * np.sqrt(1 - 0.999 ** (k + 1))
            before = {k: x.clone().numpy() for k, x in tensors.items()}
            for key, x in tensors.items():
                x.grad = torch.tensor(grads[key])
            optimizer.step()
            _, state, params = update(grads, state, params)
            assert float(lrjax.current_learning_rate(state)) == pytest.approx(dlr, rel=1e-12)
            rates = lrjax.effective_learning_rates(state)
            for key, x in tensors.items():
                applied = x.numpy() - before[key]
                np.testing.assert_allclose(-rates[key] * grads[key], applied, rtol=1e-9, atol=1e-15)


def test_sgd_rates_are_the_applied_step():
    """Without momentum the reference's step is x_{k+1} − x_k = −λ g."""
    with jax.enable_x64(True):
        problem = Problem(1, 30)
        tx = dadapt_sgd(0.5)
        update = shared_update("sgd", {}, tx)
        params = {k: jnp.asarray(x) for k, x in problem.x0.items()}
        state = tx.init(params)
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.5e-6)  # d0 · lr
        tensors = {k: torch.tensor(x) for k, x in problem.x0.items()}
        optimizer = ref.DAdaptSGD(list(tensors.values()), lr=0.5)
        for t in range(30):
            grads = problem.gradient(params, t, np.float64)
            before = {k: x.clone().numpy() for k, x in tensors.items()}
            for key, x in tensors.items():
                x.grad = torch.tensor(grads[key])
            optimizer.step()
            _, state, params = update(grads, state, params)
            rates = lrjax.effective_learning_rates(state)
            for key, x in tensors.items():
                applied = x.numpy() - before[key]
                np.testing.assert_allclose(-rates[key] * grads[key], applied, rtol=1e-9, atol=1e-15)
                np.testing.assert_allclose(
                    rates[key], float(lrjax.current_learning_rate(state)), rtol=0
                )
