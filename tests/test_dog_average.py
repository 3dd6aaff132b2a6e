"""Polynomial averaging against the authors' reference (dog-optimizer 1.0.3's
``PolynomialDecayAverager``), and the averager's state."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import import_reference, import_torch, relative_error

from lrjax import polynomial_average

torch = import_torch()
ref = import_reference("dog")

SHAPES = {"kernel": (7, 5), "bias": (5,), "scale": ()}
NUM_STEPS = 200
# The walk crosses zero: errors are relative to each leaf's magnitude over the run.
RTOL = {np.float64: 1e-10, np.float32: 2e-6}


class _Model(torch.nn.Module):
    def __init__(self, x0: dict):
        super().__init__()
        self.leaves = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(x)) for k, x in x0.items()}
        )
        self.register_buffer("batches", torch.tensor(0, dtype=torch.long))


@jax.jit
def _average_run(gamma, params_history, init_params):
    averager = polynomial_average(gamma=gamma)

    def step(state, params):
        state = averager.update(params, state)
        return state, state.average

    return jax.lax.scan(step, averager.init(init_params), params_history)


@pytest.mark.parametrize(
    ("gamma", "dtype"),
    [(8.0, np.float64), (0.0, np.float64), ("random", np.float64), (8.0, np.float32)],
)
def test_polynomial_average_matches_reference(gamma, dtype):
    """200 steps of a random walk, with an integer buffer (a batch counter, which the
    reference copies instead of averaging)."""
    rng = np.random.default_rng(9)
    if gamma == "random":
        gamma = float(rng.uniform(1.0, 20.0))
    x0 = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    walk = {
        k: (x0[k] + np.cumsum(0.1 * rng.standard_normal((NUM_STEPS, *s)), axis=0)).astype(dtype)
        for k, s in SHAPES.items()
    }
    model = _Model(x0)
    averager = ref.PolynomialDecayAverager(model, gamma=gamma)
    theirs: dict[str, list] = {k: [] for k in SHAPES}
    for t in range(NUM_STEPS):
        with torch.no_grad():
            for k, p in model.leaves.items():
                p.copy_(torch.tensor(walk[k][t]))
            model.batches.fill_(t + 1)
        averager.step()
        average = averager.averaged_model
        for k in SHAPES:
            theirs[k].append(average.leaves[k].detach().numpy().copy())
        assert int(average.batches) == t + 1
    walk["batches"] = np.arange(1, NUM_STEPS + 1, dtype=np.int32)
    with jax.enable_x64(dtype == np.float64):
        final, averages = _average_run(jnp.asarray(gamma), walk, {**x0, "batches": np.int32(0)})
        averages = jax.device_get(averages)
    theirs_arrays = {k: np.stack(x) for k, x in theirs.items()}
    assert relative_error(averages, theirs_arrays, floor="leaf") <= RTOL[dtype]
    for k in SHAPES:
        assert averages[k].dtype == dtype
    np.testing.assert_array_equal(averages["batches"], walk["batches"])
    assert int(final.count) == NUM_STEPS


def test_polynomial_average_state():
    averager = polynomial_average()
    params = {"w": jnp.arange(3.0, dtype=jnp.bfloat16), "v": jnp.ones(2), "n": jnp.int32(4)}
    state = averager.init(params)
    average: Any = state.average
    for k, x in params.items():  # a copy, never the parameters' buffer
        assert average[k].unsafe_buffer_pointer() != x.unsafe_buffer_pointer()
    assert average["w"].dtype == np.float32  # bf16 is averaged in float32
    assert average["n"].dtype == np.int32
    step = jax.jit(averager.update)
    state = step({"w": params["w"] + 1, "v": jnp.zeros(2), "n": jnp.int32(5)}, state)
    average = state.average
    np.testing.assert_array_equal(average["w"], [1.0, 2.0, 3.0])  # x̄_1 = x_1
    assert int(average["n"]) == 5
    state = step({"w": params["w"] + 3, "v": jnp.ones(2), "n": jnp.int32(6)}, state)
    average = state.average
    weight = 9.0 / 10.0  # (1 + γ)/(t + γ) at t = 2
    np.testing.assert_allclose(average["w"], np.arange(3.0) + 1 + 2 * weight, rtol=1e-6)
    np.testing.assert_allclose(average["v"], [weight, weight], rtol=1e-6)
    assert int(average["n"]) == 6
