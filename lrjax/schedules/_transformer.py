"""Schedules with a built-in warm-up: ``inverse_sqrt`` (Transformer) and ``wsd``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lrjax._validation import check_choice, check_integer, show
from lrjax.schedules._schedule import (
    Schedule,
    as_float,
    check_rate,
    cosine_interpolate,
    known,
    progress,
    reached,
    schedule_class,
)


@schedule_class("inverse_sqrt", static=("warmup_steps",))
class _InverseSqrt(Schedule):
    peak_value: Any
    warmup_steps: int

    def _value(self, step: jax.Array) -> jax.Array:
        warmup = self.warmup_steps
        done, _ = progress(step, 0, warmup)
        # Both branches are differentiated under jnp.where: keep the division away from
        # step 0 in the branch that is not taken there.
        length = float(warmup)
        after = jnp.sqrt(length / jnp.maximum(step.astype(jnp.float32), length))
        return as_float(self.peak_value) * jnp.where(reached(step, warmup), after, done / length)


def inverse_sqrt(peak_value: float | jax.Array, warmup_steps: int) -> Schedule:
    """Linear warm-up to ``peak_value``, then decay with the inverse square root of the step.

    .. math:: \\eta_t = \\eta_{peak} \\min\\left(\\frac{t}{W}, \\sqrt{\\frac{W}{t}}\\right)

    Step 0 gives 0.

    Args:
      peak_value: the rate at step W, >= 0.
      warmup_steps: W, an integer >= 1.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.inverse_sqrt(1.0, warmup_steps=4)
      >>> [float(schedule(t)) for t in (0, 2, 4, 16, 64)]
      [0.0, 0.5, 1.0, 0.5, 0.25]

    The Transformer's ("Noam") schedule is ``inverse_sqrt(d_model**-0.5 * W**-0.5, W)``
    evaluated at ``step + 1``. torch and Keras have no built-in scheduler for it.

    References:
      Vaswani et al., Attention Is All You Need, NeurIPS 2017,
      https://arxiv.org/abs/1706.03762
    """
    owner = "inverse_sqrt"
    return _InverseSqrt(
        peak_value=check_rate(owner, "peak_value", peak_value),
        warmup_steps=check_integer(owner, "warmup_steps", warmup_steps, 1, None),
    )


@schedule_class("wsd", static=("warmup_steps", "stable_steps", "decay_steps", "decay_shape"))
class _WSD(Schedule):
    peak_value: Any
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    init_value: Any
    end_value: Any
    decay_shape: str

    def _value(self, step: jax.Array) -> jax.Array:
        warmup, decay = self.warmup_steps, float(self.decay_steps)
        peak, end = as_float(self.peak_value), as_float(self.end_value)
        start = warmup + self.stable_steps
        done, remaining = progress(step, start, start + decay)
        # peak f + end (1 - f), with f and 1 - f each computed without cancellation.
        if self.decay_shape == "cosine":
            value = cosine_interpolate(peak, end, remaining, decay, done)
        elif self.decay_shape == "linear":
            value = peak * (remaining / decay) + end * (done / decay)
        else:
            # 1 - sqrt(τ) = (1 - τ) / (1 + sqrt(τ)): no cancellation as τ -> 1.
            root = jnp.sqrt(done / decay)
            value = peak * (remaining / decay) / (1.0 + root) + end * root
        value = jnp.where(reached(step, start), value, peak)
        if warmup:
            done, remaining = progress(step, 0, warmup)
            # The weights first: a rate near float32's top times W would overflow.
            length = float(warmup)
            ramp = as_float(self.init_value) * (remaining / length) + peak * (done / length)
            value = jnp.where(reached(step, warmup), value, ramp)
        return value


def wsd(
    peak_value: float | jax.Array,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    *,
    init_value: float | jax.Array = 0.0,
    end_value: float | jax.Array = 0.0,
    decay_shape: str = "1-sqrt",
) -> Schedule:
    """Warmup-stable-decay: a linear warm-up, a long constant phase, a short cool-down.

    With W, S, D the phase lengths and :math:`\\tau = (t - W - S)/D` the fraction of the
    decay done,

    .. math:: \\eta_t = \\begin{cases}
       \\eta_{init} + (\\eta_{peak} - \\eta_{init}) \\, t/W & t < W \\\\
       \\eta_{peak} & W \\le t < W + S \\\\
       \\eta_{end} + (\\eta_{peak} - \\eta_{end}) f(\\tau) & W + S \\le t < W + S + D \\\\
       \\eta_{end} & \\text{after}
       \\end{cases}

    with :math:`f(\\tau) = 1 - \\tau` (``"linear"``), :math:`\\tfrac12(1 + \\cos \\pi\\tau)`
    (``"cosine"``) or :math:`1 - \\sqrt{\\tau}` (``"1-sqrt"``).

    Args:
      peak_value: the rate of the stable phase, >= 0.
      warmup_steps: W, an integer >= 0 (0: no warm-up).
      stable_steps: S, an integer >= 0.
      decay_steps: D, an integer >= 1.
      init_value: the rate at step 0 of the warm-up, >= 0; without a warm-up it has no
        effect, and a value other than 0 is refused.
      end_value: the rate at the end of the decay and after, >= 0.
      decay_shape: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.

    Returns:
      A :class:`Schedule`.

    Example:
      >>> from lrjax import schedules
      >>> schedule = schedules.wsd(1.0, warmup_steps=2, stable_steps=4, decay_steps=4)
      >>> [float(schedule(t)) for t in (0, 1, 2, 5, 6, 7, 10, 20)]
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]

    torch and Keras have no built-in scheduler for it.

    References:
      Hägele et al., Scaling Laws and Compute-Optimal Training Beyond Fixed Training
      Durations, NeurIPS 2024, https://arxiv.org/abs/2405.18392 (the 1-sqrt cool-down);
      Hu et al., MiniCPM: Unveiling the Potential of Small Language Models with Scalable
      Training Strategies, 2024, https://arxiv.org/abs/2404.06395
    """
    owner = "wsd"
    peak_value = check_rate(owner, "peak_value", peak_value)
    warmup_steps = check_integer(owner, "warmup_steps", warmup_steps, 0, None)
    stable_steps = check_integer(owner, "stable_steps", stable_steps, 0, None)
    decay_steps = check_integer(owner, "decay_steps", decay_steps, 1, None)
    init_value = check_rate(owner, "init_value", init_value)
    end_value = check_rate(owner, "end_value", end_value)
    decay_shape = check_choice(owner, "decay_shape", decay_shape, ("linear", "cosine", "1-sqrt"))
    if not warmup_steps and known(init_value) not in (None, 0.0):
        raise ValueError(
            f"{owner}: init_value must be 0 with warmup_steps=0 (there is no warm-up to start "
            f"from it), got {show(init_value)}"
        )
    return _WSD(
        peak_value=peak_value,
        warmup_steps=warmup_steps,
        stable_steps=stable_steps,
        decay_steps=decay_steps,
        init_value=init_value,
        end_value=end_value,
        decay_shape=decay_shape,
    )
