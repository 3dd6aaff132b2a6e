"""μP's learning-rate multipliers: how each parameter's rate scales with the widths its
shape grew in, as the authors' package ``mup`` 1.0.0 computes them from
``set_base_shapes``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from lrjax._validation import check_choice, describe

Shape = tuple[int, ...]
KeyPath = tuple[Any, ...]
RULES = ("adam", "sgd")


class Scale(NamedTuple):
    """A leaf's factor ``times / over``, one of them 1: ``mup`` 1.0.0 multiplies a group's
    rate by a width multiplier or divides it by one, and so does :func:`mup`."""

    times: float = 1.0
    over: float = 1.0

    @property
    def multiplier(self) -> float:
        return self.times / self.over


def mup_multipliers(
    params: Any, base_params: Any, *, delta_params: Any = None, rule: str = "adam"
) -> Any:
    """The μP learning-rate multiplier of every parameter, from the shapes alone.

    A dimension is *infinite* (a width) where ``base_params`` and ``delta_params``
    differ; its width multiplier is ``dim / base_dim``, with ``dim`` from ``params``.
    Leaves follow the JAX/flax layout: a leaf of two or more dimensions has its fan-in on
    axis −2 and its fan-out on axis −1 (a dense kernel ``(in, out)``, a conv kernel
    ``(kh, kw, in, out)``; torch's ``weight`` is the transpose). A leaf's width multiplier
    ``w`` is its fan-in's if that is infinite, else its fan-out's, else that of its one
    other infinite axis (a 1-D leaf: its one dimension). With ``n`` infinite dimensions:

    .. math::

       m_{\\text{adam}} = \\begin{cases} 1/w & n = 2 \\\\ 1 & n \\le 1 \\end{cases}
       \\qquad
       m_{\\text{sgd}} = \\begin{cases}
         w_{\\text{out}} / w_{\\text{in}} & n = 2 \\\\ w & n = 1 \\\\ 1 & n = 0
       \\end{cases}

    where a finite fan axis counts as ``w = 1``. ``rule="adam"`` is for the methods
    that normalise the gradient entrywise (Adam, AdamW, RMSprop, Adagrad, Prodigy),
    ``rule="sgd"`` for SGD with or without momentum (the paper's Table 3).

    Args:
      params: the model's parameters, or only their shapes: a pytree of arrays or
        ``jax.ShapeDtypeStruct`` (``jax.eval_shape`` of the model's init), e.g. a flax
        ``nnx.State``.
      base_params: the same tree at the base width, the one the rate was tuned at.
      delta_params: the same tree at another width, differing from ``base_params``
        exactly in the width dimensions; default ``params``. Give it when ``params`` is
        the base model, or to keep a dimension that differs from the base finite (a
        vocabulary size).
      rule: ``"adam"`` or ``"sgd"``.

    Returns:
      A pytree like ``params`` of Python floats.

    Raises:
      ValueError: when the trees' structures or a leaf's rank differ, a width
        dimension is 0, a leaf has more than two width dimensions (``mup`` 1.0.0
        raises ``NotImplementedError`` there) or ``rule`` is unknown.

    Example:
      >>> import jax, jax.numpy as jnp, lrjax
      >>> def shapes(width):
      ...     return {"embed": jax.ShapeDtypeStruct((3, width), jnp.float32),
      ...             "hidden": jax.ShapeDtypeStruct((width, width), jnp.float32),
      ...             "bias": jax.ShapeDtypeStruct((width,), jnp.float32),
      ...             "readout": jax.ShapeDtypeStruct((width, 10), jnp.float32)}
      >>> lrjax.mup_multipliers(shapes(256), shapes(64))
      {'bias': 1.0, 'embed': 1.0, 'hidden': 0.25, 'readout': 1.0}
      >>> lrjax.mup_multipliers(shapes(256), shapes(64), rule="sgd")
      {'bias': 4.0, 'embed': 4.0, 'hidden': 1.0, 'readout': 4.0}

    torch: ``mup.set_base_shapes(model, base, delta=delta)`` then
    ``mup.MuAdam(model.parameters(), lr=1.0)`` (or ``MuSGD``): the ``lr`` of the group
    that holds a parameter is its multiplier. One departure: where a conv's spatial
    axis and one fan axis are both widths, ``mup`` takes the spatial axis's multiplier.

    References:
      Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao, "Tensor
      Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer",
      2022, https://arxiv.org/abs/2203.03466; the authors' package,
      https://github.com/microsoft/mup
    """
    leaves, treedef = scales("mup_multipliers", params, base_params, delta_params, rule)
    return jax.tree_util.tree_unflatten(treedef, [scale.multiplier for _, _, scale in leaves])


def scales(
    owner: str, params: Any, base_params: Any, delta_params: Any, rule: Any
) -> tuple[list[tuple[KeyPath, Shape, Scale]], Any]:
    """Each leaf's path, shape and factor, and the treedef of ``params``."""
    rule = check_choice(owner, "rule", rule, RULES)
    named = {"params": params, "base_params": base_params}
    if delta_params is not None:
        named["delta_params"] = delta_params
    flat = {name: shapes(owner, name, tree) for name, tree in named.items()}
    for name in ("base_params", "delta_params")[: len(flat) - 1]:
        check_like(owner, name, flat[name], flat["params"])
    delta = flat.get("delta_params", flat["params"])
    leaves = [
        (path, shape, _leaf_scale(owner, path, shape, base, other, rule))
        for (path, shape), (_, base), (_, other) in zip(
            flat["params"], flat["base_params"], delta, strict=True
        )
    ]
    return leaves, jax.tree.structure(params)


def shapes(owner: str, name: str, tree: Any) -> list[tuple[KeyPath, Shape]]:
    found = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, (bool, np.bool_)) or not (
            hasattr(leaf, "shape") or isinstance(leaf, (int, float, complex))
        ):
            raise ValueError(
                f"{owner}: {name} must be a pytree of arrays or jax.ShapeDtypeStructs (only "
                f"their shapes are read), got {describe(leaf)} at {name}{key_path(path)}"
            )
        found.append((path, tuple(int(d) for d in np.shape(leaf))))
    return found


def check_like(owner: str, name: str, leaves: list, reference: list) -> None:
    """``leaves`` (of argument ``name``) has the paths and ranks of ``params``'."""
    paths, known = [p for p, _ in leaves], [p for p, _ in reference]
    if paths != known:
        in_paths, in_known = set(paths), set(known)
        extra = [p for p in paths if p not in in_known]
        missing = [p for p in known if p not in in_paths]
        what = (
            f"it has {name}{key_path(extra[0])}, which params lacks"
            if extra
            else f"it lacks {name}{key_path(missing[0])}"
            if missing
            else "its leaves are in another order"
        )
        raise ValueError(f"{owner}: {name} must have the tree structure of params; {what}")
    for (path, shape), (_, like) in zip(leaves, reference, strict=True):
        if len(shape) != len(like):
            raise ValueError(
                f"{owner}: {name}{key_path(path)} has shape {shape} and params{key_path(path)} "
                f"{like}: a parameter keeps its rank at every width"
            )


def _leaf_scale(
    owner: str, path: KeyPath, shape: Shape, base: Shape, delta: Shape, rule: str
) -> Scale:
    infinite = [axis for axis in range(len(shape)) if base[axis] != delta[axis]]
    where = f"params{key_path(path)}"
    if len(infinite) > 2:
        raise ValueError(
            f"{owner}: {where} of shape {shape} has {len(infinite)} width dimensions (axes "
            f"{infinite} differ between base_params {base} and delta_params {delta}); μP "
            "scales parameters with at most 2 (mup 1.0.0 raises NotImplementedError)"
        )
    for axis in infinite:
        if base[axis] == 0 or shape[axis] == 0:
            raise ValueError(
                f"{owner}: {where} has a width dimension of size 0 (axis {axis}: base "
                f"{base}, params {shape}); a width must be at least 1"
            )

    def width_mult(axis: int) -> float:  # `mup`'s InfDim.width_mult: 1 for a finite axis
        return shape[axis] / base[axis] if axis in infinite else 1.0

    fan_in, fan_out = len(shape) - 2, len(shape) - 1
    if rule == "sgd":
        if len(infinite) == 2:
            return Scale(over=width_mult(fan_in) / width_mult(fan_out))
        return Scale(times=width_mult(infinite[0])) if infinite else Scale()
    if len(infinite) < 2:
        return Scale()
    main = next(axis for axis in (fan_in, fan_out, *infinite[::-1]) if axis in infinite)
    return Scale(over=width_mult(main))


def key_path(path: KeyPath) -> str:
    return jax.tree_util.keystr(path)
