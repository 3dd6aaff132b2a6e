"""Which parameters a learning-rate-free method decays: its ``mask=``, leaf by leaf.

These methods decay inside their own update, where the decay meets the step-size
estimate (Prodigy's and D-Adapt's decoupled decay is ``d·lr·λ·x``, a coupled decay enters
the estimate's sums, schedule-free's is taken at y), so ``optax.masked`` around the whole
method would also hide the masked-out parameters from the estimate. The mask is resolved
instead to one Python bool per parameter leaf, and the update leaves the decay term out
of the leaves that are False: everything else sees every parameter.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from lrjax._validation import show

_EXPECTED = "a pytree of bools like the parameters (or a prefix of it)"


def resolve(owner: str, mask: Any, params: Any) -> Any:
    """A tree like ``params`` with a Python bool at every leaf: True where the weight
    decay applies (everywhere when ``mask`` is None).

    A function is called on ``params``; a mask leaf that is a prefix of the parameters
    covers the whole subtree below it (``optax.masked``'s rule: a mask like the full
    parameters also fits the view ``optax.partition`` gives the method, where each leaf
    outside its group is a ``MaskedNode``, as long as the labels are given per leaf).
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask
    if callable(mask):
        try:
            tree = mask(params)
        except Exception as error:
            raise ValueError(
                f"{owner}: calling mask(params) failed with {type(error).__name__}; "
                f"mask must be a function params -> {_EXPECTED}"
            ) from error
        leaves = jax.tree.leaves(tree)
        if not leaves or not all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
            raise ValueError(
                f"{owner}: mask(params) must return {_EXPECTED}, with concrete bools, "
                f"got {show(tree)}"
            )
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    except ValueError as error:
        given = "mask(params)" if callable(mask) else "mask"
        raise ValueError(
            f"{owner}: {given} must be {_EXPECTED}, got {show(tree)} for parameters of "
            f"structure {show(jax.tree.structure(params))}"
        ) from error
