"""``python -m lrjax``: the demo, and a list of the schedules."""

from __future__ import annotations

import argparse
import sys

USAGE = """\
usage: python -m lrjax {demo,schedules} [options]

  demo        find a learning rate for an MLP on scikit-learn's digits, sweep rates,
              train with warm-up + cosine, and write the plots (see: python -m lrjax demo --help)
  schedules   list the learning-rate schedules and their torch/Keras equivalents

example: optax.adam(lrjax.schedules.warmup(lrjax.schedules.cosine_decay(1e-3, 10_000), 500))
"""


class _Parser(argparse.ArgumentParser):
    """Reports a bad option as one line and exits with status 2 (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "schedules":
        from lrjax.schedules import describe

        print(describe())
        return 0
    if command == "demo":
        from lrjax import _demo

        parser = _Parser(
            prog="python -m lrjax demo",
            description=(
                "Range test, sweep and training of an MLP on scikit-learn's 8x8 digits, "
                "with plots written to --out."
            ),
        )
        parser.add_argument(
            "--out", default="lrjax-demo", help="folder for the plots (default: %(default)s)"
        )
        parser.add_argument(
            "--steps", type=int, default=600, help="training steps per run (default: %(default)s)"
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="random seed (default: %(default)s)"
        )
        args = parser.parse_args(rest)
        return _demo.run(out=args.out, steps=args.steps, seed=args.seed)
    print(
        f"python -m lrjax: error: unknown command {command!r} (expected demo or schedules)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
