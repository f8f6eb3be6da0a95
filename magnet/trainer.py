"""Training of one embedding network with magnet, softmax or triplet loss.

Every loss trains the same architecture (`magnet.networks`) from the same
initial weights with Adam, one compiled step per iteration, through
`common.training_loop.run_training` (resumable after kill -9, progress lines,
TensorBoard scalars). Every `eval_every` steps, and at step 0, the test set is
evaluated (`evaluate`), so curves of error against iterations exist for every
loss:

* `knn_error`: k-nearest-neighbour vote among training-set embeddings;
* `centroid_error`: nearest class mean of the training embeddings;
* `magnet_error`: the magnet rule (L nearest of K k-means clusters per class of
  the current training embeddings, Gaussian kernel of the clusters' variance);
* `softmax_error` (softmax only): argmax of the classifier's logits;
* `<name>_knn_error` for each extra label set (the hierarchy experiment's fine
  labels): kNN among training embeddings labelled with those labels.

`error` is the loss's own rule: magnet rule for magnet, softmax argmax for
softmax, kNN for triplet (the paper's evaluation of each).

The three training steps:

* magnet: a batch of M clusters x D examples from `MagnetSampler` (seed cluster
  drawn by cluster loss, M - 1 nearest impostor clusters); the per-example
  losses of the step's own forward pass (training mode) are written into the
  cluster index, so no batch is re-scored. Every `refresh_every` steps the whole
  training set is re-embedded (inference mode) and re-clustered with k-means
  (K per class); example losses carry over. The refresh time counts as training
  time.
* softmax: cross-entropy on uniform batches of M * D examples (a seeded
  permutation per epoch), linear head on the embedding.
* triplet: semi-hard triplet loss (`magnet.triplet`) on L2-normalised
  embeddings of class-balanced batches, P = min(M, classes) classes x
  max(2, M * D // P) examples.

Resuming: the model, the optimizer and, for magnet, the cluster index are
checkpointed. The index is stored as the training-set embeddings of its last
refresh and the latest per-example losses (tf.Variables in the checkpoint); on
resume it is rebuilt by re-running k-means on the stored embeddings with the
seed of that refresh, which reproduces it exactly. Batches are functions of
`(seed, step)` for all three losses, so a resumed run sees the same batches as
an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import training_loop
from magnet import cluster_index as cluster_index_lib
from magnet import evaluation, networks, sampler, triplet
from magnet import loss as loss_lib

LOSSES = ("magnet", "softmax", "triplet")
CURVE_FILE = "curve.json"
CLUSTER_MODEL_FILE = "cluster_model.npz"
SNAPSHOT_DIR = "embeddings"
PRIMARY_RULE = {"magnet": "magnet_error", "softmax": "softmax_error",
                "triplet": "knn_error"}


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
        default_factory=dict)

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
    """Hyper-parameters shared by the three losses.

    Attributes:
        steps: Training iterations.
        num_clusters: M, clusters per magnet batch (batch size M * D for all).
        examples_per_cluster: D, examples per cluster.
        clusters_per_class: K, k-means clusters per class in the index.
        alpha: Magnet margin alpha.
        num_neighbours: L, nearest clusters of the magnet evaluation rule
            (capped at the number of clusters).
        learning_rate: Adam learning rate.
        refresh_every: Magnet steps between re-clusterings of the training set.
        eval_every: Steps between evaluations (and checkpoints).
        triplet_margin: Triplet margin (L2-normalised embeddings).
        knn_k: Neighbours of the kNN evaluation.
        seed: Seed of batches and clustering.
        embedding_dim: Size of the embedding.
        log_every: Steps between progress lines.
        embed_batch_size: Batch size when embedding whole sets.
        snapshot_examples: Test embeddings (a fixed random subset) saved at
            every evaluation, with their labels, for embedding plots.
        max_train_minutes: Optional cap on training minutes in one session.
    """

    steps: int
    num_clusters: int = 12
    examples_per_cluster: int = 4
    clusters_per_class: int = 8
    alpha: float = 1.0
    num_neighbours: int = 20
    learning_rate: float = 1e-3
    refresh_every: int = 200
    eval_every: int = 200
    triplet_margin: float = triplet.DEFAULT_MARGIN
    knn_k: int = 10
    seed: int = 0
    embedding_dim: int = 64
    log_every: int = 50
    embed_batch_size: int = 500
    snapshot_examples: int = 500
    max_train_minutes: float | None = None

    @property
    def batch_size(self) -> int:
        """M * D, the batch size of every loss."""
        return self.num_clusters * self.examples_per_cluster


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
    """

    loss: str
    loop: training_loop.LoopResult
    curve: list[dict[str, float]]
    embedder: keras.Model
    classifier: keras.Model | None = None

    @property
    def final(self) -> dict[str, float]:
        """The last evaluation."""
        return self.curve[-1] if self.curve else {}


