"""Classifiers on learned embeddings: magnet rule, kNN, nearest centroid.

The magnet evaluation rule (Rippel et al. 2016, 3.4) labels an embedding r with

    argmax_c  sum_{mu in L nearest cluster centres, C(mu) = c}
              exp(-|r - mu|^2 / (2 sigma^2)),

the class with the largest kernel mass among the L cluster centres nearest to r.
sigma^2 is the variance estimate of training (e.g. `ClusterIndex.sigma2`).

Everything here is vectorised NumPy in float64 over chunks of queries, so memory
stays O(chunk * references).
"""

from __future__ import annotations

import numpy as np

DEFAULT_CHUNK = 1024


def squared_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """`[Q, R]` squared Euclidean distances in float64, clamped at zero."""
    q = np.asarray(queries, dtype=np.float64)
    r = np.asarray(references, dtype=np.float64)
    dist = (
        np.sum(q * q, axis=1)[:, None] - 2.0 * q @ r.T + np.sum(r * r, axis=1)[None, :]
    )
    return np.maximum(dist, 0.0)


def _check_2d(name: str, x: np.ndarray) -> np.ndarray:
    """`x` as an array, or ValueError unless it is rank 2."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape [n, dim], got {x.shape}.")
    return x


def _check_pair(
    queries: np.ndarray, references: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Queries and references as rank-2 arrays of the same width, or ValueError."""
    queries = _check_2d("embeddings", queries)
    references = _check_2d("references", references)
    if queries.shape[1] != references.shape[1]:
        raise ValueError(
            f"embedding dims differ: {queries.shape[1]} vs {references.shape[1]}."
        )
    return queries, references


