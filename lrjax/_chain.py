"""How an lrjax method is put together: the torch-style chain that puts the directions
between weight decay and the learning rate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optax

from lrjax import _hyperparams, _tree
from lrjax._blocks import check_mask, decayed_weights, learning_rate_block
from lrjax._validation import call_user, check_callable, describe


def torch_method(
    owner: str,
    hyperparams: dict[str, Any],
    directions: Sequence[optax.GradientTransformation],
    *,
    mask: Any = None,
    decoupled: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """The chain of a ``torch.optim`` method, as the function ``owner`` returns it.

    ``hyperparams`` are the method's checked hyperparameters, of which the chain reads
    ``learning_rate`` and ``weight_decay``; ``mask`` is as the user gave it. Coupled weight
    decay (L2, torch's ``weight_decay``) is added to the gradient before the directions;
    decoupled decay (AdamW) after them, so the rate multiplies it too. A held zero decay
    leaves its block out; ``mask`` limits it to some parameters. The rate comes last.
    """
    mask = check_mask(owner, mask)
    weight_decay = hyperparams["weight_decay"]
    blocks = list(directions)
    if not _hyperparams.is_zero(weight_decay):
        decay = decayed_weights(weight_decay, mask)
        blocks = [*blocks, decay] if decoupled else [decay, *blocks]
    blocks.append(learning_rate_block(hyperparams["learning_rate"]))
    return _tree.as_method(owner, optax.chain(*blocks))


# ----------------------------------------------------------- optimizer factories

# What layer-wise decay, the range test and sweeps take: ``learning_rate -> transformation``.
OptimizerFactory = Callable[[Any], optax.GradientTransformation]


def check_factory(owner: str, optimizer: Any, example: str) -> None:
    """``optimizer`` is a factory, not a transformation already built with its rate;
    ``example`` shows the caller's usual factories."""
    if isinstance(optimizer, optax.GradientTransformation):
        # The common slip: `optimizer=lrjax.adam(1e-3)` instead of `lrjax.adam`.
        raise ValueError(
            f"{owner}: optimizer must be a factory that maps a learning rate to a "
            "transformation, got a GradientTransformation already built with its rate; "
            f"pass the factory itself: {example}"
        )
    check_callable(
        owner,
        "optimizer",
        optimizer,
        f"a factory mapping a learning rate to a transformation ({example.split(', or')[0]}, "
        "lambda lr: ...)",
    )


def build(owner: str, optimizer: OptimizerFactory, learning_rate: Any):
    """``optimizer(learning_rate)``, checked to be a gradient transformation."""
    signature = "optimizer(learning_rate)"
    tx = call_user(owner, "optimizer", signature, optimizer, learning_rate)
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise ValueError(
            f"{owner}: optimizer(learning_rate) must return an optax.GradientTransformation "
            f"(with init and update), got {describe(tx)}"
        )
    return tx
