"""The benchmarked methods: one configuration each, and its optax and torch equivalents.

Every method runs with torch's default hyperparameters (SGD with momentum 0.9). The optax
transformation is configured to the same math wherever optax can express it; where it
cannot, ``optax_note`` says how optax's arithmetic differs and whether that costs time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optax


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    kwargs: dict[str, Any]  # passed to lrjax.<name>
    optax: Callable[[], optax.GradientTransformation]
    torch_class: str
    torch_kwargs: dict[str, Any]
    torch_fused: bool  # torch has a fused CPU kernel for it; else the foreach path is fastest
    slots: int  # per-parameter state arrays: the streaming baseline reads and writes as many
    optax_note: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "sgd",
            dict(learning_rate=1e-3, momentum=0.9),
            lambda: optax.sgd(1e-3, momentum=0.9),
            "SGD",
            dict(lr=1e-3, momentum=0.9),
            True,
            1,
            "same math (optax has no dampening; its trace starts at zero, which gives "
            "torch's first step when dampening is 0)",
        ),
        Method(
            "adagrad",
            dict(learning_rate=1e-2),
            lambda: optax.adagrad(1e-2, initial_accumulator_value=0.0, eps=1e-10),
            "Adagrad",
            dict(lr=1e-2),
            True,
            1,
            "optax: g·rsqrt(sum + eps) behind a select on sum > 0, and no lr_decay; torch: "
            "g / (sqrt(sum) + eps). Same memory traffic; the rsqrt + select cost a few %",
        ),
        Method(
            "adadelta",
            dict(learning_rate=1.0),
            lambda: optax.adadelta(1.0, rho=0.9, eps=1e-6),
            "Adadelta",
            dict(lr=1.0),
            False,
            2,
            "same formula; optax's arrangement shares two square roots between the "
            "parameter and state updates, so XLA writes them to two temporary arrays",
        ),
        Method(
            "rmsprop",
            dict(learning_rate=1e-2),
            lambda: optax.rmsprop(1e-2, decay=0.99, eps=1e-8, eps_in_sqrt=False),
            "RMSprop",
            dict(lr=1e-2),
            False,
            1,
            "eps_in_sqrt=False gives torch's sqrt(v) + eps (optax's default puts eps "
            "inside the square root); no difference in cost",
        ),
        Method(
            "adam",
            dict(learning_rate=1e-3),
            lambda: optax.adam(1e-3),
            "Adam",
            dict(lr=1e-3),
            True,
            2,
            "optax bias-corrects the moments, torch the step size and the denominator: "
            "equal up to rounding, same cost",
        ),
        Method(
            "adamw",
            dict(learning_rate=1e-3),
            lambda: optax.adamw(1e-3, weight_decay=1e-2),
            "AdamW",
            dict(lr=1e-3, weight_decay=1e-2),
            True,
            2,
            "optax adds lr·wd·p to the update, torch scales p by (1 - lr·wd) first: equal "
            "up to rounding, same cost (optax's default weight_decay is 1e-4; set to 1e-2)",
        ),
    ]
}