def _check_references(
    queries: np.ndarray, references: np.ndarray, reference_labels: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Validates query/reference shapes; returns them as arrays."""
    queries, references = _check_pair(queries, references)
    reference_labels = np.asarray(reference_labels)
    if reference_labels.shape != (references.shape[0],):
        raise ValueError(
            f"reference labels must have shape [{references.shape[0]}]"
            f", got {reference_labels.shape}."
        )
    return queries, references, reference_labels


def magnet_predict(
    embeddings: np.ndarray,
    centres: np.ndarray,
    cluster_classes: np.ndarray,
    sigma2: float,
    num_neighbours: int,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """The magnet rule over the L nearest cluster centres.

    Args:
        embeddings: `[Q, dim]` query embeddings.
        centres: `[C, dim]` cluster centres.
        cluster_classes: `[C]` class of each centre.
        sigma2: Variance sigma^2 > 0 of the Gaussian kernel.
        num_neighbours: L, 1 <= L <= C.
        chunk: Queries per vectorised chunk.

    Returns:
        `[Q]` predicted classes (values of `cluster_classes`). Exact score ties
        go to the smallest class.

    Example (each query is nearest to the centre of its predicted class):
        >>> import numpy as np
        >>> centres = np.array([[0.0, 0.0], [10.0, 0.0]])
        >>> queries = np.array([[1.0, 0.0], [8.0, 0.0]])
        >>> magnet_predict(queries, centres, np.array([3, 7]), sigma2=1.0,
        ...                num_neighbours=2).tolist()
        [3, 7]
    """
    embeddings, centres, cluster_classes = _check_references(
        embeddings, centres, cluster_classes
    )
    if not sigma2 > 0.0:
        raise ValueError(f"sigma2 must be > 0, got {sigma2!r}.")
    num_centres = len(centres)
    if not 1 <= num_neighbours <= num_centres:
        raise ValueError(
            f"num_neighbours L must be in [1, {num_centres}], got {num_neighbours}."
        )
    classes, centre_class = np.unique(cluster_classes, return_inverse=True)
    out = np.empty(len(embeddings), dtype=np.int64)
    for start in range(0, len(embeddings), chunk):
        dist = squared_distances(embeddings[start : start + chunk], centres)
        rows = np.arange(len(dist))[:, None]
        nearest = np.argpartition(dist, num_neighbours - 1, axis=1)[:, :num_neighbours]
        near_dist = dist[rows, nearest]
        # Shifting by the row minimum rescales a row's scores by one factor.
        weights = np.exp(
            -(near_dist - near_dist.min(axis=1, keepdims=True)) / (2.0 * sigma2)
        )
        scores = np.zeros((len(dist), len(classes)))
        np.add.at(
            scores,
            (np.broadcast_to(rows, nearest.shape), centre_class[nearest]),
            weights,
        )
        out[start : start + chunk] = np.argmax(scores, axis=1)
    return classes[out]


def nearest_centroid_predict(
    embeddings: np.ndarray,
    centroids: np.ndarray,
    centroid_classes: np.ndarray,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Class of the nearest centroid (e.g. cluster centres or class means).

    Args:
        embeddings: `[Q, dim]` query embeddings.
        centroids: `[C, dim]` centroids.
        centroid_classes: `[C]` class of each centroid.
        chunk: Queries per vectorised chunk.

    Returns:
        `[Q]` predicted classes; distance ties go to the lower centroid index.
    """
    embeddings, centroids, centroid_classes = _check_references(
        embeddings, centroids, centroid_classes
    )
    nearest = np.empty(len(embeddings), dtype=np.int64)
    for start in range(0, len(embeddings), chunk):
        nearest[start : start + chunk] = np.argmin(
            squared_distances(embeddings[start : start + chunk], centroids), axis=1
        )
    return centroid_classes[nearest]


def class_centroids(
    embeddings: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean embedding of every class.

    Args:
        embeddings: `[N, dim]` embeddings.
        labels: `[N]` class labels.

    Returns:
        `(centroids [num_classes, dim], classes [num_classes])`, classes sorted.
    """
    embeddings = _check_2d("embeddings", embeddings).astype(np.float64)
    classes, inverse = np.unique(np.asarray(labels), return_inverse=True)
    sums = np.zeros((len(classes), embeddings.shape[1]))
    np.add.at(sums, inverse, embeddings)
    return sums / np.bincount(inverse)[:, None], classes


def _ranking_distances(
    queries: np.ndarray, references: np.ndarray, reference_norms: np.ndarray
) -> np.ndarray:
    """`[Q, R]` squared distances minus each query's squared norm, in float64.

    A row's order is that of the squared distances (the dropped term is constant
    along a row), at about half the memory traffic of `squared_distances`.
    """
    dist = np.asarray(queries, dtype=np.float64) @ references.T
    dist *= -2.0
    dist += reference_norms
    return dist


def nearest_neighbours(
    embeddings: np.ndarray,
    reference_embeddings: np.ndarray,
    k: int,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Indices of the k nearest references of every query, nearest first.

    Args:
        embeddings: `[Q, dim]` query embeddings.
        reference_embeddings: `[R, dim]` reference embeddings.
        k: Number of neighbours, 1 <= k <= R.
        chunk: Queries per vectorised chunk.

    Returns:
        `[Q, k]` reference indices, by increasing distance.
    """
    embeddings, references = _check_pair(embeddings, reference_embeddings)
    references = references.astype(np.float64)
    if not 1 <= k <= len(references):
        raise ValueError(f"k must be in [1, {len(references)}], got {k}.")
    norms = np.sum(references * references, axis=1)
    out = np.empty((len(embeddings), k), dtype=np.int64)
    for start in range(0, len(embeddings), chunk):
        dist = _ranking_distances(embeddings[start : start + chunk], references, norms)
        rows = np.arange(len(dist))[:, None]
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(dist[rows, part], axis=1, kind="stable")
        out[start : start + chunk] = part[rows, order]
    return out


def knn_vote(neighbours: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    """Majority vote over precomputed neighbours (`nearest_neighbours`).

    One neighbour search serves several labellings of the same references
    (e.g. the coarse and the fine labels of a hierarchy experiment).

    Args:
        neighbours: `[Q, k]` reference indices, nearest first.
        reference_labels: `[R]` the references' classes.

    Returns:
        `[Q]` the most frequent class among the neighbours; a vote tie goes to
        the tied class with the nearest neighbour.
    """
    neighbours = np.asarray(neighbours)
    classes, ref_class = np.unique(np.asarray(reference_labels), return_inverse=True)
    neighbour_class = ref_class[neighbours]  # [Q, k], nearest first.
    q, k = neighbour_class.shape
    rows = np.arange(q)[:, None]
    votes = np.zeros((q, len(classes)))
    np.add.at(
        votes, (np.broadcast_to(rows, neighbour_class.shape), neighbour_class), 1.0
    )
    # Rank of each class's nearest neighbour (k if the class has none).
    first_rank = np.full((q, len(classes)), float(k))
    np.minimum.at(
        first_rank,
        (np.broadcast_to(rows, neighbour_class.shape), neighbour_class),
        np.broadcast_to(np.arange(k, dtype=np.float64), neighbour_class.shape),
    )
    return classes[np.argmax(votes * (k + 1) - first_rank, axis=1)]


def knn_predict(
    embeddings: np.ndarray,
    reference_embeddings: np.ndarray,
    reference_labels: np.ndarray,
    k: int,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """k-nearest-neighbour majority vote.

    Args:
        embeddings: `[Q, dim]` query embeddings.
        reference_embeddings: `[R, dim]` labelled embeddings (e.g. training set).
        reference_labels: `[R]` their classes.
        k: Number of neighbours, 1 <= k <= R.
        chunk: Queries per vectorised chunk.

    Returns:
        `[Q]` predicted classes: the most frequent class among the k nearest;
        a vote tie goes to the tied class with the nearest neighbour.
    """
    reference_labels = _check_references(
        embeddings, reference_embeddings, reference_labels
    )[2]
    return knn_vote(
        nearest_neighbours(embeddings, reference_embeddings, k, chunk),
        reference_labels,
    )


def error_rate(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of wrong predictions."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"shapes differ: {predictions.shape} vs {labels.shape}.")
    return float(np.mean(predictions != labels)) if labels.size else 0.0