def _seed_int(*parts: int) -> int:
    """A 32-bit seed derived from integers (e.g. run seed and step)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def embed_fn(model: keras.Model) -> Callable[[np.ndarray], tf.Tensor]:
    """A compiled inference-mode embedding of uint8 or float pixel batches."""

    @tf.function(reduce_retracing=True)
    def embed(images):
        return model(tf.cast(images, tf.float32), training=False)

    return embed


def cluster_model(train_embeddings: np.ndarray, train_labels: np.ndarray,
                  clusters_per_class: int, seed: int) -> cluster_index_lib.ClusterIndex:
    """K k-means clusters per class of the training embeddings (for the rule)."""
    return cluster_index_lib.ClusterIndex.build(train_embeddings, train_labels,
                                                clusters_per_class, seed=seed)


def evaluate(embed: Callable[[np.ndarray], Any], data: TrainData,
             settings: TrainSettings, step: int,
             head: Callable[[np.ndarray], Any] | None = None,
             ) -> tuple[dict[str, float], cluster_index_lib.ClusterIndex,
                        np.ndarray]:
    """Test errors of an embedding at one point of training.

    Args:
        embed: Batch -> embeddings function.
        data: The data (training set = kNN references and clusters).
        settings: k of kNN, K and L of the magnet rule, batch size.
        step: The training step (seeds the evaluation's k-means).
        head: Optional embeddings -> logits function (softmax error).

    Returns:
        `(metrics, clustering, test embeddings)`. Errors are fractions.
    """
    bs = settings.embed_batch_size
    train_emb = cluster_index_lib.embed_all(embed, data.train_images, bs)
    test_emb = cluster_index_lib.embed_all(embed, data.test_images, bs)
    metrics: dict[str, float] = {}
    if not (np.all(np.isfinite(train_emb)) and np.all(np.isfinite(test_emb))):
        nan = float("nan")
        return {"knn_error": nan, "centroid_error": nan, "magnet_error": nan}, None, \
            test_emb
    k = min(settings.knn_k, len(train_emb))
    knn = evaluation.knn_predict(test_emb, train_emb, data.train_labels, k, chunk=256)
    metrics["knn_error"] = evaluation.error_rate(knn, data.test_labels)
    centroids, classes = evaluation.class_centroids(train_emb, data.train_labels)
    nearest = evaluation.nearest_centroid_predict(test_emb, centroids, classes)
    metrics["centroid_error"] = evaluation.error_rate(nearest, data.test_labels)
    index = cluster_model(train_emb, data.train_labels, settings.clusters_per_class,
                          _seed_int(settings.seed, step, 1))
    num_neighbours = min(settings.num_neighbours, index.num_clusters)
    sigma2 = max(index.sigma2, 1e-12)
    rule = evaluation.magnet_predict(test_emb, index.centres, index.cluster_classes,
                                     sigma2, num_neighbours)
    metrics["magnet_error"] = evaluation.error_rate(rule, data.test_labels)
    if head is not None:
        logits = np.asarray(head(test_emb))
        metrics["softmax_error"] = evaluation.error_rate(np.argmax(logits, axis=1),
                                                         data.test_labels)
    for name, (train_extra, test_extra) in data.extra_labels.items():
        pred = evaluation.knn_predict(test_emb, train_emb, train_extra, k, chunk=256)
        metrics[f"{name}_knn_error"] = evaluation.error_rate(pred, test_extra)
    return metrics, index, test_emb


def _write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def load_curve(loss_dir: str) -> list[dict[str, float]]:
    """The evaluations saved so far for one loss (empty if none)."""
    path = os.path.join(loss_dir, CURVE_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def save_cluster_model(path: str, index: cluster_index_lib.ClusterIndex,
                       num_neighbours: int, class_names: tuple[str, ...],
                       step: int) -> None:
    """Writes the magnet rule's clustering (for serving) atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, centres=index.centres.astype(np.float32),
             cluster_classes=index.cluster_classes.astype(np.int64),
             sigma2=np.float64(max(index.sigma2, 1e-12)),
             num_neighbours=np.int64(min(num_neighbours, index.num_clusters)),
             class_names=np.asarray(class_names, dtype=str), step=np.int64(step))
    os.replace(tmp, path)


