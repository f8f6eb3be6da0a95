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
(`magnet.training_evaluation.evaluate`): kNN, nearest class mean, the magnet
rule with both sigma^2 rules, softmax argmax (softmax only) and fine-label kNN
for extra label sets. `error`
is each loss's own rule: magnet rule (paper's sigma^2 by default), softmax
argmax, kNN for triplet.

What `fit` cannot do, and is done here around it:

* start the data source at the resumed step. `fit(initial_epoch=...)` only
  renumbers epochs; the batch stream is built by us, keyed by step
  (`magnet.batch_stream`), so a resumed run sees the same batches as an
  uninterrupted one;
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
directory's files and their readers are `magnet.run_files`; the data and
hyper-parameters a run takes are `magnet.train_settings`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import (
    checkpoint,
    files,
    progress,
    summaries,
    training_loop,
)
from magnet import (
    batch_stats,
    embedding,
    kmeans_callback,
    networks,
    run_files,
    sampler,
    triplet,
)
from magnet import cluster_index as cluster_index_lib
from magnet import loss as loss_lib
from magnet.batch_stream import batch_dataset, distribute_batches, step_keyed
from magnet.train_settings import (
    AUGMENT_PAD,
    LOSSES,
    PRIMARY_RULE,
    TrainData,
    TrainSettings,
    check_data,
)
from magnet.training_evaluation import embed_fn, evaluate, seed_int

SNAPSHOT_EXAMPLES = 500
"""Test embeddings (a fixed random subset) saved at every evaluation, with their
labels, for embedding plots (`train(..., snapshot_examples=...)`)."""


MULTI_WORKER_UNSUPPORTED = (
    "--distribute=multi_worker: the magnet experiments train through "
    "keras.Model.fit, which fails under MultiWorkerMirroredStrategy in Keras 3.15 "
    "(even a Dense model with a mean-squared error); use --distribute=mirrored "
    "(all local devices)"
)


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


def _read_state(path: str) -> dict[str, Any]:
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"train_seconds": 0.0, "sessions": 0, "refreshes": 0, "refresh_seconds": 0.0}


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
    keras.utils.set_random_seed(seed_int(settings.seed, LOSSES.index(loss_name)))
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
        refresh_seed = seed_int(settings.seed, 0)
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
            seed=seed_int(settings.seed, 2),
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
