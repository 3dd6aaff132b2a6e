"""μP: learning rates that transfer across width (Yang et al. 2022, "Tensor Programs V").

A rate tuned on a narrow model carries over to a wide one when each parameter's rate is
scaled by how its shape grew: :func:`mup_multipliers` computes the factors, as the
authors' package ``mup`` 1.0.0 does from ``set_base_shapes``, and :func:`mup` builds the
optimizer, one ``optax.partition`` group per distinct factor.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax import _chain, _hyperparams, _numerics
from lrjax._finding._mup_multipliers import Scale, Shape, key_path, scales
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._registry import register_preconditioner


class MupGroupState(NamedTuple):
    """Which parameters a group of :func:`lrjax.mup` holds, in their shapes.

    ``members`` has, for each parameter of the group, an empty array of shape
    ``(*parameter.shape, 0)`` (a complex parameter: ``(*shape, 2, 0)``, as the methods
    hold it): no memory, but :func:`lrjax.effective_learning_rates` places each group's
    rate on its own parameters, also for plain SGD, whose state keeps no per-parameter
    arrays.
    """

    members: optax.Params


def _unit_preconditioner(state: MupGroupState, given: dict[str, Any]) -> optax.Updates:
    del given
    return jax.tree.map(
        lambda m: jnp.ones(m.shape[:-1], _numerics.compute_dtype(m.dtype)), state.members
    )


register_preconditioner(MupGroupState, _unit_preconditioner)


def mup(
    optimizer: _chain.OptimizerFactory,
    learning_rate: ScalarOrSchedule,
    *,
    params: Any,
    base_params: Any,
    delta_params: Any = None,
    rule: str = "adam",
    weight_decay: Any = None,
) -> optax.GradientTransformationExtraArgs:
    """The μP optimizer: each parameter at the rate its width calls for.

    .. math:: \\eta_\\ell = \\eta \\, m_\\ell, \\qquad \\lambda_\\ell = \\lambda / m_\\ell

    with :func:`lrjax.mup_multipliers`' ``m`` of each parameter. Under μP a rate tuned at
    the base width stays (near) optimal as the model widens, where under the standard
    parametrisation it drifts. It is ``optax.partition`` with one group per distinct
    multiplier ``m``, labelled ``m``, and ``optimizer(η·m)`` for it (a schedule is
    multiplied through: ``step -> m·schedule(step)``); so
    :func:`lrjax.current_learning_rate` returns ``{m: η·m}`` (one group: its rate) and
    :func:`lrjax.effective_learning_rates` the rate of every parameter, also for plain
    SGD without ``params=`` (each group's state holds a :class:`MupGroupState`).

    With ``weight_decay=λ`` each group's factory is called as
    ``optimizer(η·m, weight_decay=λ/m)``, as ``mup`` 1.0.0 scales it, so that AdamW's
    decoupled decay ``η·λ`` is the same in every group. With ``weight_decay=None`` the
    factory is called with the rate alone, so its own default applies, unscaled
    (``lrjax.adamw``'s 0.01); ``mup`` 1.0.0 instead gives every group decay 0 when its
    ``MuAdamW`` is given none (its param groups read a missing ``weight_decay`` as 0).

    :func:`lrjax.set_hyperparams` on the whole state sets every group alike: it would
    drop the multipliers. Change the rate over time with a schedule instead.

    **The model's side.** μP also changes the model; lrjax leaves that to the model,
    which is a few lines in flax (rather than a helper that would need to know the
    model). What ``mup``'s ``MuReadout`` and its README ask for:

    * the readout (the last layer, width → classes or vocabulary) multiplies its
      *input* by ``1/width_mult = base_width / width`` and is initialised to zero
      (``MuReadout(readout_zero_init=True)``), or with a variance that does not depend on
      the width, ``nnx.initializers.variance_scaling(width / base_width, "fan_in",
      "normal")``;
    * attention logits ``q·k * √d_base / d`` instead of ``q·k / √d`` (``mup``'s README
      writes ``8 / d`` for a base head size of 64);
    * every other kernel is initialised with variance ``1/fan_in``, which flax's default
      ``lecun_normal`` does, and biases at zero (flax's default; torch's fan-in-dependent
      bias init is what ``set_base_shapes`` rescales).

    Args:
      optimizer: a factory mapping a rate to a transformation, called once per group:
        ``lrjax.adamw``, or ``lambda lr: lrjax.adam(lr, b2=0.95)``; with
        ``weight_decay`` given it must also take ``weight_decay=`` as a keyword.
      learning_rate: η, the rate tuned at the base width: a number >= 0, a JAX array, or
        a schedule ``step -> rate``.
      params: the parameters, or their shapes (``jax.eval_shape``); ``init`` and
        ``update`` then take trees with these leaves' shapes, in this order (a flax
        ``nnx.State`` or its pure form).
      base_params: the shapes at the base width.
      delta_params: the shapes at a second width (default ``params``): the dimensions
        that differ from ``base_params`` are the widths.
      rule: ``"adam"`` for Adam-like methods that normalise the gradient entrywise
        (Adam, AdamW, RMSprop, Adagrad, Prodigy), ``"sgd"`` for SGD.
      weight_decay: λ >= 0 (or a schedule), scaled by ``1/m`` per group and passed to
        the factory; None leaves the factory's own.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Raises:
      ValueError: for an invalid argument (see :func:`lrjax.mup_multipliers`), an
        optimizer already built (``lrjax.adam(1e-3)``), a factory that does not take
        ``weight_decay=`` when it is given, or at ``init`` / ``update`` when the tree's
        shapes are not those of ``params``.

    Example:
      >>> import jax, jax.numpy as jnp, lrjax
      >>> def init(width):
      ...     return {"embed": jnp.zeros((3, width)), "hidden": jnp.zeros((width, width)),
      ...             "readout": jnp.zeros((width, 10))}
      >>> params = init(256)
      >>> tx = lrjax.mup(lrjax.adamw, 1e-3, params=params,
      ...                base_params=jax.eval_shape(lambda: init(64)), weight_decay=0.1)
      >>> state = tx.init(params)
      >>> {m: float(rate) for m, rate in sorted(lrjax.current_learning_rate(state).items())}
      {0.25: 0.00025, 1.0: 0.001}

      A flax model in μP, trained with ``nnx.Optimizer``:

      >>> from flax import nnx
      >>> class MLP(nnx.Module):
      ...     def __init__(self, width, *, rngs, base_width=64):
      ...         self.embed = nnx.Linear(16, width, rngs=rngs)
      ...         self.hidden = nnx.Linear(width, width, rngs=rngs)
      ...         self.readout = nnx.Linear(width, 10, kernel_init=nnx.initializers.zeros,
      ...                                   rngs=rngs)
      ...         self.readout_mult = base_width / width  # MuReadout's 1 / width_mult
      ...     def __call__(self, x):
      ...         h = nnx.relu(self.hidden(nnx.relu(self.embed(x))))
      ...         return self.readout(h * self.readout_mult)
      >>> def shapes(width):
      ...     return jax.eval_shape(lambda: nnx.state(MLP(width, rngs=nnx.Rngs(0)), nnx.Param))
      >>> model = MLP(512, rngs=nnx.Rngs(0))
      >>> tx = lrjax.mup(lrjax.adam, 1e-2, params=nnx.state(model, nnx.Param),
      ...                base_params=shapes(64))
      >>> optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
      >>> @nnx.jit
      ... def train_step(model, optimizer, x, y):
      ...     def loss_fn(model):
      ...         log_p = jax.nn.log_softmax(model(x))
      ...         return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))
      ...     optimizer.update(model, nnx.grad(loss_fn)(model))
      >>> train_step(model, optimizer, jnp.ones((8, 16)), jnp.arange(8) % 10)
      >>> rates = lrjax.current_learning_rate(optimizer.opt_state)
      >>> {m: float(rate) for m, rate in sorted(rates.items())}
      {0.125: 0.00125, 1.0: 0.01}

    torch: ``mup.set_base_shapes(model, base, delta=delta)`` then
    ``mup.MuAdam(model.parameters(), lr=lr)`` (``lrjax.adam``),
    ``mup.MuAdamW(model.parameters(), lr=lr, weight_decay=wd)`` (``lrjax.adamw`` with
    ``weight_decay=wd``) or ``mup.MuSGD(model.parameters(), lr=lr)`` (``lrjax.sgd``,
    ``rule="sgd"``): the same rates and decays, group by group.

    References:
      Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao, "Tensor
      Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer",
      2022, https://arxiv.org/abs/2203.03466; the authors' package,
      https://github.com/microsoft/mup
    """
    owner = "mup"
    _chain.check_factory(owner, optimizer, "lrjax.adam, or lambda lr: lrjax.adam(lr, b2=0.95)")
    learning_rate = _hyperparams.check_hyperparams(owner, learning_rate=learning_rate)[
        "learning_rate"
    ]
    if weight_decay is not None:
        weight_decay = _hyperparams.check_hyperparams(owner, weight_decay=weight_decay)[
            "weight_decay"
        ]
    leaves, _ = scales(owner, params, base_params, delta_params, rule)
    groups: dict[float, Scale] = {}
    for _, _, scale in leaves:
        groups.setdefault(scale.multiplier, scale)
    transforms: dict[Hashable, optax.GradientTransformation] = {
        m: _group(owner, optimizer, learning_rate, weight_decay, scale)
        for m, scale in (groups or {1.0: Scale()}).items()
    }
    shapes = [shape for _, shape, _ in leaves]
    labels = [scale.multiplier for _, _, scale in leaves]
    return optax.partition(transforms, _labeller(owner, shapes, labels))


# ---------------------------------------------------------------- the multipliers


# ------------------------------------------------------------------- the groups


def _times(value: Any, factor: float, divisor: float) -> Any:
    """``value × factor / divisor``: in float64 for a Python number, as ``mup`` computes."""
    if callable(value):
        return _hyperparams.ScaledSchedule(value, factor / divisor)
    return value * factor / divisor


def _group(
    owner: str, optimizer: Callable, learning_rate: Any, weight_decay: Any, scale: Scale
) -> optax.GradientTransformation:
    rate = _times(learning_rate, scale.times, scale.over)
    if weight_decay is None:
        tx = _chain.build(owner, optimizer, rate)
    else:
        decay = _times(weight_decay, scale.over, scale.times)
        try:
            tx = _chain.build(owner, lambda lr: optimizer(lr, weight_decay=decay), rate)
        except TypeError as error:
            raise ValueError(
                f"{owner}: weight_decay is given, so optimizer must take it as a keyword, "
                f"optimizer(learning_rate, weight_decay=...); calling it failed with "
                f"TypeError: {error}"
            ) from error
    return optax.chain(_members(), tx)


def _members() -> optax.GradientTransformation:
    """Records the group's parameters in its state (:class:`MupGroupState`)."""

    def member(leaf: Any) -> jax.Array:
        dtype = jnp.result_type(leaf)
        pair = (2,) if jnp.issubdtype(dtype, jnp.complexfloating) else ()
        # An integer leaf is the method's to refuse, with its own message.
        real = jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.inexact) else np.float32
        return jnp.zeros((*jnp.shape(leaf), *pair, 0), real)

    def init_fn(params: optax.Params) -> MupGroupState:
        return MupGroupState(jax.tree.map(member, params))

    def update_fn(updates, state, params=None):
        del params
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)


def _labeller(owner: str, shapes: list[Shape], labels: list[float]) -> Callable[[Any], Any]:
    """The group of each leaf of the tree ``init`` or ``update`` is given, checked to have
    the shapes of ``params``. Leaves are matched in order, so the tree may be another
    container of the same leaves (flax's ``nnx.Optimizer`` passes a pure ``State``)."""

    def param_labels(tree: Any) -> Any:
        is_masked = lambda x: isinstance(x, optax.MaskedNode)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_masked)
        if len(leaves) != len(shapes):
            raise ValueError(
                f"{owner}: init and update need a tree with the {len(shapes)} leaves of "
                f"params, got {len(leaves)}"
            )
        for (path, leaf), shape in zip(leaves, shapes, strict=True):
            if not is_masked(leaf) and tuple(jnp.shape(leaf)) != shape:
                raise ValueError(
                    f"{owner}: init and update need the shapes of params, got "
                    f"{tuple(jnp.shape(leaf))} at {key_path(path) or 'the leaf'} where params "
                    f"has {shape}"
                )
        return jax.tree_util.tree_unflatten(treedef, labels)

    return param_labels
