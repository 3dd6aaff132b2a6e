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

from lrjax import _figures
from lrjax._figures import axes, check_ax, positive
from lrjax._finding._results import FinderResult, SweepResult
from lrjax._validation import (
    check_callable,
    check_flag,
    check_floats,
    check_integer,
    describe,
    show,
    unit_closed,
)


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
    check_ax(owner, ax)
    steps = jnp.arange(num_steps)
    curves = [(label, _evaluate(owner, name, schedule, steps)) for name, label, schedule in entries]
    if log and not any(np.any(rates > 0) for _, rates in curves):
        raise ValueError(f"{owner}: log=True needs a rate > 0 to draw, but every rate is <= 0")
    ax = axes(owner, ax)
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
    return _figures.draw_finder("plot_finder", result, ax)


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
    return _figures.draw_sweep("plot_sweep", result, ax, kind)


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
    ax = axes(owner, ax)
    for i, (label, rates) in enumerate(per_step.items()):
        steps = np.arange(len(rates))
        low, high = np.quantile(rates, [low_q, high_q], axis=1)
        ax.fill_between(steps, low, high, color=f"C{i}", alpha=0.2, lw=0)
        ax.plot(steps, np.median(rates, axis=1), color=f"C{i}", label=label)
    if positive(*per_step.values()):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("per-parameter learning rate")
    ax.legend(fontsize="small")
    return ax


def _quantiles(owner: str, quantiles: Any) -> tuple[float, float]:
    values = check_floats(owner, "quantiles", quantiles, unit_closed, "in [0, 1]")
    if len(values) != 2 or not float(values[0]) <= float(values[1]):
        raise ValueError(
            f"{owner}: quantiles must be two numbers in [0, 1], lower first, got {show(quantiles)}"
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
