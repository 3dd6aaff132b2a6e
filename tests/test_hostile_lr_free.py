"""Every argument of the learning-rate-free methods refuses each kind of bad value with a
ValueError whose message starts with the function called and names the argument.

One sweep: every argument of every constructor gets every bad value of its kind; where
the message is known to the letter (or to a pattern), the case checks that too.
"""

from __future__ import annotations

import inspect
import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

import lrjax
from lrjax import schedules

FUNCTIONS = [
    lrjax.schedule_free_adamw,
    lrjax.schedule_free_sgd,
    lrjax.prodigy,
    lrjax.dadapt_adam,
    lrjax.dadapt_sgd,
    lrjax.dog,
    lrjax.polynomial_average,
]
FLAGS = ("decouple", "use_bias_correction", "safeguard_warmup", "layerwise")
# None is added for the arguments whose default is not None.
NUMBER_BAD = ["x", "0.1", True, [0.1], math.nan, -1.0, 1e39]
FLAG_BAD = ["x", [True], None, 1.5]


# (function, argument, value, the message's pattern): the messages known beyond "names
# the argument". A value that is also in the sweep above is checked once, with both.
KNOWN = [
    # D-Adaptation: values of the right type out of each argument's range.
    *[
        (f, name, value, rf"{f.__name__}: {name} must be .*got {value}")
        for f, name, value in [
            (lrjax.dadapt_adam, "b1", 1.0),
            (lrjax.dadapt_adam, "b2", 1.5),
            (lrjax.dadapt_adam, "d0", 0.0),
            (lrjax.dadapt_adam, "growth_rate", 0.5),
            (lrjax.dadapt_sgd, "momentum", 1.0),
            (lrjax.dadapt_sgd, "d0", 0.0),
            (lrjax.dadapt_sgd, "growth_rate", float("-inf")),
        ]
    ],
    (lrjax.dadapt_adam, "decouple", 1, "dadapt_adam: decouple must be True or False"),
    (
        lrjax.dadapt_adam,
        "use_bias_correction",
        "yes",
        "dadapt_adam: use_bias_correction must be True or False",
    ),
    # d0 is one value, not a schedule.
    *[
        (f, "d0", schedules.constant(1e-6), "d0 must be a number or an array")
        for f in (lrjax.dadapt_adam, lrjax.dadapt_sgd)
    ],
    # Prodigy.
    (
        lrjax.prodigy,
        "learning_rate",
        -1.0,
        "prodigy: learning_rate must be finite and >= 0, got -1.0",
    ),
    (lrjax.prodigy, "learning_rate", math.nan, "prodigy: learning_rate must be finite in float32"),
    (lrjax.prodigy, "b1", 1.0, r"prodigy: b1 must be in \[0, 1\), got 1.0"),
    (lrjax.prodigy, "b2", True, "prodigy: b2 must be a real number"),
    (lrjax.prodigy, "b3", -0.1, r"prodigy: b3 must be in \[0, 1\), got -0.1"),
    (lrjax.prodigy, "b3", "0.5", "prodigy: b3 must be a real number"),
    (lrjax.prodigy, "eps", None, "prodigy: eps must be a real number >= 0, got None"),
    (lrjax.prodigy, "eps", -1e-8, "prodigy: eps must be finite and >= 0"),
    (lrjax.prodigy, "weight_decay", [0.1], "prodigy: weight_decay must be a real number"),
    (lrjax.prodigy, "d0", 0.0, "prodigy: d0 must be finite and > 0, got 0.0"),
    (lrjax.prodigy, "d0", math.inf, "prodigy: d0 must be finite in float32"),
    (lrjax.prodigy, "d_coef", -1.0, "prodigy: d_coef must be finite and > 0"),
    (
        lrjax.prodigy,
        "growth_rate",
        0.5,
        "prodigy: growth_rate must be inf or finite and >= 1, got 0.5",
    ),
    (lrjax.prodigy, "growth_rate", math.nan, "prodigy: growth_rate must be finite in float32"),
    (lrjax.prodigy, "slice_p", 0, "prodigy: slice_p must be an integer >= 1, got 0"),
    (lrjax.prodigy, "slice_p", 2.0, "prodigy: slice_p must be a concrete integer >= 1, got 2.0"),
    (lrjax.prodigy, "slice_p", True, "prodigy: slice_p must be a concrete integer"),
    (lrjax.prodigy, "decouple", "yes", "prodigy: decouple must be True or False, got 'yes'"),
    (
        lrjax.prodigy,
        "use_bias_correction",
        1,
        "prodigy: use_bias_correction must be True or False",
    ),
    (lrjax.prodigy, "safeguard_warmup", None, "prodigy: safeguard_warmup must be True or False"),
    # DoG and its averaging.
    *[
        (lrjax.dog, name, value, re.escape(message))
        for name, value, message in [
            ("learning_rate", -1.0, "dog: learning_rate must be finite and >= 0, got -1.0"),
            ("learning_rate", 0.0, "dog: learning_rate must be finite and > 0"),
            ("learning_rate", math.nan, "dog: learning_rate must be finite in float32"),
            ("learning_rate", True, "dog: learning_rate must be a real number"),
            ("learning_rate", "1", "dog: learning_rate must be a real number"),
            ("reps_rel", 0.0, "dog: reps_rel must be finite and > 0, got 0.0"),
            ("reps_rel", -1e-6, "dog: reps_rel must be finite and > 0"),
            ("reps_rel", None, "dog: reps_rel must be a real number"),
            ("eps", -1e-8, "dog: eps must be finite and >= 0, got -1e-08"),
            ("eps", math.inf, "dog: eps must be finite in float32"),
            ("weight_decay", -0.1, "dog: weight_decay must be finite and >= 0"),
            ("weight_decay", np.bool_(True), "dog: weight_decay must be a real number"),
            ("init_eta", 0.0, "dog: init_eta must be finite and > 0, got 0.0"),
            ("init_eta", -1.0, "dog: init_eta must be finite and > 0"),
            ("init_eta", math.nan, "dog: init_eta must be finite in float32"),
            ("init_eta", True, "dog: init_eta must be a real number"),
            ("layerwise", 1, "dog: layerwise must be True or False, got 1"),
            ("layerwise", "yes", "dog: layerwise must be True or False"),
        ]
    ],
    *[
        (lrjax.polynomial_average, "gamma", value, re.escape(message))
        for value, message in [
            (-1.0, "polynomial_average: gamma must be finite and >= 0, got -1.0"),
            (math.nan, "polynomial_average: gamma must be finite in float32"),
            (True, "polynomial_average: gamma must be a real number"),
            ("8", "polynomial_average: gamma must be a real number"),
            (jnp.ones(2), "polynomial_average: gamma must be a real number"),
        ]
    ],
    # Schedule-free: the interpolation is inside (0, 1); warmup_steps a concrete count.
    *[
        (f, name, value, rf"^{f.__name__}: {name} must be in \(0, 1\)")
        for f, name, value in [
            (lrjax.schedule_free_adamw, "b1", 0.0),
            (lrjax.schedule_free_sgd, "momentum", 0.0),
            (lrjax.schedule_free_sgd, "momentum", 1.0),
            (lrjax.schedule_free_adamw, "b1", jnp.asarray(0.0)),
        ]
    ],
    *[
        (f, "warmup_steps", value, rf"^{f.__name__}: warmup_steps must be")
        for f in (lrjax.schedule_free_adamw, lrjax.schedule_free_sgd)
        for value in [-1, 2.5, True, None, np.int64(2**31), jnp.asarray(3)]
    ],
]


