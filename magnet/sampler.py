"""Neighbourhood sampling of magnet mini-batches (Rippel et al. 2016, 3.2).

Each batch is built from the cluster index:

1. a seed cluster I_1 is drawn with probability proportional to its loss, the
   mean of the most recent losses of its examples (`ClusterIndex.cluster_losses`);
2. its M - 1 nearest impostor clusters I_2..I_M, i.e. the clusters of other
   classes whose centres are closest to the seed's centre, are added;
3. D examples are drawn from each of the M clusters, without replacement when the
   cluster has at least D examples (otherwise all of them plus repeats).

Batches are cluster-major: rows `[m * D, (m + 1) * D)` come from cluster I_{m+1},
the layout `magnet.loss.MagnetLoss` expects.

Example losses reach the index through `MagnetSampler.record_losses`;
`LossRecorderCallback` does this during `keras.Model.fit`. `fit` does not return
per-example training losses, so the callback either reads them from a compiled
`magnet.batch_stats.MagnetBatchStats` metric (the losses of the step's own
forward pass, at no extra cost) or, without one, re-scores the batch with the
current model (one extra forward pass per recorded step).

Batches can be keyed by the training step (`sample_batch_indices(step)`,
`dataset(start_step=...)`): batch `step` then depends only on `(seed, step)` and
the clustering, so a fit resumed at step s draws the same batches as an
uninterrupted one.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from magnet import cluster_index as cluster_index_lib
from magnet import embedding
from magnet import loss as loss_lib


class MagnetSampler:
    """Samples cluster-major batches of M clusters x D examples from an index.

    Args:
        images: `[N, ...]` training inputs (any array indexable by an index array).
        labels: `[N]` class labels.
        index: A built `ClusterIndex` over the same N examples; may be refreshed
            or replaced (`sampler.index = new_index`) while sampling.
        num_clusters: M, clusters per batch (>= 2).
        examples_per_cluster: D, examples per cluster.
        seed: Seed of the sampling random generator.
        max_pending: How many recently sampled batches are remembered for
            `record_losses` / `pop_pending` (oldest dropped first).

    Attributes:
        embedding_cache: Optional `[N, dim]` latest known embedding of every
            example: set by a full refresh of `ClusterRefreshCallback` (with
            `reembed_every`), then updated from the training batches by
            `record_losses`, so cheap refreshes can re-cluster it without
            embedding the whole training set.

    Example (the index of `ClusterIndex`'s example; a batch of M = 2 clusters
    x D = 2 examples: a seed cluster of class 1, then its nearest impostor
    cluster, of class 0):
        >>> import numpy as np
        >>> from magnet.cluster_index import ClusterIndex
        >>> emb = np.array([[0., 0.], [0., 1.], [9., 0.], [9., 1.],
        ...                 [0., 9.], [1., 9.], [9., 9.], [9., 8.]])
        >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
        >>> index = ClusterIndex.build(emb, labels, clusters_per_class=2, seed=0)
        >>> sampler = MagnetSampler(emb, labels, index, num_clusters=2,
        ...                         examples_per_cluster=2, seed=0)
        >>> batch = sampler.sample_batch_indices()
        >>> batch.tolist(), labels[batch].tolist()
        ([7, 6, 3, 2], [1, 1, 0, 0])
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        index: cluster_index_lib.ClusterIndex,
        num_clusters: int,
        examples_per_cluster: int,
        *,
        seed: int = 0,
        max_pending: int = 64,
    ) -> None:
        self.num_clusters = loss_lib.check_positive_int("num_clusters", num_clusters)
        self.examples_per_cluster = loss_lib.check_positive_int(
            "examples_per_cluster", examples_per_cluster
        )
        if self.num_clusters < 2:
            raise ValueError(
                "MagnetSampler needs num_clusters >= 2 (a seed and at "
                "least one impostor)."
            )
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"MagnetSampler expects labels of shape [{len(images)}],"
                f" got shape {labels.shape}."
            )
        self.images = images
        self.labels = labels
        self.seed = int(seed)
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self._pending: collections.deque[np.ndarray] = collections.deque(
            maxlen=max_pending
        )
        self._index: cluster_index_lib.ClusterIndex | None = None
        self._checked_state: cluster_index_lib.ClusterState | None = None
        self.index = index
        self.embedding_cache: np.ndarray | None = None

    @property
    def batch_size(self) -> int:
        """N = M * D."""
        return self.num_clusters * self.examples_per_cluster

    @property
    def index(self) -> cluster_index_lib.ClusterIndex:
        """The cluster index batches are drawn from."""
        return self._index

    @index.setter
    def index(self, index: cluster_index_lib.ClusterIndex) -> None:
        state = index.state  # Raises if the index was never built.
        self._check_state(state)
        self._index = index

    def _check_state(self, state: cluster_index_lib.ClusterState) -> None:
        """Checks that the clustering fits the data and has enough impostors."""
        if state is self._checked_state:
            return
        if len(state.labels) != len(self.labels) or np.any(state.labels != self.labels):
            raise ValueError(
                "MagnetSampler: the index was built on other labels than the sampler's."
            )
        _, per_class = np.unique(state.cluster_classes, return_counts=True)
        impostors = len(state.cluster_classes) - per_class.max()
        if impostors < self.num_clusters - 1:
            raise ValueError(
                f"MagnetSampler needs M-1 = {self.num_clusters - 1} "
                f"impostor clusters per seed but some class has only "
                f"{impostors}."
            )
        self._checked_state = state

    def sample_clusters(self) -> np.ndarray:
        """Draws a seed cluster and its M - 1 nearest impostor clusters.

        Returns:
            `[M]` global cluster ids: the seed first, then impostors by increasing
            centre distance to the seed.
        """
        index = self._index
        state = index.state
        self._check_state(state)
        with self._rng_lock:
            return self._sample_clusters(index, state, self._rng)

    def _sample_clusters(
        self,
        index: cluster_index_lib.ClusterIndex,
        state: cluster_index_lib.ClusterState,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """`sample_clusters` on one snapshot of the clustering."""
        weights = index.cluster_losses(state)
        total = weights.sum()
        probs = weights / total if total > 0 else None  # All zero: uniform.
        seed = int(rng.choice(len(weights), p=probs))
        dist = np.sum((state.centres - state.centres[seed]) ** 2, axis=1)
        dist[state.cluster_classes == state.cluster_classes[seed]] = np.inf
        neighbours = np.argsort(dist, kind="stable")[: self.num_clusters - 1]
        return np.concatenate([[seed], neighbours]).astype(np.int64)

    def sample_batch_indices(self, step: int | None = None) -> np.ndarray:
        """Example indices of one batch, `[M * D]` in cluster-major order.

        The batch is remembered for `record_losses` / `pop_pending`.

        Args:
            step: If given, the batch is drawn with a generator seeded by
                `(seed, step)` instead of the sampler's running generator.
        """
        index = self._index
        state = index.state
        self._check_state(state)
        if step is None:
            with self._rng_lock:
                indices = self._draw(index, state, self._rng)
        else:
            rng = np.random.default_rng([self.seed, int(step)])
            indices = self._draw(index, state, rng)
        self._pending.append(indices)
        return indices

    def _draw(
        self,
        index: cluster_index_lib.ClusterIndex,
        state: cluster_index_lib.ClusterState,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Clusters, then D examples of each, from one snapshot and generator."""
        clusters = self._sample_clusters(index, state, rng)
        d = self.examples_per_cluster
        parts = []
        for c in clusters:
            members = state.members[c]
            if len(members) >= d:
                parts.append(rng.choice(members, size=d, replace=False))
            else:
                extra = rng.choice(members, size=d - len(members))
                parts.append(rng.permutation(np.concatenate([members, extra])))
        return np.concatenate(parts).astype(np.int64)

    def generator(
        self, start_step: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Endless `(images [M*D, ...], labels [M*D])` batches.

        Args:
            start_step: None: batches from the running generator. An int s:
                batches s, s + 1, ... keyed by step (see `sample_batch_indices`).
        """
        step = start_step
        while True:
            indices = self.sample_batch_indices(step)
            if step is not None:
                step += 1
            yield self.images[indices], self.labels[indices]

    def dataset(
        self, prefetch: int | None = 1, start_step: int | None = None
    ) -> tf.data.Dataset:
        """An endless `tf.data.Dataset` of `(images, labels)` batches.

        Args:
            prefetch: Batches to prefetch (None: no prefetching). Prefetched
                batches were sampled from the index as it was at the time.
            start_step: Key batches by step from this step on (for exact
                resumption); None uses the running generator.

        Returns:
            The dataset; give `fit` a `steps_per_epoch`.
        """
        sample = np.asarray(self.images[:1])
        n = self.batch_size
        signature = (
            tf.TensorSpec((n, *sample.shape[1:]), tf.as_dtype(sample.dtype)),
            tf.TensorSpec((n,), tf.as_dtype(self.labels.dtype)),
        )
        ds = tf.data.Dataset.from_generator(
            lambda: self.generator(start_step), output_signature=signature
        )
        return ds.prefetch(prefetch) if prefetch else ds

    def clear_pending(self) -> None:
        """Forgets every remembered batch (drawn but never trained)."""
        self._pending.clear()

    def pop_pending(self) -> np.ndarray | None:
        """Oldest remembered batch whose losses were not recorded, or None."""
        try:
            return self._pending.popleft()
        except IndexError:
            return None

    def record_losses(
        self,
        losses: np.ndarray,
        indices: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
    ) -> None:
        """Stores per-example losses (and embeddings) of a batch.

        Args:
            losses: `[M * D]` per-example losses, written into the index.
            indices: The batch's example indices; defaults to the oldest pending
                batch (nothing happens if there is none).
            embeddings: `[M * D, dim]` embeddings of the batch from training;
                written into `embedding_cache` when there is one.
        """
        if indices is None:
            indices = self.pop_pending()
            if indices is None:
                return
        self._index.update_losses(indices, losses)
        if embeddings is not None and self.embedding_cache is not None:
            self.embedding_cache[indices] = np.asarray(embeddings)


class LossRecorderCallback(keras.callbacks.Callback):
    """Feeds example losses to the sampler during `fit`.

    After training steps, takes the oldest batch the sampler produced and not yet
    scored (batches are trained in the order they are drawn) and stores its
    per-example magnet losses in the index, from one of two sources:

    * `stats` (a compiled `magnet.batch_stats.MagnetBatchStats`): the losses of
      the step's own training forward pass, before the update, at no extra
      cost. Every step is recorded (`every` must be 1). If the metric keeps
      the batch's embeddings, they go to the sampler's `embedding_cache`.
    * otherwise: the batch re-embedded by the current model (`training=False`),
      one extra forward pass per recorded step; these are the losses just after
      the step, which serve the same purpose (a recent estimate of how badly
      each cluster is separated).

    Args:
        sampler: The sampler feeding `fit`.
        loss: The `MagnetLoss` (its M, D, alpha and epsilon are used).
        embed_fn: Batch -> embeddings function or Keras model for re-scoring;
            defaults to the model being trained.
        every: Score one batch every `every` steps (re-scoring only).
        stats: The compiled batch-statistics metric to read losses from.
    """

    def __init__(
        self,
        sampler: MagnetSampler,
        loss: loss_lib.MagnetLoss,
        embed_fn: embedding.EmbedFn | None = None,
        every: int = 1,
        stats: keras.metrics.Metric | None = None,
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}.")
        if stats is not None and every != 1:
            raise ValueError("with stats, every step is recorded (every=1).")
        if loss.batch_size != sampler.batch_size:
            raise ValueError(
                f"loss batch size {loss.batch_size} != sampler batch "
                f"size {sampler.batch_size}."
            )
        self.sampler = sampler
        self.loss = loss
        self.embed_fn = embed_fn
        self.every = every
        self.stats = stats
        self._steps = 0
        self._embedder: embedding.EmbedFn | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Forgets batches drawn before training (never trained, never scored).

        Under a `tf.distribute` strategy, `fit` draws one batch to build the
        model and then restarts the stream; that batch must not take the
        losses of the first trained one.
        """
        del logs
        self.sampler.clear_pending()

    def record(self) -> bool:
        """Scores one pending batch now; returns whether there was one."""
        indices = self.sampler.pop_pending()
        if indices is None:
            return False
        embeddings = None
        if self.stats is not None:
            losses = self.stats.example_losses.numpy()
            if getattr(self.stats, "embeddings", None) is not None:
                embeddings = self.stats.embeddings.numpy()
        else:
            if self._embedder is None:
                self._embedder = embedding.as_embed_fn(
                    self.embed_fn if self.embed_fn is not None else self.model
                )
            embeddings = self._embedder(
                tf.cast(self.sampler.images[indices], tf.float32)
            )
            losses, _, _ = loss_lib.magnet_loss_terms(
                embeddings,
                self.sampler.labels[indices],
                self.loss.num_clusters,
                self.loss.examples_per_cluster,
                self.loss.alpha,
                self.loss.epsilon,
            )
        self.sampler.record_losses(np.asarray(losses), indices, embeddings)
        return True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Scores a pending batch every `every` steps."""
        self._steps += 1
        if self._steps % self.every == 0:
            self.record()
