"""``mask=`` on the learning-rate-free methods: parity with the authors' packages run with
two torch parameter groups, one decayed (``weight_decay`` w) and one not (0).

Both sides train the same separable quadratic, each computing its gradient ``c·(x − t)``
from its own current parameters (the same IEEE operations on both sides), in float64,
with hyperparameters drawn at random (seeded). The parameters are a small layer, a weight
matrix and a bias, and a norm scale: the mask decays the weight matrix only.

Where a reference cannot express the mask with two groups, the reference run is one group
without decay fed the gradient plus ``w·x`` on the decayed parameters (what a coupled
decay is): ``DAdaptSGD`` reads ``weight_decay`` from its first group only, and ``DoG``
keeps one step size per group (lrjax's ``mask`` keeps DoG's one step size; its two groups
are ``optax.partition`` of two DoGs, also checked here).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference, import_torch, relative_error

import lrjax

torch = import_torch()
prodigyopt = import_reference("prodigyopt")
schedulefree = import_reference("schedulefree")
dadaptation = import_reference("dadaptation")
dog_reference = import_reference("dog")

NUM_STEPS = 300
RTOL = 1e-10  # float64 against torch's float64
SHAPES = {"dense": {"w": (4, 3), "b": (3,)}, "norm": {"scale": (3,)}}
DECAYED = ["dense/w"]
NOT_DECAYED = ["dense/b", "norm/scale"]
# The same mask three ways: a tree like the parameters, a prefix of it, a function.
MASK_TREE = {"dense": {"w": True, "b": False}, "norm": {"scale": False}}
MASK_PREFIX = {"dense": {"w": True, "b": False}, "norm": False}


def mask_fn(params):
    return jax.tree.map(lambda x: x.ndim == 2, params)


MASKS = {"tree": MASK_TREE, "prefix": MASK_PREFIX, "function": mask_fn}


def _is_shape(x) -> bool:
    return isinstance(x, tuple)


def _names(tree) -> dict[str, Any]:
    leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=_is_shape)
    return {"/".join(key.key for key in path): leaf for path, leaf in leaves}


def _problem(seed: int) -> tuple[dict, dict, dict]:
    """{leaf name: array} of the initial parameters, curvatures c and targets t."""
    rng = np.random.default_rng(seed)
    shapes = _names(SHAPES)
    x0 = {k: rng.uniform(0.5, 1.5, s) for k, s in shapes.items()}
    curvature = {k: rng.uniform(0.1, 2.0, s) for k, s in shapes.items()}
    target = {k: rng.uniform(2.0, 4.0, s) for k, s in shapes.items()}
    return x0, curvature, target


def _tree(named: dict) -> dict:
    """{leaf name: value} as a tree like SHAPES."""
    return {
        outer: {inner: named[f"{outer}/{inner}"] for inner in leaves}
        for outer, leaves in SHAPES.items()
    }


# ------------------------------------------------------------------------ the runs


def run_lrjax(tx, seed: int, num_steps: int = NUM_STEPS):
    """{leaf name: (steps, *shape)} of the parameters after every step, the
    ``current_learning_rate`` after every step, and the final state's
    ``effective_learning_rates`` (float64, NumPy)."""
    x0, curvature, target = (_tree(t) for t in _problem(seed))
    with jax.enable_x64(True):
        params, c, t = (jax.tree.map(jnp.asarray, tree) for tree in (x0, curvature, target))

        @jax.jit
        def run(params):
            def body(carry, _):
                params, state = carry
                grads = jax.tree.map(lambda c, x, t: c * (x - t), c, params, t)
                updates, state = tx.update(grads, state, params)
                params = optax.apply_updates(params, updates)
                return (params, state), (params, lrjax.current_learning_rate(state))

            carry = (params, tx.init(params))
            (_, state), (history, rates) = jax.lax.scan(body, carry, None, length=num_steps)
            return state, history, rates

        state, history, rates = run(params)
        history = {k: np.asarray(v) for k, v in _names(history).items()}
        effective = jax.tree.map(np.asarray, lrjax.effective_learning_rates(state))
        return history, jax.tree.map(np.asarray, rates), effective


class Reference(NamedTuple):
    """How the reference is driven: ``build(param groups)`` makes the optimizer;
    ``rate(optimizer)`` reads the step size the step applied, before the step
    (``before=True``) or after it; ``decay_in_gradient`` adds ``w·x`` to the decayed
    parameters' gradients (the emulated mask); ``prepare(optimizer, tensors)`` runs once
    before the first step."""

    build: Callable[[list[dict]], Any]
    rate: Callable[[Any], float]
    before: bool = False
    decay_in_gradient: float | None = None
    prepare: Callable[[Any, dict], None] | None = None


def run_reference(reference: Reference, seed: int, groups: list[tuple[list[str], dict]]):
    """The reference's parameters after every step and the step sizes it applied."""
    x0, curvature, target = _problem(seed)
    tensors = {k: torch.tensor(v).requires_grad_(True) for k, v in x0.items()}
    c = {k: torch.tensor(v) for k, v in curvature.items()}
    t = {k: torch.tensor(v) for k, v in target.items()}
    optimizer = reference.build(
        [{"params": [tensors[n] for n in names], **options} for names, options in groups]
    )
    if hasattr(optimizer, "train"):  # schedule-free: train mode
        optimizer.train()
    if reference.prepare is not None:
        reference.prepare(optimizer, tensors)
    history: dict[str, list] = {k: [] for k in tensors}
    rates = []
    for _ in range(NUM_STEPS):
        with torch.no_grad():
            for k, p in tensors.items():
                p.grad = c[k] * (p - t[k])
                if reference.decay_in_gradient is not None and k in DECAYED:
                    p.grad.add_(p, alpha=reference.decay_in_gradient)
        if reference.before:
            rates.append(reference.rate(optimizer))
        optimizer.step()
        if not reference.before:
            rates.append(reference.rate(optimizer))
        for k, p in tensors.items():
            history[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in history.items()}, np.array(rates, np.float64)


