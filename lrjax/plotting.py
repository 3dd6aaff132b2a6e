"""Plots of learning rates: schedules, range tests, sweeps and effective-rate histories.

Needs matplotlib (``pip install 'lrjax[plot]'``). Every function draws on ``ax`` when
given (else on a new figure) and returns the axes it drew on. The data come first and
positionally; every option with a default is keyword-only. A wrong argument raises a
``ValueError`` naming the function and the argument.

Example:
  >>> import matplotlib
  >>> matplotlib.use("Agg")
  >>> from lrjax import plotting, schedules
  >>> ax = plotting.plot_schedules(schedules.cosine_decay(0.1, 100), 120, log=True)
  >>> len(ax.lines), ax.get_yscale()
  (1, 'log')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from optax import GradientTransformation

from lrjax._finding._finder import FinderResult
from lrjax._finding._sweep import SweepResult
from lrjax._validation import (
    check_callable,
    check_choice,
    check_flag,
    check_floats,
    check_integer,
    describe,
    unit_closed,
)

_SUGGESTION_STYLES = {"steepest": "-", "valley": "--", "minimum": ":"}
# "minimum" is not the rate at the minimum: the legend says what it is.
_SUGGESTION_NOTES = {"minimum": " (rate at the minimum / 10)"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("lrjax.plotting needs matplotlib: pip install 'lrjax[plot]'") from None
    return plt


def _axes(owner: str, ax: Any) -> Any:
    """``ax`` checked to be one matplotlib Axes, or a new figure's."""
    _check_ax(owner, ax)
    # A figure of lrjax's own lays itself out (labels inside the canvas, room for a
    # colorbar); a figure the user made keeps the layout they chose.
    return ax if ax is not None else _pyplot().subplots(figsize=(6, 4), layout="constrained")[1]


def _check_ax(owner: str, ax: Any) -> None:
    _pyplot()
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        hint = " (one of the grid plt.subplots returned, e.g. axes[0])" if np.ndim(ax) else ""
        raise ValueError(f"{owner}: ax must be a matplotlib Axes{hint} or None, got {describe(ax)}")


def _positive(*arrays: np.ndarray) -> bool:
    """Whether every finite value is > 0 (and there is one): a log axis can show them."""
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values)]
    return bool(len(values)) and bool(np.all(values > 0))