def load_cluster_model(path: str) -> dict[str, np.ndarray]:
    """Reads a file written by `save_cluster_model`."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


class _MagnetState:
    """The cluster index of a magnet run and its checkpointed mirror.

    The mirror (tf.Variables) holds the embeddings of the last refresh, the
    latest per-example losses and the step of the last refresh; `index()`
    rebuilds the index from it after a restore.
    """

    def __init__(self, data: TrainData, settings: TrainSettings,
                 embed: Callable[[np.ndarray], Any]) -> None:
        n = len(data.train_labels)
        self.data, self.settings, self.embed = data, settings, embed
        self.embeddings = tf.Variable(tf.zeros([n, settings.embedding_dim]),
                                      trainable=False, name="refresh_embeddings")
        self.example_losses = tf.Variable(tf.ones([n], tf.float64), trainable=False,
                                          name="example_losses")
        self.refresh_step = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                        name="refresh_step")
        self.refreshes = 0
        self.refresh_seconds = 0.0
        self._index: cluster_index_lib.ClusterIndex | None = None

    def trackables(self) -> dict[str, tf.Variable]:
        """What goes into the checkpoint."""
        return {"refresh_embeddings": self.embeddings,
                "example_losses": self.example_losses,
                "refresh_step": self.refresh_step}

    def _cluster(self, embeddings: np.ndarray, step: int
                 ) -> cluster_index_lib.ClusterIndex:
        index = cluster_index_lib.ClusterIndex(
            self.settings.clusters_per_class,
            seed=_seed_int(self.settings.seed, step, 0))
        index.refresh(embeddings, self.data.train_labels)
        index.update_losses(np.arange(len(embeddings)),
                            self.example_losses.numpy())
        return index

    def index_for_step(self, step: int) -> cluster_index_lib.ClusterIndex:
        """The index to sample step `step` from, refreshing when it is due."""
        last = int(self.refresh_step.numpy())
        due = step % self.settings.refresh_every == 0 and last != step
        if self._index is None and last >= 0 and not due:
            self._index = self._cluster(self.embeddings.numpy(), last)
        if self._index is None or due:
            start = time.perf_counter()
            embeddings = cluster_index_lib.embed_all(
                self.embed, self.data.train_images, self.settings.embed_batch_size)
            self.embeddings.assign(embeddings)
            self.refresh_step.assign(step)
            self._index = self._cluster(embeddings, step)
            self.refreshes += 1
            self.refresh_seconds += time.perf_counter() - start
        return self._index

    def record(self, indices: np.ndarray, losses: np.ndarray) -> None:
        """Stores a step's per-example losses in the index and the mirror."""
        self._index.update_losses(indices, losses)
        self.example_losses.assign(self._index.example_losses)


