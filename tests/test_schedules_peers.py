"""Schedules against their peers' own tests and beyond int32: optax's giant period, timm's
``k_decay``, structural integers as NumPy and JAX integers, and steps that are no step."""

from __future__ import annotations

import importlib.util
import math
import pathlib
import sys
import types

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import import_reference

from lrjax import schedules

BIG = 10**10  # a period beyond int32
AT = 10**9  # a step within it

# Every schedule with a period, built with that period beyond int32, and its value at AT
# computed here in float64 from the formula the schedule's docstring gives.
BIG_PERIODS = {
    "cosine_decay": (
        lambda: schedules.cosine_decay(1000.0, BIG),
        500.0 * (1 + math.cos(math.pi * AT / BIG)),
    ),
    "cosine_restarts": (
        lambda: schedules.cosine_restarts(1.0, BIG),
        0.5 * (1 + math.cos(math.pi * AT / BIG)),
    ),
    "polynomial_decay": (
        lambda: schedules.polynomial_decay(1.0, 0.0, BIG, power=2.0),
        (1 - AT / BIG) ** 2,
    ),
    "polynomial_decay_cycle": (
        lambda: schedules.polynomial_decay(1.0, 0.0, BIG, cycle=True),
        1 - AT / BIG,
    ),
    "linear": (lambda: schedules.linear(1.0, 0.0, BIG), 1 - AT / BIG),
    "exponential_decay": (
        lambda: schedules.exponential_decay(1.0, 0.5, transition_steps=BIG),
        0.5 ** (AT / BIG),
    ),
    "inverse_time_decay": (
        lambda: schedules.inverse_time_decay(1.0, 0.5, decay_steps=BIG),
        1 / (1 + 0.5 * AT / BIG),
    ),
    "cyclic": (lambda: schedules.cyclic(0.1, 1.0, step_size_up=BIG), 0.1 + 0.9 * AT / BIG),
    "cyclic_momentum": (
        lambda: schedules.cyclic_momentum(step_size_up=BIG),
        0.9 - 0.1 * AT / BIG,
    ),
    "warmup": (lambda: schedules.warmup(schedules.constant(1.0), BIG), AT / BIG),
    "inverse_sqrt": (lambda: schedules.inverse_sqrt(1.0, BIG), AT / BIG),
    "wsd": (lambda: schedules.wsd(1.0, BIG, BIG, BIG), AT / BIG),
    "step_decay": (lambda: schedules.step_decay(1.0, BIG, gamma=0.5), 1.0),
    "multistep_decay": (lambda: schedules.multistep_decay(1.0, [AT, BIG], gamma=0.5), 0.5),
    "piecewise_constant": (lambda: schedules.piecewise_constant([BIG], [1.0, 2.0]), 1.0),
    "join": (
        lambda: schedules.join([schedules.constant(1.0), schedules.constant(2.0)], [BIG]),
        1.0,
    ),
    "one_cycle": (
        lambda: schedules.one_cycle(1.0, BIG, anneal="linear"),
        0.04 + 0.96 * AT / (0.3 * BIG - 1),
    ),
}


@pytest.mark.parametrize("name", sorted(BIG_PERIODS))
def test_a_period_beyond_int32_works(name):
    make, expected = BIG_PERIODS[name]
    schedule = make()
    for step in (AT, np.int64(AT), jnp.int32(AT), float(AT)):
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5), step


def test_optax_giant_period():
    """optax's own test: ``cosine_decay_schedule(1000., 10**10)(10**9) == 975.528``."""
    ours = float(schedules.cosine_decay(1000.0, 10**10)(10**9))
    assert ours == pytest.approx(975.528, abs=1e-3)
    assert ours == pytest.approx(float(optax.cosine_decay_schedule(1000.0, 10**10)(10**9)))


def test_a_step_beyond_int32_is_still_refused_not_wrapped():
    schedule = schedules.cosine_decay(1.0, BIG)
    with pytest.raises(ValueError, match="cosine_decay: step 20000000000 does not fit int32"):
        schedule(2 * BIG)


INTEGERS = {
    "python": 10,
    "np.int64": np.int64(10),
    "np.int8": np.int8(10),
    "0-d numpy": np.array(10),
    "0-d jax": jnp.array(10),
    "0-d uint": np.array(10, np.uint32),
}

# (constructor, the period as its only integer argument)
PERIOD_OF = {
    "cosine_decay": lambda n: schedules.cosine_decay(0.1, n),
    "cosine_restarts": lambda n: schedules.cosine_restarts(0.1, n),
    "cyclic": lambda n: schedules.cyclic(0.01, 0.1, step_size_up=n),
    "one_cycle": lambda n: schedules.one_cycle(0.1, n),
    "inverse_sqrt": lambda n: schedules.inverse_sqrt(0.1, n),
    "wsd": lambda n: schedules.wsd(0.1, n, n, n),
    "warmup": lambda n: schedules.warmup(schedules.constant(0.1), n),
    "step_decay": lambda n: schedules.step_decay(0.1, n),
    "polynomial_decay": lambda n: schedules.polynomial_decay(0.1, 0.0, n),
    "multistep_decay": lambda n: schedules.multistep_decay(0.1, [n]),
}


