"""Per-class k-means cluster index of the training set (Rippel et al. 2016, 3.2).

Magnet training keeps, for the whole training set, K clusters per class found by
k-means on the current embeddings. The index holds each example's (global) cluster,
each cluster's class and centre, and the most recent loss of every example, whose
per-cluster means drive the choice of seed clusters in `magnet.sampler`. It is
refreshed periodically from fresh embeddings (`magnet.kmeans_callback`).

k-means: scikit-learn is not installed in this project's environment (and is not
in `requirements.txt`), so this module carries its own vectorised NumPy k-means
with k-means++ seeding (Arthur & Vassilvitskii 2007) and Lloyd iterations, as the
paper's K-means++ clustering.

Global cluster ids are class-major: with sorted classes c_0 < c_1 < ..., the
clusters of class c_i are `[i * K, (i + 1) * K)`.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np


def _squared_distances(
    points: np.ndarray, centres: np.ndarray, point_norms: np.ndarray | None = None
) -> np.ndarray:
    """`[P, C]` squared Euclidean distances, clamped at zero.

    `point_norms` (`sum(points**2, axis=1)`, computed here if None) lets Lloyd's
    iterations reuse the points' squared norms instead of recomputing them.
    """
    if point_norms is None:
        point_norms = np.sum(points * points, axis=1)
    dist = (
        point_norms[:, None]
        - 2.0 * points @ centres.T
        + np.sum(centres * centres, axis=1)[None, :]
    )
    return np.maximum(dist, 0.0)


def kmeans_plus_plus_init(
    points: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """k-means++ seeding: each new centre is a point drawn with prob. ~ D(x)^2.

    Args:
        points: `[P, dim]` float64 points, P >= k.
        k: Number of centres.
        rng: Random generator.

    Returns:
        `[k, dim]` initial centres (copies of distinct points).
    """
    num = points.shape[0]
    norms = np.sum(points * points, axis=1)
    chosen = [int(rng.integers(num))]
    closest = _squared_distances(points, points[chosen], norms)[:, 0]
    for _ in range(1, k):
        weights = closest.copy()
        weights[chosen] = 0.0
        total = weights.sum()
        if total > 0.0:
            nxt = int(rng.choice(num, p=weights / total))
        else:  # Every remaining point duplicates a centre: pick any unused point.
            nxt = int(rng.choice(np.setdiff1d(np.arange(num), chosen)))
        chosen.append(nxt)
        closest = np.minimum(
            closest, _squared_distances(points, points[[nxt]], norms)[:, 0]
        )
    return points[chosen].copy()


def kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from a k-means++ start; every cluster keeps >= 1 point.

    An empty cluster takes the point farthest from its centre among clusters
    with more than one point.

    Args:
        points: `[P, dim]` points.
        k: Number of clusters, 1 <= k <= P.
        rng: Random generator for the seeding.
        max_iter: Maximum number of Lloyd iterations.

    Returns:
        `(centres [k, dim] float64, assignments [P] int64)`; centres are the means
        of their assigned points.

    Raises:
        ValueError: k is not in [1, P].
    """
    points = np.asarray(points, dtype=np.float64)
    num = points.shape[0]
    if not 1 <= k <= num:
        raise ValueError(
            f"k-means needs 1 <= k <= number of points, got k={k} for {num} points."
        )
    centres = kmeans_plus_plus_init(points, k, rng)
    assignments = np.full(num, -1, dtype=np.int64)
    norms = np.sum(points * points, axis=1)
    for _ in range(max_iter):
        dist = _squared_distances(points, centres, norms)
        new = np.argmin(dist, axis=1).astype(np.int64)
        _fill_empty_clusters(new, dist[np.arange(num), new], k)
        if np.array_equal(new, assignments):
            break
        assignments = new
        centres = _means(points, assignments, k)
    return centres, assignments


def _fill_empty_clusters(assignments: np.ndarray, own_dist: np.ndarray, k: int) -> None:
    """Moves far points into empty clusters in place, never emptying a cluster."""
    counts = np.bincount(assignments, minlength=k)
    for empty in np.flatnonzero(counts == 0):
        candidates = np.flatnonzero(counts[assignments] > 1)
        far = candidates[np.argmax(own_dist[candidates])]
        counts[assignments[far]] -= 1
        counts[empty] += 1
        assignments[far] = empty
        own_dist[far] = 0.0


