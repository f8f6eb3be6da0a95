"""Training of one embedding network with magnet, softmax or triplet loss via `fit`.

Every loss trains the same architecture (`magnet.networks`) from the same
initial weights (the same random initialisation for a given seed, unless the
caller passes other weights) with Adam, through `keras.Model.fit`:

* magnet: `model.compile(loss=MagnetLoss(M, D, alpha), metrics=[MagnetBatchStats])`
  and `fit` on `MagnetSampler.dataset()`, batches of M clusters x D examples (a
  seed cluster drawn by cluster loss, its M - 1 nearest impostor clusters). The
  callbacks are the library's own: `LossRecorderCallback` writes the step's
  per-example losses (read from `MagnetBatchStats`, no extra forward pass) into
  the cluster index, `ClusterRefreshCallback` re-embeds the training set
  (inference mode) and re-runs k-means (K per class) every `refresh_every`
  steps, and `Sigma2RunningAverage` keeps the paper's sigma^2 for evaluation.
* softmax: a linear head on the embedding, sparse cross-entropy on uniform
  batches of M * D examples (a seeded permutation per epoch).
* triplet: `TripletSemiHardLoss` on L2-normalised embeddings of class-balanced
  batches, P = min(M, classes) classes x max(2, M * D // P) examples.

With `augment`, every training batch is randomly cropped and flipped
(`magnet.augmentation`); refreshes and evaluations see the original images.

Evaluation and checkpoints: one `fit` epoch is `checkpoint_every` steps. After
each epoch a checkpoint is written (model, optimizer, step, and for magnet the
cluster index's inputs and the sigma^2 average) and, on the steps
`TrainSettings.evaluates_at` picks (and at step 0), the test set is evaluated
(`evaluate`): kNN, nearest class mean, the magnet rule with both sigma^2 rules,
softmax argmax (softmax only) and fine-label kNN for extra label sets. `error`
is each loss's own rule: magnet rule (paper's sigma^2 by default), softmax
argmax, kNN for triplet.

What `fit` cannot do, and is done here around it:

* start the data source at the resumed step. `fit(initial_epoch=...)` only
  renumbers epochs; the batch stream is built by us, keyed by step, so a resumed
  run sees the same batches as an uninterrupted one;
* build the first cluster index before the first step (one embedding pass of
  the training set before `fit`);
* save the cluster index and the sigma^2 average with the weights
  (`keras.callbacks.BackupAndRestore` saves the model and optimizer only): the
  index is stored as the training-set embeddings of its last refresh and the
  latest per-example losses, and rebuilt on resume by re-running k-means on them
  with the seed of that refresh, which reproduces it exactly;
* report per-example training losses: `fit` returns batch means only, hence the
  `MagnetBatchStats` metric.

A run killed at any point resumes from its last checkpoint (at most
`checkpoint_every` steps lost); training seconds (refreshes included,
evaluations excluded) and sessions are kept in `fit_state.json`. The run
directory's files and their readers are `magnet.run_files`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import (
    checkpoint,
    distribute,
    files,
    progress,
    summaries,
    training_loop,
    validation,
)
from magnet import (
    augmentation,
    batch_stats,
    embedding,
    evaluation,
    kmeans_callback,
    networks,
    run_files,
    sampler,
    triplet,
)
from magnet import cluster_index as cluster_index_lib
from magnet import loss as loss_lib

LOSSES = ("magnet", "softmax", "triplet")
PRIMARY_RULE = {
    "magnet": "magnet_error",
    "softmax": "softmax_error",
    "triplet": "knn_error",
}
SIGMA2_RULES = ("running", "recomputed")
SNAPSHOT_EXAMPLES = 500
"""Test embeddings (a fixed random subset) saved at every evaluation, with their
labels, for embedding plots (`train(..., snapshot_examples=...)`)."""
AUGMENT_PAD = augmentation.DEFAULT_PAD
"""Padding of the random crop of `augment` (4: the standard CIFAR-10 augmentation)."""


MULTI_WORKER_UNSUPPORTED = (
    "--distribute=multi_worker: the magnet experiments train through "
    "keras.Model.fit, which fails under MultiWorkerMirroredStrategy in Keras 3.15 "
    "(even a Dense model with a mean-squared error); use --distribute=mirrored "
    "(all local devices)"
)


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
            _require_int(name, value)
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


@dataclasses.dataclass
class TrainResult:
    """One trained loss.

    Attributes:
        loss: "magnet", "softmax" or "triplet".
        loop: The training loop's result (steps, seconds, status).
        curve: Evaluations `{"step", "train_seconds", metrics...}` by step.
        embedder: The trained network, images -> embeddings as evaluated
            (L2-normalised for triplet).
        classifier: Images -> logits (softmax only).
        refreshes: Cluster-index refreshes over all sessions (magnet only).
        refresh_seconds: Their wall time (part of the training seconds).
    """

    loss: str
    loop: training_loop.LoopResult
    curve: list[dict[str, float]]
    embedder: keras.Model
    classifier: keras.Model | None = None
    refreshes: int = 0
    refresh_seconds: float = 0.0

    @property
    def final(self) -> dict[str, float]:
        """The last evaluation."""
        return self.curve[-1] if self.curve else {}


def _require_int(name: str, value: Any) -> None:
    """`value` is an int (not a bool): the count fields of `TrainSettings`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")


