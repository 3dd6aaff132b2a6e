"""lrjax's benchmark suite: every method's update step against optax, torch and the
memory-traffic floor, its compile time and memory, and the learning-rate sweep.

    python -m benchmarks                          # the full suite (several minutes)
    python -m benchmarks --quick                  # tiny sizes: a smoke test
    python -m benchmarks --methods adam,adadelta --markdown results.md

Nothing here asserts on timings: it measures and reports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

# torch's OpenMP threads spin between parallel regions by default; interleaved with
# XLA's thread pool on a few cores, the spinning side steals the other's time. Sleeping
# waits cost torch a wake-up per kernel (microseconds). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _measure, _report
from benchmarks._methods import METHODS, Method
from benchmarks._sweep import sweep_case


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--size", type=int, default=16 * 2**20, help="parameters in total (default 16M)"
    )
    parser.add_argument(
        "--leaves",
        type=int,
        default=1000,
        help="leaves of the second layout; the first is one leaf (default 1000)",
    )
    parser.add_argument(
        "--model-width",
        type=int,
        default=256,
        help="width of the third layout, a transformer's parameters (default 256: 5.4M "
        "parameters in 52 leaves of 9 shapes)",
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument(
        "--compile-repeats",
        type=int,
        default=6,
        help="compilations per contender, in A B B A order (default 6)",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated subset of " + ", ".join(METHODS),
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and few rounds: a smoke test"
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the results as Markdown")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    parser.add_argument("--no-sweep", action="store_true", help="leave the sweep case out")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.leaves, args.model_width = 2**16, 16, 16
        args.repeats, args.compile_repeats = min(args.repeats, 5), 2
    args.methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in args.methods if name not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.model_width < 1:
        parser.error(f"--model-width must be >= 1, got {args.model_width}")
    if args.leaves < 1 or args.size < args.leaves:
        parser.error(f"--size ({args.size}) must be at least --leaves ({args.leaves}) >= 1")
    return args


def human(n: int) -> str:
    if n >= 2**20 and n % 2**20 == 0:
        return f"{n // 2**20}M"
    return f"{n / 1e6:.3g}M" if n >= 10**6 else f"{n / 1e3:.3g}k" if n >= 10**3 else str(n)


def bench_method(method: Method, factory: Callable, params, grads, args, layout: str) -> dict:
    """One row: lrjax ("cand"), optax (twice), the streaming floor and torch, interleaved."""
    cand = _measure.jax_contender(factory(**method.kwargs), params, grads)
    ref = _measure.jax_contender(method.optax(), params, grads)
    ref_again = _measure.jax_contender(method.optax(), params, grads)
    compiles = _measure.compile_seconds(
        {"cand": cand, "ref": ref, "ref again": ref_again}, args.compile_repeats
    )
    # a second, identical optax step: its ratio to the first is the noise of a ratio
    contenders = {"cand": cand, "optax": ref, "optax again": ref.clone()}
    contenders["stream"] = _measure.streaming_contender(method.slots, params, grads)
    torch_step = None
    if not args.no_torch:
        torch_step = _measure.torch_contender(
            method.torch_class, method.torch_kwargs, method.torch_fused, params, grads
        )
        if torch_step is not None:
            contenders["torch"] = torch_step[0]
    seconds, faults = _measure.interleave(contenders, args.repeats)
    cand_memory, ref_memory = cand.memory(), ref.memory()
    return {
        "method": method.name,
        "layout": layout,
        "cand_ms": _measure.median_ms(seconds, "cand"),
        "optax_ms": _measure.median_ms(seconds, "optax"),
        "ratio": _measure.paired_ratio(seconds, "cand", "optax"),
        "noise": _measure.paired_ratio(seconds, "optax again", "optax"),
        "stream_ms": _measure.median_ms(seconds, "stream"),
        "cand_stream": _measure.paired_ratio(seconds, "cand", "stream"),
        "torch_ms": _measure.median_ms(seconds, "torch"),
        "torch_variant": torch_step[1] if torch_step else "",
        "cand_torch": _measure.paired_ratio(seconds, "cand", "torch"),
        "compile_cand": statistics.median(compiles["cand"]),
        "compile_optax": statistics.median(compiles["ref"]),
        "compile_ratio": _measure.paired_ratio(compiles, "cand", "ref"),
        "compile_noise": _measure.paired_ratio(compiles, "ref again", "ref"),
        "temp_cand": cand_memory["temp_mib"],
        "temp_optax": ref_memory["temp_mib"],
        "extra_cand": cand_memory["extra"],
        "extra_optax": ref_memory["extra"],
        "faults_cand": faults["cand"],
        "faults_optax": faults["optax"],
        "kernels_cand": cand.kernels_per_leaf(),
        "kernels_optax": ref.kernels_per_leaf(),
    }


def layouts(args):
    """``(name, params, grads)``: the parameters in one leaf, in ``args.leaves`` equal
    leaves, and as a transformer's (:func:`_measure.model_shapes`), one at a time."""
    for leaves in dict.fromkeys([1, args.leaves]):
        params = _measure.make_tree(args.size, leaves, seed=0)
        yield (
            f"{human(args.size // leaves)}×{leaves}",
            params,
            _measure.make_tree(args.size, leaves, seed=1),
        )
    params = _measure.make_model_tree(args.model_width, seed=0)
    size = sum(leaf.size for leaf in params)
    name = f"{human(size)} model ({len(params)} leaves)"
    yield name, params, _measure.make_model_tree(args.model_width, seed=1)


def resolve(names: list[str]) -> dict[str, Callable]:
    """lrjax's factory for each method (``lrjax.sgd`` …)."""
    import lrjax

    return {name: getattr(lrjax, name) for name in names}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = _measure.machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    factories = resolve(args.methods)
    rows = []
    for layout, params, grads in layouts(args):
        for name, factory in factories.items():
            row = bench_method(METHODS[name], factory, params, grads, args, layout)
            rows.append(row)
            torch = f", torch {row['torch_ms']:.2f} ms" if row["torch_variant"] else ""
            print(
                f"{name:9s} {layout:>11s}: lrjax {row['cand_ms']:.2f} ms, "
                f"optax {row['optax_ms']:.2f} ms, ratio {row['ratio']:.3f}, "
                f"stream {row['stream_ms']:.2f} ms{torch}",
                flush=True,
            )
        del params, grads
    sweep = None if args.no_sweep else sweep_case(args.quick)

    for title, columns in _report.TABLES.items() if rows else ():
        print(f"\n{title}\n")
        print(_report.text_table(rows, columns))
    if rows:
        print("\n" + _report.NOTES)
    for line in _report.sweep_lines(sweep):
        print(line)
    if args.markdown:
        options = {
            "size": args.size,
            "leaves": args.leaves,
            "model width": args.model_width,
            "repeats": args.repeats,
            "compile repeats": args.compile_repeats,
            "quick": args.quick,
        }
        notes = {name: METHODS[name].optax_note for name in factories}
        document = _report.markdown_document(rows, machine, options, notes, sweep)
        Path(args.markdown).write_text(document)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
