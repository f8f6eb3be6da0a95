"""The sinusoid oracle: a regressor given the task's amplitude and phase as inputs.

Finn et al. 2017, section 5.1, compare MAML with "an oracle which receives the true
amplitude and phase as input" (Fig. 3 plots it; no number is printed). The official
code (github.com/cbfinn/maml, main.py, `--baseline=oracle`) appends the raw
amplitude and phase to every input x, so the network reads (x, A, phase) (3 inputs),
and trains it like the "pretrained" baseline: plain regression on the K support
points of every task of the meta-batch, for the MAML budget (`pretrain_iterations +=
metatrain_iterations`), then fine-tunes it at test time like that baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from maml import tasks

ORACLE_INPUTS = 3  # x, amplitude, phase


def oracle_inputs(x: tf.Tensor, amplitude: tf.Tensor, phase: tf.Tensor) -> tf.Tensor:
    """`[T, N, 1]` inputs -> `[T, N, 3]`: each point with its task's A and phase."""
    n = tf.shape(x)[1]
    amp = tf.tile(tf.cast(amplitude, x.dtype)[:, None, None], [1, n, 1])
    ph = tf.tile(tf.cast(phase, x.dtype)[:, None, None], [1, n, 1])
    return tf.concat([x, amp, ph], axis=-1)


def oracle_batch(batch: tasks.RegressionBatch) -> tasks.RegressionBatch:
    """The same tasks with the oracle's inputs (targets unchanged)."""
    return batch._replace(
        support_x=oracle_inputs(batch.support_x, batch.amplitude, batch.phase),
        query_x=oracle_inputs(batch.query_x, batch.amplitude, batch.phase),
    )


def oracle_sampler(
    num_tasks: int,
    num_support: int,
    num_query: int,
) -> Callable[[tf.Tensor], tasks.RegressionBatch]:
    """A task sampler (seed -> batch) for `MetaTrainer`, with oracle inputs."""

    def sample(seed: tf.Tensor) -> tasks.RegressionBatch:
        return oracle_batch(
            tasks.sample_sinusoid_tasks(seed, num_tasks, num_support, num_query)
        )

    return sample
