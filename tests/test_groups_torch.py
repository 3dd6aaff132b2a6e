"""Parity with torch's parameter groups and with hyperparameters changed mid-training.

torch's ``param_groups`` are ``optax.partition`` of lrjax methods, a decay / no-decay
pair is ``mask=``, a hyperparameter torch users set before every step is a schedule, and
layer-wise decay is :func:`lrjax.layerwise_decay`. Each case runs 200 steps of random
gradients on a small network-shaped pytree, hyperparameters drawn at random (seeded),
and compares the parameters with torch's after every step (the runners and the
comparison of ``helpers``).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import optax
import pytest
from helpers import assert_histories_close, import_torch, leaf_names, run_lrjax, run_torch

import lrjax
from lrjax import schedules

torch = import_torch()

NUM_STEPS = 200
# Two random hyperparameter sets per case (a different pair for each case): each case
# compiles its own step, and the suite's time budget is shared.
SEEDS = [0, 1]
# A small transformer-shaped tree: embeddings (layer 0), two blocks, a head (layer 3).
SHAPES = {
    "embed": {"w": (6, 4)},
    "block_0": {"w": (4, 4), "b": (4,), "scale": (4,)},
    "block_1": {"w": (4, 4), "b": (4,), "scale": (4,)},
    "head": {"w": (4, 3), "b": (3,)},
}
LAYERS = {"embed": 0, "block_0": 1, "block_1": 2, "head": 3}
NUM_LAYERS = 3


def _names(tree) -> list[str]:
    return list(leaf_names(tree))


def _decays(path, leaf) -> bool:
    """The usual recipe: weight decay on matrices, none on biases and norm scales."""
    return path[-1].key == "w"


def _layer_of(path, leaf) -> int:
    return LAYERS[path[0].key]


NO_DECAY_TREE = jax.tree_util.tree_map_with_path(
    lambda path, _: _decays(path, None), SHAPES, is_leaf=lambda x: isinstance(x, tuple)
)


def no_decay_fn(params):
    return jax.tree_util.tree_map_with_path(_decays, params)


def _initial_params(seed):
    rng = np.random.default_rng(3000 + seed)
    return jax.tree.map(
        lambda shape: rng.standard_normal(shape).astype(np.float32),
        SHAPES,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def _gradients(seed):
    rng = np.random.default_rng(4000 + seed)
    # Gradient scales differ per leaf, so the adaptive methods' per-parameter rates differ.
    scales = {"embed": 1e-3, "block_0": 1e-2, "block_1": 0.3, "head": 3.0}

    def draw(path, shape):
        g = rng.standard_normal(shape) * scales[path[0].key]
        return np.where(rng.random(shape) < 0.1, 0.0, g).astype(np.float32)

    return [
        jax.tree_util.tree_map_with_path(draw, SHAPES, is_leaf=lambda x: isinstance(x, tuple))
        for _ in range(NUM_STEPS)
    ]


def _adam_hyperparams(seed):
    rng = np.random.default_rng(seed)
    return dict(
        lr=float(10 ** rng.uniform(-3, -2)),
        b1=float(rng.uniform(0.8, 0.95)),
        b2=float(rng.uniform(0.99, 0.9999)),
        eps=float(10 ** rng.uniform(-8, -6)),
        wd=float(10 ** rng.uniform(-2, -0.5)),
    )


def _split(names, keep):
    return [n for n in names if keep(n)], [n for n in names if not keep(n)]


# ------------------------------------------------------------ decay / no-decay pair


@pytest.mark.parametrize(
    ("method", "mask_kind", "seed"),
    [("adamw", "tree", 0), ("adamw", "tree", 1), ("adamw", "function", 2), ("adam", "function", 5)],
)
def test_decay_no_decay_groups(method, mask_kind, seed):
    """AdamW's decoupled decay and Adam's coupled (L2) decay, limited by ``mask``."""
    hp = _adam_hyperparams(seed)
    params, gradients = _initial_params(seed), _gradients(seed)
    decay, no_decay = _split(_names(params), lambda n: n.endswith("/w"))
    expected, *_ = run_torch(
        {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[method],
        [(decay, {"weight_decay": hp["wd"]}), (no_decay, {"weight_decay": 0.0})],
        params,
        gradients,
        lr=hp["lr"],
        betas=(hp["b1"], hp["b2"]),
        eps=hp["eps"],
    )
    mask = NO_DECAY_TREE if mask_kind == "tree" else no_decay_fn
    tx = getattr(lrjax, method)(
        hp["lr"], b1=hp["b1"], b2=hp["b2"], eps=hp["eps"], weight_decay=hp["wd"], mask=mask
    )
    actual, _ = run_lrjax(tx, params, gradients)
    assert_histories_close(actual, expected)


# ---------------------------------------------------- two groups at different rates


EFFECTIVE_RTOL = 5e-6  # observed: 6e-7


def _torch_adam_rates(optimizer, tensors):
    """The per-parameter rate of torch's Adam from its state (exp_avg_sq, step), by the
    Adam formula (lr / (1 − β1^t)) / (√v / √(1 − β2^t) + ε), in float64."""
    names = {id(tensor): name for name, tensor in tensors.items()}
    rates = {}
    for group in optimizer.param_groups:
        b1, b2 = group["betas"]
        for p in group["params"]:
            state = optimizer.state[p]
            t = float(state["step"])
            v = state["exp_avg_sq"].double().numpy()
            denominator = np.sqrt(v) / math.sqrt(1 - b2**t) + group["eps"]
            rates[names[id(p)]] = group["lr"] / (1 - b1**t) / denominator
    return rates


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_two_groups_rates_and_introspection(seed):
    hp = _adam_hyperparams(seed)
    lr_head = hp["lr"]
    lr_backbone = lr_head * float(np.random.default_rng(seed).uniform(0.05, 0.5))
    params, gradients = _initial_params(seed), _gradients(seed)
    head, backbone = _split(_names(params), lambda n: n.startswith("head/"))
    expected, _, torch_rates = run_torch(
        torch.optim.Adam,
        [(backbone, {"lr": lr_backbone}), (head, {"lr": lr_head})],
        params,
        gradients,
        record=_torch_adam_rates,
        betas=(hp["b1"], hp["b2"]),
        eps=hp["eps"],
    )
    labels = {name: "head" if name == "head" else "backbone" for name in SHAPES}
    ours = dict(b1=hp["b1"], b2=hp["b2"], eps=hp["eps"])
    tx = optax.partition(
        {"backbone": lrjax.adam(lr_backbone, **ours), "head": lrjax.adam(lr_head, **ours)}, labels
    )

    def inspect(state):
        return lrjax.current_learning_rate(state), lrjax.effective_learning_rates(state)

    actual, seen = run_lrjax(tx, params, gradients, inspect)
    assert_histories_close(actual, expected)
    for t, ((rates, effective), reference) in enumerate(zip(seen, torch_rates, strict=True)):
        assert set(rates) == {"backbone", "head"}
        np.testing.assert_allclose(float(rates["backbone"]), lr_backbone, rtol=1e-7)
        np.testing.assert_allclose(float(rates["head"]), lr_head, rtol=1e-7)
        for name, rate in leaf_names(effective).items():
            np.testing.assert_allclose(
                rate, reference[name], rtol=EFFECTIVE_RTOL, err_msg=f"step {t + 1}, leaf {name}"
            )


# ------------------------------------------------ hyperparameters changed every step


def _cosine(start, end, t, period=NUM_STEPS):
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * min(t, period) / period))


@pytest.mark.parametrize("seed", SEEDS)
def test_adamw_weight_decay_changed_every_step(seed):
    hp = _adam_hyperparams(seed)
    params, gradients = _initial_params(seed), _gradients(seed)
    start, end = hp["wd"], hp["wd"] / 20

    def set_decay(optimizer, t):
        optimizer.param_groups[0]["weight_decay"] = _cosine(start, end, t)

    expected, *_ = run_torch(
        torch.optim.AdamW,
        [(_names(params), {})],
        params,
        gradients,
        before_step=set_decay,
        lr=hp["lr"],
        betas=(hp["b1"], hp["b2"]),
        eps=hp["eps"],
    )
    weight_decay = schedules.cosine_decay(start, NUM_STEPS, end_value=end)
    tx = lrjax.adamw(hp["lr"], b1=hp["b1"], b2=hp["b2"], eps=hp["eps"], weight_decay=weight_decay)
    actual, _ = run_lrjax(tx, params, gradients)
    assert_histories_close(actual, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sgd_momentum_changed_every_step(seed):
    rng = np.random.default_rng(seed)
    lr, start, end = float(10 ** rng.uniform(-3, -2)), float(rng.uniform(0.9, 0.97)), 0.5
    dampening = float(rng.uniform(0.0, 0.3))
    params, gradients = _initial_params(seed), _gradients(seed)

    def set_momentum(optimizer, t):
        optimizer.param_groups[0]["momentum"] = _cosine(start, end, t, period=120)

    expected, *_ = run_torch(
        torch.optim.SGD,
        [(_names(params), {})],
        params,
        gradients,
        before_step=set_momentum,
        lr=lr,
        momentum=start,
        dampening=dampening,
    )
    momentum = schedules.cosine_decay(start, 120, end_value=end)
    actual, _ = run_lrjax(lrjax.sgd(lr, momentum=momentum, dampening=dampening), params, gradients)
    assert_histories_close(actual, expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_adam_beta1_changed_every_step(seed):
    hp = _adam_hyperparams(seed)
    params, gradients = _initial_params(seed), _gradients(seed)
    # Up and down, as torch's OneCycleLR cycles β1 (cycle_momentum=True).
    b1 = schedules.cyclic(0.85, 0.95, step_size_up=50)

    def set_beta1(optimizer, t):
        optimizer.param_groups[0]["betas"] = (0.85 + 0.1 * (1 - abs(t / 50 % 2 - 1)), hp["b2"])

    expected, *_ = run_torch(
        torch.optim.Adam,
        [(_names(params), {})],
        params,
        gradients,
        before_step=set_beta1,
        lr=hp["lr"],
        eps=hp["eps"],
    )
    actual, _ = run_lrjax(
        lrjax.adam(hp["lr"], b1=b1, b2=hp["b2"], eps=hp["eps"]), params, gradients
    )
    assert_histories_close(actual, expected)


# --------------------------------------------------------------- layer-wise decay


def _layer_groups(params, lr, decay, wd):
    """torch's groups as timm's ``param_groups_layer_decay`` makes them: per layer, one
    with weight decay and one without, at the layer's rate; and each group's layer."""
    groups, layers = [], []
    for name, layer in LAYERS.items():
        members = [n for n in _names(params) if n.startswith(name + "/")]
        options = {"lr": lr * decay ** (NUM_LAYERS - layer)}
        for names, weight_decay in zip(
            _split(members, lambda n: n.endswith("/w")), (wd, 0.0), strict=True
        ):
            if names:
                groups.append((names, {**options, "weight_decay": weight_decay}))
                layers.append(layer)
    return groups, layers


@pytest.mark.parametrize(("scheduled", "seed"), [(False, 0), (False, 1), (True, 1), (True, 2)])
def test_layerwise_decay_matches_torch_param_groups(scheduled, seed):
    hp = _adam_hyperparams(seed)
    decay = float(np.random.default_rng(seed).uniform(0.5, 0.9))
    params, gradients = _initial_params(seed), _gradients(seed)
    warmup_steps = 20

    def factor(t):  # torch's LambdaLR factor: lrjax's warmup of cosine_decay, in float64
        if t < warmup_steps:
            return t / warmup_steps
        return _cosine(1.0, 0.0, t - warmup_steps, period=NUM_STEPS - warmup_steps)

    groups, group_layers = _layer_groups(params, hp["lr"], decay, hp["wd"])
    scheduler = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor)
    expected, torch_rates, _ = run_torch(
        torch.optim.AdamW,
        groups,
        params,
        gradients,
        scheduler=scheduler if scheduled else None,
        betas=(hp["b1"], hp["b2"]),
        eps=hp["eps"],
    )

    def optimizer(lr):
        if scheduled:
            main = schedules.cosine_decay(lr, NUM_STEPS - warmup_steps)
            lr = schedules.warmup(main, warmup_steps)
        return lrjax.adamw(
            lr, b1=hp["b1"], b2=hp["b2"], eps=hp["eps"], weight_decay=hp["wd"], mask=no_decay_fn
        )

    tx = lrjax.layerwise_decay(
        optimizer, hp["lr"], decay=decay, num_layers=NUM_LAYERS, layer_of=_layer_of
    )
    actual, seen = run_lrjax(tx, params, gradients, lrjax.current_learning_rate)
    assert_histories_close(actual, expected)
    # The rate of each layer is the rate torch applied to that layer's groups.
    for t, (ours, theirs) in enumerate(zip(seen, torch_rates, strict=True)):
        assert set(ours) == set(range(NUM_LAYERS + 1))
        np.testing.assert_allclose(
            [float(ours[layer]) for layer in group_layers],
            theirs,
            rtol=1e-6,
            atol=1e-12,
            err_msg=f"step {t + 1}",
        )
