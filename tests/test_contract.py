"""The contract every lrjax method keeps, swept over every method: state, jit, dtypes,
introspection and hyperparameters (bad arguments are swept in ``test_hostile_methods``)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import ALL_METHOD_NAMES, LR_FREE, METHOD_NAMES, METHODS
from helpers import ALL_METHODS as ANY

import lrjax

PARAMS = {
    "w": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4),
    "b": jnp.array([0.5, -0.25, 0.0, 1.0], jnp.float32),
    "s": jnp.array(2.0, jnp.float32),
}


def loss(params):
    return (
        jnp.sum(jnp.square(params["w"] - 0.3))
        + jnp.sum(jnp.square(params["b"]) * jnp.arange(1.0, 5.0, dtype=params["b"].dtype))
        + jnp.square(params["s"])
    )


def gradients(num_steps: int, seed: int = 0, dtype=jnp.float32):
    key = jax.random.key(seed)
    out = []
    for _ in range(num_steps):
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, len(PARAMS))
        out.append(
            {
                name: jax.random.normal(k, jnp.shape(p), dtype)
                for k, (name, p) in zip(keys, PARAMS.items(), strict=True)
            }
        )
    return out


def estimates(state):
    """The state without its held hyperparameters (a growth_rate may be inf: no limit)."""
    return jax.tree.map(
        lambda node: None if isinstance(node, lrjax.HyperparamsState) else node,
        state,
        is_leaf=lambda node: isinstance(node, lrjax.HyperparamsState),
    )


def make_step(tx):
    def step(params, state):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_jit_finite_dtype_and_no_retrace(name, dtype):
    chex.clear_trace_counter()
    tx = ANY[name](1e-2)
    params = jax.tree.map(lambda p: p.astype(dtype), PARAMS)
    state = tx.init(params)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        chex.assert_trees_all_equal_dtypes(updates, grads)
        return optax.apply_updates(params, updates), state, updates

    for _ in range(3):
        params, state, updates = step(params, state)
    chex.assert_tree_all_finite((params, estimates(state), updates))
    chex.assert_trees_all_equal_dtypes(params, jax.tree.map(lambda p: p.astype(dtype), PARAMS))
    # The compiled steps are the eager float32 steps (rounded to bf16 for bf16 params).
    expected, expected_state = PARAMS, tx.init(PARAMS)
    for _ in range(3):
        expected, expected_state = make_step(tx)(expected, expected_state)
    tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == jnp.float32 else dict(rtol=2e-2, atol=2e-3)
    chex.assert_trees_all_close(
        jax.tree.map(lambda p: p.astype(jnp.float32), params), expected, **tolerance
    )


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_bf16_update_is_the_float32_update_rounded(name):
    """bf16 gradients are not promoted: the arithmetic runs in float32, rounded once."""
    grads = gradients(1)[0]
    tx = ANY[name](1e-2)
    u32, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    as_bf16 = lambda t: jax.tree.map(lambda x: x.astype(jnp.bfloat16), t)
    u16, _ = tx.update(as_bf16(grads), tx.init(as_bf16(PARAMS)), as_bf16(PARAMS))
    chex.assert_trees_all_equal_dtypes(u16, as_bf16(grads))
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x.astype(jnp.float32), u16), u32, rtol=2e-2, atol=1e-6
    )


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_float64_under_x64(name):
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
        tx = ANY[name](1e-2)
        state = tx.init(params)
        params, state = jax.jit(make_step(tx))(params, state)
        chex.assert_trees_all_equal_dtypes(
            params, jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
        )
        chex.assert_tree_all_finite(params)


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_inside_chain_with_clipping(name):
    tx = optax.chain(optax.clip_by_global_norm(0.5), ANY[name](1e-2))
    params, state = PARAMS, tx.init(PARAMS)
    step = jax.jit(make_step(tx))
    for _ in range(3):
        params, state = step(params, state)
    chex.assert_tree_all_finite(params)
    rate = float(lrjax.current_learning_rate(state))
    # A learning-rate-free method reports the step size it estimated (its own tests check
    # it against the reference).
    assert rate == pytest.approx(1e-2) if name in METHODS else 0 < rate < np.inf


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_inject_hyperparams_drives_the_rate(name):
    """Under inject_hyperparams the injected (scheduled) rate is the one applied."""
    schedule = lambda count: 1e-2 * 0.5 ** count.astype(jnp.float32)
    injected = optax.inject_hyperparams(lambda learning_rate: ANY[name](learning_rate))(
        learning_rate=schedule
    )
    reference = ANY[name](schedule)
    s_inj, s_ref = injected.init(PARAMS), reference.init(PARAMS)
    p_inj = p_ref = PARAMS
    step_inj, step_ref = jax.jit(make_step(injected)), jax.jit(make_step(reference))
    for _ in range(4):
        p_inj, s_inj = step_inj(p_inj, s_inj)
        p_ref, s_ref = step_ref(p_ref, s_ref)
        chex.assert_trees_all_close(p_inj, p_ref, rtol=1e-6)
        assert float(lrjax.current_learning_rate(s_inj)) == pytest.approx(
            float(lrjax.current_learning_rate(s_ref))
        )
    # The optax idiom of changing an injected (unscheduled) value takes effect.
    constant = optax.inject_hyperparams(lambda learning_rate: ANY[name](learning_rate))(
        learning_rate=1e-2
    )
    step = jax.jit(make_step(constant))
    params, state = step(PARAMS, constant.init(PARAMS))
    state.hyperparams["learning_rate"] = jnp.asarray(0.0, jnp.float32)
    frozen, state = step(params, state)
    if not name.startswith("schedule_free"):  # at rate 0, y still moves toward the average
        chex.assert_trees_all_equal(frozen, params)  # every update is scaled by the rate
    state.hyperparams["learning_rate"] = jnp.asarray(1e-2, jnp.float32)
    moved, _ = step(frozen, state)
    assert not all(jax.tree.leaves(jax.tree.map(jnp.array_equal, moved, frozen)))


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_multisteps_accumulates(name):
    k = 3
    tx = optax.MultiSteps(ANY[name](1e-2), every_k_schedule=k)
    with jax.numpy_dtype_promotion("standard"):  # optax's MultiSteps divides by an int
        _multisteps_accumulates(name, tx, k)


def _multisteps_accumulates(name, tx, k):
    state = tx.init(PARAMS)
    grads = gradients(k)
    params = PARAMS
    update = jax.jit(tx.update)
    for g in grads[:-1]:
        updates, state = update(g, state, params)
        chex.assert_trees_all_equal(updates, jax.tree.map(jnp.zeros_like, updates))
    updates, state = update(grads[-1], state, params)
    # One inner step on the mean of the k gradients.
    inner = ANY[name](1e-2)
    mean = jax.tree.map(lambda *g: sum(g) / k, *grads)
    expected, inner_state = inner.update(mean, inner.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(updates, expected, rtol=1e-5, atol=1e-7)
    rate = float(lrjax.current_learning_rate(state))
    assert rate == pytest.approx(float(lrjax.current_learning_rate(inner_state)), rel=1e-5)
    if name in METHODS:
        assert rate == pytest.approx(1e-2)


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_checkpoint_restore_continues_bit_identically(name, tmp_path):
    tx = ANY[name](lambda count: 1e-2 / (1 + count.astype(jnp.float32)))
    step = jax.jit(make_step(tx))
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(5):
        params, state = step(params, state)
    leaves, treedef = jax.tree.flatten((params, state))
    np.savez(tmp_path / "ckpt.npz", *[np.asarray(leaf) for leaf in leaves])
    with np.load(tmp_path / "ckpt.npz") as data:
        restored = [jnp.asarray(data[f"arr_{i}"]) for i in range(len(leaves))]
    r_params, r_state = jax.tree.unflatten(treedef, restored)
    for _ in range(5):
        params, state = step(params, state)
        r_params, r_state = step(r_params, r_state)
    chex.assert_trees_all_equal((params, state), (r_params, r_state))


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_counters_saturate(name):
    # A scheduled rate reads the step, so every method's state counts at least one.
    tx = ANY[name](lambda count: 1e-2 / (1 + count.astype(jnp.float32)))
    state = tx.init(PARAMS)
    top = jnp.iinfo(jnp.int32).max
    state = jax.tree.map(
        lambda x: jnp.full_like(x, top) if x.dtype == jnp.int32 and x.ndim == 0 else x, state
    )
    params, state = jax.jit(make_step(tx))(PARAMS, state)
    counts = [x for x in jax.tree.leaves(state) if x.dtype == jnp.int32]
    assert counts and all(int(c) == top for c in counts)
    chex.assert_tree_all_finite(params)


def _counters(state) -> list[int]:
    return [int(x) for x in jax.tree.leaves(state) if x.dtype == jnp.int32 and x.ndim == 0]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        # Constant hyperparameters: only Adam's bias correction reads the step.
        (lambda: lrjax.sgd(0.1, momentum=0.9, weight_decay=1e-4), 0),
        (lambda: lrjax.rmsprop(1e-2, momentum=0.9, centered=True), 0),
        (lambda: lrjax.adadelta(weight_decay=1e-2), 0),
        (lambda: lrjax.adagrad(1e-2), 0),
        (lambda: lrjax.adamw(1e-3, weight_decay=1e-2), 1),
        # What reads the step keeps its counter: dampening's first step, lr_decay,
        # each scheduled value.
        (lambda: lrjax.sgd(0.1, momentum=0.9, dampening=0.5), 1),
        (lambda: lrjax.adagrad(1e-2, lr_decay=1e-3), 1),
        (lambda: lrjax.sgd(optax.constant_schedule(0.1), momentum=0.9), 1),
        (lambda: lrjax.sgd(0.1, momentum=optax.constant_schedule(0.9)), 1),
        (lambda: lrjax.adamw(1e-3, weight_decay=optax.constant_schedule(1e-2)), 2),
        (lambda: lrjax.rmsprop(1e-2, decay=optax.constant_schedule(0.9)), 1),
    ],
    ids=[
        "sgd",
        "rmsprop",
        "adadelta",
        "adagrad",
        "adamw",
        "sgd-dampening",
        "adagrad-lr_decay",
        "sgd-scheduled-rate",
        "sgd-scheduled-momentum",
        "adamw-scheduled-decay",
        "rmsprop-scheduled-decay",
    ],
)
def test_only_what_reads_the_step_counts_it(make, expected):
    """A counter nothing reads costs every compile a scalar kernel of its own (optax's
    sgd and rmsprop keep none); each one kept must still count."""
    tx = make()
    state = tx.init(PARAMS)
    assert _counters(state) == [0] * expected
    step = jax.jit(make_step(tx))
    params = PARAMS
    for _ in range(3):
        params, state = step(params, state)
    assert _counters(state) == [3] * expected


@pytest.mark.parametrize("jit_init", [False, True])
@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_donating_the_state_runs(name, jit_init):
    tx = ANY[name](1e-2)
    init = jax.jit(tx.init) if jit_init else tx.init
    params = jax.tree.map(jnp.copy, PARAMS)
    state = init(params)
    step = jax.jit(make_step(tx), donate_argnums=(0, 1))
    for _ in range(3):
        params, state = step(params, state)
    chex.assert_tree_all_finite(params)
    buffers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves((params, state))]
    assert len(buffers) == len(set(buffers)), "two state leaves share a buffer"


def test_donating_inject_hyperparams_state_runs():
    tx = optax.inject_hyperparams(lrjax.adam)(learning_rate=1e-2, b1=0.8)
    params = jax.tree.map(jnp.copy, PARAMS)
    state = tx.init(params)
    step = jax.jit(make_step(tx), donate_argnums=(0, 1))
    for _ in range(3):
        params, state = step(params, state)
    buffers = [leaf.unsafe_buffer_pointer() for leaf in jax.tree.leaves(state)]
    assert len(buffers) == len(set(buffers))


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_hyperparameters_live_in_the_state(name):
    """Optimizers that differ only in float values lower to the same program."""
    texts = []
    for lr in (1e-2, 3e-4):
        tx = ANY[name](lr)
        state = tx.init(PARAMS)
        texts.append(jax.jit(make_step(tx)).lower(PARAMS, state).as_text())
    assert texts[0] == texts[1]


@pytest.mark.parametrize("name", ALL_METHOD_NAMES)
def test_vmap_over_learning_rates(name):
    """An optimizer built inside jax.vmap from a traced rate: one run per rate."""
    rates = jnp.array([1e-3, 1e-2, 3e-2], jnp.float32)

    def run(lr):
        tx = ANY[name](lr)
        params, state = PARAMS, tx.init(PARAMS)
        step = make_step(tx)
        for _ in range(3):
            params, state = step(params, state)
        return params, state

    batched, state = jax.jit(jax.vmap(run))(rates)
    if name in METHODS:
        # A rate given as an array is used as given, not held: the state cannot report it.
        with pytest.raises(ValueError, match="current_learning_rate: the learning rate was"):
            lrjax.current_learning_rate(state)
    else:  # the step size applied is state: one per run
        assert lrjax.current_learning_rate(state).shape == rates.shape
    for i, lr in enumerate(rates):
        single, single_state = run(float(lr))
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], batched), single, rtol=1e-5, atol=1e-7
        )
        if name in LR_FREE:
            assert float(lrjax.current_learning_rate(state)[i]) == pytest.approx(
                float(lrjax.current_learning_rate(single_state)), rel=1e-5
            )


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_set_hyperparams_changes_the_rate_without_retracing(name):
    tx = METHODS[name](1e-2)
    traces = []

    @jax.jit
    def update(grads, state):
        traces.append(1)
        return tx.update(grads, state, PARAMS)

    grads = gradients(2)
    _, state = update(grads[0], tx.init(PARAMS))
    lowered = lrjax.set_hyperparams(state, learning_rate=3e-3)
    assert float(lrjax.current_learning_rate(lowered)) == pytest.approx(3e-3)
    u_lowered, _ = update(grads[1], lowered)
    u_kept, _ = update(grads[1], state)
    assert len(traces) == 1
    # The rate multiplies the direction: the same step, scaled by 3e-3 / 1e-2.
    chex.assert_trees_all_close(u_lowered, jax.tree.map(lambda u: 0.3 * u, u_kept), rtol=1e-6)


def test_set_hyperparams_sets_every_value_and_checks_it():
    tx = lrjax.adam(1e-3)
    state = tx.init(PARAMS)
    new = lrjax.set_hyperparams(state, b1=0.5, b2=0.9, eps=1e-3, learning_rate=0.1)
    grads = gradients(1)[0]
    got, _ = tx.update(grads, new, PARAMS)
    other = lrjax.adam(0.1, b1=0.5, b2=0.9, eps=1e-3)
    want, _ = other.update(grads, other.init(PARAMS), PARAMS)
    chex.assert_trees_all_close(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"set_hyperparams: b1 must be in \[0, 1\), got 1.5"):
        lrjax.set_hyperparams(state, b1=1.5)
    with pytest.raises(ValueError, match="nothing in opt_state holds a hyperparameter named 'rho'"):
        lrjax.set_hyperparams(state, rho=0.5)


def test_set_hyperparams_refuses_a_scheduled_rate():
    state = lrjax.sgd(lambda count: 0.1 / (1 + count.astype(jnp.float32))).init(PARAMS)
    with pytest.raises(ValueError, match="learning_rate is driven by a schedule"):
        lrjax.set_hyperparams(state, learning_rate=0.5)


def test_set_hyperparams_refuses_a_given_array():
    state = lrjax.adam(1e-3, b1=jnp.asarray(0.9)).init(PARAMS)
    with pytest.raises(ValueError, match="passed to the optimizer as a JAX array is used as given"):
        lrjax.set_hyperparams(state, b1=0.5)


def test_set_hyperparams_reaches_into_inject_and_multisteps():
    tx = optax.MultiSteps(optax.inject_hyperparams(lrjax.sgd)(learning_rate=0.1), 2)
    state = lrjax.set_hyperparams(tx.init(PARAMS), learning_rate=0.02)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.02)
    with jax.numpy_dtype_promotion("standard"):  # optax's MultiSteps divides by an int
        for _ in range(2):
            updates, state = tx.update(PARAMS, state, PARAMS)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda p: -0.02 * p, PARAMS))
    tx = optax.chain(optax.clip(1.0), lrjax.sgd(0.1, momentum=0.9))
    state = lrjax.set_hyperparams(tx.init(PARAMS), learning_rate=0.02, momentum=0.5)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.02)


def test_current_learning_rate_follows_the_schedule():
    schedule = lambda count: 0.1 * 0.5 ** jnp.asarray(count, jnp.float32)
    tx = lrjax.adam(schedule)
    state = tx.init(PARAMS)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.1)  # the first update's
    step = jax.jit(make_step(tx))
    for t in range(3):
        _, state = step(PARAMS, state)
        assert float(lrjax.current_learning_rate(state)) == pytest.approx(schedule(t))


def test_current_learning_rate_reads_an_optax_rate_under_inject():
    state = optax.inject_hyperparams(optax.adam)(learning_rate=0.25).init(PARAMS)
    assert float(lrjax.current_learning_rate(state)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="holds no learning rate"):
        lrjax.current_learning_rate(optax.adam(0.1).init(PARAMS))


def test_tracers_are_not_checked():
    """A traced hyperparameter cannot be checked: building under jit must work."""
    jax.jit(
        lambda lr, b1: lrjax.adam(lr, b1=b1).update(PARAMS, lrjax.adam(lr, b1=b1).init(PARAMS))[0]
    )(1e-3, 0.9)
