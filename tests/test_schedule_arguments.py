"""Valid values of unusual kinds for every schedule constructor (the tables of
``test_hostile_schedules``): NumPy and JAX spellings, copies of NumPy arrays, tracers,
values near the float32 maximum, None where it is documented, steps beyond int32 under
x64, and the valid side of the rules that refuse an argument by its meaning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_hostile_schedules import CALLS, TABLE, arguments, build

from lrjax import schedules as S

STEPS = jnp.asarray([0, 1, 5, 9, 10, 11, 29, 30, 99, 100, 1000, 2**31 - 1], jnp.int32)


# The first argument of each constructor that has one: its initial or peak rate, and
# with the momentum schedules, the first of their values (bounded by 1, not by float32).
PEAKS = {
    o: next(iter(args)) for o, args in TABLE.items() if next(iter(args.values())).kind == "float"
}
FIRST_VALUES = {
    o: next(n for n, a in args.items() if a.kind in ("float", "momentum"))
    for o, args in TABLE.items()
    if any(a.kind in ("float", "momentum") for a in args.values())
}


def test_values_near_the_float32_maximum_stay_finite():
    for owner, peak in PEAKS.items():
        rates = np.asarray(build(owner, **{peak: 3e38})(STEPS))
        assert np.all(np.isfinite(rates)), (owner, rates)


@pytest.mark.parametrize(
    ("owner", "name"), arguments("float", "momentum", "static", "floats", "ints")
)
def test_numpy_array_arguments_are_copied(owner, name):
    given = np.array(CALLS[owner][name])
    schedule = build(owner, **{name: given})
    given += 1  # the caller reuses its array
    np.testing.assert_array_equal(schedule(STEPS), build(owner)(STEPS))


@pytest.mark.parametrize(("owner", "name"), arguments("float", "momentum"))
def test_jax_array_arguments_are_used_as_given(owner, name):
    value = CALLS[owner][name]
    schedule = build(owner, **{name: jnp.float32(value)})
    np.testing.assert_allclose(schedule(STEPS), build(owner)(STEPS), rtol=2e-6)


@pytest.mark.parametrize(("owner", "name"), FIRST_VALUES.items())
def test_vmap_over_the_peak_value_equals_a_loop(owner, name):
    peaks = jnp.asarray([0.5, 0.75, 1.0], jnp.float32) * CALLS[owner][name]
    batched = jax.vmap(lambda peak: build(owner, **{name: peak})(STEPS))(peaks)
    looped = np.stack([build(owner, **{name: float(peak)})(STEPS) for peak in peaks])
    np.testing.assert_allclose(batched, looped, rtol=2e-6)


VALID_SPELLINGS = {
    "int": lambda v: np.int64(v),
    "ints": lambda v: np.asarray(v, np.int64),
    "floats": lambda v: np.asarray(v),
    "flag": lambda v: np.bool_(v),
    "static": lambda v: np.float64(v),
}


@pytest.mark.parametrize(("owner", "name"), arguments(*VALID_SPELLINGS))
def test_numpy_spellings_of_structural_arguments_build_the_same_schedule(owner, name):
    spelled = VALID_SPELLINGS[TABLE[owner][name].kind](CALLS[owner][name])
    assert repr(build(owner, **{name: spelled})) == repr(build(owner))


@pytest.mark.parametrize(
    ("owner", "name"), [(o, n) for o, args in TABLE.items() for n, a in args.items() if a.nullable]
)
def test_none_where_it_is_documented(owner, name):
    assert np.all(np.isfinite(build(owner, **{name: None})(STEPS)))


# ------------------------------------------------------------------ steps, rules


@pytest.mark.parametrize("owner", list(CALLS))
def test_steps_beyond_int32_under_x64_give_the_int64_value(owner):
    schedule = build(owner)
    step = 2**31 + 50
    with jax.enable_x64(True):
        expected = schedule(jnp.asarray(step, jnp.int64))
        for given in (np.int64(step), step, np.array([step])):
            np.testing.assert_array_equal(
                schedule(given), np.broadcast_to(expected, np.shape(given))
            )
    if owner == "cosine_decay":
        assert float(expected) == pytest.approx(1e-3)


def test_the_valid_side_of_those_rules_works():
    np.testing.assert_allclose(S.exponential_decay(0.1, 1.5, end_value=0.1)(STEPS), 0.1, rtol=1e-6)
    np.testing.assert_allclose(S.exponential_decay(0.1, 0.5, end_value=0.1)(STEPS), 0.1, rtol=1e-6)
    rates = S.one_cycle(0.1, 100, pct_start=0.5, three_phase=True, anneal="linear")(STEPS)
    assert float(rates[-1]) == pytest.approx(0.1 / 25 / 1e4)  # reached at step 99
    assert float(S.wsd(1.0, 0, 10, 10)(0)) == 1.0
    # Traced values cannot be compared at construction: they are used as given.
    ends = jax.vmap(lambda end: S.exponential_decay(0.1, 0.5, end_value=end)(1000))(
        jnp.asarray([0.01, 0.02])
    )
    np.testing.assert_allclose(ends, [0.01, 0.02], rtol=1e-6)
