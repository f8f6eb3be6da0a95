"""`neural_ode.ode_block.ODEBlock`: invertibility, gradients, NFE variables,
serialization, tf.function and Keras `fit`.

The ConvODEFunc used here is small (4 channels, 5x5 maps): tracing its adjoint
takes seconds, and the properties do not depend on the size.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from neural_ode.dynamics import ConvODEFunc, MLPODEFunc
from neural_ode.ode_block import ODEBlock
from neural_ode.solver import SolverConfig

SHAPE = (2, 5, 5, 4)

# Dynamics evaluations, counted at run time inside the dynamics.
_CALLS = tf.Variable(0, dtype=tf.int32, trainable=False)


class _Counting(keras.layers.Layer):
    """Wraps dynamics and counts its evaluations in `_CALLS`."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def build(self, t_shape, h_shape=None):
        self.inner.build(t_shape, h_shape)

    def call(self, t, h):
        _CALLS.assign_add(1)
        return self.inner(t, h)


def _conv_dynamics(seed=0):
    keras.utils.set_random_seed(seed)
    return ConvODEFunc(4, groups=2)


def _input(seed=1, shape=SHAPE):
    return tf.random.stateless_normal(shape, seed=(seed, 0))


def _rk4(steps):
    return SolverConfig(method="rk4", gradient="backprop", steps_per_interval=steps)


def test_forward_then_reversed_block_recovers_the_input():
    dynamics = _conv_dynamics()
    solver = SolverConfig(rtol=1e-5, atol=1e-5)
    forward = ODEBlock(dynamics, t0=0.0, t1=1.0, solver=solver)
    backward = ODEBlock(dynamics, t0=1.0, t1=0.0, solver=solver)  # same weights
    x = _input()
    y = forward(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert backward.trainable_variables == forward.trainable_variables
    displacement = np.abs(y - x).max()
    assert displacement > 0.5  # a non-trivial flow
    # float32 solves of ~100 evaluations each way: ~1e-3 absolute error.
    np.testing.assert_allclose(backward(y).numpy(), x.numpy(), atol=1e-2)
    # The forward map agrees with an independent fixed-grid RK4 solve.
    fine = forward.solve(x, tf.constant([0.0, 1.0]), solver=_rk4(16)).states[-1]
    np.testing.assert_allclose(y.numpy(), fine.numpy(), atol=1e-2)


def test_adjoint_gradients_reach_every_conv_variable_and_nfe_counts():
    block = ODEBlock(
        _Counting(_conv_dynamics()), solver=SolverConfig(rtol=1e-2, atol=1e-2)
    )
    x = _input()
    block.build(x.shape)
    _CALLS.assign(0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = block(x)
        loss = tf.reduce_mean(tf.square(y - 0.3))
    forward_calls = int(_CALLS.numpy())
    grads = tape.gradient(loss, [x] + block.trainable_variables)
    backward_calls = int(_CALLS.numpy()) - forward_calls

    names = sorted(
        v.path.split("/")[-2] + "/" + v.name for v in block.trainable_variables
    )
    assert len(names) == 10 and "conv1/kernel" in names and "norm3/gamma" in names
    for v, g in zip(block.trainable_variables, grads[1:], strict=True):
        assert g is not None, v.path
        assert g.shape == v.shape and np.isfinite(g.numpy()).all(), v.path
        assert np.abs(g.numpy()).max() > 0, v.path
    assert np.isfinite(grads[0].numpy()).all() and np.abs(grads[0].numpy()).max() > 0
    assert {v.path.split("/")[-1] for v in block.non_trainable_variables} == {
        "forward_nfe",
        "backward_nfe",
    }
    # The counts equal the evaluations made (odeint adds back the initialising
    # evaluation TFP leaves out of its count; see neural_ode_solver_test).
    assert forward_calls == int(block.forward_nfe.numpy())
    assert backward_calls == int(block.backward_nfe.numpy())
    assert int(block.backward_nfe.numpy()) > 0


def test_adjoint_gradient_equals_rk4_backprop_gradient():
    """The stateless_call plumbing gives the true gradients, not just non-None."""
    keras.utils.set_random_seed(3)
    block = ODEBlock(
        MLPODEFunc(2, hidden_units=(16,), activation="tanh", time_input=True),
        solver=SolverConfig(rtol=1e-6, atol=1e-6),
    )
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 2)), tf.float32)
    block(x)
    times = tf.constant([0.0, 0.6, 1.5])

    def grads(solver):
        with tf.GradientTape() as tape:
            tape.watch(x)
            states = block.solve(x, times, solver=solver).states
            loss = tf.reduce_sum(states[1] ** 2) + tf.reduce_sum(tf.sin(states[2]))
        return [g.numpy() for g in tape.gradient(loss, [x] + block.trainable_variables)]

    for adjoint, backprop in zip(grads(None), grads(_rk4(60)), strict=True):
        np.testing.assert_allclose(adjoint, backprop, rtol=1e-3, atol=1e-4)


