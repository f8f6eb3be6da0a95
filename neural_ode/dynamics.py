"""Dynamics functions f(t, h) that take time as an input.

`ConcatConv2D` is the paper's time-concatenated convolution: a 3x3 convolution over
the channels [t, h] (a constant plane of t stacked on the state). Because the
convolution is linear, conv([t, h]) = conv_h(h) + t * conv_t(ones); the second term
is one tiny convolution of a constant plane, so the 65-channel concat of every
evaluation is never materialised. The kernel is still one [3, 3, C + 1, C'] weight,
so parameter counts equal the paper's.

`GroupNorm` is group normalization (Wu & He 2018) written with reshapes and means;
`ConvODEFunc` is the ODE-Net dynamics: norm, ReLU, concat-conv, norm, ReLU,
concat-conv, norm. `MLPODEFunc` is a small time-concatenated MLP for low-dimensional
states (latent ODE, CNF targets).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="neural_ode")
class GroupNorm(keras.layers.Layer):
    """Group normalization over the last (channel) axis of NHWC or NC inputs.

    Args:
        groups: Number of channel groups; must divide the channel count.
        epsilon: Added to the group variance.
    """

    def __init__(self, groups: int = 32, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.groups:
            raise ValueError(f"{self.groups} groups do not divide {channels} channels")
        self.gamma = self.add_weight(
            shape=(channels,), initializer="ones", name="gamma"
        )
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        # Statistics go per channel first (reductions over contiguous spatial axes),
        # then per group on the small [N, C] tensors; the normalisation is one
        # broadcast multiply-add. Three times faster than a 5-D reshape on CPU.
        channels = x.shape[-1]
        spatial = list(range(1, x.shape.rank - 1))
        per_group = [-1, self.groups, channels // self.groups]

        def group_mean(per_channel):
            grouped = tf.reshape(per_channel, per_group)
            mean = tf.reduce_mean(grouped, axis=-1, keepdims=True)
            mean = tf.broadcast_to(mean, tf.shape(grouped))
            return tf.reshape(mean, [-1] + [1] * len(spatial) + [channels])

        def channel_mean(values):
            return tf.reduce_mean(values, axis=spatial) if spatial else values

        centred = x - group_mean(channel_mean(x))
        var = group_mean(channel_mean(tf.square(centred)))
        return centred * (tf.math.rsqrt(var + self.epsilon) * self.gamma) + self.beta

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="neural_ode")
class ConcatConv2D(keras.layers.Layer):
    """3x3 (by default) SAME convolution over the channels [t, h], NHWC.

    Args:
        filters: Output channels.
        kernel_size: Square kernel size.
    """

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size

    def build(self, input_shape):
        channels = input_shape[-1]
        fan_in = (channels + 1) * self.kernel_size**2
        bound = 1.0 / fan_in**0.5
        init = keras.initializers.RandomUniform(-bound, bound)
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, channels + 1, self.filters),
            initializer=init,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.filters,), initializer=init, name="bias"
        )

    def call(self, t, h):
        kernel = tf.convert_to_tensor(self.kernel)
        out = tf.nn.conv2d(h, kernel[:, :, 1:, :], 1, "SAME")
        plane = tf.ones(tf.concat([[1], tf.shape(h)[1:3], [1]], 0), h.dtype)
        time_map = tf.nn.conv2d(plane, kernel[:, :, :1, :], 1, "SAME")
        return out + tf.cast(t, h.dtype) * time_map + self.bias

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
        }


@keras.saving.register_keras_serializable(package="neural_ode")
class ConvODEFunc(keras.layers.Layer):
    """ODE-Net dynamics: GN, ReLU, ConcatConv, GN, ReLU, ConcatConv, GN.

    Args:
        channels: State channels (64 in the paper).
        groups: Group-norm groups (min(32, channels) in the paper's code).
    """

    def __init__(self, channels: int = 64, groups: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.groups = groups or min(32, channels)
        self.norm1 = GroupNorm(self.groups, name="norm1", dtype=self.dtype_policy)
        self.conv1 = ConcatConv2D(channels, name="conv1", dtype=self.dtype_policy)
        self.norm2 = GroupNorm(self.groups, name="norm2", dtype=self.dtype_policy)
        self.conv2 = ConcatConv2D(channels, name="conv2", dtype=self.dtype_policy)
        self.norm3 = GroupNorm(self.groups, name="norm3", dtype=self.dtype_policy)

    def build(self, t_shape, h_shape=None):
        h_shape = t_shape if h_shape is None else h_shape
        for layer in (self.norm1, self.conv1, self.norm2, self.conv2, self.norm3):
            layer.build(h_shape)

    def call(self, t, h):
        out = tf.nn.relu(self.norm1(h))
        out = self.conv1(t, out)
        out = tf.nn.relu(self.norm2(out))
        out = self.conv2(t, out)
        return self.norm3(out)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "groups": self.groups,
        }


@keras.saving.register_keras_serializable(package="neural_ode")
class MLPODEFunc(keras.layers.Layer):
    """Dynamics f(t, z) = W_out act(W_in [z, t] + b) + b', one or more hidden layers.

    Args:
        state_dim: Dimension of z (and of the output).
        hidden_units: Widths of the hidden layers.
        activation: Hidden activation.
        time_input: Concatenate t to the input of every layer (False: autonomous).
    """

    def __init__(
        self,
        state_dim: int,
        hidden_units: tuple[int, ...] = (20,),
        activation: str = "elu",
        time_input: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.state_dim = state_dim
        self.hidden_units = tuple(hidden_units)
        self.activation = activation
        self.time_input = time_input
        self.hidden = [
            keras.layers.Dense(
                units, activation=activation, name=f"hidden{i}", dtype=self.dtype_policy
            )
            for i, units in enumerate(self.hidden_units)
        ]
        self.out = keras.layers.Dense(state_dim, name="out", dtype=self.dtype_policy)

    def build(self, t_shape, z_shape=None):
        width = self.state_dim + int(self.time_input)
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units + int(self.time_input)
        self.out.build((None, width))

    def _with_time(self, t, x):
        if not self.time_input:
            return x
        column = tf.ones_like(x[..., :1]) * tf.cast(t, x.dtype)
        return tf.concat([x, column], axis=-1)

    def call(self, t, z):
        x = z
        for layer in self.hidden:
            x = layer(self._with_time(t, x))
        return self.out(self._with_time(t, x))

    def get_config(self):
        return {
            **super().get_config(),
            "state_dim": self.state_dim,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "time_input": self.time_input,
        }
