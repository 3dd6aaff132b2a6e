"""Hostile arguments to every schedule constructor, swept from tables.

Each public constructor has a valid call and a kind for each of its arguments
(``TABLE``); every argument is then given every hostile value of its kind. The
contract (SPEC §1): a ``ValueError`` or ``TypeError`` at construction whose message
starts with the constructor's name and names the argument, or, where the value is
valid, the schedule it stands for. Refusals need no compilation, so the sweep is cheap.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrjax import schedules as S

STEPS = jnp.asarray([0, 1, 5, 9, 10, 11, 29, 30, 99, 100, 1000, 2**31 - 1], jnp.int32)


class Arg(NamedTuple):
    value: Any  # valid, with the other arguments' values
    kind: str  # a key of HOSTILE
    bad: tuple[Any, ...] = ()  # values of the right kind out of this argument's range
    nullable: bool = False  # None is a valid value


# Arguments of each kind: a valid value, then values of that kind out of range.
rate = lambda value, *bad, nullable=False: Arg(value, "float", bad, nullable)
count = lambda value, *bad, nullable=False: Arg(value, "int", bad, nullable)
static = lambda value, *bad: Arg(value, "static", bad)  # a float placing phase boundaries
momentum = lambda value, *bad: Arg(value, "momentum", bad)  # a float in [0, 1]
choice = lambda value, *bad: Arg(value, "mode", bad)
FLAG = Arg(False, "flag")

# A valid call of every public constructor, every argument by name, and its kind.
TABLE: dict[str, dict[str, Arg]] = {
    "constant": {"value": rate(0.1)},
    "step_decay": {
        "init_value": rate(0.1),
        "step_size": count(10, 0),
        "gamma": rate(0.5, 0.0, 1.5),
    },
    "multistep_decay": {
        "init_value": rate(0.1),
        "milestones": Arg([10, 20], "ints", ([20, 10],)),
        "gamma": rate(0.5, 0.0),
    },
    "piecewise_constant": {
        "boundaries": Arg([10, 20], "ints", ([0, 20], [20, 20])),
        "values": Arg([0.1, 0.05, 0.01], "floats", ([0.1, 0.05],)),
    },
    "exponential_decay": {
        "init_value": rate(0.1),
        "decay_rate": rate(0.5, 0.0),
        "transition_steps": count(10, 0),
        "staircase": Arg(True, "flag"),
        "end_value": rate(0.01, 0.2, nullable=True),  # 0.2: a floor above init_value
    },
    "inverse_time_decay": {
        "init_value": rate(0.1),
        "decay_rate": rate(0.5),
        "decay_steps": count(10, 0),
        "staircase": FLAG,
    },
    "polynomial_decay": {
        "init_value": rate(0.1),
        "end_value": rate(1e-3),
        "decay_steps": count(100, 0),
        "power": rate(2.0, 0.0),
        "cycle": FLAG,
    },
    "linear": {"init_value": rate(0.1), "end_value": rate(1e-3), "transition_steps": count(100, 0)},
    "cosine_decay": {
        "init_value": rate(0.1),
        "decay_steps": count(100, 0),
        "end_value": rate(1e-3),
        "exponent": rate(2.0, 0.0),
    },
    "cosine_restarts": {
        "init_value": rate(0.1),
        "first_period": count(10, 0),
        "period_mult": static(2, 0.5, 1.001),
        "end_value": rate(1e-3),
        "peak_decay": rate(0.5, 0.0, 1.5),
    },
    "cyclic": {
        "base_value": rate(1e-3),
        "max_value": rate(0.1),
        "step_size_up": count(10, 0),
        "step_size_down": count(5, nullable=True),
        "mode": choice("exp_range", "sine"),
        "gamma": rate(0.99, 0.0, 1.5),
    },
    "one_cycle": {
        "max_value": rate(0.1),
        "total_steps": count(100, 0),
        "pct_start": static(0.3, 1.0, 1.5),
        "div_factor": rate(25.0, 0.0, 1e-40),
        "final_div_factor": rate(1e4, 0.0, 1e-40),
        "anneal": choice("cos", "cosine"),
        "three_phase": FLAG,
    },
    "one_cycle_momentum": {
        "total_steps": count(100, 0),
        "pct_start": static(0.3, 1.0, 1.5),
        "base_momentum": momentum(0.85, 1.5),
        "max_momentum": momentum(0.95, 1.01),
        "anneal": choice("cos", "cosine"),
        "three_phase": FLAG,
    },
    "cyclic_momentum": {
        "base_momentum": momentum(0.8, 1.5),
        "max_momentum": momentum(0.9, 1.01),
        "step_size_up": count(10, 0),
        "step_size_down": count(5, nullable=True),
        "mode": choice("exp_range", "sine"),
        "gamma": rate(0.99, 0.0, 1.5),
    },
    "inverse_sqrt": {"peak_value": rate(0.1), "warmup_steps": count(10, 0)},
    "wsd": {
        "peak_value": rate(0.1),
        "warmup_steps": count(10),
        "stable_steps": count(20),
        "decay_steps": count(30, 0),
        "init_value": rate(1e-3),
        "end_value": rate(1e-4),
        "decay_shape": choice("cosine", "exp"),
    },
    "warmup": {
        "schedule": Arg(S.cosine_decay(0.1, 100), "callable"),
        "warmup_steps": count(10, 0),
        "init_value": rate(1e-3),
    },
    "join": {
        "schedules": Arg(
            [S.linear(0.0, 0.1, 10), S.cosine_decay(0.1, 90)], "callables", ([S.constant(0.1)],)
        ),
        "boundaries": Arg([10], "ints", ([0],)),
    },
    "product": {
        "schedules": Arg(
            [S.step_decay(0.1, 30, gamma=0.5), S.exponential_decay(1.0, 0.9)], "callables", ([],)
        ),
    },
    "per_epoch": {
        "schedule": Arg(S.step_decay(0.1, 3, gamma=0.5), "callable"),
        "steps_per_epoch": count(10, 0),
    },
}
CALLS = {owner: {name: arg.value for name, arg in args.items()} for owner, args in TABLE.items()}

_FLOATS = {
    "str": "0.1",
    "bool": True,
    "np.bool_": np.bool_(True),
    "None": None,
    "list": [0.1],
    "complex": 0.1 + 0j,
    "1-D array": np.array([0.1]),
    "NaN": float("nan"),
    "+inf": float("inf"),
    "-inf": -float("inf"),
    "float32 overflow": 1e39,
    "negative": -0.1,
    "JAX negative": jnp.float32(-0.1),  # a concrete JAX array is checked too
    "JAX 1-D array": jnp.ones(1),
}
_INTS = {
    "2**40": 2**40,
    "np.int64(2**40)": np.int64(2**40),
    "2**31": 2**31,
    "float": 3.0,
    "bool": True,
    "np.bool_": np.bool_(True),
    "negative": -1,
    "str": "3",
    "None": None,
}
_NOT_SEQUENCES = {"number": 10, "str": "10", "None": None, "2-D array": np.array([[10, 20]])}
HOSTILE: dict[str, dict[str, Any]] = {
    "float": _FLOATS,
    "momentum": _FLOATS,
    "static": _FLOATS,
    "int": _INTS,
    "ints": {**{k: [v] for k, v in _INTS.items()}, **_NOT_SEQUENCES},
    "floats": {**{k: [v, 0.05, 0.01] for k, v in _FLOATS.items()}, **_NOT_SEQUENCES},
    "flag": {"str": "yes", "int": 1, "zero": 0, "None": None, "float": 1.0, "array": np.ones(1)},
    "mode": {"empty": "", "None": None, "int": 1, "bool": True, "list": ["cos"]},
    "callable": {"number": 0.1, "None": None, "str": "cosine"},
    "callables": {
        "one schedule": S.constant(0.1),
        "a number": [S.constant(0.1), 0.1],
        "None": None,
    },
}


def build(owner: str, **changes: Any) -> S.Schedule:
    return getattr(S, owner)(**{**CALLS[owner], **changes})


def assert_refused(owner: str, name: str, call: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{owner}: "), message
    assert name in message, message


def arguments(*kinds: str) -> list[tuple[str, str]]:
    return [(o, n) for o, args in TABLE.items() for n, arg in args.items() if arg.kind in kinds]


def hostile_cases() -> list[Any]:
    cases = []
    for owner, args in TABLE.items():
        for name, arg in args.items():
            values = {**HOSTILE[arg.kind], **{f"out of range {v!r}": v for v in arg.bad}}
            for label, value in values.items():
                if not (arg.nullable and value is None):
                    cases.append(pytest.param(owner, name, value, id=f"{owner}-{name}-{label}"))
    return cases


def test_the_tables_cover_every_constructor_and_argument():
    public = {n for n in dir(S) if not n.startswith("_") and n not in ("Schedule", "describe")}
    public = {n for n in public if callable(getattr(S, n)) and not inspect.ismodule(getattr(S, n))}
    assert set(TABLE) == public
    for owner, args in TABLE.items():
        assert list(args) == list(inspect.signature(getattr(S, owner)).parameters), owner


@pytest.mark.parametrize(("owner", "name", "value"), hostile_cases())
def test_hostile_argument_is_refused_naming_constructor_and_argument(owner, name, value):
    assert_refused(owner, name, lambda: build(owner, **{name: value}))


@pytest.mark.parametrize(("owner", "name"), arguments("int", "ints", "static"))
def test_traced_structural_argument_is_refused(owner, name):
    kind = TABLE[owner][name].kind
    value = jnp.float32(0.3) if kind == "static" else jnp.int32(10)

    def construct(traced):
        build(owner, **{name: [traced] if kind == "ints" else traced})
        return traced

    assert_refused(owner, name, lambda: jax.eval_shape(construct, value))


@pytest.mark.parametrize("owner", list(CALLS))
def test_defaulted_arguments_are_keyword_only(owner):
    function = getattr(S, owner)
    parameters = inspect.signature(function).parameters.values()
    for parameter in parameters:
        keyword_only = parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert keyword_only == (parameter.default is not inspect.Parameter.empty), parameter
    positional = [CALLS[owner][p.name] for p in parameters]
    required = sum(p.default is inspect.Parameter.empty for p in parameters)
    if required < len(positional):  # one defaulted argument passed by position
        with pytest.raises(TypeError):
            function(*positional[: required + 1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: S.polynomial_decay(1.0, 0.0, 2, 100),  # optax: (init, end, power, steps)
        lambda: S.cosine_decay(1e-3, 1000, 0.1),  # optax: alpha=0.1, a factor of init
        lambda: S.exponential_decay(0.1, 1000, 0.5),  # optax: (init, steps, rate)
        lambda: S.step_decay(0.1, 30, 0.5),  # torch StepLR(opt, step_size, gamma)
        lambda: S.cyclic(1e-3, 0.1, 2000),  # torch CyclicLR(opt, base, max, up)
    ],
    ids=["polynomial_decay", "cosine_decay", "exponential_decay", "step_decay", "cyclic"],
)
def test_positional_orders_of_optax_and_torch_are_type_errors(call):
    with pytest.raises(TypeError):
        call()


HUGE_STEPS = {
    "np.int64(2**31)": np.int64(2**31),
    "2**31 + 50": 2**31 + 50,
    "2**40": 2**40,
    "np.uint64(2**40)": np.uint64(2**40),
    "array with 2**31": np.array([0, 2**31]),
    "bool": True,
    "np.bool_": np.bool_(True),
}


@pytest.mark.parametrize("step", HUGE_STEPS.values(), ids=list(HUGE_STEPS))
@pytest.mark.parametrize("owner", list(CALLS))
def test_step_beyond_int32_or_boolean_is_refused(owner, step):
    assert_refused(owner, "step", lambda: build(owner)(step))


def test_the_documented_step_message():
    schedule = S.cosine_decay(0.1, 100, end_value=1e-3)
    message = (
        "cosine_decay: step 2147483698 does not fit int32; enable jax_enable_x64 for steps "
        "beyond 2**31 - 1"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        schedule(np.int64(2**31 + 50))
    with pytest.raises(ValueError, match=re.escape(message)):
        schedule(2**31 + 50)
    # A child of warmup is called with steps its parent has checked.
    with pytest.raises(ValueError, match=r"^warmup: step 1099511627776 does not fit int32"):
        S.warmup(lambda step: 0.1 * jnp.ones_like(step, jnp.float32), 10)(2**40)


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


# -------------------------------------------------------- arguments refused by their meaning

REPLACED = [
    # A floor above the start (or a cap below it) would hold the rate at end_value.
    (lambda: S.exponential_decay(0.1, 0.5, end_value=1.0), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(0.1, 1.0, end_value=0.2), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(0.1, 1.5, end_value=0.05), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(1e-30, 1.1, end_value=1.0), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(0.1, 1.5), "exponential_decay", "decay_rate"),
    # The final rate would never be reached.
    (lambda: S.one_cycle(0.1, 100, pct_start=0.6, three_phase=True), "one_cycle", "pct_start"),
    (lambda: S.one_cycle(0.1, 100, pct_start=1.0), "one_cycle", "pct_start"),
    (
        lambda: S.one_cycle_momentum(100, pct_start=0.6, three_phase=True),
        "one_cycle_momentum",
        "pct_start",
    ),
    # The initial or final rate of one_cycle would not be finite in float32.
    (lambda: S.one_cycle(0.1, 100, div_factor=1e-40), "one_cycle", "div_factor"),
    (lambda: S.one_cycle(1e30, 100, div_factor=1e-10), "one_cycle", "div_factor"),
    (
        lambda: S.one_cycle(1.0, 100, div_factor=1e-35, final_div_factor=1e-5),
        "one_cycle",
        "final_div_factor",
    ),
    # Growing past float32 at the milestones.
    (lambda: S.multistep_decay(1.0, [10] * 40, gamma=10.0), "multistep_decay", "gamma"),
    # Arguments that would be ignored.
    (lambda: S.cyclic(0.1, 1.0, gamma=0.9), "cyclic", "gamma"),
    (lambda: S.cyclic_momentum(mode="triangular2", gamma=0.9), "cyclic_momentum", "gamma"),
    (lambda: S.wsd(1.0, 0, 10, 10, init_value=0.1), "wsd", "init_value"),
]


@pytest.mark.parametrize(
    ("call", "owner", "name"),
    REPLACED,
    ids=[f"{o}-{n}-{i}" for i, (_, o, n) in enumerate(REPLACED)],
)
def test_an_argument_the_schedule_would_not_honour_is_refused(call, owner, name):
    assert_refused(owner, name, call)


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


# --------------------------------------------------------------------- valid values


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
