"""How lrjax draws its figures: the axes, and the range test's and sweep's panels.

:mod:`lrjax.plotting` and the results' ``.plot()`` draw through here, each naming itself
in its messages. Needs matplotlib, imported when a figure is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrjax._finding._results import FinderResult, SweepResult, TuneResult
from lrjax._validation import check_choice, describe

_SUGGESTION_STYLES = {"bottom": "-", "steepest": "--", "valley": (0, (5, 1, 1, 1)), "minimum": ":"}
# Neither "bottom" nor "minimum" is the rate at the bottom: the legend says what it is.
_SUGGESTION_NOTES = {
    "bottom": " (rate at the bottom / 2)",
    "minimum": " (rate at the minimum / 10)",
}


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("lrjax.plotting needs matplotlib: pip install 'lrjax[plot]'") from None
    return plt


def axes(owner: str, ax: Any) -> Any:
    """``ax`` checked to be one matplotlib Axes, or a new figure's."""
    check_ax(owner, ax)
    # A figure of lrjax's own lays itself out (labels inside the canvas, room for a
    # colorbar); a figure the user made keeps the layout they chose.
    return ax if ax is not None else pyplot().subplots(figsize=(6, 4), layout="constrained")[1]


def check_ax(owner: str, ax: Any) -> None:
    pyplot()
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        hint = " (one of the grid plt.subplots returned, e.g. axes[0])" if np.ndim(ax) else ""
        raise ValueError(f"{owner}: ax must be a matplotlib Axes{hint} or None, got {describe(ax)}")


def positive(*arrays: np.ndarray) -> bool:
    """Whether every finite value is > 0 (and there is one): a log axis can show them."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values)]
    return bool(len(values)) and bool(np.all(values > 0))


def draw_finder(owner: str, result: Any, ax: Any) -> Any:
    """:func:`plot_finder` for ``owner`` (also ``FinderResult.plot``)."""
    if not isinstance(result, FinderResult):
        raise ValueError(
            f"{owner}: result must be a FinderResult (what lrjax.find_learning_rate "
            f"returns), got {describe(result)}"
        )
    ax = axes(owner, ax)
    rates, losses, smoothed = result.learning_rates, result.losses, result.smoothed_losses
    rows = 3 + sum(rate is not None for rate in result.suggestions.values())
    marks = (result.divergence_learning_rate is not None) + (result.stable_rate is not None)
    limits = _finder_limits(result, rows + marks)
    raw_label, smoothed_label = "loss", "moving average"
    if limits is not None:
        raw_label += _above(losses, limits[1])
        smoothed_label += _above(smoothed, limits[1])
    ax.plot(rates, losses, color="0.7", lw=1, label=raw_label)
    ax.plot(rates, smoothed, color="C0", lw=1, alpha=0.6, label=smoothed_label)
    if len(rates) and positive(rates):
        from lrjax._finding._finder import centred

        curve = centred(np.asarray(rates, np.float64), np.asarray(losses, np.float64))
        label = "centred smoothing"
        if limits is not None:
            label += _above(curve, limits[1])
        ax.plot(rates, curve, color="C0", lw=2, label=label)
    for name, rate in result.suggestions.items():
        if rate is not None:
            label = f"{name}: {rate:.2g}" + _SUGGESTION_NOTES.get(name, "")
            if rate == result.suggestion:
                label += " (suggestion)"
            ax.axvline(rate, color="C3", ls=_SUGGESTION_STYLES[name], lw=1, label=label)
    if result.divergence_learning_rate is not None:
        ax.axvline(result.divergence_learning_rate, color="k", lw=1, alpha=0.5, label="stopped")
    if result.stable_rate is not None:
        label = f"2/λ_max: {result.stable_rate:.2g} (stable for GD)"
        ax.axvline(result.stable_rate, color="C2", ls="-.", lw=1.2, label=label)
    if limits is not None:
        ax.set_ylim(*limits)
    else:
        ax.text(0.5, 0.5, "no finite loss to draw", transform=ax.transAxes, ha="center")
    if positive(rates, np.asarray([result.divergence_learning_rate or np.nan])):
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    ax.legend(fontsize="small", loc="best")
    return ax


def draw_tune(owner: str, result: Any, given: Any) -> Any:
    """``TuneResult.plot``: the range test beside every rung's scores against the rate."""
    if not isinstance(result, TuneResult):
        raise ValueError(
            f"{owner}: result must be a TuneResult (what lrjax.tune_learning_rate returns), "
            f"got {describe(result)}"
        )
    if given is None:
        _, given = pyplot().subplots(1, 2, figsize=(11, 4), layout="constrained")
    elif np.shape(given) != (2,):
        raise ValueError(
            f"{owner}: axes must be two matplotlib Axes or None, got {describe(given)}"
        )
    for ax in given:
        check_ax(owner, ax)
    draw_finder(owner, result.finder, given[0])
    ax = given[1]
    colors = pyplot().get_cmap("viridis")
    for i, rung in enumerate(result.rounds):
        finite = np.isfinite(rung.scores)
        color = colors(i / max(1, len(result.rounds) - 1))
        ax.plot(
            rung.learning_rates[finite],
            rung.scores[finite],
            "o-",
            color=color,
            ms=4,
            label=f"after {rung.steps} steps ({len(rung.learning_rates)} rates)",
        )
        if np.any(~finite):
            ax.plot(rung.learning_rates[~finite], np.full(np.sum(~finite), np.nan), "x")
    if result.learning_rate is not None:
        label = f"chosen: {result.learning_rate:.3g}"
        ax.axvline(result.learning_rate, color="C3", lw=1.2, label=label)
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if positive(*(rung.scores for rung in result.rounds)):
        ax.set_yscale("log")  # the later rungs' scores are often far below the first's
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("score (lower is better)")
    ax.set_title(f"successive halving ({result.steps_used} steps in all)")
    ax.legend(fontsize="small", loc="best")
    return given


