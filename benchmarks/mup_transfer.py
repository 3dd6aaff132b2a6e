"""μP against the standard parametrisation: does the best Adam rate move with the width?

    python -m benchmarks.mup_transfer                   # the full benchmark (5-10 min on 2 cores)
    python -m benchmarks.mup_transfer --quick           # widths 64 and 256: a smoke test
    python -m benchmarks.mup_transfer --markdown PATH   # also write the table as Markdown

Task: scikit-learn's digits (8×8 images, 1437 training and 360 held-out images, split once
with a fixed seed), an MLP 64-w-w-10 (two hidden ReLU layers of width w), Adam, a fixed
number of steps on minibatches, the same batches for every run, the rate decayed to zero
by a cosine over the steps (``--schedule constant``: no decay). For each width, one
``lrjax.sweep`` trains every rate of the grid from each seed (the seed draws the
initialisation) and scores the held-out cross-entropy after the last step; the best rate
is the one with the lowest mean over the seeds.

- SP (standard parametrisation): ``lrjax.adam(schedule)``; every kernel initialised as flax's
  default ``lecun_normal`` (variance 1/fan_in), biases at zero.
- μP: ``lrjax.mup(lrjax.adam, schedule, params=..., base_params=<width-64 shapes>)`` (the
  hidden w×w kernel's rate ÷ w/64, the others unchanged); the readout multiplies its input
  by 1/width_mult = 64/w and its kernel starts at zero; the other kernels as in SP.

At width 64 the two differ only in the readout's initialisation. Reported per width: the
best rate under SP and under μP, the held-out loss there (mean ± standard deviation over
the seeds), and the best rate of each seed alone (how far the seed noise moves it); then
max/min of the best rates across widths. A figure of the held-out loss against the rate,
one curve per width, goes to ``benchmarks/out/mup_transfer.png``.

Nothing here asserts: it measures and reports.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

if __package__ in (None, ""):  # run as `python benchmarks/mup_transfer.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lrjax
from lrjax.schedules import cosine_decay

BASE_WIDTH = 64
WIDTHS = (64, 128, 256, 512, 1024)
QUICK_WIDTHS = (64, 256)
# Log-spaced Adam rates (the schedule's peak), √2 apart: 1e-3·2^(k/2), k = 1 … 12
# (1.4e-3 … 6.4e-2).
RATES = tuple(1e-3 * 2.0 ** (k / 2) for k in range(1, 13))
QUICK_RATES = RATES[::2]
SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)
STEPS, QUICK_STEPS = 200, 40
BATCH = 64
PARAMETRISATIONS = ("SP", "μP")
TITLES = {
    "SP": "standard parametrisation: lrjax.adam (★ best rate)",
    "μP": f"μP, base width {BASE_WIDTH}: lrjax.mup(lrjax.adam) (★ best rate)",
}
FIGURE = Path(__file__).resolve().parent / "out" / "mup_transfer.png"


# ------------------------------------------------------------------------------ data


def digits() -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): the digits, split 80/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[: int(0.8 * len(x))], order[int(0.8 * len(x)) :]
    return x[train], y[train], x[test], y[test]


def batches(x: np.ndarray, y: np.ndarray, steps: int) -> tuple[jax.Array, jax.Array]:
    """``steps`` shuffled minibatches of ``BATCH``, stacked: the same for every run."""
    rng = np.random.default_rng(1)
    epochs = -(-steps * BATCH // len(x))
    order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])
    index = order[: steps * BATCH].reshape(steps, BATCH)
    return jnp.asarray(x[index]), jnp.asarray(y[index])


# ----------------------------------------------------------------------------- model


def init(key: jax.Array, width: int, mup: bool) -> dict[str, dict[str, jax.Array]]:
    """The MLP's parameters in flax's layout (kernel ``(in, out)``) and its default
    initialisation; under μP the readout's kernel starts at zero."""
    sizes = {"embed": (64, width), "hidden": (width, width), "readout": (width, 10)}
    keys = dict(zip(sizes, jax.random.split(key, len(sizes)), strict=True))
    params = {}
    for name, (fan_in, fan_out) in sizes.items():
        kernel = jax.nn.initializers.lecun_normal()(keys[name], (fan_in, fan_out))
        if mup and name == "readout":
            kernel = jnp.zeros_like(kernel)
        params[name] = {"kernel": kernel, "bias": jnp.zeros(fan_out)}
    return params


