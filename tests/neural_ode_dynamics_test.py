"""`neural_ode.dynamics`: GroupNorm, ConcatConv2D, ConvODEFunc and MLPODEFunc
against NumPy references and explicit (materialised) time-concatenated convolutions.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from neural_ode import dynamics


def _group_norm_reference(x, groups, gamma, beta, epsilon):
    """Per sample and per group of channels: mean/variance over the spatial axes and
    the group's channels (biased variance), then a per-channel affine map."""
    n, c = x.shape[0], x.shape[-1]
    grouped = x.reshape(n, -1, groups, c // groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    var = grouped.var(axis=(1, 3), keepdims=True)
    return ((grouped - mean) / np.sqrt(var + epsilon)).reshape(x.shape) * gamma + beta


def _random_input(rng, shape):
    # Channels with different offsets and scales, so normalisation matters.
    c = shape[-1]
    return rng.normal(size=shape) * rng.uniform(0.5, 3.0, c) + rng.normal(0, 2, c)


@pytest.mark.parametrize(
    "shape", [(3, 5, 4, 8), (4, 6, 8), (5, 8)], ids=["nhwc", "nlc", "nc"]
)
@pytest.mark.parametrize("groups", [1, 4, 8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_group_norm_matches_numpy(shape, groups, dtype):
    rng = np.random.default_rng(groups)
    x = _random_input(rng, shape)
    layer = dynamics.GroupNorm(groups, epsilon=1e-3, dtype=dtype)
    layer.build(shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    out = keras.ops.convert_to_numpy(layer(x.astype(dtype)))
    expected = _group_norm_reference(x, groups, gamma, beta, 1e-3)
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


def test_group_norm_initial_affine_is_identity_and_output_is_normalised():
    rng = np.random.default_rng(0)
    x = _random_input(rng, (2, 4, 4, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(dynamics.GroupNorm(3)(x))
    grouped = out.reshape(2, 16, 3, 2)
    np.testing.assert_allclose(grouped.mean(axis=(1, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(grouped.var(axis=(1, 3)), 1.0, atol=1e-3)


def test_group_norm_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="do not divide"):
        dynamics.GroupNorm(3).build((1, 4, 4, 8))


def _explicit_concat_conv(layer, t, h):
    """conv2d over the materialised 65-channel [t plane, h] input, full kernel."""
    plane = tf.fill(tf.concat([tf.shape(h)[:3], [1]], 0), tf.cast(t, h.dtype))
    stacked = tf.concat([plane, h], axis=-1)
    return tf.nn.conv2d(stacked, layer.kernel, 1, "SAME") + layer.bias


@pytest.mark.parametrize("t", [0.0, 0.37, -2.5])
def test_concat_conv_equals_conv_over_concatenation(t):
    layer = dynamics.ConcatConv2D(64)
    layer.build((2, 6, 7, 64))
    assert tuple(layer.kernel.shape) == (3, 3, 65, 64)
    assert tuple(layer.bias.shape) == (64,)
    # Fan-in uniform initialisation over the 65 * 9 inputs (PyTorch's default).
    bound = 1 / np.sqrt(65 * 9)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound
    # A non-zero bias, so that it is checked too.
    layer.bias.assign(np.random.default_rng(1).normal(size=64).astype("float32"))
    h = tf.random.stateless_normal((2, 6, 7, 64), seed=(1, 2))
    expected = _explicit_concat_conv(layer, t, h)
    # A float64 time (as odeint passes for float64 states) is cast to h's dtype.
    for time in (tf.constant(t), tf.constant(t, tf.float64)):
        np.testing.assert_allclose(
            layer(time, h).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5
        )


def test_concat_conv_is_affine_in_time_with_zero_padded_time_plane():
    """d out / dt is the convolution of a ones plane with the time kernel slice:
    the border pixels see fewer kernel taps (SAME zero padding of the t plane)."""
    layer = dynamics.ConcatConv2D(3, kernel_size=3, dtype="float64")
    layer.build((1, 4, 4, 2))
    h = tf.random.stateless_normal((1, 4, 4, 2), seed=(3, 4), dtype=tf.float64)

    def at(t):
        return layer(tf.constant(t, tf.float64), h).numpy()[0]

    slope = at(1.0) - at(0.0)
    k_t = keras.ops.convert_to_numpy(layer.kernel)[:, :, 0, :]  # [3, 3, filters]
    np.testing.assert_allclose(slope[1, 1], k_t.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(slope[0, 0], k_t[1:, 1:].sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(at(2.5) - at(1.0), 1.5 * slope, rtol=1e-12)


def test_conv_ode_func_parameter_count_for_64_channels():
    func = dynamics.ConvODEFunc(64)
    func.build((), (None, 7, 7, 64))
    # Three group norms (gamma, beta per channel) and two 3x3 convolutions over
    # 64 + 1 (time) input channels with 64 filters and biases.
    norms = 3 * (64 + 64)
    convs = 2 * (3 * 3 * (64 + 1) * 64 + 64)
    assert norms + convs == 75_392
    assert func.count_params() == 75_392
    assert len(func.trainable_variables) == 10
    assert func.groups == 32 and dynamics.ConvODEFunc(16).groups == 16


def test_conv_ode_func_matches_explicit_composition():
    """GN, ReLU, concat-conv, GN, ReLU, concat-conv, GN, built from references."""
    channels, groups = 8, 4
    func = dynamics.ConvODEFunc(channels, groups=groups)
    func.build((), (2, 5, 5, channels))
    rng = np.random.default_rng(5)
    for norm in (func.norm1, func.norm2, func.norm3):
        norm.gamma.assign(rng.normal(size=channels).astype("float32"))
        norm.beta.assign(rng.normal(size=channels).astype("float32"))
    h = _random_input(rng, (2, 5, 5, channels)).astype("float32")
    t = 0.6

    def gn(x, norm):
        return _group_norm_reference(
            x,
            groups,
            keras.ops.convert_to_numpy(norm.gamma),
            keras.ops.convert_to_numpy(norm.beta),
            1e-5,
        )

    def conv(x, layer):
        return _explicit_concat_conv(layer, t, tf.constant(x, tf.float32)).numpy()

    out = np.maximum(gn(h, func.norm1), 0)
    out = conv(out, func.conv1)
    out = np.maximum(gn(out, func.norm2), 0)
    out = conv(out, func.conv2)
    expected = gn(out, func.norm3)
    got = keras.ops.convert_to_numpy(func(tf.constant(t), tf.constant(h)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _mlp_reference(func, t, z):
    x = z
    for layer in func.hidden:
        if func.time_input:
            x = np.concatenate([x, np.full((len(x), 1), t)], axis=1)
        kernel, bias = (keras.ops.convert_to_numpy(v) for v in layer.weights)
        x = _elu(x @ kernel + bias)
    if func.time_input:
        x = np.concatenate([x, np.full((len(x), 1), t)], axis=1)
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in func.out.weights)
    return x @ kernel + bias


@pytest.mark.parametrize("time_input", [False, True])
def test_mlp_ode_func_matches_numpy_and_uses_time_only_if_asked(time_input):
    func = dynamics.MLPODEFunc(3, hidden_units=(6, 5), time_input=time_input)
    func.build((), (None, 3))
    rng = np.random.default_rng(2)
    for v in func.trainable_variables:  # non-zero biases too
        v.assign((rng.normal(size=v.shape) * 0.7).astype("float32"))
    z = rng.normal(size=(4, 3)).astype("float32")
    outputs = {}
    for t in (0.0, 1.3):
        got = keras.ops.convert_to_numpy(func(tf.constant(t), z))
        np.testing.assert_allclose(
            got, _mlp_reference(func, t, z), rtol=1e-5, atol=1e-5
        )
        outputs[t] = got
    differs = np.abs(outputs[0.0] - outputs[1.3]).max() > 1e-3
    assert differs == time_input
    extra = int(time_input)
    expected_params = (3 + extra) * 6 + 6 + (6 + extra) * 5 + 5 + (5 + extra) * 3 + 3
    assert func.count_params() == expected_params


@pytest.mark.parametrize(
    "layer",
    [
        dynamics.GroupNorm(4, epsilon=1e-4),
        dynamics.ConcatConv2D(5, kernel_size=5),
        dynamics.ConvODEFunc(16, groups=8),
        dynamics.MLPODEFunc(2, hidden_units=(7, 3), activation="tanh", time_input=True),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(restored) is type(layer) and restored.get_config() == config


@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_composite_dynamics_honour_a_float64_dtype(kind):
    if kind == "conv":
        func, h = (
            dynamics.ConvODEFunc(4, dtype="float64"),
            tf.ones((1, 3, 3, 4), tf.float64),
        )
    else:
        func, h = dynamics.MLPODEFunc(2, dtype="float64"), tf.ones((1, 2), tf.float64)
    out = func(tf.constant(0.5, tf.float64), h)
    assert out.dtype == tf.float64
    assert all(v.dtype == "float64" for v in func.weights)
