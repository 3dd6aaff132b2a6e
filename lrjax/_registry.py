"""What introspection knows of each lrjax state type, and how it finds them.

Each module that defines a state registers, beside it, what the state holds of the
learning rate: a global factor of the rate (the rate itself, a plateau scale, a
hypergradient rate) or a per-parameter factor of an adaptive direction. The readers
(:func:`lrjax.current_learning_rate`, :func:`lrjax.effective_learning_rates`) find the
states in any optimizer state, inside optax's wrappers, through this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax import _numerics

# What introspection knows of each lrjax state type: its global factor of the rate (None
# where the rate was given as a JAX array and is not held), and its per-parameter factor.
RATE_FACTORS: dict[type, Callable[[Any], jax.Array | None]] = {}
PRECONDITIONERS: dict[type, Callable[[Any, dict[str, Any]], optax.Updates]] = {}


def register_rate_factor(state_type: type, factor: Callable[[Any], jax.Array | None]) -> None:
    """Declares ``factor(state)``: the global factor of the rate a state of this type holds."""
    RATE_FACTORS[state_type] = factor


def register_preconditioner(
    state_type: type, factor: Callable[[Any, dict[str, Any]], optax.Updates]
) -> None:
    """Declares ``factor(state, given)``: the per-parameter factor of an adaptive direction,
    where ``given`` holds the values an enclosing ``optax.inject_hyperparams`` passes."""
    PRECONDITIONERS[state_type] = factor


def unit_factors(like: optax.Updates) -> optax.Updates:
    """The per-parameter factor of a direction that rescales nothing (SGD's): ones, shaped
    like the per-parameter arrays ``like``, in their compute dtype."""
    return jax.tree.map(lambda x: jnp.ones_like(x, _numerics.compute_dtype(x.dtype)), like)


def find(tree: Any, match: Callable[[Any], bool]) -> list[Any]:
    """The nodes of ``tree`` for which ``match`` holds (not looking inside them)."""
    found: list[Any] = []

    def visit(node: Any) -> bool:
        if match(node):
            found.append(node)
            return True
        return False

    jax.tree_util.tree_flatten(tree, is_leaf=visit)
    return found


def is_inject(node: Any) -> bool:
    return isinstance(node, optax.InjectStatefulHyperparamsState)


def has_factor(node: Any) -> bool:
    return type(node) in RATE_FACTORS


def has_preconditioner(node: Any) -> bool:
    return type(node) in PRECONDITIONERS


def is_partition(node: Any) -> bool:
    return isinstance(node, optax.transforms.PartitionState)


def is_masked(node: Any) -> bool:
    return isinstance(node, optax.MaskedNode)