def _finder_limits(result: FinderResult, rows: int) -> tuple[float, float] | None:
    """The loss axis of a range test, or None when no loss is finite.

    From the lowest loss, raw or smoothed, to the highest smoothed loss before the step
    that stopped the test and the highest raw loss of the descent (up to the smoothed
    minimum): a divergence would otherwise flatten the curve the suggestions are read
    from. The losses above it are counted in the legend. Above that, room for a legend
    of ``rows`` entries, so that it covers no point of the curve.
    """
    losses, smoothed = result.losses, result.smoothed_losses
    values = np.concatenate([losses, smoothed])
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    end = len(smoothed)
    if result.divergence_step is not None and result.divergence_step == end - 1:
        end -= 1  # the point that stopped the test
    finite = np.isfinite(smoothed)
    head = [smoothed[:end][finite[:end]]]
    if np.any(finite):
        bottom = int(np.argmin(np.where(finite, smoothed, np.inf)))
        head.append(losses[: bottom + 1])
    kept = np.concatenate(head)
    kept = kept[np.isfinite(kept)]
    low, high = float(np.min(values)), float(np.max(kept) if len(kept) else np.max(values))
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
    low, high = low - pad, high + pad
    legend = min(0.6, 0.055 * rows + 0.04)  # its height, as a fraction of the axes
    return low, low + (high - low) / (1 - legend)


def _above(values: np.ndarray, top: float) -> str:
    """`` (N above the axis)`` for the finite values above ``top``, else nothing."""
    count = int(np.sum(np.isfinite(values) & (values > top)))
    return f" ({count} above the axis)" if count else ""


_LINE_STYLES = ("-", "--", ":", "-.")


def draw_sweep(owner: str, result: Any, ax: Any, kind: Any) -> Any:
    """:func:`plot_sweep` for ``owner`` (also ``SweepResult.plot``)."""
    if not isinstance(result, SweepResult):
        raise ValueError(
            f"{owner}: result must be a SweepResult (what lrjax.sweep returns), "
            f"got {describe(result)}"
        )
    kind = check_choice(owner, "kind", kind, ("curves", "final"))
    ax = axes(owner, ax)
    grid, per = result.grid, len(result.configs) // max(len(result.grid), 1)
    names = list(grid[0]) if grid else []
    # The x axis of kind="final" and the colour of kind="curves": the learning rate,
    # else the first hyperparameter.
    x_name = "learning_rate" if "learning_rate" in names else names[0]
    others = [name for name in names if name != x_name]
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(grid):
        groups.setdefault(tuple(config[name] for name in others), []).append(i)
    what = "final eval loss" if result.eval_losses is not None else "final loss"
    if kind == "curves":
        _draw_curves(ax, result, per, x_name, others, groups)
    else:
        _draw_final(ax, result, per, x_name, others, groups, what)
    count = f"{len(grid)} " + ("learning rates" if names == ["learning_rate"] else "configurations")
    count += f" × {per} seeds" if per > 1 else ""
    ax.set_title(f"sweep of {count}: " + ("loss per step" if kind == "curves" else what))
    return ax


