"""Magnet loss (Rippel et al. 2016, eq. 4-5) as a serialisable Keras loss.

A magnet mini-batch holds M clusters of D examples each, laid out cluster-major:
rows `[m * D, (m + 1) * D)` of the embedding batch belong to cluster m. For every
example r_n the loss is

    { -log( exp(-|r_n - mu(r_n)|^2 / (2 sigma^2) - alpha)
            / sum_{mu : C(mu) != C(r_n)} exp(-|r_n - mu|^2 / (2 sigma^2)) ) }_+

where mu(r_n) is the in-batch mean of r_n's cluster, the sum runs over the in-batch
means of clusters of a different class ("impostor" clusters), and

    sigma^2 = sum_n |r_n - mu(r_n)|^2 / (N - 1),   N = M * D,

is the in-batch variance of examples around their cluster means. The batch loss is
the mean over the N examples (Keras' default `"sum_over_batch_size"` reduction).

Note on the variance normaliser: the paper divides squared distances by
2 sigma^2. Public implementations (for instance the widely copied TensorFlow and
PyTorch ports) compute `variance = sum / (N - 1)` and then use
`-1 / (2 * variance**2)`, i.e. they divide by 2 sigma^4. This module follows the
paper.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from magnet import global_batch

DEFAULT_EPSILON = 1e-8
"""Added to sigma^2 before dividing by it.

sigma^2 is exactly 0 when every example sits on its cluster mean, which always
happens for D = 1 and can happen for collapsed embeddings. With the epsilon the
loss stays finite: distances of 0 give exponent 0, and positive distances give
very negative exponents that the log-sum-exp handles without overflow.
"""


def check_positive_int(name: str, value: Any) -> int:
    """Returns `value` as an int, or raises ValueError unless it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