# What a mask is not: a pytree of bools (or a prefix of the parameters), or a function.
MASK_BAD = [0.5, "yes", [1, 2], {"w": "x"}, np.ones(2)]


def _key(function, name, value) -> tuple[str, str, str]:
    return function.__name__, name, repr(value)


def _cases() -> list:
    """The sweep, each case with its known pattern (or None), then the known cases the
    sweep does not reach."""
    known = {_key(f, name, value): (f, name, value, pattern) for f, name, value, pattern in KNOWN}
    assert len(known) == len(KNOWN), "a known case is listed twice"
    cases = []
    for function in FUNCTIONS:
        for name, parameter in inspect.signature(function).parameters.items():
            if name in FLAGS:
                bad_values = FLAG_BAD
            elif name == "mask":  # True and None are masks (decay everything)
                bad_values = MASK_BAD
            else:
                bad_values = NUMBER_BAD + ([None] if parameter.default is not None else [])
            for bad in bad_values:
                pattern = known.pop(_key(function, name, bad), (None,) * 4)[3]
                cases.append((function, name, bad, pattern))
    cases += known.values()
    return [
        pytest.param(f, name, value, pattern, id=f"{f.__name__}-{name}={value!r}")
        for f, name, value, pattern in cases
    ]


@pytest.mark.parametrize(("function", "name", "bad", "pattern"), _cases())
def test_bad_values_are_refused_naming_the_function_and_argument(function, name, bad, pattern):
    with pytest.raises(ValueError, match=rf"^{function.__name__}: {name} must be") as info:
        function(**{name: bad})
    if pattern is not None:
        assert re.search(pattern, str(info.value)), str(info.value)