def _draw_curves(ax, result: SweepResult, per: int, x_name: str, others, groups) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm, Normalize
    from matplotlib.lines import Line2D

    grid = result.grid
    diverged = np.asarray(np.any(result.diverged.reshape(-1, per), axis=1))
    xs = np.asarray([config[x_name] for config in grid], np.float64)
    values = np.unique(xs)
    norm = (LogNorm if np.all(xs > 0) else Normalize)(values[0], values[-1])
    # viridis without its palest yellows, which are hard to see on white
    cmap = ListedColormap(pyplot().get_cmap("viridis")(np.linspace(0, 0.85, 256)))
    styles = {key: _LINE_STYLES[n % len(_LINE_STYLES)] for n, key in enumerate(groups)}
    window = max(1, result.losses.shape[1] // 30)
    evals = None
    if result.eval_losses is not None:
        evals = np.mean(result.eval_losses.reshape(len(grid), per, -1), axis=1)
    drawn, named, kept = [], [], []
    for i, config in enumerate(grid):
        if others:
            label = ", ".join(f"{name}={value:.2g}" for name, value in config.items())
        else:
            label = f"{config[x_name]:.2g}"
        best = config == result.best
        label += " (best)" if best else " (diverged)" if diverged[i] else ""
        color = cmap(norm(xs[i])) if len(values) > 1 else "C0"
        style = styles[tuple(config[name] for name in others)]
        mean = _running_mean(result.mean_losses[i], window)
        (line,) = ax.plot(mean, color=color, ls=style, lw=2.5 if best else 1.2, label=label)
        drawn.append(line)
        if best or diverged[i]:
            named.append(line)
        if not diverged[i]:
            kept.append(mean)
        if per > 1:  # the spread over seeds
            spread = _running_mean(result.spread_losses[i], window)
            steps = np.arange(len(mean))
            ax.fill_between(steps, mean - spread, mean + spread, color=color, alpha=0.2, lw=0)
        if evals is not None:  # what chose the best: the held-out loss, at its steps
            lw = 2.5 if best else 1.2
            ax.plot(result.eval_steps, evals[i], color=color, ls=":", marker="o", ms=3, lw=lw)
            if not diverged[i]:
                kept.append(evals[i])
    log_y = positive(result.losses) and (evals is None or positive(evals))
    if log_y:
        ax.set_yscale("log")
    if np.any(diverged) and kept:
        _scale_to(ax, np.concatenate(kept), log_y)
    if log_y:
        plain_log_ticks(ax)
    if len(values) > 1:
        bar = ax.figure.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=x_name.replace("_", " "), pad=0.02
        )
        if len(values) <= 8:  # a tick per value swept
            bar.minorticks_off()
            bar.set_ticks(values, labels=[f"{value:.2g}" for value in values])
    else:  # one colour: the legend tells the runs apart
        named = drawn
    ax.set_xlabel("step")
    label = f"loss, mean over {per} seeds" if per > 1 else "loss"
    ax.set_ylabel(label + (f" ({window}-step running mean)" if window > 1 else ""))
    if len(groups) > 1:
        named += [
            Line2D([], [], color="0.3", ls=styles[key], label=_describe_key(others, key))
            for key in groups
        ]
    if evals is not None:
        label = "eval_fn (chose the best)"
        named.append(Line2D([], [], color="0.3", ls=":", marker="o", ms=3, label=label))
    if named:
        ax.legend(handles=named, fontsize="small", loc="best")


def plain_log_ticks(ax: Any) -> None:
    """Tick labels of a log loss axis that spans less than two decades as plain numbers
    (``2.75``, not ``2.75×10⁰``), on the ticks matplotlib would label. A wider axis keeps
    its powers of ten."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def __call__(self, x: float, pos: Any = None) -> str:
            return f"{x:.3g}" if super().__call__(x, pos) else ""

    low, high = ax.get_ylim()
    if low > 0 and high / low < 100:
        ax.yaxis.set_major_formatter(Plain(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 1)))


def _scale_to(ax, curves: np.ndarray, log: bool) -> None:
    """Loss limits around the finite ``curves`` (the runs that did not diverge)."""
    finite = curves[np.isfinite(curves) & ((curves > 0) | (not log))]
    if not len(finite):
        return
    low, high = float(np.min(finite)), float(np.max(finite))
    if log:
        ax.set_ylim(low / 1.5, high * 1.5)
    else:
        pad = 0.05 * (high - low) or 1.0
        ax.set_ylim(low - pad, high + pad)


def _describe_key(others, key) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in zip(others, key, strict=True))


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last ``window`` values at every step (of fewer at the start)."""
    values = np.asarray(values, np.float64)
    sums = np.convolve(values, np.ones(window))[: len(values)]
    return sums / np.minimum(np.arange(1, len(values) + 1), window)


def _draw_final(ax, result: SweepResult, per: int, x_name: str, others, groups, what) -> None:
    grid = result.grid
    xs = np.asarray([config[x_name] for config in grid])
    scores, spread = result.mean_scores, result.spread_scores
    ok = np.isfinite(scores)
    for n, (key, members) in enumerate(groups.items()):
        kept = [i for i in members if ok[i]]
        ax.errorbar(
            xs[kept],
            scores[kept],
            yerr=spread[kept] if per > 1 else None,
            fmt="o-",
            color=f"C{n % 10}" if others else "C0",
            label=_describe_key(others, key) or what,
            capsize=2,
        )
    if np.any(~ok):
        top = np.max(scores[ok]) if np.any(ok) else 1.0
        ax.plot(xs[~ok], np.full(np.sum(~ok), top), "x", color="C3", label="diverged")
    x_label = x_name.replace("_", " ")
    if result.best is not None:
        best = result.best[x_name]
        ax.axvline(best, color="C2", ls="--", label=f"best: {x_label} {best:.2g}")
    if np.all(xs > 0):
        ax.set_xscale("log")
    if positive(scores[ok]):
        ax.set_yscale("log")
        plain_log_ticks(ax)
    ax.set_xlabel(x_label)
    ax.set_ylabel(what + (f" (mean ± std over {per} seeds)" if per > 1 else ""))
    ax.legend(fontsize="small", loc="best")
