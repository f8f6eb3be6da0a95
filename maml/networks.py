"""Networks whose weights are explicit tensors.

MAML needs to evaluate a network at *fast weights* (the meta-parameters after a few
inner gradient steps) while keeping the graph from the meta-parameters to the fast
weights intact, so that the outer tape can differentiate through the inner updates.
Re-assigning Keras variables would cut that graph, so every network here is a pure
function `apply(params, x)` of an explicit parameter dictionary.

All networks are evaluated on a *batch of tasks* at once: every parameter carries a
leading task axis `[T, ...]` and inputs are `[T, N, ...]`. Meta-parameters without a
task axis are broadcast with `tile_params`. Batching the tasks turns the per-task
loop of the reference implementations into a handful of batched matmuls, which is
what makes a meta-iteration cheap on a CPU.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

Params = dict[str, tf.Tensor]


class FunctionalNetwork(abc.ABC):
    """A network defined by an initialiser and a pure apply function."""

    @abc.abstractmethod
    def init_params(self, seed: int, dtype: tf.DType = tf.float32) -> Params:
        """Returns freshly initialised parameters, without a task axis.

        Args:
            seed: Seed of the initialisation; the same seed gives the same values.
            dtype: Floating dtype of the parameters.
        """

    @abc.abstractmethod
    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """Evaluates the network for a batch of tasks.

        Args:
            params: Parameters with a leading task axis, `[T, ...]` each.
            x: Inputs `[T, N, ...]`, N examples for each of the T tasks.

        Returns:
            Outputs `[T, N, output_dim]`.
        """


def tile_params(params: Mapping[str, tf.Tensor], num_tasks: int | tf.Tensor) -> Params:
    """Gives every parameter a leading task axis of size `num_tasks`."""
    return {
        name: tf.tile(p[tf.newaxis], [num_tasks] + [1] * len(p.shape))
        for name, p in params.items()
    }


def truncated_normal(rng: np.random.Generator, shape: Sequence[int],
                     stddev: float) -> np.ndarray:
    """Normal samples redrawn until within two standard deviations (as TF's)."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class MLP(FunctionalNetwork):
    """Fully connected ReLU network, such as MAML's 1-40-40-1 sinusoid regressor.

    Weights are initialised as the official MAML code initialises its fully
    connected networks: truncated normal with standard deviation 0.01, zero biases.
    Hidden layers use ReLU; the output layer is linear.

    Args:
        layer_sizes: Widths from input to output, e.g. `(1, 40, 40, 1)`.
        init_stddev: Standard deviation of the truncated-normal weight init.
    """

    def __init__(self, layer_sizes: Sequence[int] = (1, 40, 40, 1),
                 init_stddev: float = 0.01):
        if len(layer_sizes) < 2 or any(int(s) <= 0 for s in layer_sizes):
            raise ValueError(
                f"layer_sizes must be >= 2 positive widths, got {layer_sizes}")
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        self.init_stddev = float(init_stddev)

    def __eq__(self, other) -> bool:
        return (isinstance(other, MLP) and self.layer_sizes == other.layer_sizes
                and self.init_stddev == other.init_stddev)

    def __hash__(self) -> int:
        return hash((MLP, self.layer_sizes, self.init_stddev))

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def init_params(self, seed: int, dtype: tf.DType = tf.float32) -> Params:
        rng = np.random.default_rng(seed)
        params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.layer_sizes[:-1],
                                                  self.layer_sizes[1:], strict=True)):
            params[f"w{i}"] = tf.constant(
                truncated_normal(rng, (fan_in, fan_out), self.init_stddev), dtype)
            params[f"b{i}"] = tf.zeros([fan_out], dtype)
        return params

    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        h = x
        for i in range(self.num_layers):
            # [T, N, in] @ [T, in, out] + [T, 1, out]
            h = tf.matmul(h, params[f"w{i}"]) + params[f"b{i}"][:, tf.newaxis, :]
            if i < self.num_layers - 1:
                h = tf.nn.relu(h)
        return h

    def num_parameters(self) -> int:
        """Number of scalar parameters."""
        sizes = self.layer_sizes
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