def magnet_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                      settings: TrainSettings
                      ) -> tf.types.experimental.PolymorphicFunction:
    """Compiled magnet step `(images, labels) -> (loss, per-example losses, sigma2)`.

    The per-example losses are those of this step's forward pass (training
    mode), before the update; the trainer stores them in the cluster index.
    """
    m, d = settings.num_clusters, settings.examples_per_cluster

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            emb = model(tf.cast(images, tf.float32), training=True)
            losses, sigma2, _ = loss_lib.magnet_loss_terms(emb, labels, m, d,
                                                           settings.alpha)
            loss = tf.reduce_mean(losses)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, losses, sigma2

    return step


def triplet_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                       margin: float) -> tf.types.experimental.PolymorphicFunction:
    """Compiled semi-hard triplet step `(images, labels) -> (loss, active)`."""

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            emb = model(tf.cast(images, tf.float32), training=True)
            loss, active = triplet.semi_hard_triplet_loss(emb, labels, margin)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, active

    return step


def check_data(data: TrainData, settings: TrainSettings) -> None:
    """Raises ValueError when the data cannot feed these settings.

    Checks: K clusters fit in every class, the magnet batch has M - 1 impostor
    clusters, labels lie in `[0, num_classes)`, and at least two classes exist.
    """
    labels = np.asarray(data.train_labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError("training needs at least two classes, got "
                         f"{len(classes)}.")
    if labels.min() < 0 or labels.max() >= data.num_classes:
        raise ValueError(f"training labels must lie in [0, {data.num_classes}).")
    if counts.min() < settings.clusters_per_class:
        raise ValueError(f"clusters_per_class K={settings.clusters_per_class} exceeds "
                         f"the {counts.min()} training examples of the smallest "
                         "class.")
    impostors = (len(classes) - 1) * settings.clusters_per_class
    if impostors < settings.num_clusters - 1:
        raise ValueError(f"num_clusters M={settings.num_clusters} needs M-1 impostor "
                         f"clusters but (classes - 1) * K = {impostors}.")
    if len(data.test_labels) == 0:
        raise ValueError("the test set is empty.")


def train(loss_name: str, data: TrainData, settings: TrainSettings, run_dir: str,
          initial_weights: Mapping[str, list[np.ndarray]] | None = None,
          stream: Any = None) -> TrainResult:
    """Trains one loss (resuming if `run_dir` holds a checkpoint); evaluates.

    Args:
        loss_name: "magnet", "softmax" or "triplet".
        data: Training and test data.
        settings: Hyper-parameters.
        run_dir: The run directory; this loss uses the loop name `loss_name`
            (checkpoints, TensorBoard) and the folder `<run_dir>/<loss_name>`
            (curve, embedding snapshots, cluster model).
        initial_weights: `{"embedder": weights}` and optionally
            `{"head": weights}` of the softmax head (e.g. from a warm start).
        stream: Where progress lines go (stdout by default).

    Returns:
        The trained models, curve and loop result.
    """
    if loss_name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss_name!r}.")
    check_data(data, settings)
    keras.utils.set_random_seed(_seed_int(settings.seed, LOSSES.index(loss_name)))
    base = networks.build_embedder(data.input_shape, settings.embedding_dim)
    if initial_weights is not None:
        base.set_weights(initial_weights["embedder"])
    optimizer = keras.optimizers.Adam(settings.learning_rate)
    classifier = None
    trackables: dict[str, Any] = {"optimizer": optimizer}
    magnet_state = None
    labels = np.asarray(data.train_labels, dtype=np.int64)
    n = len(labels)
    if loss_name == "softmax":
        classifier = networks.build_classifier(base, data.num_classes)
        head = classifier.get_layer("logits")
        if initial_weights is not None and initial_weights.get("head") is not None:
            head.set_weights(initial_weights["head"])
        embedder = base
        trackables["model"] = classifier
        compiled = networks.softmax_train_step(classifier, optimizer)

        def step_fn(step: int) -> dict:
            idx = networks.epoch_batch(settings.seed, step, settings.batch_size, n)
            loss, accuracy = compiled(data.train_images[idx], labels[idx])
            return {"loss": loss, "accuracy": accuracy}
    elif loss_name == "triplet":
        embedder = networks.with_l2_normalization(base)
        trackables["model"] = embedder
        compiled = triplet_train_step(embedder, optimizer, settings.triplet_margin)
        batches = triplet.ClassBalancedBatches(
            labels, settings.num_clusters,
            max(2, settings.batch_size // min(settings.num_clusters,
                                              data.num_classes)),
            seed=settings.seed)

        def step_fn(step: int) -> dict:
            idx = batches.indices(step)
            loss, active = compiled(data.train_images[idx], labels[idx])
            return {"loss": loss, "active_triplets": active}
    else:
        embedder = base
        trackables["model"] = embedder
        compiled = magnet_train_step(embedder, optimizer, settings)
        magnet_state = _MagnetState(data, settings, embed_fn(embedder))
        trackables.update(magnet_state.trackables())

        def step_fn(step: int) -> dict:
            index = magnet_state.index_for_step(step)
            batch_sampler = sampler.MagnetSampler(
                data.train_images, labels, index, settings.num_clusters,
                settings.examples_per_cluster, seed=_seed_int(settings.seed, step, 2))
            idx = batch_sampler.sample_batch_indices()
            loss, losses, sigma2 = compiled(data.train_images[idx], labels[idx])
            magnet_state.record(idx, losses.numpy())
            return {"loss": loss, "sigma2": sigma2}

    # Slots exist before the restore, so a resumed run keeps Adam's moments.
    optimizer.build(trackables["model"].trainable_variables)
    loss_dir = os.path.join(run_dir, loss_name)
    curve = {int(e["step"]): e for e in load_curve(loss_dir)}
    embed = embed_fn(embedder)
    # The same random test subset is saved at every evaluation (for plots).
    snapshot = np.sort(np.random.default_rng(settings.seed).permutation(
        len(data.test_labels))[:settings.snapshot_examples])
    head = None if classifier is None else classifier.get_layer("logits")

    def on_checkpoint(step: int) -> dict[str, float]:
        metrics, index, test_emb = evaluate(embed, data, settings, step, head)
        state_path = os.path.join(run_dir, "checkpoints", loss_name,
                                  training_loop.LOOP_STATE)
        seconds = 0.0
        if os.path.exists(state_path):
            with open(state_path) as f:
                seconds = float(json.load(f)["train_seconds"])
        metrics["error"] = metrics.get(PRIMARY_RULE[loss_name], float("nan"))
        entry = {"step": int(step), "train_seconds": round(seconds, 2), **metrics}
        curve[int(step)] = entry
        _write_json(os.path.join(loss_dir, CURVE_FILE),
                    [curve[s] for s in sorted(curve)])
        snap = os.path.join(loss_dir, SNAPSHOT_DIR, f"step_{step:08d}.npz")
        os.makedirs(os.path.dirname(snap), exist_ok=True)
        extra = {f"{name}_labels": np.asarray(test)[snapshot]
                 for name, (_, test) in data.extra_labels.items()}
        np.savez(snap, embeddings=test_emb[snapshot].astype(np.float32),
                 labels=np.asarray(data.test_labels)[snapshot], **extra)
        if index is not None:
            save_cluster_model(os.path.join(loss_dir, CLUSTER_MODEL_FILE), index,
                               settings.num_neighbours, data.class_names, step)
        return {k: v for k, v in metrics.items() if k.endswith("error")}

    ckpt_dir = os.path.join(run_dir, "checkpoints", loss_name)
    if 0 not in curve and tf.train.latest_checkpoint(ckpt_dir) is None:
        on_checkpoint(0)
    max_seconds = (None if settings.max_train_minutes is None
                   else 60.0 * settings.max_train_minutes)
    loop = training_loop.run_training(
        loss_name, step_fn, settings.steps, run_dir, trackables,
        log_every=settings.log_every, checkpoint_every=settings.eval_every,
        on_checkpoint=on_checkpoint, max_seconds=max_seconds, stream=stream)
    if loop.steps not in curve and loop.status != "diverged":
        on_checkpoint(loop.steps)
    return TrainResult(loss=loss_name, loop=loop,
                       curve=[curve[s] for s in sorted(curve)], embedder=embedder,
                       classifier=classifier)
