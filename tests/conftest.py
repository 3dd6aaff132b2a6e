"""Test-wide settings: strict dtype promotion and no hypothesis deadline.

Warnings are errors (``filterwarnings = ["error"]`` in pyproject.toml).
"""

import os

import jax
from hypothesis import HealthCheck, settings

# A silent float32 -> float64 or bf16 -> float32 promotion is a bug in a learning-rate
# library: every mixed-dtype operation must be spelled out.
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Compilation time varies from run to run; a deadline would make property tests flaky.
# LRJAX_EXAMPLES=400 pytest searches deeper.
settings.register_profile(
    "lrjax",
    deadline=None,
    max_examples=int(os.environ.get("LRJAX_EXAMPLES", 25)),
    suppress_health_check=[HealthCheck.too_slow],
)
# CI explores the same examples on every run, so a landing never depends on the draw;
# local runs keep drawing new ones.
settings.register_profile("ci", parent=settings.get_profile("lrjax"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "lrjax")
