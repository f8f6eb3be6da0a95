"""What `keras.Model.fit` learns about each magnet mini-batch, and the paper's sigma^2.

`fit` hides the forward pass of a training step, but it hands the step's
`(y_true, y_pred)` to every compiled metric. `MagnetBatchStats` is such a metric:
it recomputes, from the step's own training-mode embeddings, the per-example
magnet losses and the batch variance estimate

    sigma^2_batch = sum_n |r_n - mu(r_n)|^2 / (N - 1)

(the same `magnet.loss.magnet_loss_terms` the loss uses), and keeps the last
batch's values in non-trainable variables. Its result is sigma^2_batch, so `fit`
logs it as `sigma2`. `magnet.sampler.LossRecorderCallback` reads the losses from it
(no extra forward pass), and `Sigma2RunningAverage` averages sigma^2_batch.

The paper's evaluation rule (Rippel et al. 2016, Section 3.4) weighs cluster
centres by exp(-|r - mu|^2 / (2 sigma^2)) with sigma^2 "the running average of the
stochastic variance estimates" of training. The paper gives no averaging window;
`Sigma2RunningAverage` keeps an exponential moving average

    a_1 = s_1,   a_t = decay * a_{t-1} + (1 - decay) * s_t,

(the usual meaning of a running average in training code, e.g. batch-norm
statistics), or with `decay=None` the arithmetic mean of all estimates so far.
This project's other rule recomputes sigma^2 over the whole training set around
the k-means centres (`magnet.cluster_index.ClusterState.sigma2`); experiments
report both.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from magnet import global_batch
from magnet import loss as loss_lib

DEFAULT_DECAY = 0.99
"""Decay of the running average: a time constant of about 100 training steps."""


@keras.saving.register_keras_serializable(package="magnet")
class MagnetBatchStats(keras.metrics.Metric):
    """The last magnet batch's per-example losses and variance estimate.

    Compile it next to the `MagnetLoss` with the same M, D and alpha:
    `model.compile(loss=loss, metrics=[MagnetBatchStats.like(loss)])`.

    Keras resets metrics at the start of every epoch; this one only holds the
    last batch, so a reset changes nothing that is read afterwards.

    Args:
        num_clusters: M.
        examples_per_cluster: D.
        alpha: The loss's margin alpha.
        epsilon: The loss's epsilon.
        embedding_dim: If given, the batch's embeddings are kept too (in
            `embeddings`, `[M * D, embedding_dim]`), for the sampler's
            embedding cache.
        name: Metric name (the key of sigma^2 in `fit`'s logs).
    """

    def __init__(
        self,
        num_clusters: int,
        examples_per_cluster: int,
        alpha: float = 1.0,
        epsilon: float = loss_lib.DEFAULT_EPSILON,
        embedding_dim: int | None = None,
        name: str = "sigma2",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.num_clusters = loss_lib.check_positive_int("num_clusters", num_clusters)
        self.examples_per_cluster = loss_lib.check_positive_int(
            "examples_per_cluster", examples_per_cluster
        )
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        n = self.num_clusters * self.examples_per_cluster
        self.example_losses = self.add_variable(
            shape=(n,),
            initializer="zeros",
            dtype="float32",
            aggregation="only_first_replica",
            name="losses",
        )
        self.batch_sigma2 = self.add_variable(
            shape=(),
            initializer="zeros",
            dtype="float32",
            aggregation="only_first_replica",
            name="batch_sigma2",
        )
        self.batches = self.add_variable(
            shape=(),
            initializer="zeros",
            dtype="int64",
            aggregation="only_first_replica",
            name="batches",
        )
        self.embedding_dim = embedding_dim
        self.embeddings = None
        if embedding_dim is not None:
            self.embeddings = self.add_variable(
                shape=(n, loss_lib.check_positive_int("embedding_dim", embedding_dim)),
                initializer="zeros",
                dtype="float32",
                aggregation="only_first_replica",
                name="embeddings",
            )

    @classmethod
    def like(cls, loss: loss_lib.MagnetLoss, **kwargs: Any) -> MagnetBatchStats:
        """A metric with the loss's M, D, alpha and epsilon."""
        return cls(
            loss.num_clusters,
            loss.examples_per_cluster,
            loss.alpha,
            loss.epsilon,
            **kwargs,
        )

    def update_state(
        self,
        y_true: tf.Tensor,
        y_pred: tf.Tensor,
        sample_weight: tf.Tensor | None = None,
    ) -> None:
        """Stores the batch's per-example losses and sigma^2 (weights ignored)."""
        del sample_weight
        y_pred, y_true = global_batch.gather_global_batch(y_pred, y_true)
        losses, sigma2, _ = loss_lib.magnet_loss_terms(
            tf.stop_gradient(y_pred),
            y_true,
            self.num_clusters,
            self.examples_per_cluster,
            self.alpha,
            self.epsilon,
        )
        self.example_losses.assign(tf.cast(losses, "float32"))
        self.batch_sigma2.assign(tf.cast(sigma2, "float32"))
        self.batches.assign_add(1)
        if self.embeddings is not None:
            self.embeddings.assign(tf.cast(tf.stop_gradient(y_pred), "float32"))

    def result(self) -> tf.Tensor:
        """sigma^2 of the last batch."""
        return tf.convert_to_tensor(self.batch_sigma2)

    def reset_state(self) -> None:
        """Keeps the last batch (its values are replaced by the next update)."""

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        config = super().get_config()
        config.update(
            num_clusters=self.num_clusters,
            examples_per_cluster=self.examples_per_cluster,
            alpha=self.alpha,
            epsilon=self.epsilon,
            embedding_dim=self.embedding_dim,
        )
        return config


def running_average(
    estimates: np.ndarray, decay: float | None = DEFAULT_DECAY
) -> float:
    """The running average of a sequence of sigma^2 estimates, in one go.

    Args:
        estimates: sigma^2_batch of steps 1..T, in order.
        decay: EMA decay, or None for the arithmetic mean.

    Returns:
        a_T (see the module docstring); NaN for an empty sequence.
    """
    values = np.asarray(estimates, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return float("nan")
    if decay is None:
        return float(np.mean(values))
    average = values[0]
    for value in values[1:]:
        average = decay * average + (1.0 - decay) * value
    return float(average)


class Sigma2RunningAverage(keras.callbacks.Callback):
    """Running average of the training batches' sigma^2 (the paper's rule).

    After every training batch, reads sigma^2_batch from the model's
    `MagnetBatchStats` metric (or from `logs[key]`) and updates the average. The
    state lives in two tf.Variables (`average`, `count`), so it can be
    checkpointed with the model and restored on resume.

    Args:
        stats: The compiled `MagnetBatchStats`; None reads `logs[key]`.
        decay: EMA decay in [0, 1), or None for the arithmetic mean.
        key: Log key of sigma^2 when `stats` is None.
    """

    def __init__(
        self,
        stats: MagnetBatchStats | None = None,
        decay: float | None = DEFAULT_DECAY,
        key: str = "sigma2",
    ) -> None:
        super().__init__()
        if decay is not None and not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1) or None, got {decay!r}.")
        self.stats = stats
        self.decay = decay
        self.key = key
        self.average = tf.Variable(
            0.0, dtype=tf.float64, trainable=False, name="sigma2_running_average"
        )
        self.count = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="sigma2_estimates"
        )

    @property
    def value(self) -> float:
        """The current average (NaN before the first estimate)."""
        return float(self.average.numpy()) if int(self.count.numpy()) else float("nan")

    def update(self, estimate: float) -> None:
        """Folds one sigma^2 estimate into the average."""
        estimate = float(estimate)
        count = int(self.count.numpy())
        old = float(self.average.numpy())
        if count == 0:
            new = estimate
        elif self.decay is None:
            new = old + (estimate - old) / (count + 1)
        else:
            new = self.decay * old + (1.0 - self.decay) * estimate
        self.average.assign(new)
        self.count.assign(count + 1)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Reads this batch's sigma^2 and updates the average."""
        if self.stats is not None:
            estimate = float(self.stats.batch_sigma2.numpy())
        else:
            estimate = float((logs or {})[self.key])
        self.update(estimate)
