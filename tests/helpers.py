"""Shared test helpers and the parameter lists tests sweep over."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest


def import_torch() -> types.ModuleType:
    """PyTorch, the numerical reference.

    Outside CI a parity test is skipped when torch is not installed; in CI (``CI=true``)
    a missing torch fails the test, so parity is never silently skipped there.
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import torch

        return torch
    return pytest.importorskip("torch")


def import_reference(name: str) -> types.ModuleType:
    """An authors' reference package (schedulefree, prodigyopt, dadaptation, dog): like
    :func:`import_torch`, skipped outside CI when missing and required in CI."""
    import_torch()
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)


# Every method with its options switched on, built from a learning rate (a number, an
# array, a tracer or a schedule). The contract tests sweep over this list.
def _methods():
    import lrjax

    return {
        "sgd": lambda lr: lrjax.sgd(lr),
        "sgd_nesterov": lambda lr: lrjax.sgd(lr, momentum=0.9, nesterov=True, weight_decay=1e-4),
        "sgd_dampening": lambda lr: lrjax.sgd(lr, momentum=0.8, dampening=0.3),
        "adagrad": lambda lr: lrjax.adagrad(lr, lr_decay=0.01, initial_accumulator_value=0.1),
        "adadelta": lambda lr: lrjax.adadelta(lr, weight_decay=1e-3),
        "rmsprop": lambda lr: lrjax.rmsprop(lr),
        "rmsprop_centered": lambda lr: lrjax.rmsprop(lr, momentum=0.9, centered=True),
        "adam": lambda lr: lrjax.adam(lr),
        "adam_amsgrad": lambda lr: lrjax.adam(lr, weight_decay=1e-3, amsgrad=True),
        "adamw": lambda lr: lrjax.adamw(lr),
    }


METHODS = _methods()
METHOD_NAMES = sorted(METHODS)


# The learning-rate-free methods, each with options switched on, built from the
# multiplier the references call ``lr``. Their step size is estimated: the rate they
# report is not the multiplier.
def _lr_free():
    import lrjax

    return {
        "prodigy": lambda lr: lrjax.prodigy(lr),
        "prodigy_options": lambda lr: lrjax.prodigy(
            lr, weight_decay=1e-3, decouple=False, use_bias_correction=True, slice_p=3
        ),
        "dadapt_adam": lambda lr: lrjax.dadapt_adam(lr),
        "dadapt_adam_decoupled": lambda lr: lrjax.dadapt_adam(
            lr, weight_decay=1e-3, decouple=True, use_bias_correction=True
        ),
        "dadapt_sgd": lambda lr: lrjax.dadapt_sgd(lr, momentum=0.9, weight_decay=1e-4, d0=1e-2),
        "dog": lambda lr: lrjax.dog(lr, weight_decay=1e-4, reps_rel=1e-2),
        "ldog": lambda lr: lrjax.dog(lr, layerwise=True, reps_rel=1e-2),
        "schedule_free_adamw": lambda lr: lrjax.schedule_free_adamw(
            lr, warmup_steps=2, weight_decay=1e-3
        ),
        "schedule_free_sgd": lambda lr: lrjax.schedule_free_sgd(lr, r=0.5),
    }


LR_FREE = _lr_free()
LR_FREE_NAMES = sorted(LR_FREE)
ALL_METHODS = {**METHODS, **LR_FREE}
ALL_METHOD_NAMES = sorted(ALL_METHODS)


from collections.abc import Callable  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402


# Every schedule family (and its variants), built from one float argument ``v`` (the
# initial or peak rate, or another float leaf), with the steps where its phases meet. The
# schedule contract tests sweep over this list; ``v=0.1`` is the plain case.
class ScheduleCase(NamedTuple):
    build: Callable[[Any], Any]
    steps: tuple[int, ...]


def _half(step):
    """A plain function as a child of warmup/join (module-level: a new lambda per build
    would be a new static child, and a retrace)."""
    import jax.numpy as jnp

    return 0.05 * jnp.ones_like(step, jnp.float32)


