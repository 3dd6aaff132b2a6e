"""The contract every schedule keeps (each case of ``helpers.SCHEDULE_CASES``): jit,
vmap over steps and over a float argument, gradients, dtypes and shapes, 64-bit and
float steps, driving optax and lrjax, no retrace for new values, and a repr that reads as
the constructor call."""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import HUGE_STEPS, INT32_MAX, SCHEDULE_CASES, SCHEDULE_NAMES, assert_close

import lrjax
from lrjax import schedules

# One step array for every case (a new shape would compile every operation again): the
# phase ends of all cases, and the huge steps.
STEPS = np.unique(np.concatenate([HUGE_STEPS, *(case.steps for case in SCHEDULE_CASES.values())]))
STEPS = STEPS.astype(np.int32)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_jit_matches_eager_and_stays_finite_up_to_the_int32_maximum(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    eager = schedule(jnp.asarray(STEPS))
    assert_close(jax.jit(schedule)(jnp.asarray(STEPS)), eager, rtol=1e-6)
    rates = np.asarray(eager)
    assert np.all(np.isfinite(rates)), rates
    assert np.all(rates >= 0), rates


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_vmap_over_steps_matches_a_loop(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    batched = jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS))
    one = jax.jit(schedule)  # one compile for the scalar steps of the loop
    assert_close(batched, np.asarray([one(step) for step in STEPS]), rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_vmap_over_a_float_argument(name):
    # The schedule is built inside vmap: its float argument is a tracer.
    case = SCHEDULE_CASES[name]
    arguments = jnp.asarray([0.05, 0.075, 0.1], jnp.float32)
    steps = jnp.asarray(STEPS)
    batched = jax.jit(jax.vmap(lambda v: case.build(v)(steps)))(arguments)
    assert_close(batched, np.stack([case.build(v)(steps) for v in arguments]), rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_grad_with_respect_to_a_float_argument_is_finite(name):
    case = SCHEDULE_CASES[name]
    steps = jnp.asarray([*case.steps, INT32_MAX])
    gradient = jax.grad(lambda v, step: case.build(v)(step))
    gradients = jax.jit(jax.vmap(gradient, in_axes=(None, 0)))(jnp.float32(0.1), steps)
    assert np.all(np.isfinite(gradients)), (steps, gradients)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_result_is_float32_with_the_shape_of_step(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    for step in (7, np.int32(7)):
        rate = schedule(step)
        assert rate.dtype == jnp.float32
        assert rate.shape == ()
    for step in (jax.ShapeDtypeStruct((2, 3), jnp.int32), jax.ShapeDtypeStruct((4,), jnp.float32)):
        rate = jax.eval_shape(schedule, step)
        assert rate.dtype == jnp.float32
        assert rate.shape == step.shape


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_int64_and_float_steps(name):
    expected = SCHEDULE_CASES[name].build(0.1)(jnp.asarray(STEPS))
    # float32 holds whole steps exactly only up to 2**24.
    small = STEPS <= 2**24
    huge = [2**31, 2**40, 2**62, 2**63 - 1]
    with jax.enable_x64(True):
        schedule = SCHEDULE_CASES[name].build(0.1)
        rates = jax.jit(lambda *steps: [schedule(s) for s in steps])(
            jnp.asarray(STEPS, jnp.float32),
            jnp.asarray([*STEPS, *huge], jnp.int64),
            jnp.asarray(STEPS, jnp.float64),
        )
    floats, int64s, float64s = rates
    assert_close(floats[small], expected[small], rtol=1e-6)
    # An optax child computes in the step's 64-bit precision; lrjax's own arithmetic is
    # float32 whatever the step.
    assert_close(int64s[: len(STEPS)], expected, rtol=1e-5)
    assert_close(float64s, expected, rtol=1e-5)
    assert np.all(np.isfinite(int64s)), int64s
    assert np.all(int64s >= 0), int64s


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_drives_optax_adam_and_lrjax(name):
    schedule = SCHEDULE_CASES[name].build(0.1)
    params, grads = jnp.zeros(3), jnp.ones(3)

    @jax.jit
    def first_updates():
        out = []
        for tx in (optax.adam(schedule), lrjax.scale_by_learning_rate(schedule)):
            state = tx.init(params)
            for _ in range(3):
                with jax.numpy_dtype_promotion("standard"):  # optax's bias correction: float ** int
                    updates, state = tx.update(grads, state, params)
                out.append(updates)
        return out

    updates = first_updates()
    rates = schedule(jnp.arange(3))
    for step in range(3):
        # With constant gradients Adam steps by the rate itself, up to float32's 1 - 0.999
        # in its bias correction.
        assert_close(updates[step], -rates[step] * grads, rtol=1e-4)
        assert_close(updates[3 + step], -rates[step] * grads, rtol=1e-6)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_new_float_values_do_not_retrace(name):
    # The schedule is an argument of the jitted function; the step is a traced int32.
    case = SCHEDULE_CASES[name]
    rate = jax.jit(chex.assert_max_traces(lambda schedule, step: schedule(step), n=1))
    for v in (0.1, 0.05, 0.075):
        assert_close(rate(case.build(v), 10), case.build(v)(10), rtol=1e-6)
    chex.clear_trace_counter()
    rate = jax.jit(chex.assert_max_traces(lambda schedule, step: schedule(step), n=1))
    for v in (0.1, 0.05):
        rate(case.build(jnp.float32(v)), 10)
    chex.clear_trace_counter()


REPRS = [
    (
        schedules.cosine_decay(0.1, 100),
        "cosine_decay(init_value=0.1, decay_steps=100, end_value=0.0, exponent=1.0, k_decay=1.0)",
    ),
    (
        schedules.polynomial_decay(0.1, 0.0, 100, cycle=True),
        (
            "polynomial_decay(init_value=0.1, end_value=0.0, decay_steps=100, power=1.0, "
            "cycle=True, k_decay=1.0)"
        ),
    ),
    (
        schedules.one_cycle_momentum(100),
        "one_cycle_momentum(total_steps=100, pct_start=0.3, base_momentum=0.85,"
        " max_momentum=0.95, anneal='cos', three_phase=False)",
    ),
    (
        schedules.cyclic_momentum(step_size_up=10, mode="exp_range", gamma=0.99),
        "cyclic_momentum(base_momentum=0.8, max_momentum=0.9, step_size_up=10,"
        " step_size_down=10, mode='exp_range', gamma=0.99)",
    ),
    (
        schedules.product([schedules.constant(0.1), schedules.exponential_decay(1.0, 0.9)]),
        "product(schedules=(constant(value=0.1), exponential_decay(init_value=1.0,"
        " decay_rate=0.9, transition_steps=1, staircase=False, end_value=None)))",
    ),
    (
        schedules.per_epoch(schedules.step_decay(0.1, 30), 100),
        "per_epoch(schedule=step_decay(init_value=0.1, step_size=30, gamma=0.1),"
        " steps_per_epoch=100)",
    ),
    (schedules.constant(1), "constant(value=1.0)"),
    (
        schedules.multistep_decay(0.1, [10, 20]),
        "multistep_decay(init_value=0.1, milestones=(10, 20), gamma=0.1)",
    ),
    (
        schedules.exponential_decay(0.1, 0.5),
        "exponential_decay(init_value=0.1, decay_rate=0.5, transition_steps=1, staircase=False,"
        " end_value=None)",
    ),
    (
        schedules.cyclic(0.0, 1.0, step_size_up=10),
        "cyclic(base_value=0.0, max_value=1.0, step_size_up=10, step_size_down=10,"
        " mode='triangular', gamma=1.0)",
    ),
    (
        schedules.warmup(schedules.constant(0.1), 5),
        "warmup(schedule=constant(value=0.1), warmup_steps=5, init_value=0.0)",
    ),
    (
        schedules.join([schedules.constant(0.1), schedules.linear(0.1, 0.0, 10)], [5]),
        "join(schedules=(constant(value=0.1), linear(init_value=0.1, end_value=0.0,"
        " transition_steps=10)), boundaries=(5,))",
    ),
]


@pytest.mark.parametrize(("schedule", "text"), REPRS, ids=[text.split("(")[0] for _, text in REPRS])
def test_repr_reads_as_the_constructor_call(schedule, text):
    assert repr(schedule) == text
    rebuilt = eval(text, vars(schedules))  # the repr is the call that makes it
    assert_close(rebuilt(jnp.asarray(STEPS)), schedule(jnp.asarray(STEPS)), rtol=0)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_every_repr_names_its_constructor(name):
    text = repr(SCHEDULE_CASES[name].build(0.1))
    assert re.fullmatch(r"[a-z_]+\(.*\)", text), text
    assert "object at" not in text.split("(")[0], text


# ------------------------------------------------------------------- steps, tracers


def test_negative_and_float_steps():
    schedule = schedules.cosine_decay(1.0, 100)
    assert float(schedule(-5)) == 1.0
    assert_close(
        schedule(jnp.asarray([2.5, 50.0], jnp.float32)),
        0.5 * (1 + np.cos(np.pi * np.array([2.5, 50]) / 100)),
    )


def test_traced_arguments_are_not_checked():
    # Inside jax.vmap the value is unknown at construction: no check, no error.
    rates = jax.vmap(lambda v: schedules.cosine_decay(v, 10)(0))(jnp.asarray([0.1, 0.2]))
    assert_close(rates, [0.1, 0.2])
