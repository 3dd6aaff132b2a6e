"""Every argument of the learning-rate-free methods refuses each kind of bad value with a
ValueError that names the function called and the argument (SPEC §1, §9)."""

from __future__ import annotations

import inspect
import math

import pytest

import lrjax

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
NUMBER_BAD = ["x", True, [0.1], math.nan, -1.0, 1e39]
FLAG_BAD = ["x", [True], None, 1.5]

CASES = [
    (function, name, bad)
    for function in FUNCTIONS
    for name, parameter in inspect.signature(function).parameters.items()
    for bad in (
        FLAG_BAD
        if name in FLAGS
        else NUMBER_BAD + ([None] if parameter.default is not None else [])
    )
]


@pytest.mark.parametrize(
    ("function", "name", "bad"), CASES, ids=lambda x: getattr(x, "__name__", repr(x))
)
def test_bad_values_are_refused_naming_the_function_and_argument(function, name, bad):
    with pytest.raises(ValueError, match=rf"^{function.__name__}: ") as info:
        function(**{name: bad})
    assert name in str(info.value), str(info.value)