def forward(params, x: jax.Array, width: int, mup: bool) -> jax.Array:
    dense = lambda layer, h: h @ layer["kernel"] + layer["bias"]
    h = jax.nn.relu(dense(params["hidden"], jax.nn.relu(dense(params["embed"], x))))
    if mup:
        h = h * (BASE_WIDTH / width)  # MuReadout's 1 / width_mult
    return dense(params["readout"], h)


def optimizer(width: int, mup: bool, steps: int, schedule: str):
    """The factory ``rate -> transformation`` that :func:`lrjax.sweep` calls."""
    decay = (lambda rate: cosine_decay(rate, steps)) if schedule == "cosine" else (lambda r: r)
    if not mup:
        return lambda rate: lrjax.adam(decay(rate))
    shapes = jax.eval_shape(lambda: init(jax.random.key(0), width, mup))
    base = jax.eval_shape(lambda: init(jax.random.key(0), BASE_WIDTH, mup))
    return lambda rate: lrjax.mup(lrjax.adam, decay(rate), params=shapes, base_params=base)


# ----------------------------------------------------------------------------- sweep


def measure(width: int, mup: bool, data, settings: dict[str, Any]) -> dict[str, Any]:
    steps, rates, seeds = settings["steps"], settings["rates"], settings["seeds"]
    x_train, y_train, x_test, y_test = data
    x_test, y_test = jnp.asarray(x_test), jnp.asarray(y_test)

    def loss_fn(params, batch):
        x, y = batch
        logits = forward(params, x, width, mup)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an edge is reported in the table
        result = lrjax.sweep(
            loss_fn,
            batches=batches(x_train, y_train, steps),
            optimizer=optimizer(width, mup, steps, settings["schedule"]),
            learning_rates=list(rates),
            init_fn=lambda key: init(key, width, mup),
            seeds=list(seeds),
            eval_fn=lambda params: loss_fn(params, (x_test, y_test)),
        )
    seconds = time.perf_counter() - start
    scores = result.scores.reshape(len(rates), len(seeds))
    best = int(np.argmin(result.mean_scores))
    return {
        "width": width,
        "parametrisation": "μP" if mup else "SP",
        "rates": np.asarray(rates),
        "mean": result.mean_scores,
        "std": result.spread_scores,
        "best_rate": result.best_learning_rate,
        "best_loss": float(result.mean_scores[best]),
        "best_std": float(result.spread_scores[best]),
        "per_seed": [float(rates[i]) for i in np.argmin(scores, axis=0)],
        "edge": result.at_edge.get("learning_rate"),
        "diverged": int(np.sum(result.diverged)),
        "seconds": seconds,
    }


def transferred(rows: list[dict[str, Any]], row: dict[str, Any]) -> float:
    """The held-out loss of ``row``'s width at the best rate of the narrowest width (the
    rate a user tunes on the small model and reuses)."""
    same = [r for r in rows if r["parametrisation"] == row["parametrisation"]]
    base = min(same, key=lambda r: r["width"])
    return float(row["mean"][list(row["rates"]).index(base["best_rate"])])


def spread(rows: list[dict[str, Any]], parametrisation: str) -> float:
    """max/min of the best rates across the widths."""
    best = [row["best_rate"] for row in rows if row["parametrisation"] == parametrisation]
    return max(best) / min(best)


# --------------------------------------------------------------------------- report


def markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    rates, base = settings["rates"], settings["widths"][0]
    cosine = settings["schedule"] == "cosine"
    lines = [
        "## μP: a rate that transfers across width"
        + ("" if cosine else " (constant rate)")
        + (" (quick)" if settings["quick"] else ""),
        "",
        f"Digits MLP 64-w-w-10, Adam, {settings['steps']} steps of minibatches of {BATCH}"
        + (", the rate decayed to 0 by a cosine," if cosine else ", a constant rate,"),
        f"{len(settings['seeds'])} seeds (initialisation), {len(rates)} rates "
        f"{rates[1] / rates[0]:.3g}× apart ({rates[0]:.2g} … {rates[-1]:.2g}). Score: the",
        "held-out cross-entropy after the last step, mean ± standard deviation over the seeds.",
        "Best rate: the lowest mean; per seed: each seed's own best rate; at the rate of",
        f"width {base}: the mean held-out loss with the best rate of width {base}, and how",
        "much above the width's own best that is.",
        "",
        "| width | SP best rate | SP per seed | SP held-out loss | SP at the rate of "
        f"width {base} | μP best rate | μP per seed | μP held-out loss | μP at the rate of "
        f"width {base} |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    by_width: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_width.setdefault(row["width"], {})[row["parametrisation"]] = row
    for width, pair in by_width.items():
        cells = [str(width)]
        for name in PARAMETRISATIONS:
            row = pair[name]
            edge = f" ({row['edge']} of the grid)" if row["edge"] else ""
            loss = transferred(rows, row)
            cells += [
                f"{row['best_rate']:.2g}{edge}",
                ", ".join(f"{rate:.2g}" for rate in row["per_seed"]),
                f"{row['best_loss']:.3f} ± {row['best_std']:.3f}",
                f"{loss:.3f} (+{100 * (loss / row['best_loss'] - 1):.0f}%)",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    diverged = {name: sum(r["diverged"] for r in rows if r["parametrisation"] == name)
                for name in PARAMETRISATIONS}  # fmt: skip
    lines += [
        "",
        f"- max/min of the best rates across widths: SP {spread(rows, 'SP'):.2g}×, "
        f"μP {spread(rows, 'μP'):.2g}×",
        f"- diverged runs: SP {diverged['SP']}, μP {diverged['μP']}",
        f"- time: {sum(r['seconds'] for r in rows):.0f} s for {len(rows)} sweeps "
        f"of {len(rates) * len(settings['seeds'])} runs",
    ]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict[str, Any]], settings: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    widths = sorted({row["width"] for row in rows})
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(widths)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True, sharey=True)
    for ax, name in zip(axes, PARAMETRISATIONS, strict=True):
        for row in (row for row in rows if row["parametrisation"] == name):
            colour = colours[widths.index(row["width"])]
            ax.errorbar(row["rates"], row["mean"], yerr=row["std"], color=colour,
                        marker="o", ms=3, capsize=2, label=f"width {row['width']}")  # fmt: skip
            ax.plot(row["best_rate"], row["best_loss"], "*", color=colour, ms=13, mec="black")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1, 2, 5 × 10^k
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        cosine = settings["schedule"] == "cosine"
        ax.set_xlabel("Adam learning rate" + (" (peak of the cosine)" if cosine else ""))
        ax.set_title(TITLES[name])
    axes[0].set_ylabel(f"held-out loss after {settings['steps']} steps")
    axes[1].legend(title="mean ± std over seeds", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mup_transfer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="widths 64 and 256: a smoke test")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    parser.add_argument("--figure", metavar="PATH", default=str(FIGURE), help="the figure")
    parser.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="the rate over the steps: decayed to 0 by a cosine (default) or constant",
    )
    args = parser.parse_args(argv)
    settings = {
        "quick": args.quick,
        "widths": QUICK_WIDTHS if args.quick else WIDTHS,
        "rates": QUICK_RATES if args.quick else RATES,
        "seeds": QUICK_SEEDS if args.quick else SEEDS,
        "steps": QUICK_STEPS if args.quick else STEPS,
        "schedule": args.schedule,
    }
    data = digits()
    rows = []
    for name in PARAMETRISATIONS:
        for width in settings["widths"]:
            row = measure(width, name == "μP", data, settings)
            rows.append(row)
            print(f"{name} width {width}: best rate {row['best_rate']:.2g} "
                  f"({row['seconds']:.1f} s)", flush=True)  # fmt: skip
    text = markdown(rows, settings)
    print()
    print(text)
    figure(rows, settings, Path(args.figure))
    print(f"figure: {args.figure}")
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
