"""Parameter groups: layer-wise learning-rate decay on top of ``optax.partition``.

torch's ``param_groups`` are ``optax.partition`` of lrjax methods. The one
recipe that needs more than a dict of optimizers is layer-wise decay, where the group of
a parameter is its depth and the rate of each group follows from it: one optimizer per
layer, built by the same factory at a scaled rate.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _chain, _hyperparams, _numerics
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._validation import (
    check_callable,
    check_float,
    check_integer,
    is_concrete,
    show,
    unit_half_open,
)

KeyPath = tuple[Any, ...]
LayerOf = Callable[[KeyPath, Any], int]

# A rate below float32's smallest normal number is flushed to zero on some backends:
# the lowest layers would silently not train.


def layerwise_decay(
    optimizer: _chain.OptimizerFactory,
    learning_rate: ScalarOrSchedule,
    *,
    decay: float | jax.Array,
    num_layers: int,
    layer_of: LayerOf,
) -> optax.GradientTransformationExtraArgs:
    """Layer-wise learning-rate decay: each layer's rate shrinks with its depth.

    .. math:: \\eta_k = \\eta \\cdot \\text{decay}^{\\,L - k}, \\qquad k = 0, \\dots, L

    Layer ``L = num_layers`` (the head) trains at the full rate ``η``, the layer below it
    at ``η·decay``, and layer 0 (the embeddings) at ``η·decay^L``: the fine-tuning recipe
    of BEiT and ELECTRA, where the lower layers of a pretrained network, which hold the
    most general features, move least. It is ``optax.partition`` with the group label
    ``k`` and the optimizer ``optimizer(η_k)`` for each layer, so
    :func:`lrjax.current_learning_rate` returns ``{k: η_k}`` and
    :func:`lrjax.effective_learning_rates` the per-parameter rates across all layers.
    A smaller rate for a pretrained backbone is the case ``num_layers=1``: layer 0 (the
    backbone) at ``η·decay``, layer 1 (the new head) at ``η``.

    :func:`lrjax.set_hyperparams` on the whole state sets every layer's value alike (as
    a loop over torch's ``param_groups`` does); to change one layer, set its group,
    ``state.inner_states[k]``, and put it back with ``state._replace(inner_states=...)``.

    Args:
      optimizer: a factory mapping a rate to a transformation: ``lrjax.adamw``,
        ``lambda lr: lrjax.adamw(lr, mask=no_bias)``, or one that builds a schedule
        from the rate, ``lambda lr: lrjax.adamw(schedules.warmup(
        schedules.cosine_decay(lr, T), W))``. It is called once per layer.
      learning_rate: η, the rate of the top layer: a number >= 0, a JAX array, or a
        schedule ``step -> rate`` (each layer then follows ``η_k/η × schedule``).
      decay: the factor per layer, in (0, 1] (1 gives every layer the same rate;
        BEiT fine-tunes ViT-B with 0.65, ELECTRA-Base uses 0.8).
      num_layers: L >= 1, the layer number of the top layer. A transformer of N blocks
        has L = N + 1: embeddings 0, blocks 1 … N, head N + 1.
      layer_of: ``layer_of(path, leaf) -> int``, the layer of each parameter, an
        integer in [0, num_layers], as in ``jax.tree_util.tree_map_with_path``. It is
        called on the parameters at ``init`` and on the updates at each ``update`` (and
        under ``jax.jit`` on tracers): decide from the path (and shape), not the values.

    Returns:
      ``optax.partition({k: optimizer(η_k)}, labels)``, an
      ``optax.GradientTransformationExtraArgs``. A layer that holds no parameters still
      has its (empty) group.

    Raises:
      ValueError: for an invalid argument, or at ``init`` when ``layer_of`` returns
        something other than an integer in [0, num_layers].

    Example:
      >>> import jax.numpy as jnp, lrjax
      >>> params = {"embed": jnp.zeros(4), "block": jnp.zeros(4), "head": jnp.zeros(2)}
      >>> layers = {"embed": 0, "block": 1, "head": 2}
      >>> tx = lrjax.layerwise_decay(
      ...     lrjax.adamw, 1e-3, decay=0.5, num_layers=2,
      ...     layer_of=lambda path, leaf: layers[path[0].key])
      >>> state = tx.init(params)
      >>> {k: float(rate) for k, rate in lrjax.current_learning_rate(state).items()}
      {0: 0.00025, 1: 0.0005, 2: 0.001}

    torch: one parameter group per layer,
    ``torch.optim.AdamW([{"params": layer_params[k], "lr": lr * decay ** (L - k)} for k
    in range(L + 1)])``; timm's ``create_optimizer_v2(model, "adamw", lr,
    layer_decay=decay)`` builds such groups (and also leaves biases out of weight decay).

    References:
      Bao, Dong, Piao & Wei, "BEiT: BERT Pre-Training of Image Transformers", ICLR 2022,
      https://arxiv.org/abs/2106.08254; Clark, Luong, Le & Manning, "ELECTRA:
      Pre-training Text Encoders as Discriminators Rather Than Generators", ICLR 2020,
      https://arxiv.org/abs/2003.10555
    """
    owner = "layerwise_decay"
    _chain.check_factory(owner, optimizer, "lrjax.adamw, or lambda lr: lrjax.adamw(lr, mask=...)")
    learning_rate = _check_rate(owner, learning_rate)
    decay = check_float(owner, "decay", decay, unit_half_open, "in (0, 1]")
    num_layers = check_integer(owner, "num_layers", num_layers, 1)
    check_callable(owner, "layer_of", layer_of, "a function layer_of(path, leaf) -> int")
    factors = [_power(decay, num_layers - k) for k in range(num_layers + 1)]
    _check_underflow(owner, learning_rate, decay, num_layers)
    transforms: dict[Hashable, optax.GradientTransformation] = {
        k: _chain.build(owner, optimizer, _scaled(learning_rate, factor))
        for k, factor in enumerate(factors)
    }

    def labels(tree: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: _layer(owner, layer_of, num_layers, path, leaf), tree
        )

    return optax.partition(transforms, labels)


# --------------------------------------------------------------------- the arguments


def _check_rate(owner: str, learning_rate: Any) -> Any:
    if callable(learning_rate):
        return _hyperparams.check_schedule(owner, "learning_rate", learning_rate)
    return _hyperparams.check_hyperparam(owner, "learning_rate", learning_rate)


def _power(decay: Any, exponent: int) -> Any:
    # Python floats multiply in float64, as torch computes its groups' rates.
    if isinstance(decay, jax.Array):
        return decay**exponent
    return float(decay) ** exponent


def _scaled(learning_rate: Any, factor: Any) -> Any:
    if callable(learning_rate):
        return _hyperparams.ScaledSchedule(learning_rate, factor)
    if isinstance(learning_rate, jax.Array) or isinstance(factor, jax.Array):
        return jnp.asarray(learning_rate) * jnp.asarray(factor)
    return learning_rate * factor


def _check_underflow(owner: str, learning_rate: Any, decay: Any, num_layers: int) -> None:
    """Refuses a concrete rate of layer 0 that float32 cannot hold (a schedule's scale is
    not known here: its factor alone is checked)."""
    if isinstance(decay, jax.Array) or isinstance(learning_rate, jax.Array):
        return
    rate = 1.0 if callable(learning_rate) else float(learning_rate)
    lowest = rate * float(decay) ** num_layers
    if rate > 0 and lowest < _numerics.FLOAT32_TINY:
        raise ValueError(
            f"{owner}: the rate of layer 0, learning_rate × decay^num_layers = {lowest:.3g} "
            f"(decay={show(decay)}, num_layers={num_layers}), is below float32's smallest "
            "normal number, so layer 0 would not train; use a decay closer to 1"
        )


def _layer(owner: str, layer_of: LayerOf, num_layers: int, path: KeyPath, leaf: Any) -> int:
    """``layer_of(path, leaf)``, checked to be a layer number."""
    layer = layer_of(path, leaf)
    integer = isinstance(layer, (int, np.integer)) and not isinstance(layer, (bool, np.bool_))
    if not integer or not 0 <= layer <= num_layers:
        where = jax.tree_util.keystr(path) or "the parameter"
        # Under jax.jit the leaf is a tracer: a layer read from its values is one too.
        hint = "" if is_concrete(layer) else "; decide it from the path, not the values"
        raise ValueError(
            f"{owner}: layer_of must return an integer in [0, num_layers] = "
            f"[0, {num_layers}] for every parameter, got {show(layer)} for {where}{hint}"
        )
    return int(layer)