def _checked_inputs(
    embeddings: tf.Tensor, labels: tf.Tensor, batch_size: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Validates shapes statically where known and adds dynamic assertions.

    Args:
        embeddings: Embedding batch, expected `[batch_size, dim]`.
        labels: Class labels, expected `[batch_size]` or `[batch_size, 1]`.
        batch_size: The expected batch size M * D.

    Returns:
        The embeddings and the labels flattened to rank 1.

    Raises:
        ValueError: A statically known shape is wrong.
    """
    if embeddings.shape.rank is not None and embeddings.shape.rank != 2:
        raise ValueError(
            "Magnet loss expects embeddings of shape [M*D, dim], got "
            f"shape {embeddings.shape}."
        )
    rows = embeddings.shape[0] if embeddings.shape.rank is not None else None
    if rows is not None and rows != batch_size:
        raise ValueError(
            f"Magnet loss expects a batch of M*D = {batch_size} embeddings, got {rows}."
        )
    rank = labels.shape.rank
    if rank is not None:
        if rank == 2 and labels.shape[1] not in (None, 1):
            raise ValueError(
                "Magnet loss expects class labels of shape [M*D] or "
                f"[M*D, 1], got shape {labels.shape}."
            )
        if rank not in (1, 2):
            raise ValueError(
                "Magnet loss expects class labels of shape [M*D] or "
                f"[M*D, 1], got rank {rank} (shape {labels.shape})."
            )
        if labels.shape[0] is not None and labels.shape[0] != batch_size:
            raise ValueError(
                f"Magnet loss expects M*D = {batch_size} class labels, "
                f"got {labels.shape[0]}."
            )
    assertions = [
        tf.debugging.assert_rank(
            embeddings,
            2,
            message=("Magnet loss expects embeddings of shape [M*D, dim]."),
        ),
        tf.debugging.assert_equal(
            tf.shape(embeddings)[0],
            batch_size,
            message=(f"Magnet loss expects a batch of M*D = {batch_size} embeddings."),
        ),
        tf.debugging.assert_equal(
            tf.size(labels),
            batch_size,
            message=(f"Magnet loss expects M*D = {batch_size} class labels."),
        ),
        tf.debugging.assert_equal(
            tf.shape(labels)[0],
            batch_size,
            message=("Magnet loss expects class labels of shape [M*D] or [M*D, 1]."),
        ),
    ]
    with tf.control_dependencies(assertions):
        return tf.identity(embeddings), tf.reshape(labels, [batch_size])


def _checked_cluster_classes(
    labels: tf.Tensor, num_clusters: int, examples_per_cluster: int
) -> tf.Tensor:
    """Class of every cluster; checks clusters are pure and have impostors.

    Args:
        labels: `[M * D]` class labels in cluster-major order.
        num_clusters: M.
        examples_per_cluster: D.

    Returns:
        `[M]` class of each cluster.

    Raises:
        ValueError: Statically known labels mix classes inside a cluster, or all
            clusters have one class (so no example has an impostor cluster).
    """
    grouped = tf.reshape(labels, [num_clusters, examples_per_cluster])
    cluster_classes = grouped[:, 0]
    static = tf.get_static_value(grouped)
    if static is not None:
        if np.any(static != static[:, :1]):
            raise ValueError(
                "Magnet loss expects the D labels of each cluster to be "
                "equal (cluster-major batch order)."
            )
        if np.all(static[:, 0] == static[0, 0]):
            raise ValueError(
                "Magnet loss needs clusters of at least two classes: "
                "every cluster has the same class, so no impostors."
            )
        return cluster_classes
    assertions = [
        tf.debugging.assert_equal(
            grouped,
            tf.broadcast_to(grouped[:, :1], tf.shape(grouped)),
            message=("Magnet loss expects the D labels of each cluster to be equal."),
        ),
        tf.debugging.Assert(
            tf.reduce_any(tf.not_equal(cluster_classes, cluster_classes[0])),
            ["Magnet loss needs clusters of at least two classes (no impostors)."],
        ),
    ]
    with tf.control_dependencies(assertions):
        return tf.identity(cluster_classes)


def magnet_loss_terms(
    embeddings: tf.Tensor,
    labels: tf.Tensor,
    num_clusters: int,
    examples_per_cluster: int,
    alpha: float = 1.0,
    epsilon: float = DEFAULT_EPSILON,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-example magnet losses, the batch variance and the cluster means.

    Distances are computed from explicit differences (memory O(N * M * dim)),
    which keeps them exact for far-from-origin embeddings and tiny variances.

    Args:
        embeddings: `[M * D, dim]` embeddings in cluster-major order.
        labels: `[M * D]` (or `[M * D, 1]`) class labels; cluster m is the class
            of its rows, and clusters of other classes are its impostors.
        num_clusters: M, the number of clusters in the batch.
        examples_per_cluster: D, the number of examples per cluster.
        alpha: The separation margin alpha.
        epsilon: Added to sigma^2 in the normaliser 1 / (2 (sigma^2 + epsilon));
            see `DEFAULT_EPSILON`.

    Returns:
        `(per_example_losses [M * D], sigma2 [], cluster_means [M, dim])`, where
        sigma2 is the variance estimate without epsilon. Non-float embeddings are
        cast to float32; the outputs have the embeddings' float dtype.

    Raises:
        ValueError: A static shape is wrong, or labels known at trace time are not
            constant within clusters or are all one class. With dynamic shapes or
            labels the same conditions fail `tf.debugging` assertions.
    """
    m = check_positive_int("num_clusters", num_clusters)
    d = check_positive_int("examples_per_cluster", examples_per_cluster)
    if not math.isfinite(float(alpha)):
        raise ValueError(f"alpha must be finite, got {alpha!r}.")
    if not float(epsilon) >= 0.0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}.")
    n = m * d
    embeddings = tf.convert_to_tensor(embeddings)
    if not embeddings.dtype.is_floating:
        embeddings = tf.cast(embeddings, tf.float32)
    dtype = embeddings.dtype
    labels = tf.convert_to_tensor(labels)
    embeddings, labels = _checked_inputs(embeddings, labels, n)
    cluster_classes = _checked_cluster_classes(labels, m, d)

    grouped = tf.reshape(embeddings, [m, d, -1])
    means = tf.reduce_mean(grouped, axis=1)
    own = tf.reshape(
        tf.reduce_sum(tf.square(grouped - means[:, None, :]), axis=-1), [n]
    )
    sigma2 = tf.reduce_sum(own) / tf.cast(max(n - 1, 1), dtype)
    to_means = tf.reduce_sum(
        tf.square(embeddings[:, None, :] - means[None, :, :]), axis=-1
    )
    scale = 1.0 / (2.0 * (sigma2 + tf.constant(epsilon, dtype)))

    impostor = tf.not_equal(labels[:, None], cluster_classes[None, :])
    logits = tf.where(
        impostor,
        -scale * to_means,
        tf.constant(-np.inf, dtype) * tf.ones_like(to_means),
    )
    log_denominator = tf.reduce_logsumexp(logits, axis=1)
    # -log(exp(-own * scale - alpha) / denominator), clipped at zero.
    losses = tf.nn.relu(scale * own + tf.constant(alpha, dtype) + log_denominator)
    return losses, sigma2, means


