"""The list of schedules with their torch and Keras equivalents (``python -m lrjax schedules``)."""

from __future__ import annotations

import textwrap
from typing import NamedTuple


class Entry(NamedTuple):
    name: str
    shape: str
    torch: str
    keras: str


CATALOG = (
    Entry("constant(value)", "value", "ConstantLR(factor=1)", "a float"),
    Entry("step_decay(init_value, step_size, *, gamma)", "init·gamma^⌊t/step_size⌋", "StepLR", "—"),
    Entry(
        "multistep_decay(init_value, milestones, *, gamma)",
        "init·gamma^(milestones passed)",
        "MultiStepLR",
        "—",
    ),
    Entry(
        "piecewise_constant(boundaries, values)",
        "values[i] between boundaries",
        "—",
        "PiecewiseConstantDecay",
    ),
    Entry(
        "exponential_decay(init_value, decay_rate, *, ...)",
        "init·rate^(t/T)",
        "ExponentialLR",
        "ExponentialDecay",
    ),
    Entry(
        "inverse_time_decay(init_value, decay_rate, *, ...)",
        "init/(1+rate·t/T)",
        "—",
        "InverseTimeDecay",
    ),
    Entry(
        "polynomial_decay(init_value, end_value, decay_steps, *, power, cycle)",
        "(init−end)(1−t/N)^p+end",
        "PolynomialLR",
        "PolynomialDecay",
    ),
    Entry(
        "linear(init_value, end_value, transition_steps)",
        "straight line, then held",
        "LinearLR",
        "—",
    ),
    Entry(
        "cosine_decay(init_value, decay_steps, *, end_value, exponent)",
        "half cosine, then held",
        "CosineAnnealingLR",
        "CosineDecay",
    ),
    Entry(
        "cosine_restarts(init_value, first_period, *, period_mult, ...)",
        "SGDR cycles",
        "CosineAnnealingWarmRestarts",
        "CosineDecayRestarts",
    ),
    Entry(
        "cyclic(base_value, max_value, *, step_size_up, ...)", "triangular cycles", "CyclicLR", "—"
    ),
    Entry("one_cycle(max_value, total_steps, *, ...)", "up, then down (1cycle)", "OneCycleLR", "—"),
    Entry(
        "cyclic_momentum(*, base_momentum, max_momentum, ...)",
        "momentum against cyclic",
        "CyclicLR(cycle_momentum=True)",
        "—",
    ),
    Entry(
        "one_cycle_momentum(total_steps, *, ...)",
        "momentum against one_cycle",
        "OneCycleLR(cycle_momentum=True)",
        "—",
    ),
    Entry(
        "inverse_sqrt(peak_value, warmup_steps)",
        "warm-up, then peak·√(W/t)",
        "—",
        "— (Transformer)",
    ),
    Entry(
        "wsd(peak_value, warmup_steps, stable_steps, decay_steps, *, ...)",
        "warm-up, stable, decay",
        "—",
        "—",
    ),
    Entry(
        "warmup(schedule, warmup_steps, *, init_value)",
        "linear ramp, then schedule",
        "SequentialLR(LinearLR, …)",
        "CosineDecay(warmup_…)",
    ),
    Entry("join(schedules, boundaries)", "one schedule after another", "SequentialLR", "—"),
    Entry("product(schedules)", "pointwise product", "ChainedScheduler", "—"),
    Entry(
        "per_epoch(schedule, steps_per_epoch)",
        "schedule(t // steps_per_epoch)",
        "scheduler.step() per epoch",
        "—",
    ),
)


def describe(width: int = 80) -> str:
    """The catalog as text for a terminal ``width`` columns wide: each schedule's call,
    then its shape and its torch and Keras equivalents, indented."""
    lines = ["lrjax.schedules: shape · torch.optim.lr_scheduler · Keras", ""]
    for entry in CATALOG:
        lines.append(entry.name)
        details = f"{entry.shape} · torch: {entry.torch} · Keras: {entry.keras}"
        lines += textwrap.wrap(details, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)