def two_groups(weight_decay: float, decayed_first: bool = True) -> list:
    groups = [(DECAYED, {"weight_decay": weight_decay}), (NOT_DECAYED, {"weight_decay": 0.0})]
    return groups if decayed_first else groups[::-1]


ALL = [(DECAYED + NOT_DECAYED, {})]  # one group, the reference's defaults


# ---------------------------------------------------------- the methods, drawn


def _log_uniform(rng, low: float, high: float) -> float:
    return float(10 ** rng.uniform(low, high))


def _first_group(optimizer) -> dict:
    return optimizer.param_groups[0]


def _adam_bias_correction(group: dict) -> float:
    """The reference's ``√(1 − β2^{k+1}) / (1 − β1^{k+1})`` (Prodigy, D-Adapt Adam)."""
    if not group["use_bias_correction"]:
        return 1.0
    b1, b2 = group["betas"]
    k = group["k"]
    return (1 - b2 ** (k + 1)) ** 0.5 / (1 - b1 ** (k + 1))


class Case(NamedTuple):
    """One method: lrjax's optimizer from (hyperparameters, mask), the reference and its
    groups from the hyperparameters, and the drawn hyperparameters."""

    ours: Callable[..., optax.GradientTransformation]
    reference: Callable[[dict], tuple[Reference, list]]
    hyperparams: dict


# ADAM_RATES: the multipliers of Prodigy and D-Adapt Adam are drawn below 0.25 and 0.13.
# Above, their steps on this small problem end up hopping around the minimum, where a
# rounding difference of one ulp grows chaotically (to 1e-3 in 300 steps, as much between
# the reference and lrjax without a mask): parity is compared where the loss does not spike.


def prodigy_case(seed: int, *, decouple: bool) -> Case:
    rng = np.random.default_rng(10 + seed)
    hp = dict(
        learning_rate=float(rng.uniform(0.05, 0.25)),  # see ADAM_RATES
        b1=float(rng.uniform(0.5, 0.95)),
        b2=float(rng.uniform(0.99, 0.9999)),
        eps=_log_uniform(rng, -9, -6),
        weight_decay=_log_uniform(rng, -3, -1),
        d0=_log_uniform(rng, -7, -4),
        d_coef=float(rng.uniform(0.5, 2.0)),
        growth_rate=float(rng.uniform(1.01, 1.5)) if seed % 2 else math.inf,
        use_bias_correction=bool(seed % 2),
        safeguard_warmup=not seed % 2,
    )

    def ours(hp, mask):
        return lrjax.prodigy(**hp, decouple=decouple, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "b1", "b2")}
        wd = theirs.pop("weight_decay")

        def build(groups):
            return prodigyopt.Prodigy(
                groups, lr=hp["learning_rate"], betas=(hp["b1"], hp["b2"]), decouple=decouple,
                **theirs,
            )  # fmt: skip

        def rate(optimizer):
            group = _first_group(optimizer)
            return group["d"] * group["lr"] * _adam_bias_correction(group)

        return Reference(build, rate, before=True), two_groups(wd, decayed_first=seed % 2 == 0)

    return Case(ours, reference, hp)


