"""Triplet loss with semi-hard negative mining over all pairs of a batch (FaceNet).

Schroff et al. 2015 train on triplets (anchor a, positive p, negative n) with

    [ d(a, p) - d(a, n) + margin ]_+ ,   d = squared Euclidean distance,

on L2-normalised embeddings. Mining happens inside the batch: every ordered pair
(a, p) of distinct examples of one class is an anchor-positive pair, and its
negative is *semi-hard*: the closest negative that is still farther from the
anchor than the positive, i.e. the n with the smallest d(a, n) > d(a, p). When no
negative is farther than the positive, the farthest negative is used (the least
violating one), the usual fallback of in-batch semi-hard mining. The batch loss
is the mean over all anchor-positive pairs whose anchor has at least one negative
in the batch.

The selection is a masked min / max over a `[B, B, B]` tensor (memory O(B^3),
about 0.5 MB for B = 48), and gradients flow through the selected distances
only. Written from the paper's description; TensorFlow Addons, which used to
provide this loss, is no longer maintained.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from magnet import global_batch

DEFAULT_MARGIN = 0.2
"""FaceNet's margin alpha for L2-normalised embeddings."""


def pairwise_distances(embeddings: tf.Tensor, squared: bool = True) -> tf.Tensor:
    """`[B, B]` (squared) Euclidean distances from explicit differences.

    Args:
        embeddings: `[B, dim]` embeddings.
        squared: Return squared distances; otherwise their square roots (with
            the argument clamped at 1e-12 so the gradient stays finite).
    """
    diff = embeddings[:, None, :] - embeddings[None, :, :]
    dist = tf.reduce_sum(tf.square(diff), axis=-1)
    if squared:
        return dist
    return tf.sqrt(tf.maximum(dist, tf.constant(1e-12, dist.dtype)))