@pytest.mark.parametrize("kind", sorted(INTEGERS))
@pytest.mark.parametrize("name", sorted(PERIOD_OF))
def test_structural_integers_are_what_operator_index_accepts(name, kind):
    make = PERIOD_OF[name]
    steps = np.array([0, 3, 10, 17, 30])
    np.testing.assert_array_equal(
        np.asarray(make(INTEGERS[kind])(steps)), np.asarray(make(10)(steps))
    )


@pytest.mark.parametrize("value", [True, np.bool_(True), np.array(True), 10.0, np.array([10])])
@pytest.mark.parametrize("name", sorted(PERIOD_OF))
def test_structural_integers_refuse_bools_floats_and_arrays(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: .* must be a concrete integer"):
        PERIOD_OF[name](value)


@pytest.mark.parametrize(
    ("step", "error", "match"),
    [
        (float("nan"), ValueError, "step must be a number, not NaN, got nan"),
        (np.array([1.0, np.nan]), ValueError, "step must be a number, not NaN"),
        ("5", TypeError, "step must be an integer or float .*got '5'"),
        (None, TypeError, "step must be an integer or float .*got None"),
        ([1, "a"], TypeError, "step must be an integer or float"),
    ],
)
def test_a_step_that_is_no_step_is_refused_naming_the_schedule(step, error, match):
    with pytest.raises(error, match="^step_decay: " + match):
        schedules.step_decay(0.1, 10)(step)


# timm's schedulers need torchvision to import through timm/__init__; the two modules the
# k_decay tests use import only torch, so they are loaded from the package's files.
def _timm_schedulers() -> tuple[types.ModuleType, types.ModuleType]:
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        import_reference("timm")  # skipped outside CI, fails in CI
    root = pathlib.Path(spec.origin).parent / "scheduler"
    package = types.ModuleType("_timm_scheduler")
    package.__path__ = [str(root)]
    sys.modules.setdefault("_timm_scheduler", package)
    loaded = []
    for name in ("scheduler", "cosine_lr", "poly_lr"):
        module_spec = importlib.util.spec_from_file_location(
            f"_timm_scheduler.{name}", root / f"{name}.py"
        )
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
        loaded.append(module)
    return loaded[1], loaded[2]


@pytest.mark.parametrize("seed", range(4))
def test_k_decay_matches_timm(seed):
    """timm's ``test_cosine_k_decay`` / ``test_poly_k_decay`` ported: random k, bounds,
    power and length, every step of the decay."""
    torch = import_reference("torch")
    cosine_lr, poly_lr = _timm_schedulers()
    rng = np.random.default_rng(seed)
    length = int(rng.integers(5, 300))
    k = float(rng.choice([0.3, 0.5, 1.0, 2.0, 4.0]) * rng.uniform(0.8, 1.2))
    top, bottom = float(rng.uniform(1e-3, 1.0)), float(rng.uniform(0, 1e-3))
    power = float(rng.uniform(0.5, 3.0))
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=top)
    timm_cosine = cosine_lr.CosineLRScheduler(
        optimizer, t_initial=length, lr_min=bottom, k_decay=k, t_in_epochs=True
    )
    timm_poly = poly_lr.PolyLRScheduler(
        optimizer, t_initial=length, power=power, lr_min=bottom, k_decay=k, t_in_epochs=True
    )
    cosine = schedules.cosine_decay(top, length, end_value=bottom, k_decay=k)
    poly = schedules.polynomial_decay(top, bottom, length, power=power, k_decay=k)
    steps = np.arange(length)
    for ours, theirs in ((cosine, timm_cosine), (poly, timm_poly)):
        expected = np.array([theirs._get_lr(int(t))[0] for t in steps])
        np.testing.assert_allclose(np.asarray(ours(steps)), expected, rtol=2e-6, atol=1e-12)


def test_k_decay_one_is_the_plain_schedule_bit_for_bit():
    steps = np.arange(0, 120)
    for plain, with_k in (
        (schedules.cosine_decay(0.1, 100), schedules.cosine_decay(0.1, 100, k_decay=1.0)),
        (
            schedules.polynomial_decay(0.1, 0.0, 100, power=2.0),
            schedules.polynomial_decay(0.1, 0.0, 100, power=2.0, k_decay=1.0),
        ),
    ):
        np.testing.assert_array_equal(np.asarray(plain(steps)), np.asarray(with_k(steps)))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "2", None, True])
@pytest.mark.parametrize("name", ["cosine_decay", "polynomial_decay"])
def test_k_decay_refuses_what_is_not_a_positive_number(name, bad):
    make = {
        "cosine_decay": lambda k: schedules.cosine_decay(0.1, 100, k_decay=k),
        "polynomial_decay": lambda k: schedules.polynomial_decay(0.1, 0.0, 100, k_decay=k),
    }[name]
    with pytest.raises(ValueError, match=f"^{name}: k_decay must be"):
        make(bad)