def schedule_free_adamw_case(seed: int) -> Case:
    rng = np.random.default_rng(20 + seed)
    hp = dict(
        learning_rate=_log_uniform(rng, -2.5, -1),
        b1=float(rng.uniform(0.5, 0.95)),
        b2=float(rng.uniform(0.95, 0.9999)),
        eps=_log_uniform(rng, -8, -6),
        weight_decay=_log_uniform(rng, -2, -0.5),
        warmup_steps=int(rng.integers(0, 30)),
        r=float(rng.uniform(0.2, 2.0)) if seed % 2 else 0.0,
        weight_lr_power=float(rng.uniform(0.5, 4.0)),
    )

    def ours(hp, mask):
        return lrjax.schedule_free_adamw(**hp, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "b1", "b2")}
        wd = theirs.pop("weight_decay")

        def build(groups):
            return schedulefree.AdamWScheduleFree(
                groups, lr=hp["learning_rate"], betas=(hp["b1"], hp["b2"]), **theirs
            )

        rate = lambda optimizer: _first_group(optimizer)["scheduled_lr"]
        return Reference(build, rate), two_groups(wd, decayed_first=seed % 2 == 0)

    return Case(ours, reference, hp)


def schedule_free_sgd_case(seed: int) -> Case:
    rng = np.random.default_rng(30 + seed)
    hp = dict(
        learning_rate=_log_uniform(rng, -2, -0.5),
        momentum=float(rng.uniform(0.5, 0.95)),
        weight_decay=_log_uniform(rng, -2, -0.5),
        warmup_steps=int(rng.integers(0, 30)),
        r=float(rng.uniform(0.2, 2.0)) if seed % 2 else 0.0,
        weight_lr_power=float(rng.uniform(0.5, 4.0)),
    )

    def ours(hp, mask):
        return lrjax.schedule_free_sgd(**hp, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k != "learning_rate"}
        wd = theirs.pop("weight_decay")
        build = lambda groups: schedulefree.SGDScheduleFree(
            groups, lr=hp["learning_rate"], **theirs
        )
        rate = lambda optimizer: _first_group(optimizer)["scheduled_lr"]
        return Reference(build, rate), two_groups(wd, decayed_first=seed % 2 == 0)

    return Case(ours, reference, hp)


def dadapt_adam_case(seed: int, *, decouple: bool) -> Case:
    rng = np.random.default_rng(40 + seed)
    hp = dict(
        learning_rate=_log_uniform(rng, -1.5, -0.9),  # see ADAM_RATES
        b1=float(rng.uniform(0.0, 0.95)),
        b2=float(rng.uniform(0.9, 0.9999)),
        eps=_log_uniform(rng, -10, -6),
        weight_decay=_log_uniform(rng, -3, -1),
        d0=_log_uniform(rng, -8, -4),
        growth_rate=float(rng.uniform(1.01, 2.0)) if seed % 2 else math.inf,
        use_bias_correction=bool(seed % 2),
    )

    def ours(hp, mask):
        return lrjax.dadapt_adam(**hp, decouple=decouple, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "b1", "b2")}
        wd = theirs.pop("weight_decay")

        def build(groups):
            return dadaptation.DAdaptAdam(
                groups, lr=hp["learning_rate"], betas=(hp["b1"], hp["b2"]), decouple=decouple,
                **theirs,
            )  # fmt: skip

        def rate(optimizer):
            group = _first_group(optimizer)
            return group["d"] * group["lr"] * _adam_bias_correction(group)

        return Reference(build, rate, before=True), two_groups(wd, decayed_first=seed % 2 == 0)

    return Case(ours, reference, hp)


def dadapt_sgd_case(seed: int) -> Case:
    """The reference reads ``weight_decay`` from its first group only: the mask is emulated
    (one group, no decay, ``w·x`` added to the decayed gradients), with its ‖g₀‖ set to
    the first gradient's without the decay, as the reference measures it."""
    rng = np.random.default_rng(50 + seed)
    hp = dict(
        learning_rate=_log_uniform(rng, -1, 0),
        momentum=float(rng.uniform(0.5, 0.95)) if seed % 2 else 0.0,
        weight_decay=_log_uniform(rng, -3, -1),
        d0=_log_uniform(rng, -8, -4),
        growth_rate=float(rng.uniform(1.01, 2.0)) if seed % 2 else math.inf,
    )

    def ours(hp, mask):
        return lrjax.dadapt_sgd(**hp, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "weight_decay")}
        build = lambda groups: dadaptation.DAdaptSGD(groups, lr=hp["learning_rate"], **theirs)

        def prepare(optimizer, tensors):
            x0, curvature, target = _problem(seed)
            squares = sum(float(np.sum((curvature[k] * (x0[k] - target[k])) ** 2)) for k in x0)
            group = _first_group(optimizer)
            group.update(k=1, g0_norm=math.sqrt(squares))  # k only gates the ‖g₀‖ pass

        def rate(optimizer):
            group = _first_group(optimizer)
            return group["d"] * group["lr"] / group["g0_norm"]

        emulated = Reference(
            build, rate, before=True, decay_in_gradient=hp["weight_decay"], prepare=prepare
        )
        return emulated, ALL

    return Case(ours, reference, hp)