def _means(points: np.ndarray, assignments: np.ndarray, k: int) -> np.ndarray:
    """`[k, dim]` mean of the points of each (non-empty) cluster."""
    # A one-hot product instead of np.add.at, which is ~100x slower here.
    one_hot = np.zeros((len(points), k))
    one_hot[np.arange(len(points)), assignments] = 1.0
    return (one_hot.T @ points) / np.bincount(assignments, minlength=k)[:, None]


@dataclasses.dataclass(frozen=True)
class ClusterState:
    """One immutable clustering of the training set; swapped whole on refresh.

    Attributes:
        labels: `[N]` class label of every example.
        assignments: `[N]` global cluster id of every example.
        cluster_classes: `[C]` class of every cluster.
        centres: `[C, dim]` float64 cluster centres (means of members).
        members: C arrays of the example indices of each cluster.
        sigma2: Mean squared distance of examples to their centres,
            sum / (N - 1), the estimate of sigma^2 the evaluation rule can use.
    """

    labels: np.ndarray
    assignments: np.ndarray
    cluster_classes: np.ndarray
    centres: np.ndarray
    members: tuple[np.ndarray, ...]
    sigma2: float


class ClusterIndex:
    """K k-means clusters per class over the training-set embeddings.

    Build with `ClusterIndex(K).refresh(embeddings, labels)` or
    `ClusterIndex.build(embeddings, labels, K)`. Only embeddings and class labels
    are needed; cluster ids are computed. Example losses survive refreshes (they
    are per example), so cluster losses are recomputed for the new clusters.

    Thread safety: the clustering is swapped as one immutable `ClusterState`, and
    loss updates take a lock, so a `tf.data` generator thread may sample while the
    main thread refreshes.

    Args:
        clusters_per_class: K, clusters per class.
        seed: Seed of the k-means++ random generator.
        initial_loss: Loss assumed for examples never seen in training, so
            sampling starts uniform over clusters.
        max_iter: Maximum Lloyd iterations per class.

    Example (two classes of four 2-D embeddings, two clusters per class):
        >>> import numpy as np
        >>> emb = np.array([[0., 0.], [0., 1.], [9., 0.], [9., 1.],
        ...                 [0., 9.], [1., 9.], [9., 9.], [9., 8.]])
        >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
        >>> index = ClusterIndex.build(emb, labels, clusters_per_class=2, seed=0)
        >>> index.num_clusters, index.cluster_classes.tolist()
        (4, [0, 0, 1, 1])
        >>> index.centres.tolist()
        [[9.0, 0.5], [0.0, 0.5], [9.0, 8.5], [0.5, 9.0]]
    """

    def __init__(
        self,
        clusters_per_class: int,
        *,
        seed: int = 0,
        initial_loss: float = 1.0,
        max_iter: int = 100,
    ) -> None:
        if (
            isinstance(clusters_per_class, bool)
            or not isinstance(clusters_per_class, (int, np.integer))
            or clusters_per_class < 1
        ):
            raise ValueError(
                "clusters_per_class must be a positive int, got "
                f"{clusters_per_class!r}."
            )
        if not initial_loss >= 0.0:
            raise ValueError(f"initial_loss must be >= 0, got {initial_loss!r}.")
        self.clusters_per_class = int(clusters_per_class)
        self.initial_loss = float(initial_loss)
        self.max_iter = int(max_iter)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._state: ClusterState | None = None
        self._example_losses: np.ndarray | None = None
        self.refresh_count = 0

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        labels: np.ndarray,
        clusters_per_class: int,
        **kwargs: Any,
    ) -> ClusterIndex:
        """A new index clustered on `embeddings`; kwargs go to the constructor."""
        return cls(clusters_per_class, **kwargs).refresh(embeddings, labels)

    def refresh(
        self, embeddings: np.ndarray, labels: np.ndarray, seed: int | None = None
    ) -> ClusterIndex:
        """Re-clusters every class of the training set with k-means.

        Args:
            embeddings: `[N, dim]` embeddings of the whole training set.
            labels: `[N]` class labels.
            seed: If given, k-means++ seeding restarts from this seed (so a
                refresh is a function of its inputs); else the index's running
                generator is used.

        Returns:
            self.

        Raises:
            ValueError: Shapes disagree, or K exceeds the size of some class.
        """
        embeddings = np.asarray(embeddings, dtype=np.float64)
        labels = np.asarray(labels)
        if embeddings.ndim != 2:
            raise ValueError(
                "ClusterIndex expects embeddings of shape [N, dim], got "
                f"shape {embeddings.shape}."
            )
        if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"ClusterIndex expects labels of shape [{len(embeddings)}]"
                f", got shape {labels.shape}."
            )
        if not np.all(np.isfinite(embeddings)):
            raise ValueError("ClusterIndex got non-finite embeddings.")
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        k = self.clusters_per_class
        classes, counts = np.unique(labels, return_counts=True)
        too_small = counts < k
        if np.any(too_small):
            cls_, cnt = classes[too_small][0], counts[too_small][0]
            raise ValueError(
                f"clusters_per_class K={k} exceeds the {cnt} examples of class {cls_}."
            )
        num = embeddings.shape[0]
        assignments = np.empty(num, dtype=np.int64)
        centres = np.empty((len(classes) * k, embeddings.shape[1]))
        for i, cls_ in enumerate(classes):
            rows = np.flatnonzero(labels == cls_)
            cls_centres, local = kmeans(embeddings[rows], k, self._rng, self.max_iter)
            centres[i * k : (i + 1) * k] = cls_centres
            assignments[rows] = i * k + local
        order = np.argsort(assignments, kind="stable")
        splits = np.cumsum(np.bincount(assignments, minlength=len(centres)))[:-1]
        members = tuple(np.split(order, splits))
        sq = np.sum((embeddings - centres[assignments]) ** 2)
        state = ClusterState(
            labels=labels.copy(),
            assignments=assignments,
            cluster_classes=np.repeat(classes, k),
            centres=centres,
            members=members,
            sigma2=float(sq / max(num - 1, 1)),
        )
        with self._lock:
            if self._example_losses is None or len(self._example_losses) != num:
                self._example_losses = np.full(num, self.initial_loss)
            self._state = state
            self.refresh_count += 1
        return self

    @property
    def is_built(self) -> bool:
        """Whether `refresh` has run."""
        return self._state is not None

    def _require_built(self) -> ClusterState:
        """The current state, or RuntimeError before the first refresh."""
        state = self._state
        if state is None:
            raise RuntimeError(
                "ClusterIndex is empty: call refresh(embeddings, labels) first."
            )
        return state

    @property
    def state(self) -> ClusterState:
        """The current clustering (one consistent snapshot)."""
        return self._require_built()

    @property
    def labels(self) -> np.ndarray:
        """`[N]` class labels."""
        return self.state.labels

    @property
    def assignments(self) -> np.ndarray:
        """`[N]` global cluster id of every example."""
        return self.state.assignments

    @property
    def cluster_classes(self) -> np.ndarray:
        """`[C]` class of every cluster."""
        return self.state.cluster_classes

    @property
    def centres(self) -> np.ndarray:
        """`[C, dim]` cluster centres."""
        return self.state.centres

    @property
    def sigma2(self) -> float:
        """Variance of examples around their centres, sum / (N - 1)."""
        return self.state.sigma2

    @property
    def num_clusters(self) -> int:
        """C, the total number of clusters."""
        return len(self.state.cluster_classes)

    @property
    def num_examples(self) -> int:
        """N, the number of indexed examples."""
        return len(self.state.labels)

    def members(self, cluster: int) -> np.ndarray:
        """Example indices of one cluster."""
        return self.state.members[cluster]

    @property
    def example_losses(self) -> np.ndarray:
        """`[N]` most recent loss of every example (copy)."""
        self._require_built()
        with self._lock:
            return self._example_losses.copy()

    def cluster_losses(self, state: ClusterState | None = None) -> np.ndarray:
        """`[C]` mean of the most recent losses of each cluster's examples.

        Args:
            state: Clustering to average over; defaults to the current one.
        """
        state = state or self.state
        with self._lock:
            losses = self._example_losses.copy()
        sums = np.bincount(
            state.assignments, weights=losses, minlength=len(state.cluster_classes)
        )
        return sums / np.bincount(
            state.assignments, minlength=len(state.cluster_classes)
        )

    def update_losses(self, indices: np.ndarray, losses: np.ndarray) -> None:
        """Stores the latest losses of some examples (e.g. one training batch).

        Args:
            indices: Example indices (repeats allowed; the last value wins).
            losses: Their losses, same length.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        losses = np.asarray(losses, dtype=np.float64).reshape(-1)
        if indices.shape != losses.shape:
            raise ValueError(
                f"update_losses got {indices.size} indices but {losses.size} losses."
            )
        if not np.all(np.isfinite(losses)) or np.any(losses < 0):
            raise ValueError("update_losses expects finite non-negative losses.")
        num = self.num_examples
        if indices.size and (indices.min() < 0 or indices.max() >= num):
            raise ValueError(f"update_losses got indices outside [0, {num}).")
        with self._lock:
            self._example_losses[indices] = losses