def test_fixed_grid_block_counts_and_has_no_backward_solve():
    block = ODEBlock(_Counting(_conv_dynamics()), solver=_rk4(3))
    x = _input()
    _CALLS.assign(0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(block(x))
    forward_calls = int(_CALLS.numpy())
    grads = tape.gradient(loss, block.trainable_variables)
    assert all(g is not None for g in grads)
    assert forward_calls == int(block.forward_nfe.numpy()) == 3 * 4
    assert int(block.backward_nfe.numpy()) == 0
    assert int(_CALLS.numpy()) == forward_calls  # backprop re-evaluates nothing


@pytest.mark.parametrize(
    "solver",
    [_rk4(3), SolverConfig(rtol=1e-3, atol=1e-4, adjoint_norm="full")],
    ids=["rk4", "dopri5"],
)
def test_config_round_trip_gives_the_same_output(solver):
    block = ODEBlock(_conv_dynamics(), t0=0.5, t1=-0.25, solver=solver)
    x = _input()
    y = block(x)
    config = block.get_config()
    assert config["t0"] == 0.5 and config["t1"] == -0.25
    for clone in (
        ODEBlock.from_config(config),
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(block)
        ),
    ):
        assert isinstance(clone.dynamics, ConvODEFunc)
        assert clone.solver == solver and clone.get_config() == config
        if not clone.built:  # deserialisation also restores the build
            clone.build(x.shape)
        clone.set_weights(block.get_weights())
        np.testing.assert_array_equal(clone(x).numpy(), y.numpy())


def test_saved_model_file_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE[1:])
    outputs = ODEBlock(ConvODEFunc(4, groups=2), solver=_rk4(2))(inputs)
    model = keras.Model(inputs, outputs)
    x = _input()
    path = str(tmp_path / "block.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored(x).numpy(), model(x).numpy())


def test_works_inside_tf_function_with_tolerance_override():
    block = ODEBlock(_conv_dynamics(), solver=SolverConfig(rtol=1e-5, atol=1e-5))
    x = _input()
    eager = block(x).numpy()
    eager_nfe = int(block.forward_nfe.numpy())
    assert eager_nfe > 0

    @tf.function(autograph=False)
    def run(x, tol):
        return block(x, rtol=tol, atol=tol)

    compiled = run(x, tf.constant(1e-5)).numpy()  # the config's tolerances
    compiled_nfe = int(block.forward_nfe.numpy())
    loose = run(x, tf.constant(1e-2)).numpy()  # same trace, looser tolerances
    loose_nfe = int(block.forward_nfe.numpy())
    assert run.experimental_get_tracing_count() == 1
    assert 0 < loose_nfe < compiled_nfe
    # Graph and eager float32 arithmetic differ in rounding, which can move step
    # acceptances: the two agree to the solution's accuracy (~1e-3 here).
    np.testing.assert_allclose(compiled, eager, atol=1e-2)
    # The loose solve is still a solve: far closer to the flow than the input is.
    displacement = np.abs(eager - x.numpy()).mean()
    assert np.abs(loose - eager).mean() < 0.1 * displacement


def test_keras_fit_one_step_with_the_adjoint():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    block = ODEBlock(
        ConvODEFunc(4, groups=2), solver=SolverConfig(rtol=1e-2, atol=1e-2)
    )
    h = keras.layers.GlobalAveragePooling2D()(block(h))
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 6, 1)).astype("float32")
    y = np.array([0, 1, 2, 1])
    before = [v.numpy().copy() for v in block.trainable_variables]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # one step
    assert np.isfinite(history.history["loss"][0])
    for b, v in zip(before, block.trainable_variables, strict=True):
        after = v.numpy()
        assert np.isfinite(after).all() and np.abs(after - b).max() > 0, v.path
    assert int(block.forward_nfe.numpy()) > 0 and int(block.backward_nfe.numpy()) > 0
