"""What the range test and a sweep return: their curves and their answer.

A leaf: it imports nothing of lrjax at module level (``.plot()`` draws through
:mod:`lrjax._figures`, imported when called).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class FinderResult:
    """The curve of a range test and the rates it suggests.

    Attributes:
      learning_rates: the rate of each step, up to where the test stopped.
      losses: the loss of each step's batch, before that step's update.
      smoothed_losses: the debiased exponential moving average of ``losses`` that the
        stop rule watches.
      suggestion: the recommended rate, or None when the curve has no usable descent
        (``reason`` says why; :func:`find_learning_rate` warns).
      suggestions: ``{"steepest", "valley", "minimum"}`` → rate or None (see
        :func:`find_learning_rate` for the rules).
      diverged: whether the test stopped because the loss diverged (or was not finite).
      divergence_step: the step at which it stopped, or None.
      divergence_learning_rate: the rate of that step, or None.
      sharpness: with ``stable_rate=True``, ``λ_max`` of the Hessian of the loss at the
        initial parameters on the first batch (:func:`lrjax.sharpness`), else None.
      stable_rate: ``2 / sharpness``, the largest rate at which gradient descent is
        stable on the local quadratic model (None without ``stable_rate=True``, or for a
        ``λ_max <= 0``).
      reason: why ``suggestion`` is None (None when there is a suggestion).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestion: float | None
    suggestions: dict[str, float | None]
    diverged: bool
    divergence_step: int | None
    divergence_learning_rate: float | None
    sharpness: float | None = None
    stable_rate: float | None = None
    reason: str | None = None

    def plot(self, *, ax: Any = None) -> Any:
        """Loss against rate (log scale), suggestions marked; returns the axes.

        Needs matplotlib. ``ax``: the matplotlib axes to draw on (default: a new figure).
        """
        from lrjax import _figures

        return _figures.draw_finder("FinderResult.plot", self, ax)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """The runs of a sweep: one row per run (a configuration from one seed).

    Attributes:
      configs: ``[runs]`` dicts: each run's hyperparameters as given (Python floats, not
        float32-rounded) and, with seeds, its ``"seed"``.
      learning_rates: ``[runs]`` float64: each run's learning rate as given, or None when
        ``hyperparams`` has no ``"learning_rate"``.
      hyperparams: ``{name: [runs] float64}``: the same as ``configs``, by column.
      seeds: ``[runs]`` int64 seeds, or None without ``init_fn``.
      losses: ``[runs, T]``: the loss of each step's batch, before that step's update.
      final_losses: ``[runs]``: the mean loss of the last tenth of the steps (at least
        one); ``inf`` for a run that diverged.
      diverged: ``[runs]``: whether the run's loss became NaN or infinite; its losses
        from then on are reported as NaN.
      eval_steps: ``[E]``: after how many steps ``eval_fn`` was evaluated (None without
        ``eval_fn``).
      eval_losses: ``[runs, E]``: the ``eval_fn`` values (NaN once a run diverged), or
        None.
      scores: ``[runs]``: what the choice compares: the last ``eval_fn`` value, else the
        final loss; ``inf`` for a diverged run or a non-finite value.
      grid: ``[configs]`` dicts: the configurations (without seeds), in grid order.
      mean_scores: ``[configs]``: the mean of ``scores`` over the seeds (``inf`` if one
        is); ``spread_scores``: their standard deviation (0 with one seed).
      mean_losses: ``[configs, T]``: the mean loss curve over seeds; ``spread_losses``
        its standard deviation.
      best: the configuration with the lowest mean score, as given (a dict from ``grid``),
        or None if every configuration has a diverged run.
      best_learning_rate: ``best["learning_rate"]``, or None.
      at_edge: ``{name: "lowest" | "highest"}`` for each hyperparameter (of three or
        more values swept) whose best value is at the end of its grid: the best may lie
        beyond it, so extend the grid that way (:func:`lrjax.sweep` warns).
    """

    configs: list[dict[str, float]]
    learning_rates: np.ndarray | None
    hyperparams: dict[str, np.ndarray]
    seeds: np.ndarray | None
    losses: np.ndarray
    final_losses: np.ndarray
    diverged: np.ndarray
    eval_steps: np.ndarray | None
    eval_losses: np.ndarray | None
    scores: np.ndarray
    grid: list[dict[str, float]]
    mean_scores: np.ndarray
    spread_scores: np.ndarray
    mean_losses: np.ndarray
    spread_losses: np.ndarray
    best: dict[str, float] | None
    best_learning_rate: float | None
    at_edge: dict[str, str] = dataclasses.field(default_factory=dict)

    def plot(self, *, ax: Any = None, kind: str = "curves") -> Any:
        """The loss curves (``kind="curves"``: the mean over seeds per configuration as a
        running mean, coloured by the learning rate, a band for the spread) or the score
        against the learning rate (``kind="final"``: one line per value of the other
        hyperparameters, error bars for the spread over seeds) on ``ax`` (default: a new
        figure); returns the axes. Needs matplotlib. See :func:`lrjax.plotting.plot_sweep`."""
        from lrjax import _figures

        return _figures.draw_sweep("SweepResult.plot", self, ax, kind)


