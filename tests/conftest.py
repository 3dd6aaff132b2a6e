"""Test-wide settings: strict dtype promotion and no hypothesis deadline.

Warnings are errors (``filterwarnings = ["error"]`` in pyproject.toml).
"""

import jax
from hypothesis import HealthCheck, settings

# A silent float32 -> float64 or bf16 -> float32 promotion is a bug in a learning-rate
# library: every mixed-dtype operation must be spelled out.
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Compilation time varies from run to run; a deadline would make property tests flaky.
settings.register_profile(
    "lrjax",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("lrjax")
