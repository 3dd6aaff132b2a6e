"""How an lrjax method is put together: the torch-style chain that puts the directions
between weight decay and the learning rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optax

from lrjax import _hyperparams, _tree
from lrjax._blocks import check_mask, decayed_weights, learning_rate_block


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
