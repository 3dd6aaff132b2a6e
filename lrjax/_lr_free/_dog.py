"""DoG and L-DoG: step sizes from the distance travelled over the gradients seen."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax import _blocks, _hyperparams, _numerics, _tree
from lrjax._hyperparams import ScalarOrSchedule
from lrjax._lr_free import _mask
from lrjax._registry import register_preconditioner, register_rate_factor
from lrjax._validation import check_flag, default, is_concrete, show

# ------------------------------------------------------------------------- DoG


class DoGState(NamedTuple):
    """State of :func:`dog` (one step size for all parameters).

    ``count`` is the number of updates done; ``x0`` is x_0, the parameters the first
    update saw (a copy); ``r_max`` is r̄_t = max(r_ε, max_{i≤t} ‖x_i − x_0‖);
    ``sum_sq_grads`` is G_t = ε + Σ_{i≤t} ‖g_i‖²; ``step_size`` is η_t, the step size
    the most recent update applied (before any update: ``init_eta``, or 0 since the
    first step size depends on the first gradient).
    """

    count: jax.Array
    x0: optax.Params
    r_max: jax.Array
    sum_sq_grads: jax.Array
    step_size: jax.Array
    hyperparams: _hyperparams.HyperparamsState


class LDoGState(NamedTuple):
    """State of :func:`dog` with ``layerwise=True`` (one step size per parameter leaf).

    As :class:`DoGState`, but ``r_max``, ``sum_sq_grads`` and ``step_sizes`` are trees
    like the parameters with one scalar per leaf: r̄_t, G_t and η_t of that leaf.
    """

    count: jax.Array
    x0: optax.Params
    r_max: Any
    sum_sq_grads: Any
    step_sizes: Any
    hyperparams: _hyperparams.HyperparamsState


def _stack(values: list[jax.Array], dtype: Any) -> jax.Array:
    """One vector of per-leaf scalars (empty for an empty tree)."""
    return jnp.stack(values) if values else jnp.zeros([0], dtype)


def _leaf_norms(tree: Any, dtype: Any) -> jax.Array:
    """‖x_k‖ for every leaf k, as one vector."""
    norms = [
        jnp.linalg.norm(x.astype(_numerics.compute_dtype(x.dtype)).ravel()).astype(dtype)
        for x in jax.tree.leaves(tree)
    ]
    return _stack(norms, dtype)


def _leaf_sum_squares(tree: Any, dtype: Any) -> jax.Array:
    """‖g_k‖² for every leaf k, as one vector."""
    sums = [jnp.sum(jnp.square(g)).astype(dtype) for g in jax.tree.leaves(tree)]
    return _stack(sums, dtype)


def _difference(p: jax.Array, x0: jax.Array) -> jax.Array:
    """x − x_0 in the arithmetic dtype (bfloat16 would round the small difference)."""
    dtype = _numerics.compute_dtype(p.dtype)
    return p.astype(dtype) - x0.astype(dtype)


def _norm(vector: jax.Array) -> jax.Array:
    """The norm of the whole tree from its leaves' norms (the reference's order)."""
    return jnp.sqrt(jnp.sum(jnp.square(vector)))


def _step_sizes(learning_rate: jax.Array, r_max: jax.Array, sum_sq_grads: jax.Array) -> jax.Array:
    """η = c · r̄ / √G, and 0 where G = 0.

    G = 0 only with ε = 0 and all-zero gradients so far; the reference then stops with an
    assertion. Every such gradient is zero, so no step size moves anything: lrjax takes
    the step to be 0 (the limit of η·g as g → 0) and records η = 0.
    """
    positive = sum_sq_grads > 0
    eta = learning_rate * r_max / jnp.sqrt(jnp.where(positive, sum_sq_grads, 1))
    return jnp.where(positive, eta, 0)


def dog(
    learning_rate: ScalarOrSchedule = default(1.0),
    *,
    reps_rel: float | jax.Array = default(1e-6),
    eps: float | jax.Array = default(1e-8),
    weight_decay: float | jax.Array = default(0.0),
    mask: Any = None,
    init_eta: float | jax.Array | None = None,
    layerwise: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """DoG, "Distance over Gradients" (Ivgi, Hinder & Carmon, 2023): SGD whose step size
    is the distance travelled from the start over the root sum of squared gradients.

    .. math::

        g_t = \\nabla f(x_t) + \\lambda x_t, \\qquad
        r_\\epsilon = \\mathrm{reps\\_rel} \\cdot (1 + \\|x_0\\|)

        \\bar r_t = \\max\\big(r_\\epsilon, \\max_{i \\le t} \\|x_i - x_0\\|\\big), \\qquad
        G_t = \\epsilon + \\sum_{i \\le t} \\|g_i\\|^2

        \\eta_t = c\\, \\frac{\\bar r_t}{\\sqrt{G_t}}, \\qquad x_{t+1} = x_t - \\eta_t\\, g_t

    where ``c`` is ``learning_rate``, the norms run over all parameters together, and
    ``x_0`` are the parameters the first update sees. With ``layerwise=True`` (L-DoG) every
    parameter leaf k has its own ``r_ε``, ``r̄_t``, ``G_t`` and ``η_t`` from its own norms.
    With ``init_eta`` the first step size is ``init_eta`` (``c`` does not multiply it) and
    ``r_ε = 0``, so ``r̄_t`` is the distance travelled alone.

    As in the reference:

    * ``weight_decay`` is coupled (L2): λx is added to the gradient before anything else,
      so it enters G too;
    * ε is added to G once, at the first update;
    * a first gradient of zero (with ε > 0) gives a zero step and the first step size
      ``c r_ε/√ε``; DoG then starts from the next gradient. With ``init_eta`` there is no
      ``r_ε``: a zero first gradient leaves ``r̄ = 0`` and every later step size 0, so the
      parameters never move (use ``reps_rel`` when the first gradient may be zero).

    Where the reference stops (ε = 0 and all gradients of the tree, or of a leaf with
    L-DoG, zero so far: G = 0), lrjax takes the limit: the step is zero and η is recorded
    as 0 until a non-zero gradient arrives.

    The authors stress that DoG needs iterate averaging to perform well: see
    :func:`polynomial_average`. With bfloat16 parameters a step below half their precision
    rounds away when it is applied, so the first steps (``reps_rel`` = 1e-6 of the
    parameters' norm) cannot move them and r̄ never grows: keep float32 parameters, or
    raise ``reps_rel``.

    :func:`lrjax.current_learning_rate` is η_t, the step size the most recent update
    applied (before any update: ``init_eta``, or 0); with ``layerwise=True`` it is the
    largest of the leaves' η_t, and :func:`lrjax.effective_learning_rates` gives each
    leaf's own η_t (for DoG, η_t everywhere).

    Args:
      learning_rate: c > 0, the multiplier the reference calls ``lr``; the authors advise
        keeping 1. A number, a JAX array or a schedule ``step -> c``.
      reps_rel: > 0, the relative initial distance: ``r_ε = reps_rel (1 + ‖x_0‖)``. The
        authors suggest 1e-6, or 1e-4 for models with batch normalisation. Not used with
        ``init_eta``.
      eps: ε >= 0, added to G at the first update.
      weight_decay: λ >= 0, added to the gradient as λx (L2).
      mask: which parameters ``weight_decay`` applies to: a pytree of bools or a
        function ``params -> pytree of bools`` (see :func:`lrjax.add_decayed_weights`).
        The others' gradients get no λx; everything else is as without a mask. With
        ``layerwise=True`` this is the reference's ``LDoG`` with two parameter groups
        (``weight_decay`` λ and 0): its step sizes are per parameter anyway. DoG's
        reference keeps one step size per parameter group, so its two groups would
        step at two sizes; ``mask`` keeps DoG's one step size over all parameters
        (the reference's one group, with λx added to the masked parameters'
        gradients). For torch's two groups, build them:
        ``optax.partition({"decay": dog(weight_decay=λ), "no_decay": dog()}, labels)``.
      init_eta: the first step size (> 0), instead of the one from ``reps_rel``; None: from
        ``reps_rel``.
      layerwise: L-DoG: one step size per parameter leaf.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; its ``update`` needs ``params``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> loss = lambda x: jnp.sum((x - 3.0) ** 2)
      >>> tx = lrjax.dog()
      >>> @jax.jit
      ... def step(params, state):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     return optax.apply_updates(params, updates), state
      >>> params = jnp.ones(4); state = tx.init(params)
      >>> for _ in range(150):
      ...     params, state = step(params, state)
      >>> float(loss(params)) < 1e-4  # no learning rate was tuned
      True
      >>> float(lrjax.current_learning_rate(state))  # η grew from 3.75e-7 on step 1
      0.0586

    reference: ``dog.DoG(params, reps_rel, lr=learning_rate, weight_decay, eps, init_eta)``
    and ``dog.LDoG(...)`` for ``layerwise=True`` (dog-optimizer 1.0.3), with the
    schedule's value set as ``param_groups[0]["lr"]`` before each step.

    References:
      Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
      Schedule", ICML 2023, https://arxiv.org/abs/2302.12022
    """
    owner = "dog"
    layerwise = check_flag(owner, "layerwise", layerwise)
    mask = _blocks.check_mask(owner, mask)
    hp = _hyperparams.check_hyperparams(
        owner, learning_rate=learning_rate, reps_rel=reps_rel, eps=eps, weight_decay=weight_decay
    )
    rate = hp["learning_rate"]
    if not callable(rate) and is_concrete(rate) and float(rate) <= 0:
        raise ValueError(
            f"{owner}: learning_rate must be finite and > 0 (the authors advise 1), "
            f"got {show(learning_rate)}"
        )
    held = dict(learning_rate=hp["learning_rate"], eps=hp["eps"])
    if init_eta is None:
        held["reps_rel"] = hp["reps_rel"]
    else:  # the reference then ignores reps_rel (r_ε = 0)
        held.update(_hyperparams.check_hyperparams(owner, init_eta=init_eta))
    if not _hyperparams.is_zero(hp["weight_decay"]):
        held["weight_decay"] = hp["weight_decay"]
    return _tree.as_method(owner, _dog(owner, held, layerwise, mask))


def _dog(
    owner: str, held: dict[str, Any], layerwise: bool, mask: Any
) -> optax.GradientTransformationExtraArgs:
    hyperparams = _hyperparams.Hyperparams(**held)
    has_init_eta = "init_eta" in held
    decays = "weight_decay" in held

    def init_fn(params: optax.Params) -> DoGState | LDoGState:
        _mask.resolve(owner, mask, params)  # a mask that does not fit fails here
        dtype = _numerics.estimate_dtype(params)
        hyperparams_state = hyperparams.init()
        first = _hyperparams.Values(hyperparams_state, hyperparams.given)
        first_eta = first.value("init_eta") if has_init_eta else 0

        def scalar(value: Any) -> jax.Array:
            return _numerics.fresh(value, dtype)

        x0 = jax.tree.map(lambda p: _numerics.fresh(p, _numerics.state_dtype(p.dtype)), params)
        if not layerwise:
            return DoGState(
                count=_tree.zeros_count(),
                x0=x0,
                r_max=scalar(0),
                sum_sq_grads=scalar(0),
                step_size=scalar(first_eta),
                hyperparams=hyperparams_state,
            )
        return LDoGState(
            count=_tree.zeros_count(),
            x0=x0,
            r_max=jax.tree.map(lambda _: scalar(0), params),
            sum_sq_grads=jax.tree.map(lambda _: scalar(0), params),
            step_sizes=jax.tree.map(lambda _: scalar(first_eta), params),
            hyperparams=hyperparams_state,
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        why = "DoG measures the distance travelled from the initial parameters"
        _tree.needs_params(owner, params, why)
        hp = hyperparams.read(state.hyperparams, state.count)
        dtype = _numerics.estimate_dtype(state.x0)
        first = state.count == 0

        def gradient(g: jax.Array, p: jax.Array, decayed: bool) -> jax.Array:
            compute = _numerics.compute_dtype(g.dtype)
            g = g.astype(compute)
            if decayed:  # coupled: the reference adds λx to the gradient in place
                g = g + _numerics.cast(hp.value("weight_decay"), compute) * p.astype(compute)
            return g

        if decays:
            decayed = _mask.resolve(owner, mask, params)
        else:
            decayed = jax.tree.map(lambda _: False, params)
        grads = jax.tree.map(gradient, updates, params, decayed)
        sum_squares = _leaf_sum_squares(grads, dtype)
        if not layerwise:  # all parameters as one vector
            sum_squares = jnp.sum(sum_squares)
        old_r, old_sum = state.r_max, state.sum_sq_grads
        if layerwise:
            old_r = _stack(jax.tree.leaves(old_r), dtype)
            old_sum = _stack(jax.tree.leaves(old_sum), dtype)

        # The first update and the later ones read different arrays: a branch on the
        # count, not a select over whole arrays, so each update makes one pass only.
        def first_update() -> tuple[optax.Params, jax.Array]:
            # x_0 is taken now: the distance travelled is 0, so r̄ = r_ε.
            x0 = jax.tree.map(lambda p, x: _numerics.fresh(p, x.dtype), params, state.x0)
            if has_init_eta:
                return x0, jnp.zeros_like(old_r)
            norms = _leaf_norms(params, dtype)
            if not layerwise:
                norms = _norm(norms)
            return x0, _numerics.cast(hp.value("reps_rel"), dtype) * (1 + norms)

        def later_update() -> tuple[optax.Params, jax.Array]:
            distances = _leaf_norms(jax.tree.map(_difference, params, state.x0), dtype)
            if not layerwise:
                distances = _norm(distances)
            return state.x0, jnp.maximum(old_r, distances)

        x0, r_max = jax.lax.cond(first, first_update, later_update)
        eps = _numerics.cast(hp.value("eps"), dtype)
        sum_sq_grads = jnp.where(first, eps, old_sum) + sum_squares
        eta = _step_sizes(_numerics.cast(hp.value("learning_rate"), dtype), r_max, sum_sq_grads)
        if has_init_eta:
            eta = jnp.where(first, _numerics.cast(hp.value("init_eta"), dtype), eta)

        count = _tree.increment(state.count)
        if not layerwise:
            new_updates = _blocks.scale_tree(grads, -eta)
            new_updates = _tree.cast_like(new_updates, updates)
            return new_updates, DoGState(count, x0, r_max, sum_sq_grads, eta, hp.state)
        structure = jax.tree.structure(updates)

        def per_leaf(vector: jax.Array) -> Any:
            return jax.tree.unflatten(structure, [vector[k] for k in range(structure.num_leaves)])

        step_sizes = per_leaf(eta)
        new_updates = jax.tree.map(
            lambda g, u, e: (-_numerics.cast(e, g.dtype) * g).astype(u.dtype),
            grads,
            updates,
            step_sizes,
        )
        new_state = LDoGState(
            count, x0, per_leaf(r_max), per_leaf(sum_sq_grads), step_sizes, hp.state
        )
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _held_first_step_size(state: DoGState | LDoGState, eta: jax.Array) -> jax.Array:
    """``eta``, or before any update the held ``init_eta`` (which set_hyperparams may have
    changed since init): the step size the first update will apply."""
    held = state.hyperparams.values.get("init_eta")
    if held is None:
        return eta
    return jnp.where(state.count == 0, jnp.asarray(held).astype(eta.dtype), eta)


def _dog_rates(state: DoGState, given: dict[str, Any]) -> optax.Updates:
    # One step size for every parameter: the factor on η is 1.
    del given
    return jax.tree.map(lambda x: jnp.ones(x.shape, state.step_size.dtype), state.x0)


def _largest_step_size(state: LDoGState) -> jax.Array:
    leaves = jax.tree.leaves(state.step_sizes)
    if not leaves:
        return jnp.zeros([], _numerics.estimate_dtype(state.x0))
    # Over the leaves only: a state built under jax.vmap has a batch of step sizes.
    return _held_first_step_size(state, jnp.max(jnp.stack(leaves), axis=0))


def _ldog_rates(state: LDoGState, given: dict[str, Any]) -> optax.Updates:
    # Each leaf's η relative to the largest (the global factor), so that their product is
    # the leaf's own η.
    del given
    largest = _largest_step_size(state)

    def rate(eta: jax.Array, x: jax.Array) -> jax.Array:
        ratio = jnp.where(largest > 0, eta / jnp.where(largest > 0, largest, 1), 1)
        # Leading (batch) axes of a vmapped state line up with the parameter's.
        ratio = jnp.reshape(ratio, ratio.shape + (1,) * (x.ndim - ratio.ndim))
        return jnp.broadcast_to(ratio, x.shape).astype(eta.dtype)

    return jax.tree.map(rate, state.step_sizes, state.x0)


register_rate_factor(DoGState, lambda state: _held_first_step_size(state, state.step_size))
register_preconditioner(DoGState, _dog_rates)
register_rate_factor(LDoGState, _largest_step_size)
register_preconditioner(LDoGState, _ldog_rates)