def _schedule_cases() -> dict[str, ScheduleCase]:
    import optax

    from lrjax import schedules as s

    optax_exponential = optax.exponential_decay(0.1, 10, 0.5)
    # A plain optax schedule as a factor of product (built once: a new one per build would
    # be a new static child, and a retrace).
    optax_factor = optax.exponential_decay(1.0, 10, 0.9)
    return {
        "constant": ScheduleCase(lambda v: s.constant(v), (0, 1)),
        "step_decay": ScheduleCase(lambda v: s.step_decay(v, 30, gamma=0.5), (0, 29, 30, 31, 3000)),
        "multistep_decay": ScheduleCase(
            lambda v: s.multistep_decay(v, (10, 20, 20), gamma=0.5), (0, 9, 10, 20, 21)
        ),
        "multistep_gamma": ScheduleCase(
            lambda v: s.multistep_decay(0.1, (10, 20), gamma=v), (0, 10, 20)
        ),
        "piecewise_constant": ScheduleCase(
            lambda v: s.piecewise_constant((10, 20), (v, 0.05, 0.01)), (0, 9, 10, 20)
        ),
        "exponential_decay": ScheduleCase(
            lambda v: s.exponential_decay(v, 0.9, transition_steps=10), (0, 10, 1000)
        ),
        "exponential_rate": ScheduleCase(
            lambda v: s.exponential_decay(0.1, v + 0.8, transition_steps=10), (0, 10, 1000)
        ),
        "exponential_staircase": ScheduleCase(
            lambda v: s.exponential_decay(
                v, 0.5, transition_steps=10, staircase=True, end_value=1e-3
            ),
            (0, 9, 10, 69, 70, 100),
        ),
        "exponential_growth": ScheduleCase(
            lambda v: s.exponential_decay(0.01, 1.0 + v, end_value=v), (0, 10, 24, 25, 1000)
        ),
        "inverse_time_decay": ScheduleCase(
            lambda v: s.inverse_time_decay(v, 0.5, decay_steps=10), (0, 10, 1000)
        ),
        "inverse_time_staircase": ScheduleCase(
            lambda v: s.inverse_time_decay(0.1, v, decay_steps=10, staircase=True),
            (0, 9, 10, 1000),
        ),
        "polynomial_decay": ScheduleCase(
            lambda v: s.polynomial_decay(v, 1e-3, 100, power=2.0), (0, 99, 100, 101)
        ),
        "polynomial_power": ScheduleCase(
            lambda v: s.polynomial_decay(0.1, 0.0, 100, power=v + 0.4), (0, 99, 100, 101)
        ),
        "linear": ScheduleCase(lambda v: s.linear(v, 0.0, 100), (0, 99, 100, 101)),
        "linear_rise": ScheduleCase(lambda v: s.linear(0.0, v, 100), (0, 1, 100)),
        "cosine_decay": ScheduleCase(
            lambda v: s.cosine_decay(v, 100, end_value=1e-3), (0, 1, 99, 100, 101)
        ),
        "cosine_restarts": ScheduleCase(lambda v: s.cosine_restarts(v, 10), (0, 9, 10, 11)),
        "cosine_restarts_mult": ScheduleCase(
            lambda v: s.cosine_restarts(0.1, 10, period_mult=2, end_value=1e-3, peak_decay=v + 0.4),
            (0, 9, 10, 29, 30),
        ),
        "cosine_restarts_float_mult": ScheduleCase(
            lambda v: s.cosine_restarts(v, 7, period_mult=1.5, end_value=1e-3, peak_decay=0.8),
            (0, 6, 7, 17, 18),
        ),
        "cyclic": ScheduleCase(lambda v: s.cyclic(1e-3, v, step_size_up=10), (0, 10, 19, 20)),
        "cyclic_triangular2": ScheduleCase(
            lambda v: s.cyclic(v, 1.0, step_size_up=5, step_size_down=3, mode="triangular2"),
            (0, 5, 8, 9),
        ),
        "cyclic_exp_range": ScheduleCase(
            lambda v: s.cyclic(1e-3, 0.1, step_size_up=10, mode="exp_range", gamma=v + 0.89),
            (0, 10, 20, 1000),
        ),
        "one_cycle": ScheduleCase(lambda v: s.one_cycle(v, 100), (0, 29, 30, 99, 100)),
        "one_cycle_three_phase": ScheduleCase(
            lambda v: s.one_cycle(v, 100, pct_start=0.25, anneal="linear", three_phase=True),
            (0, 24, 48, 49, 99),
        ),
        "one_cycle_div": ScheduleCase(
            lambda v: s.one_cycle(
                0.1, 100, pct_start=0.3, div_factor=250 * v, final_div_factor=1e3 * v
            ),
            (0, 29, 99),
        ),
        "inverse_sqrt": ScheduleCase(lambda v: s.inverse_sqrt(v, 10), (0, 1, 9, 10, 11)),
        "wsd": ScheduleCase(lambda v: s.wsd(v, 10, 20, 30), (0, 10, 29, 30, 31, 59, 60, 61)),
        "wsd_linear": ScheduleCase(
            lambda v: s.wsd(v, 10, 20, 30, init_value=1e-3, end_value=1e-4, decay_shape="linear"),
            (0, 10, 30, 59, 60),
        ),
        "wsd_cosine": ScheduleCase(
            # No warm-up, so no init_value: the float leaf is the peak.
            lambda v: s.wsd(v, 0, 20, 30, end_value=1e-4, decay_shape="cosine"),
            (0, 19, 20, 49, 50),
        ),
        "wsd_end": ScheduleCase(
            lambda v: s.wsd(0.1, 10, 0, 30, end_value=v, decay_shape="1-sqrt"),
            (0, 10, 11, 39, 40),
        ),
        "warmup": ScheduleCase(lambda v: s.warmup(s.cosine_decay(v, 100), 10), (0, 9, 10, 110)),
        "warmup_optax": ScheduleCase(
            lambda v: s.warmup(optax_exponential, 10, init_value=v), (0, 9, 10, 60)
        ),
        "join": ScheduleCase(
            lambda v: s.join([s.linear(0.0, v, 10), s.cosine_decay(v, 90)], (10,)), (0, 9, 10, 100)
        ),
        "join_function": ScheduleCase(
            lambda v: s.join([s.constant(v), _half, s.inverse_sqrt(v, 5)], (10, 20)),
            (0, 10, 20, 25),
        ),
        "polynomial_cycle": ScheduleCase(
            lambda v: s.polynomial_decay(v, 1e-3, 10, power=2.0, cycle=True),
            (0, 9, 10, 11, 20, 21),
        ),
        "cosine_exponent": ScheduleCase(
            lambda v: s.cosine_decay(0.1, 100, end_value=1e-3, exponent=v + 1.9),
            (0, 1, 99, 100, 101),
        ),
        "per_epoch": ScheduleCase(
            lambda v: s.per_epoch(s.step_decay(v, 3, gamma=0.5), 10), (0, 9, 10, 29, 30, 31)
        ),
        "product": ScheduleCase(
            lambda v: s.product([s.step_decay(v, 30, gamma=0.5), optax_factor]), (0, 29, 30, 1000)
        ),
        "one_cycle_momentum": ScheduleCase(
            lambda v: s.one_cycle_momentum(100, base_momentum=v + 0.75), (0, 29, 30, 99, 100)
        ),
        "cyclic_momentum_exp_range": ScheduleCase(
            lambda v: s.cyclic_momentum(
                step_size_up=5, step_size_down=3, mode="exp_range", gamma=v + 0.89
            ),
            (0, 5, 8, 9, 1000),
        ),
    }


