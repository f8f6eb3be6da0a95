"""The k-means refresh of the cluster index as a Keras callback (Rippel et al. 3.2).

Every few epochs or steps the training set is re-embedded (or its cached
embeddings reused) and re-clustered, and the sampler's `ClusterIndex` is swapped
for the new clustering.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import keras
import numpy as np

from magnet.embedding import EmbedFn, as_embed_fn, embed_all

if TYPE_CHECKING:
    from magnet.sampler import MagnetSampler


def refresh_seed(seed: int, step: int) -> int:
    """The k-means seed `ClusterRefreshCallback(seed=seed)` uses after `step`."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


class ClusterRefreshCallback(keras.callbacks.Callback):
    """Re-clusters the training set every few epochs or steps.

    The sampler's index is refreshed in place (an atomic swap of its clustering),
    so batches sampled afterwards use the new clusters; example losses carry over.

    Two kinds of refresh:

    * full (the default, every refresh): embed the whole training set with the
      current model in inference mode, then k-means;
    * cached (with `reembed_every`): k-means on the sampler's
      `embedding_cache`, the latest embedding of every example, which training
      batches keep up to date (`LossRecorderCallback` with a
      `MagnetBatchStats(embedding_dim=...)`). Examples the sampler has not drawn
      since the last full refresh keep that refresh's embedding; drawn ones have
      their training-mode embedding (of the augmented image, if augmenting). A
      full refresh, which resets the cache, happens every `reembed_every` steps.
      k-means costs a few percent of an embedding pass of the training set.

    Args:
        sampler: The `magnet.sampler.MagnetSampler` feeding training; its images
            and class labels are re-embedded and re-clustered.
        embed_fn: Batch -> embeddings function or Keras model; defaults to the
            model being trained (called with `training=False`).
        every: Refresh period.
        unit: `"epoch"` (refresh after every `every` epochs) or `"step"` (after
            every `every` training batches).
        batch_size: Batch size for embedding the training set.
        initial_step: Training steps done before this `fit` (a resumed run), so
            step-unit refreshes stay on the same steps.
        seed: If given, the k-means of the refresh after step s is seeded with
            `(seed, s)`, which makes it reproducible on resume.
        until: If given, no step-unit refresh happens after this many steps
            (e.g. the last step of training, when nothing would use it).
        reembed_every: Steps between full refreshes when refreshes are cached
            (a multiple of `every`, unit "step"); None: every refresh is full.

    Attributes:
        last_embeddings: Embeddings the last refresh clustered (or None).
        last_step: Training step of the last refresh (-1 before any).
        refresh_seconds: Wall time spent refreshing in this callback.
        refreshes: Refreshes done by this callback.
    """

    def __init__(
        self,
        sampler: MagnetSampler,
        embed_fn: EmbedFn | None = None,
        every: int = 1,
        unit: str = "epoch",
        batch_size: int = 256,
        initial_step: int = 0,
        seed: int | None = None,
        until: int | None = None,
        reembed_every: int | None = None,
    ) -> None:
        super().__init__()
        if unit not in ("epoch", "step"):
            raise ValueError(f"unit must be 'epoch' or 'step', got {unit!r}.")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}.")
        if reembed_every is not None and (
            unit != "step" or reembed_every < every or reembed_every % every
        ):
            raise ValueError(
                "reembed_every must be a multiple of every, with unit "
                f"'step'; got {reembed_every!r} and every={every}."
            )
        self.sampler = sampler
        self.embed_fn = embed_fn
        self.every = every
        self.unit = unit
        self.batch_size = batch_size
        self.seed = seed
        self.until = until
        self.reembed_every = reembed_every
        self._steps = int(initial_step)
        self._embedder: EmbedFn | None = None
        self.last_embeddings: np.ndarray | None = None
        self.last_step = -1
        self.refresh_seconds = 0.0
        self.refreshes = 0

    def refresh(self, full: bool = True) -> None:
        """Re-clusters the sampler's index now (from the cache if not `full`)."""
        start = time.perf_counter()
        cache = self.sampler.embedding_cache
        if full or cache is None:
            if self._embedder is None:
                self._embedder = as_embed_fn(
                    self.embed_fn if self.embed_fn is not None else self.model
                )
            embeddings = embed_all(self._embedder, self.sampler.images, self.batch_size)
            if self.reembed_every is not None:
                self.sampler.embedding_cache = embeddings.astype(np.float32)
        else:
            embeddings = cache.copy()
        seed = None if self.seed is None else refresh_seed(self.seed, self._steps)
        self.sampler.index.refresh(embeddings, self.sampler.labels, seed=seed)
        self.last_embeddings = embeddings
        self.last_step = self._steps
        self.refreshes += 1
        self.refresh_seconds += time.perf_counter() - start

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Counts steps; refreshes every `every` steps when `unit == "step"`."""
        self._steps += 1
        if (
            self.unit == "step"
            and self._steps % self.every == 0
            and (self.until is None or self._steps < self.until)
        ):
            self.refresh(
                full=self.reembed_every is None or self._steps % self.reembed_every == 0
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Refreshes after every `every` epochs when `unit == "epoch"`."""
        if self.unit == "epoch" and (epoch + 1) % self.every == 0:
            self.refresh()
