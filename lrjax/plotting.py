"""Plots of learning rates: schedules, range tests, sweeps and effective-rate histories.

Needs matplotlib (``pip install 'lrjax[plot]'``). Every function draws on ``ax`` when
given (else on a new figure) and returns the axes it drew on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from lrjax._finder import FinderResult
    from lrjax._sweep import SweepResult

_SUGGESTION_STYLES = {"steepest": "-", "valley": "--", "minimum": ":"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("lrjax.plotting needs matplotlib: pip install 'lrjax[plot]'") from None
    return plt


def _axes(ax: Any) -> Any:
    return ax if ax is not None else _pyplot().subplots(figsize=(6, 4))[1]


def plot_schedules(
    schedules: Callable | Mapping[str, Callable] | Sequence[Callable],
    num_steps: int,
    ax: Any = None,
    log: bool = False,
    legend: bool = True,
) -> Any:
    """Draws one or many schedules over steps ``0 … num_steps − 1``.

    Args:
      schedules: a schedule, a sequence of them (labelled by their ``repr``) or a
        mapping ``label -> schedule``.
      num_steps: the number of steps to draw.
      ax: the axes to draw on.
      log: a logarithmic rate axis.
      legend: draw a legend of the labels.

    Returns:
      The axes.
    """
    ax = _axes(ax)
    if callable(schedules):
        schedules = {repr(schedules): schedules}
    elif not isinstance(schedules, Mapping):
        schedules = {repr(s): s for s in schedules}
    steps = jnp.arange(num_steps)
    for label, schedule in schedules.items():
        # One compiled evaluation: op-by-op, a schedule's first call compiles every operation.
        rates = jax.jit(jax.vmap(schedule))(steps)
        ax.plot(np.asarray(steps), np.asarray(rates), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    if legend:
        ax.legend(fontsize="small")
    return ax


def plot_finder(result: FinderResult, ax: Any = None) -> Any:
    """Draws a range test: loss and smoothed loss against rate, suggestions marked."""
    ax = _axes(ax)
    ax.plot(result.learning_rates, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.learning_rates, result.smoothed_losses, color="C0", lw=2, label="smoothed")
    for name, rate in result.suggestions.items():
        if rate is not None:
            label = f"{name}: {rate:.2g}" + (" (suggestion)" if rate == result.suggestion else "")
            ax.axvline(rate, color="C3", ls=_SUGGESTION_STYLES[name], lw=1, label=label)
    if result.divergence_learning_rate is not None:
        ax.axvline(result.divergence_learning_rate, color="k", lw=1, alpha=0.5, label="stopped")
    finite = result.smoothed_losses[np.isfinite(result.smoothed_losses)]
    if len(finite):
        low, high = np.min(finite), np.max(finite)
        pad = 0.1 * (high - low) + 1e-12
        ax.set_ylim(low - pad, high + pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    ax.legend(fontsize="small")
    return ax


def plot_sweep(result: SweepResult, ax: Any = None, kind: str = "curves") -> Any:
    """Draws a sweep: ``kind="curves"`` the loss of every run over the steps,
    ``kind="final"`` the final loss against the rate (diverged runs marked ×)."""
    if kind not in ("curves", "final"):
        raise ValueError(f"plot_sweep: kind must be one of 'curves', 'final', got {kind!r}")
    ax = _axes(ax)
    plt = _pyplot()
    rates = result.learning_rates
    if kind == "curves":
        colors = plt.cm.viridis(np.linspace(0, 1, len(rates)))
        for rate, losses, color, diverged in zip(
            rates, result.losses, colors, result.diverged, strict=True
        ):
            label = f"{rate:.2g}" + (" (diverged)" if diverged else "")
            width = 2.5 if rate == result.best_learning_rate else 1
            ax.plot(losses, color=color, lw=width, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.legend(title="learning rate", fontsize="x-small", ncol=2)
    else:
        ok = ~result.diverged
        ax.plot(rates[ok], result.final_losses[ok], "o-", color="C0", label="final loss")
        if np.any(~ok):
            top = np.max(result.final_losses[ok]) if np.any(ok) else 1.0
            ax.plot(rates[~ok], np.full(np.sum(~ok), top), "x", color="C3", label="diverged")
        if result.best_learning_rate is not None:
            ax.axvline(result.best_learning_rate, color="C2", ls="--", label="best")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final loss")
        ax.legend(fontsize="small")
    ax.set_title(f"sweep of {len(rates)} learning rates")
    return ax


def plot_effective_rates(
    histories: Any | Mapping[str, Any],
    ax: Any = None,
    quantiles: tuple[float, float] = (0.1, 0.9),
) -> Any:
    """Draws per-parameter effective rates over time: the median and a quantile band.

    Args:
      histories: a history, or a mapping ``label -> history``. A history is a list of
        :func:`lrjax.effective_learning_rates` results, one per step, or the same
        stacked along a leading step axis (what ``lax.scan`` returns).
      ax: the axes to draw on.
      quantiles: the band's lower and upper quantiles over all parameters.

    Returns:
      The axes.
    """
    ax = _axes(ax)
    if not isinstance(histories, Mapping):
        histories = {"effective rate": histories}
    for i, (label, history) in enumerate(histories.items()):
        rates = _per_step(history)
        steps = np.arange(len(rates))
        low, high = np.quantile(rates, quantiles, axis=1)
        ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.2, lw=0)
        ax.plot(steps, np.median(rates, axis=1), color=f"C{i}", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("per-parameter learning rate")
    ax.legend(fontsize="small")
    return ax


def _per_step(history: Any) -> np.ndarray:
    """``[steps, parameters]`` from a list of rate trees or a stacked rate tree."""
    if isinstance(history, list):
        return np.stack([_flatten(tree) for tree in history])
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(history)]
    return np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def _flatten(tree: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])