def dog_case(seed: int, *, layerwise: bool) -> Case:
    """L-DoG's step sizes are per parameter: two groups are the mask. DoG's are per group:
    the mask (one step size) is emulated in one group."""
    rng = np.random.default_rng(60 + seed)
    hp = dict(
        learning_rate=float(rng.uniform(0.5, 1.2)),
        reps_rel=_log_uniform(rng, -7, -3),
        eps=_log_uniform(rng, -10, -5),
        weight_decay=_log_uniform(rng, -3, -1),
    )

    def ours(hp, mask):
        return lrjax.dog(**hp, layerwise=layerwise, mask=mask)

    def reference(hp):
        theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "weight_decay")}
        cls = dog_reference.LDoG if layerwise else dog_reference.DoG
        build = lambda groups: cls(groups, lr=hp["learning_rate"], **theirs)

        def rate(optimizer):  # lrjax reports the largest step size
            return max(float(eta) for g in optimizer.param_groups for eta in g["eta"])

        if layerwise:
            return Reference(build, rate), two_groups(hp["weight_decay"], seed % 2 == 0)
        return Reference(build, rate, decay_in_gradient=hp["weight_decay"]), ALL

    return Case(ours, reference, hp)


CASES = {
    "prodigy": lambda seed: prodigy_case(seed, decouple=True),
    "prodigy_coupled": lambda seed: prodigy_case(seed, decouple=False),
    "schedule_free_adamw": schedule_free_adamw_case,
    "schedule_free_sgd": schedule_free_sgd_case,
    "dadapt_adam": lambda seed: dadapt_adam_case(seed, decouple=False),
    "dadapt_adam_decoupled": lambda seed: dadapt_adam_case(seed, decouple=True),
    "dadapt_sgd": dadapt_sgd_case,
    "dog": lambda seed: dog_case(seed, layerwise=False),
    "ldog": lambda seed: dog_case(seed, layerwise=True),
}
# Each method with two seeds; the mask given the three ways in turn.
PARITY = [
    (name, seed, kind) for name in CASES for seed, kind in enumerate(("tree", "prefix", "function"))
]


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize(("name", "seed", "mask_kind"), PARITY)
def test_mask_matches_the_reference_with_decay_and_no_decay_groups(name, seed, mask_kind):
    """Every step's parameters and the step size applied (``current_learning_rate``)."""
    case = CASES[name](seed)
    actual, actual_rates, effective = run_lrjax(case.ours(case.hyperparams, MASKS[mask_kind]), seed)
    reference, groups = case.reference(case.hyperparams)
    expected, expected_rates = run_reference(reference, seed, groups)
    assert relative_error(actual, expected) <= RTOL
    assert relative_error(actual_rates, expected_rates) <= RTOL
    chex.assert_trees_all_equal_shapes(effective, _tree({k: v[-1] for k, v in expected.items()}))
    assert all(np.all(np.isfinite(r)) and np.all(r > 0) for r in jax.tree.leaves(effective))


@pytest.mark.parametrize("seed", [0, 1])
def test_dog_groups_are_a_partition(seed):
    """torch's two DoG groups, each with its own step size, are ``optax.partition`` of two
    DoGs (lrjax's ``mask`` keeps one step size)."""
    case = dog_case(seed, layerwise=False)
    hp = case.hyperparams
    labels = jax.tree.map(lambda decayed: "decay" if decayed else "no_decay", MASK_TREE)
    tx = optax.partition(
        {"decay": lrjax.dog(**hp), "no_decay": lrjax.dog(**{**hp, "weight_decay": 0.0})}, labels
    )
    actual, rates, _ = run_lrjax(tx, seed)
    theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "weight_decay")}
    build = lambda groups: dog_reference.DoG(groups, lr=hp["learning_rate"], **theirs)
    groups = two_groups(hp["weight_decay"])
    expected, _ = run_reference(Reference(build, lambda optimizer: 0.0), seed, groups)
    assert relative_error(actual, expected) <= RTOL
    assert not np.array_equal(rates["decay"], rates["no_decay"])  # one rate per group


