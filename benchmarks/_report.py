"""The result table, as aligned text for the terminal and as Markdown."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


def _num(value: float, digits: int) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _pair(a: float, b: float, digits: int) -> str:
    return f"{_num(a, digits)} / {_num(b, digits)}"


# (header, cell) for each column; "cand" keys are lrjax's numbers
KEY: list[tuple[str, Callable[[Row], str]]] = [
    ("method", lambda r: r["method"]),
    ("layout", lambda r: r["layout"]),
]
TIME: list[tuple[str, Callable[[Row], str]]] = [
    ("lrjax ms", lambda r: _num(r["cand_ms"], 2)),
    ("optax ms", lambda r: _num(r["optax_ms"], 2)),
    ("lrjax/optax", lambda r: _num(r["ratio"], 3)),
    ("optax/optax", lambda r: _num(r["noise"], 3)),
    ("stream ms", lambda r: _num(r["stream_ms"], 2)),
    ("lrjax/stream", lambda r: _num(r["cand_stream"], 2)),
    ("torch ms", lambda r: f"{_num(r['torch_ms'], 2)} {r['torch_variant']}".strip()),
    ("lrjax/torch", lambda r: _num(r["cand_torch"], 2)),
]
BUILD: list[tuple[str, Callable[[Row], str]]] = [
    ("compile s lrjax / optax", lambda r: _pair(r["compile_cand"], r["compile_optax"], 2)),
    ("compile lrjax/optax", lambda r: _num(r["compile_ratio"], 2)),
    ("compile optax/optax", lambda r: _num(r["compile_noise"], 2)),
    ("temp MiB lrjax / optax", lambda r: _pair(r["temp_cand"], r["temp_optax"], 1)),
    ("extra × params lrjax / optax", lambda r: _pair(r["extra_cand"], r["extra_optax"], 2)),
    ("page faults/step lrjax / optax", lambda r: _pair(r["faults_cand"], r["faults_optax"], 0)),
    ("kernels/leaf lrjax / optax", lambda r: _pair(r["kernels_cand"], r["kernels_optax"], 0)),
]
TABLES = {"Time per step": KEY + TIME, "Compile time and memory": KEY + BUILD}

NOTES = """\
- Every step is `jax.jit(step, donate_argnums=(0, 1))` of update + `optax.apply_updates`,
  on float32 params: in one leaf, in equal leaves, and as a GPT-style transformer's 52
  leaves of 9 shapes (XLA compiles one kernel per distinct computation, so equal leaves
  compile cheaply: a model's shapes are the realistic case for compile time). Ratios are
  medians of per-round ratios, rounds interleaved in one process (order shuffled each
  round); ms columns are plain medians.
- optax/optax: a second, identical optax step against the first: how far from 1.00 a
  ratio lands by noise alone on this machine at this moment.
- stream: a donated kernel that reads params, grads and the method's state arrays and
  writes params and state with one add each: the memory-traffic floor when every output
  array is its own loop (XLA:CPU forms no multi-output fusions by default).
- torch: `fused=True` where torch has it, else `foreach=True`; ratio per round.
- compile: trace + lower + XLA compile of the jitted, donated step, JAX's caches cleared
  before each; lrjax, optax and optax again compiled in A B C C B A order; ratios are
  medians of per-round ratios, optax/optax the noise floor of a compile ratio.
- temp MiB: `compiled.memory_analysis().temp_size_in_bytes`; extra × params: temporaries
  plus outputs not aliased to a donated input, in units of the parameters' size
  (0.00: donation leaves no copy of params or state).
- page faults/step: minor page faults per call (`getrusage`); a temporary buffer is
  fresh memory on every call, and each 4 KiB page of it faults (≈1.5 µs each here).
- kernels/leaf: loop fusions over parameter-sized arrays in the optimised HLO, per leaf."""


def text_table(rows: list[Row], columns) -> str:
    table = [[header for header, _ in columns]] + [[cell(r) for _, cell in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(
            c.rjust(w) if i >= len(KEY) else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row], columns) -> str:
    headers = [header for header, _ in columns]
    align = ["---"] * len(KEY) + ["--:"] * (len(headers) - len(KEY))
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]
    return "\n".join(lines)


def sweep_lines(sweep: Row | None) -> list[str]:
    if sweep is None:
        return []
    return [
        f"- K={sweep['k']} learning rates, {sweep['steps']} steps, {sweep['params']} parameters",
        f"- `lrjax.sweep` (one program): {sweep['sweep_s']:.2f} s",
        f"- the loop a user writes (one compiled scan, called K times): "
        f"{sweep['separate_s']:.2f} s",
        f"- ratio sweep / loop (repeated calls, paired A B B A): {sweep['ratio']:.2f}",
        f"- loss curves equal to the loop's runs (rtol 1e-4): {sweep['matching']} of "
        f"{sweep['bounded']} bounded runs (loss at most {sweep['bound']:g}× its first); "
        f"{sweep['k'] - sweep['bounded']} unbounded (chaotic or diverged, not compared), "
        f"{sweep['diverged']} of them diverged",
    ]


def markdown_document(
    rows: list[Row],
    machine: dict[str, str],
    options: dict[str, Any],
    notes: dict[str, str],
    sweep: Row | None,
) -> str:
    parts = ["# lrjax benchmarks", "", "## Machine", ""]
    parts += [f"- {key}: {value}" for key, value in machine.items()]
    parts += ["", "## Settings", ""]
    parts += [f"- {key}: {value}" for key, value in options.items()]
    for title, columns in TABLES.items():
        parts += [
            "",
            f"## {title}: lrjax vs optax",
            "",
            markdown_table(rows, columns),
        ]
    parts += ["", NOTES, "", "## Where optax's math differs from torch's", ""]
    parts += [f"- {name}: {note}" for name, note in notes.items()]
    parts += ["", "## Sweep", ""]
    parts += sweep_lines(sweep) or ["- skipped (`--no-sweep`)"]
    return "\n".join(parts) + "\n"
