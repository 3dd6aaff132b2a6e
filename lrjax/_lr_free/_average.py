"""Polynomial-decay iterate averaging, the average the DoG authors pair DoG and L-DoG with."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _numerics, _tree
from lrjax._validation import check_float, nonnegative


class PolynomialAverageState(NamedTuple):
    """State of :func:`polynomial_average`.

    ``count`` is t, the number of parameter vectors averaged so far; ``average`` is x̄_t,
    the averaged parameters (before any update: a copy of the parameters ``init`` saw).
    Floating-point leaves are averaged in float32 or wider (a bfloat16 average would stop
    moving once the weight (1 + γ)/(t + γ) falls below its precision); integer leaves
    (counters) hold the latest value.
    """

    count: jax.Array
    average: optax.Params


class PolynomialAverage(NamedTuple):
    """The pure functions of :func:`polynomial_average`.

    ``init(params) -> state`` and ``update(params, state) -> state``; the averaged
    parameters are ``state.average``.
    """

    init: Callable[[optax.Params], PolynomialAverageState]
    update: Callable[[optax.Params, PolynomialAverageState], PolynomialAverageState]


def _is_float(x: jax.Array) -> bool:
    """Floating point, real or complex: averaged. Integers (counters) are not."""
    return bool(jnp.issubdtype(x.dtype, jnp.inexact))


def _average_dtype(x: jax.Array) -> np.dtype:
    return _numerics.compute_dtype(x.dtype) if _is_float(x) else np.dtype(x.dtype)


def polynomial_average(*, gamma: float | jax.Array = 8.0) -> PolynomialAverage:
    """Polynomial-decay iterate averaging (Shamir & Zhang, 2013), the average the DoG
    authors pair with DoG and L-DoG.

    .. math::

        \\bar x_t = \\Big(1 - \\frac{1 + \\gamma}{t + \\gamma}\\Big)\\, \\bar x_{t-1}
            + \\frac{1 + \\gamma}{t + \\gamma}\\, x_t, \\qquad t = 1, 2, \\dots

    so ``x̄_1 = x_1`` and the weight of the iterate x_i in x̄_t grows like i^γ: γ = 0 is
    the uniform average of x_1 … x_t; with γ = 8, the authors' default, about 92% of the
    weight lies on the last quarter of the iterates. Call ``update`` with the parameters
    after each optimizer step, as the reference calls ``averager.step()`` after
    ``optimizer.step()``, and evaluate with ``state.average``. Integer leaves (counters)
    hold their latest value, as the reference copies its integer buffers. bfloat16 and
    float16 parameters are averaged in float32 (``optax.tree.cast_like(state.average,
    params)`` casts the average back).

    It is a pure ``init``/``update`` pair, so it goes inside a jitted training step and its
    state is a checkpointable NamedTuple of arrays. It is not an optax transformation: it
    reads parameters, not gradients, and changes nothing the optimizer does.

    Args:
      gamma: γ >= 0 (the authors' default 8).

    Returns:
      A :class:`PolynomialAverage` ``(init, update)``.

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> averager = lrjax.polynomial_average(gamma=0.0)  # the uniform average
      >>> state = averager.init(jnp.zeros(2))
      >>> for x in (1.0, 2.0, 6.0):
      ...     state = averager.update(jnp.full(2, x), state)
      >>> state.average
      Array([3., 3.], dtype=float32)

    reference: ``dog.PolynomialDecayAverager(model, gamma)`` (dog-optimizer 1.0.3): its
    ``step()`` is ``update`` and its ``averaged_model`` is ``state.average``.

    References:
      Shamir & Zhang, "Stochastic Gradient Descent for Non-smooth Optimization: Convergence
      Results and Optimal Averaging Schemes", ICML 2013, https://arxiv.org/abs/1212.1824;
      Ivgi, Hinder & Carmon, ICML 2023, https://arxiv.org/abs/2302.12022
    """
    owner = "polynomial_average"
    gamma = check_float(owner, "gamma", gamma, nonnegative, "finite and >= 0")

    def init_fn(params: optax.Params) -> PolynomialAverageState:
        params = _tree.as_arrays(params)
        average = jax.tree.map(lambda x: _numerics.fresh(x, _average_dtype(x)), params)
        return PolynomialAverageState(count=_tree.zeros_count(), average=average)

    def update_fn(params: optax.Params, state: PolynomialAverageState) -> PolynomialAverageState:
        params = _tree.as_arrays(params)
        count = _tree.increment(state.count)
        dtype = _numerics.default_float()
        t = count.astype(dtype)
        g = _numerics.cast(gamma, dtype)
        new_weight = (1 + g) / (t + g)
        # 1 − (1 + γ)/(t + γ), written so that float32 does not cancel.
        old_weight = (t - 1) / (t + g)

        def average(x: jax.Array, mean: jax.Array) -> jax.Array:
            if not _is_float(mean):
                return jnp.array(x, mean.dtype, copy=True)
            x = x.astype(mean.dtype)
            return (
                _numerics.cast(old_weight, mean.dtype) * mean
                + _numerics.cast(new_weight, mean.dtype) * x
            )

        return PolynomialAverageState(count, jax.tree.map(average, params, state.average))

    return PolynomialAverage(init_fn, update_fn)