def test_dadapt_sgd_reference_decays_every_group_by_the_first_groups_value():
    """Why ``dadapt_sgd``'s mask is checked against an emulation: two reference groups
    with ``weight_decay`` w and 0 decay both groups, as lrjax without a mask."""
    case = dadapt_sgd_case(0)
    hp = case.hyperparams
    actual, _, _ = run_lrjax(case.ours(hp, None), 0)
    theirs = {k: v for k, v in hp.items() if k not in ("learning_rate", "weight_decay")}
    build = lambda groups: dadaptation.DAdaptSGD(groups, lr=hp["learning_rate"], **theirs)
    groups = two_groups(hp["weight_decay"])
    expected, _ = run_reference(Reference(build, lambda optimizer: 0.0), 0, groups)
    assert relative_error(actual, expected) <= RTOL


# ------------------------------------------------------------------ the mask's forms

SHORT = 5


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_mask_forms_agree_and_a_zero_decay_ignores_the_mask(name):
    """A tree, a prefix and a function give the same updates (bit for bit), which decay
    the weight matrix only; with ``weight_decay=0`` the mask changes nothing."""
    case = CASES[name](0)
    no_decay = {**case.hyperparams, "weight_decay": 0.0}
    runs = {kind: case.ours(case.hyperparams, mask) for kind, mask in MASKS.items()}
    runs.update(
        unmasked=case.ours(case.hyperparams, None),
        unmasked_zero=case.ours(no_decay, None),
        masked_zero=case.ours(no_decay, mask_fn),
    )
    histories = {kind: run_lrjax(tx, 0, SHORT)[0] for kind, tx in runs.items()}
    chex.assert_trees_all_equal(histories["tree"], histories["prefix"], histories["function"])
    chex.assert_trees_all_equal(histories["masked_zero"], histories["unmasked_zero"])
    masked, unmasked, zero = histories["tree"], histories["unmasked"], histories["unmasked_zero"]
    assert not np.array_equal(masked["dense/w"], zero["dense/w"])  # decayed
    assert not np.array_equal(masked["dense/b"], unmasked["dense/b"])  # not decayed


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_function_mask_compiles_once(name):
    chex.clear_trace_counter()
    case = CASES[name](1)
    tx = case.ours(case.hyperparams, mask_fn)
    params = jax.tree.map(jnp.ones, SHAPES, is_leaf=_is_shape)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = tx.update(params, state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(3):
        params, state = step(params, state)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


# ------------------------------------------------------------------------ bad masks

FACTORIES = {
    "prodigy": lrjax.prodigy,
    "schedule_free_adamw": lrjax.schedule_free_adamw,
    "schedule_free_sgd": lrjax.schedule_free_sgd,
    "dadapt_adam": lrjax.dadapt_adam,
    "dadapt_sgd": lrjax.dadapt_sgd,
    "dog": lrjax.dog,
}


@pytest.mark.parametrize("mask", [[1, 0], "b", {"w": 1}, (0.5,), {}], ids=repr)
@pytest.mark.parametrize("method", sorted(FACTORIES))
def test_a_bad_mask_names_the_method(method, mask):
    with pytest.raises(ValueError, match=f"^{method}: mask must be "):
        FACTORIES[method](weight_decay=0.1, mask=mask)


@pytest.mark.parametrize("method", sorted(FACTORIES))
def test_a_mask_that_does_not_fit_the_parameters_names_the_method(method):
    params = jax.tree.map(jnp.ones, SHAPES, is_leaf=_is_shape)
    tx = FACTORIES[method](weight_decay=0.1, mask={"dense": True, "head": False})
    with pytest.raises(ValueError, match=f"^{method}: mask must be a pytree of bools like"):
        tx.init(params)
    tx = FACTORIES[method](weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim, p))
    with pytest.raises(ValueError, match=rf"^{method}: mask\(params\) must return a pytree"):
        tx.init(params)

    def broken(params):
        return params["missing"]

    tx = FACTORIES[method](weight_decay=0.1, mask=broken)
    with pytest.raises(ValueError, match=rf"^{method}: calling mask\(params\) failed") as info:
        tx.init(params)
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.parametrize("method", sorted(FACTORIES))
def test_mask_is_keyword_only(method):
    parameter = inspect.signature(FACTORIES[method]).parameters["mask"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None