def plot_schedules(
    schedules: Callable | Mapping[str, Callable] | Sequence[Callable],
    num_steps: int,
    *,
    ax: Any = None,
    log: bool = False,
    legend: bool = True,
) -> Any:
    """Draws one or many schedules over steps ``0 … num_steps − 1``.

    Args:
      schedules: a schedule, a non-empty sequence of them (labelled by their ``repr``)
        or a non-empty mapping ``label -> schedule``.
      num_steps: the number of steps to draw (an integer >= 1).
      ax: the matplotlib axes to draw on (default: a new figure).
      log: a logarithmic rate axis.
      legend: draw a legend of the labels.

    Returns:
      The axes.
    """
    owner = "plot_schedules"
    if isinstance(schedules, GradientTransformation):
        raise ValueError(
            f"{owner}: schedules must be a schedule step -> rate (or several), got an "
            "optimizer (a GradientTransformation)"
        )
    if callable(schedules):
        entries = [("schedules", repr(schedules), schedules)]
    elif isinstance(schedules, Mapping):
        entries = [(f"schedules[{k!r}]", str(k), s) for k, s in schedules.items()]
    elif isinstance(schedules, (list, tuple)):
        entries = [(f"schedules[{i}]", repr(s), s) for i, s in enumerate(schedules)]
    else:
        raise ValueError(
            f"{owner}: schedules must be a schedule, a list or tuple of schedules or a "
            f"mapping label -> schedule, got {describe(schedules)}"
        )
    if not entries:
        raise ValueError(f"{owner}: schedules must hold at least one schedule, got none")
    for name, _, schedule in entries:
        check_callable(owner, name, schedule, "a schedule step -> rate")
    num_steps = check_integer(owner, "num_steps", num_steps, 1)
    log = check_flag(owner, "log", log)
    legend = check_flag(owner, "legend", legend)
    _check_ax(owner, ax)
    steps = jnp.arange(num_steps)
    curves = [(label, _evaluate(owner, name, schedule, steps)) for name, label, schedule in entries]
    if log and not any(np.any(rates > 0) for _, rates in curves):
        raise ValueError(f"{owner}: log=True needs a rate > 0 to draw, but every rate is <= 0")
    ax = _axes(owner, ax)
    for label, rates in curves:
        ax.plot(np.asarray(steps), rates, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    if legend:
        ax.legend(fontsize="small")
    return ax


def _evaluate(owner: str, name: str, schedule: Callable, steps: jax.Array) -> np.ndarray:
    """``schedule`` at every step, checked to be one real number per step."""
    try:
        # One compiled evaluation: op by op, a schedule's first call compiles every operation.
        rates = np.asarray(jax.jit(jax.vmap(schedule))(steps))
    except TypeError as error:  # not a function of the step (an optimizer factory, say)
        raise ValueError(
            f"{owner}: {name} must map a step to a learning rate; calling it on the steps "
            f"failed: {error}"
        ) from error
    real = np.issubdtype(rates.dtype, np.floating) or np.issubdtype(rates.dtype, np.integer)
    if rates.shape != steps.shape or not real:
        raise ValueError(
            f"{owner}: {name} must return one real number per step, got {rates.dtype} of "
            f"shape {rates.shape[1:]} per step"
        )
    return rates


def plot_finder(result: FinderResult, *, ax: Any = None) -> Any:
    """Draws a range test: loss and smoothed loss against rate, suggestions marked.

    The loss axis reaches down to the lowest loss, raw or smoothed, and up to the highest
    smoothed loss before the step that stopped the test (and the highest raw loss before
    the smoothed minimum), with room above for the legend; the legend counts the losses
    of a divergence that lie above it.

    Args:
      result: what :func:`lrjax.find_learning_rate` returned.
      ax: the matplotlib axes to draw on (default: a new figure).

    Returns:
      The axes.
    """
    return _draw_finder("plot_finder", result, ax)


def _draw_finder(owner: str, result: Any, ax: Any) -> Any:
    """:func:`plot_finder` for ``owner`` (also ``FinderResult.plot``)."""
    if not isinstance(result, FinderResult):
        raise ValueError(
            f"{owner}: result must be a FinderResult (what lrjax.find_learning_rate "
            f"returns), got {describe(result)}"
        )
    ax = _axes(owner, ax)
    rates, losses, smoothed = result.learning_rates, result.losses, result.smoothed_losses
    rows = 2 + sum(rate is not None for rate in result.suggestions.values())
    limits = _finder_limits(result, rows + (result.divergence_learning_rate is not None))
    raw_label, smoothed_label = "loss", "smoothed"
    if limits is not None:
        raw_label += _above(losses, limits[1])
        smoothed_label += _above(smoothed, limits[1])
    ax.plot(rates, losses, color="0.7", lw=1, label=raw_label)
    ax.plot(rates, smoothed, color="C0", lw=2, label=smoothed_label)
    for name, rate in result.suggestions.items():
        if rate is not None:
            label = f"{name}: {rate:.2g}" + _SUGGESTION_NOTES.get(name, "")
            if rate == result.suggestion:
                label += " (suggestion)"
            ax.axvline(rate, color="C3", ls=_SUGGESTION_STYLES[name], lw=1, label=label)
    if result.divergence_learning_rate is not None:
        ax.axvline(result.divergence_learning_rate, color="k", lw=1, alpha=0.5, label="stopped")
    if limits is not None:
        ax.set_ylim(*limits)
    else:
        ax.text(0.5, 0.5, "no finite loss to draw", transform=ax.transAxes, ha="center")
    if _positive(rates, np.asarray([result.divergence_learning_rate or np.nan])):
        ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    ax.legend(fontsize="small", loc="best")
    return ax


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
    legend = min(0.45, 0.055 * rows + 0.04)  # its height, as a fraction of the axes
    return low, low + (high - low) / (1 - legend)


def _above(values: np.ndarray, top: float) -> str:
    """`` (N above the axis)`` for the finite values above ``top``, else nothing."""
    count = int(np.sum(np.isfinite(values) & (values > top)))
    return f" ({count} above the axis)" if count else ""


def plot_sweep(result: SweepResult, *, ax: Any = None, kind: str = "curves") -> Any:
    """Draws a sweep: ``kind="curves"`` the loss of every run over the steps,
    ``kind="final"`` the final loss against the rate (diverged runs marked ×).

    The curves are running means over a thirtieth of the steps (the y label says how
    many), coloured by the learning rate (else the first hyperparameter) on a colorbar,
    one line style per value of the other hyperparameters; the best run is drawn
    thicker. The loss axis is scaled to the runs that did not diverge: diverged runs,
    named in the legend, may leave it. Losses are on a log axis when they are all
    positive.

    Args:
      result: what :func:`lrjax.sweep` returned.
      ax: the matplotlib axes to draw on (default: a new figure).
      kind: ``"curves"`` or ``"final"``.

    Returns:
      The axes.
    """
    return _draw_sweep("plot_sweep", result, ax, kind)


_LINE_STYLES = ("-", "--", ":", "-.")


def _draw_sweep(owner: str, result: Any, ax: Any, kind: Any) -> Any:
    """:func:`plot_sweep` for ``owner`` (also ``SweepResult.plot``)."""
    if not isinstance(result, SweepResult):
        raise ValueError(
            f"{owner}: result must be a SweepResult (what lrjax.sweep returns), "
            f"got {describe(result)}"
        )
    kind = check_choice(owner, "kind", kind, ("curves", "final"))
    ax = _axes(owner, ax)
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
    cmap = ListedColormap(_pyplot().get_cmap("viridis")(np.linspace(0, 0.85, 256)))
    styles = {key: _LINE_STYLES[n % len(_LINE_STYLES)] for n, key in enumerate(groups)}
    window = max(1, result.losses.shape[1] // 30)
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
    log_y = _positive(result.losses)
    if log_y:
        ax.set_yscale("log")
    if np.any(diverged) and kept:
        _scale_to(ax, np.concatenate(kept), log_y)
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
    if named:
        ax.legend(handles=named, fontsize="small", loc="best")


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
    if _positive(scores[ok]):
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(what + (f" (mean ± std over {per} seeds)" if per > 1 else ""))
    ax.legend(fontsize="small", loc="best")


def plot_effective_rates(
    histories: Any | Mapping[str, Any],
    *,
    ax: Any = None,
    quantiles: Sequence[float] = (0.1, 0.9),
) -> Any:
    """Draws per-parameter effective rates over time: the median and a quantile band.

    Rates are on a log axis when they are all positive.

    Args:
      histories: a history, or a non-empty mapping ``label -> history``. A history is a
        non-empty list of :func:`lrjax.effective_learning_rates` results, one per step,
        or the same stacked along a leading step axis (what ``lax.scan`` returns).
      ax: the matplotlib axes to draw on (default: a new figure).
      quantiles: the band's lower and upper quantiles over all parameters, two numbers
        in [0, 1], lower first.

    Returns:
      The axes.
    """
    owner = "plot_effective_rates"
    if isinstance(histories, Mapping):
        named = {f"histories[{label!r}]": (label, h) for label, h in histories.items()}
        if not named:
            raise ValueError(f"{owner}: histories must hold at least one history, got none")
    else:
        named = {"histories": ("effective rate", histories)}
    low_q, high_q = _quantiles(owner, quantiles)
    per_step = {label: _per_step(owner, name, h) for name, (label, h) in named.items()}
    ax = _axes(owner, ax)
    for i, (label, rates) in enumerate(per_step.items()):
        steps = np.arange(len(rates))
        low, high = np.quantile(rates, [low_q, high_q], axis=1)
        ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.2, lw=0)
        ax.plot(steps, np.median(rates, axis=1), color=f"C{i}", label=label)
    if _positive(*per_step.values()):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("per-parameter learning rate")
    ax.legend(fontsize="small")
    return ax


def _quantiles(owner: str, quantiles: Any) -> tuple[float, float]:
    values = check_floats(owner, "quantiles", quantiles, unit_closed, "in [0, 1]")
    if len(values) != 2 or not float(values[0]) <= float(values[1]):
        raise ValueError(
            f"{owner}: quantiles must be two numbers in [0, 1], lower first, got {quantiles!r}"
        )
    return float(values[0]), float(values[1])


def _per_step(owner: str, name: str, history: Any) -> np.ndarray:
    """``[steps, parameters]`` from a list of rate trees or a stacked rate tree."""
    what = (
        f"{owner}: {name} must be a non-empty list of rate trees or a rate tree stacked "
        "along a leading step axis"
    )
    try:
        if isinstance(history, list):
            rates = np.stack([_flatten(tree) for tree in history]) if history else None
        else:
            leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(history)]
            if not leaves or any(leaf.ndim == 0 for leaf in leaves):
                rates = None  # no leading step axis
            else:
                rates = np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], 1)
    except ValueError as error:  # ragged trees or leaves of different lengths
        raise ValueError(f"{what}, of one shape at every step: {error}") from error
    if rates is None or rates.size == 0 or not np.issubdtype(rates.dtype, np.number):
        raise ValueError(f"{what}, of real numbers, got {describe(history)}")
    if np.iscomplexobj(rates):
        raise ValueError(f"{what}, of real numbers, got complex rates")
    return rates


def _flatten(tree: Any) -> np.ndarray:
    leaves = [np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)