def semi_hard_triplet_terms(
    embeddings: tf.Tensor,
    labels: tf.Tensor,
    margin: float = DEFAULT_MARGIN,
    squared: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per anchor-positive pair losses with their semi-hard negatives.

    Args:
        embeddings: `[B, dim]` embeddings (normalise them first for FaceNet's
            setting).
        labels: `[B]` (or `[B, 1]`) class labels.
        margin: The margin alpha.
        squared: Use squared Euclidean distances (FaceNet) or plain ones.

    Returns:
        `(losses [B, B], valid [B, B])`: `losses[a, p]` is the hinge loss of the
        pair (a, p) with its mined negative, and `valid[a, p]` (float 0/1) marks
        the pairs that count: a != p, same class, and a has a negative.
    """
    embeddings = tf.convert_to_tensor(embeddings)
    if not embeddings.dtype.is_floating:
        embeddings = tf.cast(embeddings, tf.float32)
    dtype = embeddings.dtype
    labels = tf.reshape(tf.convert_to_tensor(labels), [-1])
    dist = pairwise_distances(embeddings, squared)
    same = tf.equal(labels[:, None], labels[None, :])
    batch = tf.shape(labels)[0]
    not_self = tf.logical_not(tf.eye(batch, dtype=tf.bool))
    negative = tf.logical_not(same)  # [a, n]
    has_negative = tf.reduce_any(negative, axis=1)  # [a]
    valid = tf.logical_and(tf.logical_and(same, not_self), has_negative[:, None])

    d_ap = dist[:, :, None]  # [a, p, 1]
    d_an = dist[:, None, :]  # [a, 1, n]
    neg = negative[:, None, :]  # [a, 1, n]
    inf = tf.constant(float("inf"), dtype)
    outside = tf.logical_and(neg, d_an > d_ap)  # [a, p, n]: semi-hard candidates.
    d_an_full = tf.broadcast_to(d_an, tf.shape(outside))
    semi_hard = tf.reduce_min(tf.where(outside, d_an_full, inf), axis=2)
    farthest = tf.reduce_max(tf.where(neg, d_an, -inf), axis=2)  # [a, 1]
    farthest = tf.broadcast_to(farthest, tf.shape(semi_hard))
    has_outside = tf.reduce_any(outside, axis=2)
    chosen = tf.where(has_outside, semi_hard, farthest)
    valid_f = tf.cast(valid, dtype)
    # Invalid pairs may have chosen = -inf (anchor without negatives): zero them.
    chosen = tf.where(valid, chosen, tf.zeros_like(chosen))
    losses = tf.nn.relu(dist - chosen + tf.constant(margin, dtype)) * valid_f
    return losses, valid_f


def semi_hard_triplet_loss(
    embeddings: tf.Tensor,
    labels: tf.Tensor,
    margin: float = DEFAULT_MARGIN,
    squared: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean semi-hard triplet loss over the valid anchor-positive pairs.

    Args:
        embeddings: `[B, dim]` embeddings.
        labels: `[B]` class labels.
        margin: The margin alpha.
        squared: Squared (FaceNet) or plain Euclidean distances.

    Returns:
        `(loss [], active_fraction [])`: the mean loss (0 when no pair is valid)
        and the fraction of valid pairs with a positive loss.
    """
    losses, valid = semi_hard_triplet_terms(embeddings, labels, margin, squared)
    count = tf.maximum(tf.reduce_sum(valid), 1.0)
    active = tf.reduce_sum(tf.cast(losses > 0, losses.dtype) * valid)
    return tf.reduce_sum(losses) / count, active / count


class ClassBalancedBatches:
    """Batches of P classes x K examples for in-batch triplet mining.

    Batch `step` depends only on `(seed, step)`: P distinct classes drawn
    uniformly, then K examples of each, without replacement when the class has K
    (with replacement otherwise). Rows are class-major.

    Args:
        labels: `[N]` class labels of the training set.
        classes_per_batch: P (capped at the number of classes, >= 2).
        examples_per_class: K (>= 2, so every anchor has a positive).
        seed: Seed of the batch stream.
    """

    def __init__(
        self,
        labels: np.ndarray,
        classes_per_batch: int,
        examples_per_class: int,
        seed: int = 0,
    ) -> None:
        labels = np.asarray(labels)
        self.classes, inverse = np.unique(labels, return_inverse=True)
        if len(self.classes) < 2:
            raise ValueError("triplet batches need at least two classes.")
        if examples_per_class < 2:
            raise ValueError(
                f"examples_per_class must be >= 2, got {examples_per_class}."
            )
        self.classes_per_batch = min(int(classes_per_batch), len(self.classes))
        if self.classes_per_batch < 2:
            raise ValueError(
                f"classes_per_batch must be >= 2, got {classes_per_batch}."
            )
        self.examples_per_class = int(examples_per_class)
        self.seed = int(seed)
        order = np.argsort(inverse, kind="stable")
        splits = np.cumsum(np.bincount(inverse))[:-1]
        self.members = tuple(np.split(order, splits))

    @property
    def batch_size(self) -> int:
        """P * K."""
        return self.classes_per_batch * self.examples_per_class

    def indices(self, step: int) -> np.ndarray:
        """`[P * K]` example indices of batch `step`, class-major."""
        rng = np.random.default_rng([self.seed, int(step)])
        chosen = rng.choice(len(self.members), self.classes_per_batch, replace=False)
        k = self.examples_per_class
        parts = [
            rng.choice(self.members[c], k, replace=len(self.members[c]) < k)
            for c in chosen
        ]
        return np.concatenate(parts).astype(np.int64)


@keras.saving.register_keras_serializable(package="magnet")
class TripletSemiHardLoss(keras.losses.Loss):
    """Keras loss: `loss(y_true=labels, y_pred=embeddings)`, semi-hard mined.

    Args:
        margin: The margin alpha.
        squared: Squared (FaceNet) or plain Euclidean distances.
        name: Loss name.
    """

    def __init__(
        self,
        margin: float = DEFAULT_MARGIN,
        squared: bool = True,
        name: str = "triplet_semi_hard_loss",
    ) -> None:
        super().__init__(name=name, reduction="sum_over_batch_size")
        if not margin >= 0.0:
            raise ValueError(f"margin must be >= 0, got {margin!r}.")
        self.margin = float(margin)
        self.squared = bool(squared)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """The batch loss, repeated per example so the mean reduction keeps it.

        Inside a replica of a `tf.distribute` strategy the batch is first
        gathered from all replicas (`magnet.global_batch`).
        """
        y_pred, y_true = global_batch.gather_global_batch(y_pred, y_true)
        loss, _ = semi_hard_triplet_loss(y_pred, y_true, self.margin, self.squared)
        return tf.fill(tf.shape(y_pred)[:1], loss)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        config = super().get_config()
        config.update(margin=self.margin, squared=self.squared)
        config.pop("reduction", None)
        config.pop("dtype", None)
        return config
