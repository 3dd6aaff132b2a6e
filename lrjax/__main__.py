"""``python -m lrjax``: the demo, and a list of the schedules."""

from __future__ import annotations

import argparse
import io
import sys

DESCRIPTION = """\
lrjax: the learning-rate toolkit for JAX.

example:
  schedule = lrjax.schedules.cosine_decay(1e-3, 10_000)
  optax.adam(lrjax.schedules.warmup(schedule, 500))
"""


class _Parser(argparse.ArgumentParser):
    """Reports misuse as one line and exits with status 2 (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _version() -> str:
    from lrjax import __version__

    return __version__


def parser() -> argparse.ArgumentParser:
    """The command line: ``demo`` and ``schedules``, each with ``--help``."""
    main = _Parser(
        prog="python -m lrjax",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument("--version", action="version", version=f"lrjax {_version()}")
    commands = main.add_subparsers(dest="command", metavar="{demo,schedules}", parser_class=_Parser)
    demo = commands.add_parser(
        "demo",
        help="find a rate for an MLP on scikit-learn's digits, sweep rates, train, write plots",
        description=(
            "Range test, sweep and training of an MLP on scikit-learn's 8x8 digits, "
            "with plots written to --out."
        ),
    )
    demo.add_argument(
        "--out", default="lrjax-demo", help="folder for the plots (default: %(default)s)"
    )
    demo.add_argument(
        "--steps", type=int, default=600, help="training steps per run (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    commands.add_parser(
        "schedules",
        help="list the schedules and their torch/Keras equivalents",
        description="The schedules of lrjax.schedules with their torch and Keras equivalents.",
    )
    return main


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        command_line.print_usage(sys.stderr)
        print(f"{command_line.prog}: error: a command is required (see --help)", file=sys.stderr)
        return 2
    if args.command == "schedules":
        from lrjax.schedules import describe

        print(describe())
        return 0
    from lrjax import _demo

    # Progress lines appear as the demo goes, also when stdout is a pipe or a file.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    return _demo.run(out=args.out, steps=args.steps, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