def result(
    *,
    names: list[str],
    rows: list[tuple[tuple[float, ...], int | None]],
    losses: np.ndarray,
    diverged: np.ndarray,
    eval_steps: np.ndarray | None,
    eval_losses: np.ndarray | None,
    num_seeds: int,
) -> SweepResult:
    """The result of the runs ``rows`` (configuration, seed), configurations in grid
    order with their ``max(num_seeds, 1)`` seeds next to each other."""
    tail = max(1, losses.shape[1] // 10)
    final = np.where(diverged, np.inf, np.mean(losses[:, -tail:], axis=1))
    scores = final if eval_losses is None else eval_losses[:, -1]
    scores = np.where(diverged | ~np.isfinite(scores), np.inf, scores)
    per = max(num_seeds, 1)
    by_config = scores.reshape(-1, per)
    mean = np.mean(by_config, axis=1)
    spread = np.std(np.where(np.isfinite(by_config), by_config, np.nan), axis=1)
    curves = losses.reshape(-1, per, losses.shape[1])
    grid = [dict(zip(names, config, strict=True)) for config, _ in rows[::per]]
    best = None if not np.any(np.isfinite(mean)) else grid[int(np.argmin(mean))]
    configs = [
        dict(zip(names, config, strict=True)) | ({} if seed is None else {"seed": seed})
        for config, seed in rows
    ]
    columns = {
        name: np.asarray([c[i] for c, _ in rows], np.float64) for i, name in enumerate(names)
    }
    return SweepResult(
        configs=configs,
        learning_rates=columns.get("learning_rate"),
        hyperparams=columns,
        seeds=np.asarray([seed for _, seed in rows], np.int64) if num_seeds else None,
        losses=losses,
        final_losses=final,
        diverged=diverged,
        eval_steps=eval_steps,
        eval_losses=eval_losses,
        scores=scores,
        grid=grid,
        mean_scores=mean,
        spread_scores=spread,
        mean_losses=np.mean(curves, axis=1),
        spread_losses=np.std(curves, axis=1),
        best=best,
        best_learning_rate=None if best is None else best.get("learning_rate"),
        at_edge=_at_edge(grid, best),
    )


def _at_edge(grid: list[dict[str, float]], best: dict[str, float] | None) -> dict[str, str]:
    """The hyperparameters whose best value is the lowest or the highest of the three or
    more values swept: the best may lie beyond the grid."""
    edges: dict[str, str] = {}
    for name, value in (best or {}).items():
        values = sorted({config[name] for config in grid})
        if len(values) >= 3 and value in (values[0], values[-1]):
            edges[name] = "lowest" if value == values[0] else "highest"
    return edges


@dataclasses.dataclass(frozen=True)
class TuneRound:
    """One rung of :func:`lrjax.tune_learning_rate`'s successive halving.

    Attributes:
      learning_rates: ``[runs]`` float64: the peak rates that trained in this rung.
      steps: how many steps each of them had trained when scored (from the start).
      scores: ``[runs]``: their scores then (``eval_fn``, else the training loss of the
        rung's last tenth); ``inf`` for a run that diverged.
    """

    learning_rates: np.ndarray
    steps: int
    scores: np.ndarray


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """What :func:`lrjax.tune_learning_rate` found and what it cost.

    Attributes:
      learning_rate: the chosen peak rate (a Python float: the best of the last rung),
        or None if every run diverged.
      finder: the range test (a :class:`FinderResult`) that placed the bracket.
      rounds: the rungs of the search (:class:`TuneRound`), first to last.
      steps_used: the update steps of every run, the range test's included.
    """

    learning_rate: float | None
    finder: FinderResult
    rounds: tuple[TuneRound, ...]
    steps_used: int

    def plot(self, *, axes: Any = None) -> Any:
        """Two panels: the range test (:meth:`FinderResult.plot`) and every rung's scores
        against the rate, the chosen rate marked; returns the two axes. ``axes``: two
        matplotlib Axes to draw on (default: a new figure). Needs matplotlib."""
        from lrjax import _figures

        return _figures.draw_tune("TuneResult.plot", self, axes)
