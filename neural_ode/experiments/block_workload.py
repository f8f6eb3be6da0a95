"""The ODE-Net block training step shared by the block benchmark and the memory
experiment: by default random 6x6x64 states, a pooled linear read-out and a mean
softmax cross-entropy, so the adjoint has the magnitude it has in MNIST training;
or a trained ODE-Net's dynamics, stem features of real images, head and labels
(`TrainedBlock`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import keras
import tensorflow as tf

from neural_ode.dynamics import ConvODEFunc
from neural_ode.ode_block import ODEBlock
from neural_ode.solver import SolverConfig


class TrainedBlock(NamedTuple):
    """A trained ODE-Net's block workload.

    Attributes:
        dynamics: The trained (built) dynamics layer.
        state: `[batch, 6, 6, 64]` stem features of real images.
        head: Maps the block's output to logits (the model's head).
        labels: int `[batch]`, the images' labels.
    """

    dynamics: keras.layers.Layer
    state: tf.Tensor
    head: Callable[[tf.Tensor], tf.Tensor]
    labels: tf.Tensor


def make_block_workload(
    solver: SolverConfig,
    batch_size: int,
    t1: float = 1.0,
    seed: int = 0,
    trained: TrainedBlock | None = None,
) -> tuple[ODEBlock, tf.Tensor, Callable[[tf.Tensor], list[tf.Tensor]]]:
    """Returns `(block, state, train_step)`; `train_step(state)` gives gradients.

    Args:
        solver: The block's solver.
        batch_size: Batch of the 6x6x64 state (ignored with `trained`).
        t1: Integration end (from t0 = 0).
        seed: Seed of the weights, state, read-out and labels.
        trained: Use a trained model's dynamics, features, head and labels.
    """
    keras.utils.set_random_seed(seed)
    if trained is None:
        state = tf.random.normal([batch_size, 6, 6, 64])
        readout = tf.random.normal([64, 10]) * 0.1
        labels = tf.random.uniform([batch_size], 0, 10, tf.int32)
        dynamics = ConvODEFunc(64)

        def head(out):
            return tf.reduce_mean(tf.nn.relu(out), axis=[1, 2]) @ readout

    else:
        state, labels, dynamics, head = (
            trained.state,
            trained.labels,
            trained.dynamics,
            trained.head,
        )
    block = ODEBlock(dynamics, t0=0.0, t1=t1, solver=solver)
    block.build(state.shape)

    @tf.function
    def train_step(h):
        with tf.GradientTape() as tape:
            out = block(h)
            logits = head(out)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        return tape.gradient(loss, block.trainable_variables)

    return block, state, train_step
