"""D-Adaptation: Adam and SGD that estimate their own step size (Defazio & Mishchenko, 2023).

Both methods keep a running lower bound ``d`` on the distance ``D = ‖x₀ − x*‖`` from
the start to a solution and step with ``λ = d · lr`` (SGD: ``d · lr / ‖g₀‖``), where
``lr`` is a multiplier that is best left at 1. The bound is raised from the weighted
sum ``s`` of the gradients seen so far, one scalar for the whole parameter tree:

.. math:: \\hat d = \\frac{\\sum_i \\lambda_i \\langle g_i, s_i \\rangle}{\\|s\\|}
          \\;(\\text{up to each variant's weighting}), \\qquad
          d \\leftarrow \\max(d, \\min(\\hat d, d \\cdot \\mathrm{growth\\_rate}))

The updates follow ``dadaptation`` 3.2 (``DAdaptAdam``, ``DAdaptSGD``) step for step,
including its counter ``k`` of the updates that moved the parameters, which an update
that finds nothing to learn from (an all-zero gradient before any step, a zero
multiplier) leaves as it is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lrjax import _numerics
from lrjax._validation import show


def grow(d: jax.Array, d_hat: jax.Array, growth_rate: jax.Array) -> jax.Array:
    """``max(d, min(d̂, d · growth_rate))`` as Python's ``min``/``max`` evaluate it (the
    reference's arithmetic): a NaN d̂ leaves d as it is."""
    return _numerics.python_max(d, _numerics.python_min(d_hat, d * growth_rate))


def check_d0(owner: str, d0: Any) -> Any:
    if callable(d0):
        raise ValueError(
            f"{owner}: d0 must be a number or an array (the initial estimate of D, which "
            f"the method then raises), got the schedule {show(d0)}"
        )
    return d0


def select(condition: jax.Array, new: Any, old: Any) -> Any:
    """``new`` (in the dtype of ``old``) where the scalar ``condition`` holds, else ``old``."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a.astype(b.dtype), b), new, old)
