"""What one training run of an embedding network takes, and its checks.

`TrainData` holds the arrays (training and test images and labels, extra label
sets), `TrainSettings` every hyper-parameter of the three losses with its
protocol default and source, and `check_data` rejects data that cannot feed the
settings (too few examples per class for K clusters, too few impostor clusters
for M). `magnet.trainer.train` takes one of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from common import validation
from magnet import augmentation, batch_stats, triplet

LOSSES = ("magnet", "softmax", "triplet")
PRIMARY_RULE = {
    "magnet": "magnet_error",
    "softmax": "softmax_error",
    "triplet": "knn_error",
}
SIGMA2_RULES = ("running", "recomputed")

"""The losses every experiment compares, and the error each is judged by."""
AUGMENT_PAD = augmentation.DEFAULT_PAD
"""Padding of the random crop of `augment` (4: the standard CIFAR-10 augmentation)."""


@dataclasses.dataclass(frozen=True)
class TrainData:
    """Arrays one training run needs.

    Attributes:
        train_images: `[N, H, W, C]` uint8 training images at network size.
        train_labels: `[N]` int64 training labels in `[0, num_classes)`.
        test_images: `[T, H, W, C]` uint8 test images.
        test_labels: `[T]` int64 test labels, same label space as training.
        class_names: Names of the training classes, by label.
        extra_labels: Other label sets to evaluate with kNN, by name:
            `(train labels [N], test labels [T])`.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    extra_labels: Mapping[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict
    )

    @property
    def num_classes(self) -> int:
        """Number of training classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(H, W, C)` of the images."""
        return tuple(int(s) for s in self.train_images.shape[1:])


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters shared by the three losses, with their protocol defaults.

    This is the one home of every training field and its default: the
    experiment's config (`magnet.experiments.experiment.MagnetConfig`) extends
    it with the data and the comparison, and the study's units override it.
    The defaults fit a ~10-minute CPU run on a 0.1M-parameter network.
    Sources: batch 48 = M 12 x D 4, K = 8, L = 20, alpha = 1 are this
    project's choices for that network (the paper fine-tunes ImageNet-pretrained
    GoogLeNet with its own settings, Section 4); the magnet rule with the
    running-average sigma^2 is the paper's (Section 3.4), its decay 0.99 ours;
    the triplet margin 0.2 is FaceNet's (Schroff et al. 2015) for L2-normalised
    embeddings; Adam at 1e-3, kNN with k = 10 and the 250-step refresh and
    evaluation cadences are ours.

    Attributes:
        steps: Training iterations (per loss).
        num_clusters: M, clusters per magnet batch (batch size M * D for all
            losses).
        examples_per_cluster: D, examples per cluster.
        clusters_per_class: K, k-means clusters per class in the index.
        alpha: Magnet margin alpha.
        num_neighbours: L, nearest clusters of the magnet evaluation rule
            (capped at the number of clusters).
        learning_rate: Adam learning rate (all losses and the warm start).
        embedding_dim: Size of the embedding.
        refresh_every: Magnet steps between re-clusterings of the training set.
        eval_every: Steps between test evaluations (and checkpoints).
        triplet_margin: Triplet margin (L2-normalised embeddings).
        knn_k: Neighbours of the kNN evaluation.
        seed: Seed of initialisation, batches and clustering.
        log_every: Steps between progress lines.
        embed_batch_size: Batch size when embedding whole sets.
        max_train_minutes: Optional cap on training minutes per loss and
            session (the loss is then reported "cut short").
        augment: Random crop (after `AUGMENT_PAD` = 4 pixels of padding) and
            left-right flip of every training batch (the standard CIFAR-10
            augmentation, `magnet.augmentation`).
        sigma2_rule: sigma^2 of the magnet rule reported as `magnet_error`:
            "running" (the paper, Section 3.4: running average of the training
            batches' estimates; magnet training only, other losses fall back to
            "recomputed") or "recomputed" (this project's: the variance of the
            whole training set around the evaluation's k-means centres). Both
            are always reported, as `magnet_error_running` and
            `magnet_error_recomputed`.
        sigma2_decay: Decay of the running average (None: arithmetic mean).
        checkpoint_every: Steps per `fit` epoch, i.e. between checkpoints
            (None: `eval_every`); `steps` and `eval_every` are multiples of it.
        early_evals: Also evaluate at `checkpoint_every * 2^j < eval_every`.
        reembed_every: None: every refresh embeds the whole training set. An
            int (a multiple of `refresh_every`): refreshes re-cluster the
            sampler's embedding cache (kept current by the training batches)
            and only every `reembed_every` steps re-embed the training set
            (`ClusterRefreshCallback`).

    Example:
        >>> settings = TrainSettings(steps=500, eval_every=100)
        >>> settings.batch_size, settings.evaluates_at(200), settings.evaluates_at(250)
        (48, True, False)
    """

    steps: int = 1500
    num_clusters: int = 12
    examples_per_cluster: int = 4
    clusters_per_class: int = 8
    alpha: float = 1.0
    num_neighbours: int = 20
    learning_rate: float = 1e-3
    embedding_dim: int = 64
    refresh_every: int = 250
    eval_every: int = 250
    triplet_margin: float = triplet.DEFAULT_MARGIN
    knn_k: int = 10
    seed: int = 0
    log_every: int = 50
    embed_batch_size: int = 500
    max_train_minutes: float | None = None
    augment: bool = False
    sigma2_rule: str = "running"
    sigma2_decay: float | None = batch_stats.DEFAULT_DECAY
    checkpoint_every: int | None = None
    early_evals: bool = False
    reembed_every: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "num_clusters",
            "examples_per_cluster",
            "clusters_per_class",
            "num_neighbours",
            "embedding_dim",
            "refresh_every",
            "eval_every",
            "knn_k",
            "log_every",
            "embed_batch_size",
            "checkpoint_every",
            "reembed_every",
        ):
            value = getattr(self, name)
            if value is None and name in ("checkpoint_every", "reembed_every"):
                continue
            validation.require_int(name, value)
            validation.require_positive(name, value)
        if self.num_clusters < 2:
            raise ValueError(
                f"num_clusters M must be >= 2 (a seed cluster and its "
                f"impostors), got {self.num_clusters}"
            )
        if self.examples_per_cluster < 2:
            raise ValueError(
                "examples_per_cluster D must be >= 2 (cluster means "
                "and the variance need two), got "
                f"{self.examples_per_cluster}"
            )
        validation.require_non_negative("alpha", self.alpha)
        validation.require_non_negative("triplet_margin", self.triplet_margin)
        validation.require_positive("learning_rate", self.learning_rate)
        if self.sigma2_decay is not None:
            validation.require_fraction(
                "sigma2_decay", self.sigma2_decay, open_high=True
            )
        if self.max_train_minutes is not None:
            validation.require_positive("max_train_minutes", self.max_train_minutes)
        validation.require_one_of("sigma2_rule", self.sigma2_rule, SIGMA2_RULES)
        if self.reembed_every is not None and (
            self.reembed_every < self.refresh_every
            or self.reembed_every % self.refresh_every
        ):
            raise ValueError(
                f"reembed_every ({self.reembed_every}) must be a "
                f"multiple of refresh_every ({self.refresh_every})."
            )
        every = self.checkpoint_interval
        if self.steps % every or self.eval_every % every:
            raise ValueError(
                f"steps ({self.steps}) and eval_every ({self.eval_every})"
                f" must be multiples of checkpoint_every ({every})."
            )

    @property
    def batch_size(self) -> int:
        """M * D, the batch size of every loss."""
        return self.num_clusters * self.examples_per_cluster

    @property
    def checkpoint_interval(self) -> int:
        """Steps per `fit` epoch: checkpoints (and possible evaluations)."""
        return (
            self.eval_every if self.checkpoint_every is None else self.checkpoint_every
        )

    def evaluates_at(self, step: int) -> bool:
        """Whether training evaluates after `step` steps.

        Every `eval_every` steps and at the end; with `early_evals` also at
        `checkpoint_every * 2^j` below `eval_every` (log-spaced early points,
        so iterations-to-an-error are resolved finely early in training).
        """
        if step % self.eval_every == 0 or step == self.steps:
            return True
        every = self.checkpoint_interval
        if not self.early_evals or step >= self.eval_every or step % every:
            return False
        ratio = step // every
        return ratio & (ratio - 1) == 0


def check_data(data: TrainData, settings: TrainSettings) -> None:
    """Raises ValueError when the data cannot feed these settings.

    Checks: K clusters fit in every class, the magnet batch has M - 1 impostor
    clusters, labels lie in `[0, num_classes)`, and at least two classes exist.
    """
    labels = np.asarray(data.train_labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"training needs at least two classes, got {len(classes)}.")
    if labels.min() < 0 or labels.max() >= data.num_classes:
        raise ValueError(f"training labels must lie in [0, {data.num_classes}).")
    if counts.min() < settings.clusters_per_class:
        raise ValueError(
            f"clusters_per_class K={settings.clusters_per_class} exceeds "
            f"the {counts.min()} training examples of the smallest "
            "class."
        )
    impostors = (len(classes) - 1) * settings.clusters_per_class
    if impostors < settings.num_clusters - 1:
        raise ValueError(
            f"num_clusters M={settings.num_clusters} needs M-1 impostor "
            f"clusters but (classes - 1) * K = {impostors}."
        )
    if len(data.test_labels) == 0:
        raise ValueError("the test set is empty.")
