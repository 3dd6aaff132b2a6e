"""Hostile arguments to every schedule constructor, swept from tables.

Each public constructor has a valid call and a kind for each of its arguments
(``TABLE``); every argument is then given every hostile value of its kind. The
contract: a ``ValueError`` or ``TypeError`` at construction whose message starts with
the constructor's name and names the argument (and, where it is listed, is the whole
message given); valid values of unusual kinds are in ``test_schedule_arguments``.
Refusals need no compilation, so the sweep is cheap.
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
        "k_decay": rate(2.0, 0.0),
    },
    "linear": {"init_value": rate(0.1), "end_value": rate(1e-3), "transition_steps": count(100, 0)},
    "cosine_decay": {
        "init_value": rate(0.1),
        "decay_steps": count(100, 0),
        "end_value": rate(1e-3),
        "exponent": rate(2.0, 0.0),
        "k_decay": rate(2.0, 0.0),
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
# Counts beyond int32 are valid (computed in floating point, as optax's periods): see
# test_a_count_beyond_int32_is_a_valid_period below.
BEYOND_INT32 = {"2**40": 2**40, "np.int64(2**40)": np.int64(2**40), "2**31": 2**31}
_INTS = {
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


def assert_refused(owner: str, name: str, call: Any, exact: str | None = None) -> None:
    """Refused at the call, naming ``owner`` first and ``name``; with ``exact``, a
    ValueError whose message holds it to the letter."""
    with pytest.raises(ValueError if exact else (ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{owner}: "), message
    assert name in message, message
    if exact is not None:
        assert exact in message, message


def arguments(*kinds: str) -> list[tuple[str, str]]:
    return [(o, n) for o, args in TABLE.items() for n, arg in args.items() if arg.kind in kinds]


def hostile_cases() -> list[Any]:
    cases = []
    for owner, args in TABLE.items():
        for name, arg in args.items():
            values = {**HOSTILE[arg.kind], **{f"out of range {v!r}": v for v in arg.bad}}
            for label, value in values.items():
                if not (arg.nullable and value is None):
                    case = f"{owner}-{name}-{label}"
                    exact = f"{owner}: {MESSAGES[case]}" if case in MESSAGES else None
                    cases.append(pytest.param(owner, name, value, exact, id=case))
    return cases


# The whole message of some of the cases above (by id), after "<constructor>: ".
MESSAGES = {
    "constant-value-negative": "value must be >= 0, got -0.1",
    "constant-value-NaN": "value must be finite in float32, got nan",
    "step_decay-step_size-out of range 0": "step_size must be an integer >= 1, got 0",
    "step_decay-gamma-out of range 0.0": "gamma must be in (0, 1], got 0.0",
    "step_decay-gamma-out of range 1.5": "gamma must be in (0, 1], got 1.5",
    "multistep_decay-milestones-negative": "milestones[0] must be an integer >= 0, got -1",
    "exponential_decay-decay_rate-out of range 0.0": "decay_rate must be > 0, got 0.0",
    "exponential_decay-transition_steps-out of range 0": (
        "transition_steps must be an integer >= 1, got 0"
    ),
    "exponential_decay-staircase-str": "staircase must be True or False, got 'yes'",
    "inverse_time_decay-decay_steps-out of range 0": "decay_steps must be an integer >= 1, got 0",
    "polynomial_decay-decay_steps-out of range 0": "decay_steps must be an integer >= 1, got 0",
    "polynomial_decay-power-out of range 0.0": "power must be > 0, got 0.0",
    "polynomial_decay-end_value-+inf": "end_value must be finite in float32, got inf",
    "polynomial_decay-cycle-str": "cycle must be True or False, got 'yes'",
    "linear-transition_steps-out of range 0": "transition_steps must be an integer >= 1, got 0",
    "linear-end_value-negative": "end_value must be >= 0, got -0.1",
    "cosine_decay-decay_steps-out of range 0": "decay_steps must be an integer >= 1, got 0",
    "cosine_decay-init_value-negative": "init_value must be >= 0, got -0.1",
    "cosine_decay-exponent-out of range 0.0": "exponent must be > 0, got 0.0",
    "cosine_restarts-first_period-out of range 0": "first_period must be an integer >= 1, got 0",
    "cosine_restarts-period_mult-out of range 0.5": (
        "period_mult must be 1 or a number >= 1.01, got 0.5"
    ),
    "cosine_restarts-period_mult-out of range 1.001": (
        "period_mult must be 1 or a number >= 1.01, got 1.001"
    ),
    "cosine_restarts-peak_decay-out of range 0.0": "peak_decay must be in (0, 1], got 0.0",
    "cosine_restarts-peak_decay-out of range 1.5": "peak_decay must be in (0, 1], got 1.5",
    "cyclic-step_size_up-out of range 0": "step_size_up must be an integer >= 1, got 0",
    "cyclic-step_size_down-negative": "step_size_down must be an integer >= 0, got -1",
    "cyclic-mode-out of range 'sine'": (
        "mode must be one of 'triangular', 'triangular2', 'exp_range', got 'sine'"
    ),
    "cyclic-gamma-out of range 0.0": "gamma must be in (0, 1], got 0.0",
    "cyclic-gamma-out of range 1.5": "gamma must be in (0, 1], got 1.5",
    "cyclic-base_value-negative": "base_value must be >= 0, got -0.1",
    "one_cycle-total_steps-out of range 0": "total_steps must be an integer >= 1, got 0",
    "one_cycle-pct_start-out of range 1.5": (
        "pct_start must be in [0, 1) (at 1 the final rate is never reached), got 1.5"
    ),
    "one_cycle-div_factor-out of range 0.0": (
        "div_factor must be >= 1.18e-38 (the smallest normal float32), got 0.0"
    ),
    "one_cycle-anneal-out of range 'cosine'": "anneal must be one of 'cos', 'linear', got 'cosine'",
    "one_cycle-three_phase-int": "three_phase must be True or False, got 1",
    "one_cycle_momentum-base_momentum-out of range 1.5": "base_momentum must be in [0, 1], got 1.5",
    "one_cycle_momentum-max_momentum-negative": "max_momentum must be in [0, 1], got -0.1",
    "one_cycle_momentum-pct_start-out of range 1.0": (
        "pct_start must be in [0, 1) (at 1 the final momentum is never reached), got 1.0"
    ),
    "one_cycle_momentum-total_steps-out of range 0": "total_steps must be an integer >= 1, got 0",
    "cyclic_momentum-max_momentum-out of range 1.01": "max_momentum must be in [0, 1], got 1.01",
    "cyclic_momentum-step_size_up-out of range 0": "step_size_up must be an integer >= 1, got 0",
    "inverse_sqrt-warmup_steps-out of range 0": "warmup_steps must be an integer >= 1, got 0",
    "inverse_sqrt-peak_value-negative": "peak_value must be >= 0, got -0.1",
    "wsd-warmup_steps-negative": "warmup_steps must be an integer >= 0, got -1",
    "wsd-stable_steps-negative": "stable_steps must be an integer >= 0, got -1",
    "wsd-decay_steps-out of range 0": "decay_steps must be an integer >= 1, got 0",
    "wsd-decay_shape-out of range 'exp'": (
        "decay_shape must be one of 'linear', 'cosine', '1-sqrt', got 'exp'"
    ),
    "warmup-warmup_steps-out of range 0": "warmup_steps must be an integer >= 1, got 0",
    "warmup-schedule-number": "schedule must be a callable step -> rate, got 0.1",
    "join-schedules-out of range [constant(value=0.1)]": (
        "schedules must have len(boundaries) + 1 = 2 entries, got 1"
    ),
    "join-boundaries-out of range [0]": "boundaries[0] must be an integer >= 1, got 0",
    "per_epoch-steps_per_epoch-out of range 0": "steps_per_epoch must be an integer >= 1, got 0",
    "per_epoch-schedule-number": "schedule must be a callable step -> rate, got 0.1",
    "product-schedules-out of range []": "schedules must hold at least one schedule, got []",
    "product-schedules-one schedule": (
        "schedules must be a list or tuple of callables step -> rate, got constant("
    ),
}


def test_the_tables_cover_every_constructor_and_argument():
    public = {n for n in dir(S) if not n.startswith("_") and n not in ("Schedule", "describe")}
    public = {n for n in public if callable(getattr(S, n)) and not inspect.ismodule(getattr(S, n))}
    assert set(TABLE) == public
    for owner, args in TABLE.items():
        assert list(args) == list(inspect.signature(getattr(S, owner)).parameters), owner


HOSTILE_CASES = hostile_cases()
assert set(MESSAGES) <= {case.id for case in HOSTILE_CASES}, "a whole message has no case"


@pytest.mark.parametrize(("owner", "name", "value", "exact"), HOSTILE_CASES)
def test_hostile_argument_is_refused_naming_constructor_and_argument(owner, name, value, exact):
    assert_refused(owner, name, lambda: build(owner, **{name: value}), exact)


@pytest.mark.parametrize("label", sorted(BEYOND_INT32))
@pytest.mark.parametrize(("owner", "name"), arguments("int"))
def test_a_count_beyond_int32_is_a_valid_period(owner, name, label):
    """A step count beyond int32 builds a schedule whose rates are finite and >= 0 (the
    values at such periods are checked against their formulas in test_schedules_peers)."""
    rates = np.asarray(build(owner, **{name: BEYOND_INT32[label]})(np.arange(0, 2000, 37)))
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0), rates


# Refusals with their whole message, for values and combinations the sweep does not make.
REFUSED = [
    (
        lambda: S.step_decay(0.1, 2.5),
        "step_decay: step_size must be a concrete integer >= 1, got 2.5",
    ),
    (lambda: S.step_decay(-1.0, 10), "step_decay: init_value must be >= 0, got -1.0"),
    (
        lambda: S.multistep_decay(0.1, [30, 10]),
        "multistep_decay: milestones must be non-decreasing, got (30, 10)",
    ),
    (
        lambda: S.multistep_decay(0.1, [10], gamma=-0.5),
        "multistep_decay: gamma must be > 0, got -0.5",
    ),
    (
        lambda: S.piecewise_constant([10, 10], [1.0, 0.5, 0.1]),
        "piecewise_constant: boundaries must be strictly increasing, got (10, 10)",
    ),
    (
        lambda: S.piecewise_constant([0], [1.0, 0.5]),
        "piecewise_constant: boundaries[0] must be an integer >= 1, got 0",
    ),
    (
        lambda: S.piecewise_constant([10], [1.0]),
        "piecewise_constant: values must have len(boundaries) + 1 = 2 entries, got 1",
    ),
    (
        lambda: S.piecewise_constant([10], [1.0, -1.0]),
        "piecewise_constant: values[1] must be >= 0, got -1.0",
    ),
    (
        lambda: S.exponential_decay(0.1, 0.9, end_value=-1.0),
        "exponential_decay: end_value must be >= 0, got -1.0",
    ),
    (
        lambda: S.inverse_time_decay(0.1, -0.5),
        "inverse_time_decay: decay_rate must be >= 0, got -0.5",
    ),
    (
        lambda: S.one_cycle(0.1, 100, final_div_factor=-1.0),
        "one_cycle: final_div_factor must be >= 1.18e-38 (the smallest normal float32), got -1.0",
    ),
    (
        lambda: S.wsd(0.1, 10, 10, 10, init_value=-1.0),
        "wsd: init_value must be >= 0, got -1.0",
    ),
    (
        lambda: S.warmup(S.constant(0.1), 10, init_value=-1.0),
        "warmup: init_value must be >= 0, got -1.0",
    ),
    (
        lambda: S.join([S.constant(0.1)] * 3, [20, 10]),
        "join: boundaries must be strictly increasing, got (20, 10)",
    ),
    (
        lambda: S.join([S.constant(0.1), "cosine"], [10]),
        "join: schedules[1] must be a callable step -> rate, got 'cosine'",
    ),
    (
        lambda: S.product([S.constant(0.1), 2.0]),
        "product: schedules[1] must be a callable step -> rate, got 2.0",
    ),
    (
        lambda: S.cyclic_momentum(gamma=0.9),
        "cyclic_momentum: gamma must be 1 unless mode='exp_range' (mode='triangular' has no"
        " gamma), got 0.9",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"), REFUSED, ids=[message.split(" must")[0] for _, message in REFUSED]
)
def test_refused_with_the_whole_message(call, message):
    owner, name = message.split(" must")[0].split(": ")
    assert_refused(owner, name.split("[")[0], call, message)


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


# -------------------------------------------------------- arguments refused by their meaning

REPLACED = [
    # A floor above the start (or a cap below it) would hold the rate at end_value.
    (lambda: S.exponential_decay(0.1, 0.5, end_value=1.0), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(0.1, 1.0, end_value=0.2), "exponential_decay", "end_value"),
    (lambda: S.exponential_decay(0.1, 1.5, end_value=0.05), "exponential_decay", "end_value"),
    (
        lambda: S.exponential_decay(1e-30, 1.1, end_value=1.0),
        "exponential_decay",
        "end_value",
        "exponential_decay: end_value must be at most 1e+17 * init_value for a growing rate,"
        " got 1.0 with init_value=1e-30",
    ),
    (
        lambda: S.exponential_decay(0.1, 1.5),
        "exponential_decay",
        "decay_rate",
        "exponential_decay: decay_rate must be <= 1 without an end_value (a growing rate needs"
        " end_value as its cap), got 1.5",
    ),
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
    ("call", "owner", "name", "exact"),
    [case if len(case) == 4 else (*case, None) for case in REPLACED],
    ids=[f"{case[1]}-{case[2]}-{i}" for i, case in enumerate(REPLACED)],
)
def test_an_argument_the_schedule_would_not_honour_is_refused(call, owner, name, exact):
    assert_refused(owner, name, call, exact)