SCHEDULE_CASES = _schedule_cases()
SCHEDULE_NAMES = sorted(SCHEDULE_CASES)

# The steps a schedule's values are checked on, and steps where float32 and int32
# arithmetic would break: past 2**24 (float32 stops counting whole numbers) and at the
# int32 maximum.
T = np.arange(400)
INT32_MAX = 2**31 - 1
HUGE_STEPS = np.array(
    [0, 1, 2, 3, 10, 999, 2**16, 2**24 - 1, 2**24, 2**24 + 1, 2**30, INT32_MAX - 1, INT32_MAX],
    np.int32,
)


def assert_close(actual, expected, rtol: float = 1e-5) -> None:
    """A schedule's float32 values against the expected ones, compared in float64."""
    import chex
    import jax.numpy as jnp

    assert actual.dtype == jnp.float32
    chex.assert_trees_all_close(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol
    )


def values(schedule, steps: np.ndarray = T):
    """The schedule's values at ``steps`` (by default ``T``), in one vectorised call."""
    import jax.numpy as jnp

    return schedule(jnp.asarray(steps))


def run_example(source: str, filename: str, namespace: dict | None = None) -> dict:
    """Executes documentation code (README, guides) in a namespace of its own, as a user's
    fresh session would, and returns the namespace."""
    import jax

    namespace = {} if namespace is None else namespace
    # Examples are written for JAX's default dtype promotion; the tests run strict.
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(source, filename, "exec"), namespace)
    return namespace


# ------------------------------------------------------- parity with a reference


