"""Parity with torch.optim: same parameters, gradients and hyperparameters, same params.

Every method and option is run for 200+ steps of random gradients on a pytree of several
shapes, with hyperparameters drawn at random (seeded), and compared with torch after
every step (the runners and the comparison of ``helpers``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_histories_close, import_torch, run_lrjax, run_torch

import lrjax
from lrjax import schedules

torch = import_torch()

SHAPES = {"kernel": (7, 5), "bias": (5,), "scale": (), "conv": (2, 3, 4)}
# Gradient magnitudes differ per leaf, so the adaptive methods' per-parameter rates differ.
GRAD_SCALES = {"kernel": 1.0, "bias": 1e-2, "scale": 30.0, "conv": 1e-4}
NUM_STEPS = 200


def _draw(method: str, options: dict, seed: int) -> tuple[dict, dict]:
    """(lrjax kwargs, torch kwargs) for a random hyperparameter set with ``options``."""
    rng = np.random.default_rng(seed)
    lr = float(10 ** rng.uniform(-3, -1.5))
    wd = float(10 ** rng.uniform(-3, -1)) if options.get("weight_decay") else 0.0
    if method == "sgd":
        momentum = float(rng.uniform(0.5, 0.95)) if options.get("momentum") else 0.0
        dampening = float(rng.uniform(0.1, 0.5)) if options.get("dampening") else 0.0
        nesterov = bool(options.get("nesterov", False))
        ours = dict(
            learning_rate=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=wd,
        )
        theirs = dict(
            lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=wd
        )
    elif method == "adagrad":
        lr_decay = float(10 ** rng.uniform(-3, -1)) if options.get("lr_decay") else 0.0
        init = float(rng.uniform(0.01, 1.0)) if options.get("initial_accumulator_value") else 0.0
        eps = float(10 ** rng.uniform(-10, -6))
        ours = dict(
            learning_rate=lr,
            lr_decay=lr_decay,
            weight_decay=wd,
            initial_accumulator_value=init,
            eps=eps,
        )
        theirs = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=wd, initial_accumulator_value=init, eps=eps
        )
    elif method == "adadelta":
        lr = float(rng.uniform(0.1, 1.0))
        # ρ = 0, the end of its range: a zero gradient meets a zero denominator in the
        # step from the new E[Δx²], where torch's form has none.
        rho = 0.0 if options.get("rho_zero") else float(rng.uniform(0.8, 0.99))
        eps = float(10 ** rng.uniform(-7, -5))
        ours = dict(learning_rate=lr, rho=rho, eps=eps, weight_decay=wd)
        theirs = dict(lr=lr, rho=rho, eps=eps, weight_decay=wd)
    elif method == "rmsprop":
        decay = float(rng.uniform(0.9, 0.999))
        eps = float(10 ** rng.uniform(-8, -6))
        momentum = float(rng.uniform(0.5, 0.95)) if options.get("momentum") else 0.0
        centered = bool(options.get("centered", False))
        ours = dict(
            learning_rate=lr,
            decay=decay,
            eps=eps,
            weight_decay=wd,
            momentum=momentum,
            centered=centered,
        )
        theirs = dict(
            lr=lr, alpha=decay, eps=eps, weight_decay=wd, momentum=momentum, centered=centered
        )
    elif method in ("adam", "adamw"):
        b1 = float(rng.uniform(0.8, 0.95))
        b2 = float(rng.uniform(0.99, 0.9999))
        eps = float(10 ** rng.uniform(-8, -6))
        amsgrad = bool(options.get("amsgrad", False))
        if method == "adamw":
            wd = float(10 ** rng.uniform(-3, -1))
        ours = dict(learning_rate=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd, amsgrad=amsgrad)
        theirs = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad)
    else:
        raise AssertionError(method)
    return ours, theirs


TORCH_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}

CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": True}),
    ("sgd", {"momentum": True, "dampening": True}),
    ("sgd", {"momentum": True, "nesterov": True, "weight_decay": True}),
    ("sgd", {"weight_decay": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": True, "weight_decay": True}),
    ("adagrad", {"initial_accumulator_value": True}),
    ("adadelta", {}),
    ("adadelta", {"weight_decay": True}),
    ("adadelta", {"rho_zero": True}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": True, "weight_decay": True}),
    ("rmsprop", {"momentum": True, "centered": True}),
    ("adam", {}),
    ("adam", {"weight_decay": True}),
    ("adam", {"amsgrad": True}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True}),
]


def _gradients(seed: int, num_steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1000 + seed)
    steps = []
    for _ in range(num_steps):
        grads = {}
        for name, shape in SHAPES.items():
            g = rng.standard_normal(shape) * GRAD_SCALES[name]
            # Some exact zeros: the adaptive methods' accumulators see g = 0 too.
            g = np.where(rng.random(shape) < 0.1, 0.0, g)
            grads[name] = g.astype(np.float32)
        steps.append(grads)
    return steps


def _initial_params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2000 + seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def run_method(method, kwargs, params, gradients, scheduler=None):
    """torch's parameters after each step of ``torch.optim.<method>`` (one group)."""
    cls = getattr(torch.optim, TORCH_CLASSES[method])
    return run_torch(cls, [(list(SHAPES), {})], params, gradients, scheduler=scheduler, **kwargs)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("method", "options"), CASES, ids=lambda x: str(x))
def test_matches_torch(method, options, seed):
    ours, theirs = _draw(method, options, seed)
    params, gradients = _initial_params(seed), _gradients(seed, NUM_STEPS)
    expected = run_method(method, theirs, params, gradients)
    actual, _ = run_lrjax(getattr(lrjax, method)(**ours), params, gradients)
    assert_histories_close(actual, expected)


# A schedule as the rate: lrjax's schedule and the torch scheduler with the same values.
SCHEDULES = {
    "step_decay": (
        lambda lr: schedules.step_decay(lr, 60, gamma=0.5),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, 60, 0.5),
    ),
    "cosine_decay": (
        lambda lr: schedules.cosine_decay(lr, NUM_STEPS, end_value=0.1 * lr),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, NUM_STEPS, eta_min=0.1 * opt.defaults["lr"]
        ),
    ),
    "one_cycle": (
        lambda lr: schedules.one_cycle(lr, NUM_STEPS),
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, opt.defaults["lr"], total_steps=NUM_STEPS, cycle_momentum=False
        ),
    ),
    "warmup_lambda": (
        lambda lr: lambda count: lr * jnp.minimum(1.0, (count + 1).astype(jnp.float32) / 50),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 50)),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("method", sorted(TORCH_CLASSES))
def test_schedule_matches_torch_scheduler(method, name):
    ours, theirs = _draw(method, {"momentum": True}, seed=7)
    make_ours, make_theirs = SCHEDULES[name]
    ours["learning_rate"] = make_ours(ours["learning_rate"])
    params, gradients = _initial_params(7), _gradients(7, NUM_STEPS)
    expected = run_method(method, theirs, params, gradients, scheduler=make_theirs)
    actual, _ = run_lrjax(getattr(lrjax, method)(**ours), params, gradients)
    assert_histories_close(actual, expected)