@keras.saving.register_keras_serializable(package="magnet")
class MagnetLoss(keras.losses.Loss):
    """Magnet loss over a cluster-major batch of M clusters with D examples each.

    Call it as `loss(y_true, y_pred)` with `y_pred` the `[M * D, dim]` embeddings
    (D consecutive rows per cluster) and `y_true` the `[M * D]` class labels.
    The default reduction averages the per-example losses, as in the paper.

    The normaliser is 1 / (2 sigma^2) as in the paper, not the 1 / (2 sigma^4) of
    common public implementations; see the module docstring. `epsilon` is added to
    sigma^2 so the loss stays finite when sigma^2 = 0 (e.g. D = 1).

    Args:
        num_clusters: M, clusters per batch (>= 2 for impostors to exist).
        examples_per_cluster: D, examples per cluster.
        alpha: Separation margin alpha.
        epsilon: Added to sigma^2 in the normaliser.
        reduction: Keras reduction of the per-example losses.
        name: Loss name.
        dtype: Computation dtype (Keras casts both inputs to it, so integer
            labels arrive as floats; equality of small integers is exact).
    """

    def __init__(
        self,
        num_clusters: int,
        examples_per_cluster: int,
        alpha: float = 1.0,
        epsilon: float = DEFAULT_EPSILON,
        reduction: str | None = "sum_over_batch_size",
        name: str = "magnet_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_clusters = check_positive_int("num_clusters", num_clusters)
        self.examples_per_cluster = check_positive_int(
            "examples_per_cluster", examples_per_cluster
        )
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        if not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be finite, got {alpha!r}.")
        if not self.epsilon >= 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}.")

    @property
    def batch_size(self) -> int:
        """N = M * D, the batch size the loss accepts."""
        return self.num_clusters * self.examples_per_cluster

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Per-example losses `[M * D]`; Keras applies the reduction.

        Inside a replica of a `tf.distribute` strategy the batch is first
        gathered from all replicas (`magnet.global_batch`).
        """
        y_pred, y_true = global_batch.gather_global_batch(y_pred, y_true)
        losses, _, _ = magnet_loss_terms(
            y_pred,
            y_true,
            self.num_clusters,
            self.examples_per_cluster,
            self.alpha,
            self.epsilon,
        )
        return losses

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for `keras.saving.serialize_keras_object`."""
        config = super().get_config()
        config.update(
            num_clusters=self.num_clusters,
            examples_per_cluster=self.examples_per_cluster,
            alpha=self.alpha,
            epsilon=self.epsilon,
            dtype=self.dtype,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MagnetLoss:
        """Rebuilds the loss from `get_config()` output."""
        return cls(**config)