def relative_error(
    actual, expected, *, floor=0.0, combine: str = "max", steps: slice = slice(None)
) -> float:
    """The one error metric of the parity tests: the largest elementwise
    ``|actual − expected| / max(|expected|, floor)`` (with ``combine="sum"``, divided by
    ``|expected| + floor``), in float64, over every leaf of ``expected`` (a dict of
    arrays, or one array) and the ``steps`` of its leading axis.

    ``floor`` is a number, or ``"leaf"``: each leaf's largest ``|expected|`` over all its
    entries and steps, or ``"step"``: each leaf's largest ``|expected|`` at that step (for
    coordinates that cross zero, where an error relative to the entry means nothing).
    Entries equal on both sides count 0 (also where both are 0); where the divisor is 0
    otherwise, the error is infinite; a NaN on either side makes the error NaN, which no
    tolerance passes.
    """
    assert combine in ("max", "sum"), combine
    if not isinstance(expected, dict):
        actual, expected = {"": actual}, {"": expected}
    worst = 0.0
    for key, b in expected.items():
        a = np.asarray(actual[key], np.float64)
        b = np.asarray(b, np.float64)
        if a.ndim and b.ndim:
            a, b = a[steps], b[steps]
        if isinstance(floor, str):
            assert floor in ("leaf", "step"), floor
            axes = None if floor == "leaf" else tuple(range(1, b.ndim))
            size = np.max(np.abs(b), axis=axes, keepdims=True, initial=0.0)
        else:
            size = floor
        denominator = np.maximum(np.abs(b), size) if combine == "max" else np.abs(b) + size
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.where(a == b, 0.0, np.abs(a - b) / denominator)
        if np.isnan(error).any():
            return float("nan")
        worst = max(worst, float(np.max(error, initial=0.0)))
    return worst


def leaf_names(tree) -> dict:
    """``{"a/b": leaf}`` for a tree of dicts: the names the torch runs use."""
    import jax

    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {"/".join(key.key for key in path): leaf for path, leaf in leaves}


def run_torch(
    cls, groups, params, gradients, *, before_step=None, scheduler=None, record=None, **defaults
):
    """A torch optimizer ``cls`` run on ``gradients`` (a list of trees like ``params``):
    its parameters after each step ({leaf name: array}), its groups' rates before each
    step, and ``record(optimizer, tensors)`` after each step. ``groups`` lists (leaf
    names, options); ``before_step(optimizer, t)`` may change hyperparameters;
    ``scheduler(optimizer)`` is stepped after each update."""
    torch = import_torch()
    tensors = {
        name: torch.tensor(value, requires_grad=True) for name, value in leaf_names(params).items()
    }
    optimizer = cls(
        [{"params": [tensors[n] for n in names], **options} for names, options in groups],
        **defaults,
    )
    sched = scheduler(optimizer) if scheduler is not None else None
    history, rates, recorded = [], [], []
    for t, grads in enumerate(gradients):
        if before_step is not None:
            before_step(optimizer, t)
        rates.append([group["lr"] for group in optimizer.param_groups])
        for name, grad in leaf_names(grads).items():
            tensors[name].grad = torch.tensor(grad)
        optimizer.step()
        if sched is not None:
            sched.step()
        history.append({n: x.detach().numpy().copy() for n, x in tensors.items()})
        recorded.append(record(optimizer, tensors) if record is not None else None)
    return history, rates, recorded


def run_lrjax(tx, params, gradients, inspect=lambda state: None):
    """lrjax's side of :func:`run_torch`: the parameters after each step ({leaf name:
    array}), and ``inspect(state)`` after each step; one compiled step."""
    import jax
    import jax.numpy as jnp
    import optax

    params = jax.tree.map(jnp.asarray, params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, inspect(state)

    state = tx.init(params)
    history, seen = [], []
    for grads in gradients:
        params, state, found = step(params, state, grads)
        history.append(leaf_names(jax.tree.map(np.asarray, params)))
        seen.append(found)
    return history, seen


def assert_histories_close(actual, expected, *, rtol=1e-5, atol=1e-6) -> None:
    """Every step's parameters of :func:`run_lrjax` against :func:`run_torch`'s, leaf by
    leaf; ``atol`` is a number or {leaf name: number}."""
    for t, (a, b) in enumerate(zip(actual, expected, strict=True)):
        for name in b:
            np.testing.assert_allclose(
                a[name],
                b[name],
                rtol=rtol,
                atol=atol[name] if isinstance(atol, dict) else atol,
                err_msg=f"step {t + 1}, leaf {name}",
            )
