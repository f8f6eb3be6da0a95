"""The four MNIST classifiers of Table 1: 1-layer MLP, ResNet, RK-Net, ODE-Net.

Architecture as the authors' `odenet_mnist` code: a downsampling stem (3x3 conv to
64 channels, then two 4x4 stride-2 convs with group norm and ReLU, 28 -> 26 -> 13
-> 6), a feature part on the 6x6x64 state, and a head (group norm, ReLU, global
average pool, dense 10). The feature part is six residual blocks (ResNet), one
ODE block integrated with dopri5 and adjoint gradients (ODE-Net), or the same ODE
block integrated by a fixed-grid Runge-Kutta method differentiated by backprop
(RK-Net). The MLP has one hidden layer of 300 units (0.24M parameters).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from neural_ode.dynamics import ConvODEFunc, GroupNorm
from neural_ode.ode_block import ODEBlock
from neural_ode.solver import SolverConfig

MODELS = ("mlp", "resnet", "rknet", "odenet")
# Row names of Table 1 in `common.published`.
TABLE1_ROWS = {
    "mlp": "1-Layer MLP",
    "resnet": "ResNet",
    "rknet": "RK-Net",
    "odenet": "ODE-Net",
}
CHANNELS = 64
NUM_RESBLOCKS = 6


@keras.saving.register_keras_serializable(package="neural_ode")
class ResBlock(keras.layers.Layer):
    """Pre-activation residual block: x + conv(relu(gn(conv(relu(gn(x))))))."""

    def __init__(self, channels: int = CHANNELS, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        groups = min(32, channels)
        self.norm1 = GroupNorm(groups)
        self.conv1 = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)
        self.norm2 = GroupNorm(groups)
        self.conv2 = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)

    def call(self, x):
        out = self.conv1(tf.nn.relu(self.norm1(x)))
        out = self.conv2(tf.nn.relu(self.norm2(out)))
        return x + out

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _stem() -> list[keras.layers.Layer]:
    return [
        keras.layers.Conv2D(CHANNELS, 3, name="stem_conv1"),
        GroupNorm(32, name="stem_norm1"),
        keras.layers.ReLU(),
        keras.layers.ZeroPadding2D(1),
        keras.layers.Conv2D(CHANNELS, 4, strides=2, name="stem_conv2"),
        GroupNorm(32, name="stem_norm2"),
        keras.layers.ReLU(),
        keras.layers.ZeroPadding2D(1),
        keras.layers.Conv2D(CHANNELS, 4, strides=2, name="stem_conv3"),
    ]


def _head() -> list[keras.layers.Layer]:
    return [
        GroupNorm(32, name="head_norm"),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, name="logits"),
    ]


def build_model(
    name: str, solver: SolverConfig | None = None, rk_steps: int = 5
) -> keras.Sequential:
    """One of the Table 1 classifiers, built for 28x28x1 inputs, returning logits.

    Args:
        name: "mlp", "resnet", "rknet" or "odenet".
        solver: Solver of the ODE-Net block (default dopri5, rtol = atol = 1e-3,
            adjoint). Ignored by the other models.
        rk_steps: Fixed RK4 steps over t = 0..1 of the RK-Net (4 evaluations each).

    Returns:
        A built `keras.Sequential`; for ODE-Net and RK-Net the block is the layer
        named "ode_block".
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
    inputs = keras.Input((28, 28, 1))
    if name == "mlp":
        layers = [
            keras.layers.Flatten(),
            keras.layers.Dense(300, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ]
    elif name == "resnet":
        layers = (
            _stem() + [ResBlock(name=f"res{i}") for i in range(NUM_RESBLOCKS)] + _head()
        )
    else:
        if name == "rknet":
            block_solver = SolverConfig(
                method="rk4", gradient="backprop", steps_per_interval=rk_steps
            )
        else:
            block_solver = solver or SolverConfig()
        block = ODEBlock(ConvODEFunc(CHANNELS), solver=block_solver, name="ode_block")
        layers = _stem() + [block] + _head()
    model = keras.Sequential([inputs] + layers, name=name)
    return model


def ode_block_of(model: keras.Model) -> ODEBlock | None:
    """The model's ODE block, or None (MLP, ResNet)."""
    for layer in model.layers:
        if isinstance(layer, ODEBlock):
            return layer
    return None