def _seed_int(*parts: int) -> int:
    """A 32-bit seed derived from integers (e.g. run seed and step)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def embed_fn(model: keras.Model) -> Callable[[np.ndarray], tf.Tensor]:
    """A compiled inference-mode embedding of uint8 or float pixel batches."""
    return embedding.as_embed_fn(model)


def cluster_model(
    train_embeddings: np.ndarray,
    train_labels: np.ndarray,
    clusters_per_class: int,
    seed: int,
) -> cluster_index_lib.ClusterIndex:
    """K k-means clusters per class of the training embeddings (for the rule)."""
    return cluster_index_lib.ClusterIndex.build(
        train_embeddings, train_labels, clusters_per_class, seed=seed
    )


def evaluate(
    embed: Callable[[np.ndarray], Any],
    data: TrainData,
    settings: TrainSettings,
    step: int,
    head: Callable[[np.ndarray], Any] | None = None,
    sigma2_running: float | None = None,
) -> tuple[
    dict[str, float], cluster_index_lib.ClusterIndex | None, np.ndarray, float | None
]:
    """Test errors of an embedding at one point of training.

    Args:
        embed: Batch -> embeddings function.
        data: The data (training set = kNN references and clusters).
        settings: k of kNN, K and L of the magnet rule, sigma^2 rule.
        step: The training step (seeds the evaluation's k-means).
        head: Optional embeddings -> logits function (softmax error).
        sigma2_running: The running average of training's sigma^2 estimates
            (magnet training), or None.

    Returns:
        `(metrics, clustering, test embeddings, sigma^2 of magnet_error)`.
        Errors are fractions; the clustering is None for non-finite embeddings.
    """
    bs = settings.embed_batch_size
    train_emb = embedding.embed_all(embed, data.train_images, bs)
    test_emb = embedding.embed_all(embed, data.test_images, bs)
    metrics: dict[str, float] = {}
    if not (np.all(np.isfinite(train_emb)) and np.all(np.isfinite(test_emb))):
        nan = float("nan")
        return (
            {"knn_error": nan, "centroid_error": nan, "magnet_error": nan},
            None,
            test_emb,
            None,
        )
    k = min(settings.knn_k, len(train_emb))
    knn = evaluation.knn_predict(test_emb, train_emb, data.train_labels, k, chunk=256)
    metrics["knn_error"] = evaluation.error_rate(knn, data.test_labels)
    centroids, classes = evaluation.class_centroids(train_emb, data.train_labels)
    nearest = evaluation.nearest_centroid_predict(test_emb, centroids, classes)
    metrics["centroid_error"] = evaluation.error_rate(nearest, data.test_labels)
    index = cluster_model(
        train_emb,
        data.train_labels,
        settings.clusters_per_class,
        _seed_int(settings.seed, step, 1),
    )
    num_neighbours = min(settings.num_neighbours, index.num_clusters)

    def rule_error(sigma2: float) -> float:
        rule = evaluation.magnet_predict(
            test_emb, index.centres, index.cluster_classes, sigma2, num_neighbours
        )
        return evaluation.error_rate(rule, data.test_labels)

    recomputed = max(index.sigma2, 1e-12)
    metrics["sigma2_recomputed"] = index.sigma2
    metrics["magnet_error_recomputed"] = rule_error(recomputed)
    used = recomputed
    if sigma2_running is not None and math.isfinite(sigma2_running):
        running = max(sigma2_running, 1e-12)
        metrics["sigma2_running"] = sigma2_running
        metrics["magnet_error_running"] = rule_error(running)
        if settings.sigma2_rule == "running":
            used = running
    metrics["magnet_error"] = (
        metrics["magnet_error_running"]
        if settings.sigma2_rule == "running" and "magnet_error_running" in metrics
        else metrics["magnet_error_recomputed"]
    )
    if head is not None:
        logits = np.asarray(head(test_emb))
        metrics["softmax_error"] = evaluation.error_rate(
            np.argmax(logits, axis=1), data.test_labels
        )
    for name, (train_extra, test_extra) in data.extra_labels.items():
        pred = evaluation.knn_predict(test_emb, train_emb, train_extra, k, chunk=256)
        metrics[f"{name}_knn_error"] = evaluation.error_rate(pred, test_extra)
    return metrics, index, test_emb, used


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


def _read_state(path: str) -> dict[str, Any]:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"train_seconds": 0.0, "sessions": 0, "refreshes": 0, "refresh_seconds": 0.0}


def step_keyed(
    batch: Callable[[int], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    start: int,
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A generator factory of `(images, labels)` for steps start, start + 1, ..."""

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        step = start
        while True:
            idx = batch(step)
            step += 1
            yield images[idx], labels[idx]

    return generate


def batch_dataset(
    generate: Callable[[], Iterator],
    images: np.ndarray,
    batch_size: int,
    settings: TrainSettings,
    start: int,
    augment_pad: int = AUGMENT_PAD,
) -> tf.data.Dataset:
    """The training `tf.data.Dataset` of a step-keyed batch stream.

    Args:
        generate: Generator factory of `(images, labels)` batches for steps
            start, start + 1, ...
        images: The training images (for shapes and dtype).
        batch_size: Rows per batch.
        settings: `augment` and `seed` are used.
        start: The step of the first batch (seeds its augmentation).
        augment_pad: Padding of the random crop (with `settings.augment`).

    Returns:
        Batches of float32 images (augmented if asked) and int64 labels.
    """
    signature = (
        tf.TensorSpec(
            (batch_size, *images.shape[1:]),
            tf.uint8 if images.dtype == np.uint8 else tf.float32,
        ),
        tf.TensorSpec((batch_size,), tf.int64),
    )
    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    steps = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
    seed = int(settings.seed)

    def prepare(batch, step):
        x, y = batch
        if settings.augment:
            x = augmentation.random_crop_flip(
                x, augment_pad, seed=tf.stack([tf.constant(seed, tf.int64), step])
            )
        else:
            x = tf.cast(x, tf.float32)
        return x, y

    # No read-ahead (tf.data otherwise injects a prefetch and autotunes one):
    # batch s is drawn after step s - 1 has updated the index, so the stream is
    # a function of the seed, and a resumed run draws the same batches.
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    return tf.data.Dataset.zip((ds, steps)).map(prepare).with_options(options)


def build_compiled_state(
    model: keras.Model, data: TrainData, settings: TrainSettings, batch_size: int
) -> None:
    """Builds the compiled loss and metrics on a whole (placeholder) batch.

    Under a strategy `fit` would build them from one replica's share of a batch,
    outside any replica, which the batch-coupled magnet loss and metric reject.
    Built here, eagerly, on zeros images and cluster-major labels (cluster m of
    class m mod classes), they are left alone by `fit`; the metric values this
    leaves are replaced by the first training step.
    """
    d = settings.examples_per_cluster
    x = tf.zeros((batch_size, *data.input_shape), tf.float32)
    y = tf.constant((np.arange(batch_size) // d) % data.num_classes, tf.int64)
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred, None)


def distribute_batches(
    dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, batch_size: int
) -> tf.distribute.DistributedDataset:
    """Each batch of `dataset` split evenly across the replicas of `strategy`.

    Replica r gets rows [r * B / R, (r + 1) * B / R) of every batch, so gathering
    the replicas' rows in replica order rebuilds the batch. Every worker (input
    pipeline) runs the same seeded stream and keeps its own replicas' rows. The
    distributed dataset prefetches nothing: like the single-device stream, batch
    s is drawn after step s - 1 has updated the cluster index.

    Raises:
        ValueError: the batch does not split evenly across the replicas.
    """
    replicas, share = distribute.replica_share(strategy, batch_size)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def split(x, y):
            parts = [
                tf.reshape(t, [replicas, share, *t.shape[1:]])[first : first + local]
                for t in (x, y)
            ]
            return tf.data.Dataset.from_tensor_slices(tuple(parts))

        return dataset.flat_map(split)

    return strategy.distribute_datasets_from_function(
        dataset_fn,
        tf.distribute.InputOptions(experimental_per_replica_buffer_size=0),
    )


class _Run(keras.callbacks.Callback):
    """Checkpoints, evaluations, progress lines, time budget and divergence."""

    def __init__(
        self,
        name: str,
        settings: TrainSettings,
        start: int,
        ckpt: checkpoint.Checkpointer,
        state_path: str,
        step_var: tf.Variable,
        evaluate_fn: Callable[[int], dict],
        before_save: Callable[[], None],
        board: summaries.Summaries,
        stream: Any,
        refresher: kmeans_callback.ClusterRefreshCallback | None,
        setup_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        self.name, self.settings, self.step = name, settings, start
        self.ckpt, self.state_path, self.step_var = ckpt, state_path, step_var
        self.evaluate_fn, self.before_save = evaluate_fn, before_save
        self.board, self.refresher = board, refresher
        self.state = _read_state(state_path)
        self.bar = progress.Progress(name, settings.steps, start=start, stream=stream)
        self.status = "complete"
        self.session_seconds = 0.0
        self.last_metrics: dict[str, float] = {}
        self._mark = 0.0
        self._counted = False
        # Training time spent before fit (the first index), counted once.
        self._setup_seconds = setup_seconds
        self._refreshes0 = int(self.state.get("refreshes", 0))
        self._refresh_seconds0 = float(self.state.get("refresh_seconds", 0.0))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step += 1
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        self.last_metrics = metrics
        if not math.isfinite(metrics.get("loss", 0.0)):
            self.status = "diverged"
            self.model.stop_training = True
            self.bar.update(self.step, **metrics)
            return
        if self.step % self.settings.log_every == 0 or self.step == self.settings.steps:
            self.board.scalars(self.step, metrics)
            self.bar.update(self.step, **metrics)

    def _account(self) -> None:
        now = time.perf_counter()
        spent = now - self._mark + self._setup_seconds
        self._mark = now
        self._setup_seconds = 0.0
        self.session_seconds += spent
        self.state["train_seconds"] += spent
        if not self._counted:
            self.state["sessions"] += 1
            self._counted = True
        if self.refresher is not None:
            self.state["refreshes"] = self.refresher.refreshes + self._refreshes0
            self.state["refresh_seconds"] = (
                self.refresher.refresh_seconds + self._refresh_seconds0
            )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.status == "diverged":
            self._account()
            run_files.write_json(self.state_path, self.state)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.status == "diverged":
            return
        self._account()
        self.step_var.assign(self.step)
        self.before_save()
        self.ckpt.save(self.step)
        run_files.write_json(self.state_path, self.state)
        if self.settings.evaluates_at(self.step):
            t = time.perf_counter()
            errors = self.evaluate_fn(self.step)
            self.board.scalars(self.step, {f"eval/{k}": v for k, v in errors.items()})
            spent = time.perf_counter() - t
            self.bar.exclude(spent)
            self.bar.update(self.step, **{f"eval/{k}": v for k, v in errors.items()})
            self._mark += spent
        budget = self.settings.max_train_minutes
        if (
            budget is not None
            and self.session_seconds > 60.0 * budget
            and self.step < self.settings.steps
        ):
            self.status = "cut short"
            self.model.stop_training = True


def train(
    loss_name: str,
    data: TrainData,
    settings: TrainSettings,
    run_dir: str,
    initial_weights: Mapping[str, list[np.ndarray]] | None = None,
    stream: Any = None,
    *,
    snapshot_examples: int = SNAPSHOT_EXAMPLES,
    augment_pad: int = AUGMENT_PAD,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Trains one loss with `fit` (resuming if `run_dir` holds a checkpoint).

    Args:
        loss_name: "magnet", "softmax" or "triplet".
        data: Training and test (or validation) data.
        settings: Hyper-parameters.
        run_dir: The run directory; this loss uses `<run_dir>/checkpoints/<loss>`,
            `<run_dir>/tensorboard/<loss>` and `<run_dir>/<loss>` (curve,
            embedding snapshots, cluster model).
        initial_weights: `{"embedder": weights}` and optionally `{"head": ...}`
            to start from (e.g. a network pretrained on other data); by default
            the random initialisation of `settings.seed`, the same for every
            loss.
        stream: Where progress lines go (stdout by default).
        snapshot_examples: Test embeddings (a fixed random subset) saved with
            their labels at every evaluation, for embedding plots.
        augment_pad: Padding of the random crop when `settings.augment`.
        strategy: Optional `tf.distribute` strategy (`common.distribute`;
            not `MultiWorkerMirroredStrategy`, see `MULTI_WORKER_UNSUPPORTED`):
            the networks and optimizer live in its scope, every batch is split
            evenly across its replicas (`distribute_batches`), and the losses
            gather the whole batch back (`magnet.global_batch`), so a step is
            the single-device step.

    Returns:
        The trained models, curve and a `LoopResult` of the training.
    """
    if loss_name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss_name!r}.")
    check_data(data, settings)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ValueError(MULTI_WORKER_UNSUPPORTED)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        return _train(
            loss_name,
            data,
            settings,
            run_dir,
            initial_weights,
            stream,
            snapshot_examples,
            augment_pad,
            strategy,
        )


def _train(
    loss_name: str,
    data: TrainData,
    settings: TrainSettings,
    run_dir: str,
    initial_weights: Mapping[str, list[np.ndarray]] | None,
    stream: Any,
    snapshot_examples: int,
    augment_pad: int,
    strategy: tf.distribute.Strategy | None,
) -> TrainResult:
    """`train` inside the strategy's scope (when there is one)."""
    keras.utils.set_random_seed(settings.seed)
    base = networks.build_embedder(data.input_shape, settings.embedding_dim)
    if initial_weights is not None:
        base.set_weights(initial_weights["embedder"])
    keras.utils.set_random_seed(_seed_int(settings.seed, LOSSES.index(loss_name)))
    labels = np.asarray(data.train_labels, dtype=np.int64)
    n, bs = len(labels), settings.batch_size
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    classifier = head = stats = None
    extra: dict[str, Any] = {}
    callbacks: list[keras.callbacks.Callback] = []
    if loss_name == "softmax":
        classifier = networks.build_classifier(base, data.num_classes)
        head = classifier.get_layer("logits")
        if initial_weights is not None and initial_weights.get("head") is not None:
            head.set_weights(initial_weights["head"])
        model, embedder = classifier, base
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )

        def batch(step: int) -> np.ndarray:
            return networks.epoch_batch(settings.seed, step, bs, n)
    elif loss_name == "triplet":
        model = embedder = networks.with_l2_normalization(base)
        model.compile(
            optimizer=optimizer,
            loss=triplet.TripletSemiHardLoss(settings.triplet_margin),
        )
        balanced = triplet.ClassBalancedBatches(
            labels,
            settings.num_clusters,
            max(2, bs // min(settings.num_clusters, data.num_classes)),
            seed=settings.seed,
        )
        batch = balanced.indices
        bs = balanced.batch_size
    else:
        model = embedder = base
        magnet_loss = loss_lib.MagnetLoss(
            settings.num_clusters, settings.examples_per_cluster, settings.alpha
        )
        stats = batch_stats.MagnetBatchStats.like(
            magnet_loss,
            embedding_dim=None
            if settings.reembed_every is None
            else settings.embedding_dim,
        )
        model.compile(optimizer=optimizer, loss=magnet_loss, metrics=[stats])
    optimizer.build(model.trainable_variables)  # Slots before the restore.
    embed = embed_fn(embedder)

    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    trackables: dict[str, Any] = {
        "model": model,
        "optimizer": optimizer,
        "step": step_var,
    }
    refresher = sigma_avg = index = None
    fresh = False
    if loss_name == "magnet":
        index = cluster_index_lib.ClusterIndex(settings.clusters_per_class)
        sigma_avg = batch_stats.Sigma2RunningAverage(stats, settings.sigma2_decay)
        extra = {
            "refresh_embeddings": tf.Variable(
                tf.zeros([n, settings.embedding_dim]), trainable=False
            ),
            "example_losses": tf.Variable(tf.ones([n], tf.float64), trainable=False),
            "refresh_step": tf.Variable(-1, dtype=tf.int64, trainable=False),
            "sigma2_average": sigma_avg.average,
            "sigma2_count": sigma_avg.count,
        }
        if settings.reembed_every is not None:
            extra["embedding_cache"] = tf.Variable(
                tf.zeros([n, settings.embedding_dim]), trainable=False
            )
        trackables.update(extra)
    ckpt_dir = os.path.join(run_dir, "checkpoints", loss_name)
    ckpt = checkpoint.Checkpointer(ckpt_dir, **trackables)
    ckpt.restore_latest()
    start = int(step_var.numpy())
    loss_dir = os.path.join(run_dir, loss_name)
    curve = {int(e["step"]): e for e in run_files.load_curve(loss_dir)}
    state_path = os.path.join(ckpt_dir, run_files.STATE_FILE)

    if loss_name == "magnet":
        refresh_seed = _seed_int(settings.seed, 0)
        last = int(extra["refresh_step"].numpy())
        fresh = last < 0
        if not fresh:  # Rebuild the index of the last refresh exactly.
            last_embeddings = extra["refresh_embeddings"].numpy()
        else:  # The first index, before the first step.
            t = time.perf_counter()
            last, last_embeddings = (
                0,
                embedding.embed_all(
                    embed, data.train_images, settings.embed_batch_size
                ),
            )
            first_refresh_seconds = time.perf_counter() - t
        index.refresh(
            last_embeddings,
            labels,
            seed=kmeans_callback.refresh_seed(refresh_seed, last),
        )
        index.update_losses(np.arange(n), extra["example_losses"].numpy())
        batch_sampler = sampler.MagnetSampler(
            data.train_images,
            labels,
            index,
            settings.num_clusters,
            settings.examples_per_cluster,
            seed=_seed_int(settings.seed, 2),
        )
        if settings.reembed_every is not None:
            batch_sampler.embedding_cache = (
                extra["embedding_cache"].numpy()
                if start > 0
                else np.asarray(last_embeddings, np.float32).copy()
            )
        refresher = kmeans_callback.ClusterRefreshCallback(
            batch_sampler,
            embed_fn=embed,
            every=settings.refresh_every,
            unit="step",
            batch_size=settings.embed_batch_size,
            initial_step=start,
            seed=refresh_seed,
            until=settings.steps,
            reembed_every=settings.reembed_every,
        )
        refresher.last_embeddings, refresher.last_step = last_embeddings, last
        if fresh:
            refresher.refreshes, refresher.refresh_seconds = 1, first_refresh_seconds

        def before_save() -> None:
            if refresher.last_embeddings is not None:
                extra["refresh_embeddings"].assign(refresher.last_embeddings)
                extra["refresh_step"].assign(refresher.last_step)
            extra["example_losses"].assign(index.example_losses)
            if batch_sampler.embedding_cache is not None:
                extra["embedding_cache"].assign(batch_sampler.embedding_cache)

        generate = lambda: batch_sampler.generator(start)  # noqa: E731
        callbacks = [
            sampler.LossRecorderCallback(batch_sampler, magnet_loss, stats=stats),
            sigma_avg,
            refresher,
        ]
    else:

        def before_save() -> None:
            pass

        generate = step_keyed(batch, data.train_images, labels, start)

    # The same random test subset is saved at every evaluation (for plots).
    snapshot = np.sort(
        np.random.default_rng(settings.seed).permutation(len(data.test_labels))[
            :snapshot_examples
        ]
    )

    def evaluate_at(step: int) -> dict[str, float]:
        metrics, clustering, test_emb, sigma2 = evaluate(
            embed,
            data,
            settings,
            step,
            head,
            None if sigma_avg is None else sigma_avg.value,
        )
        state = _read_state(state_path)
        metrics["error"] = metrics.get(PRIMARY_RULE[loss_name], float("nan"))
        entry = {
            "step": int(step),
            "train_seconds": round(float(state["train_seconds"]), 2),
            **metrics,
        }
        curve[int(step)] = entry
        run_files.write_json(
            os.path.join(loss_dir, run_files.CURVE_FILE),
            [curve[s] for s in sorted(curve)],
        )
        snap = os.path.join(loss_dir, run_files.SNAPSHOT_DIR, f"step_{step:08d}.npz")
        labelled = {
            f"{name}_labels": np.asarray(test)[snapshot]
            for name, (_, test) in data.extra_labels.items()
        }
        files.atomic_write_npz(
            snap,
            embeddings=test_emb[snapshot].astype(np.float32),
            labels=np.asarray(data.test_labels)[snapshot],
            **labelled,
        )
        if clustering is not None:
            run_files.save_cluster_model(
                os.path.join(loss_dir, run_files.CLUSTER_MODEL_FILE),
                clustering,
                settings.num_neighbours,
                data.class_names,
                step,
                sigma2,
            )
        return {k: v for k, v in metrics.items() if k.endswith("error")}

    if 0 not in curve and start == 0:
        evaluate_at(0)
    elif start > 0 and settings.evaluates_at(start) and start not in curve:
        # Killed between a checkpoint and its evaluation: the restored state is
        # exactly that step's, so evaluate it now.
        evaluate_at(start)
    board = summaries.Summaries(os.path.join(run_dir, "tensorboard"), loss_name)
    setup = 0.0
    if refresher is not None and fresh:
        setup = refresher.refresh_seconds  # The first index, built before fit.
    run = _Run(
        loss_name,
        settings,
        start,
        ckpt,
        state_path,
        step_var,
        evaluate_at,
        before_save,
        board,
        stream,
        refresher,
        setup,
    )
    every = settings.checkpoint_interval
    if start < settings.steps:
        dataset = batch_dataset(
            generate, data.train_images, bs, settings, start, augment_pad
        )
        if strategy is not None:
            dataset = distribute_batches(dataset, strategy, bs)
            build_compiled_state(model, data, settings, bs)
        model.fit(
            dataset,
            steps_per_epoch=every,
            epochs=settings.steps // every,
            initial_epoch=start // every,
            verbose=0,
            shuffle=False,
            callbacks=[*callbacks, run],
        )
    elif start == settings.steps and settings.steps not in curve:
        evaluate_at(start)
    state = _read_state(state_path)
    status = run.status
    if status == "complete" and run.step < settings.steps:
        status = "cut short"
    loop = training_loop.LoopResult(
        name=loss_name,
        steps=run.step,
        target_steps=settings.steps,
        train_seconds=float(state["train_seconds"]),
        sessions=int(state["sessions"]),
        status=status,
        steps_per_second=(run.step - start) / max(run.session_seconds, 1e-9)
        if run.step > start
        else 0.0,
        last_metrics=run.last_metrics,
    )
    return TrainResult(
        loss=loss_name,
        loop=loop,
        curve=[curve[s] for s in sorted(curve)],
        embedder=embedder,
        classifier=classifier,
        refreshes=int(state.get("refreshes", 0)),
        refresh_seconds=float(state.get("refresh_seconds", 0.0)),
    )
