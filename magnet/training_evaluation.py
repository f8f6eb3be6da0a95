"""Test errors of an embedding network at one point of its training.

`evaluate` embeds the training and test sets and scores the test set with every
rule the experiments report: kNN, the nearest class mean, the magnet rule over
the K-means clusters of the training embeddings with both sigma^2 rules (the
paper's running average and this project's recomputed variance), softmax argmax
when a head is given, and kNN on extra label sets (hierarchy recovery).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from magnet import cluster_index as cluster_index_lib
from magnet import embedding, evaluation
from magnet.train_settings import TrainData, TrainSettings


def seed_int(*parts: int) -> int:
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
    # One neighbour search for the target labels and every extra labelling.
    neighbours = evaluation.nearest_neighbours(test_emb, train_emb, k, chunk=256)
    knn = evaluation.knn_vote(neighbours, data.train_labels)
    metrics["knn_error"] = evaluation.error_rate(knn, data.test_labels)
    centroids, classes = evaluation.class_centroids(train_emb, data.train_labels)
    nearest = evaluation.nearest_centroid_predict(test_emb, centroids, classes)
    metrics["centroid_error"] = evaluation.error_rate(nearest, data.test_labels)
    index = cluster_model(
        train_emb,
        data.train_labels,
        settings.clusters_per_class,
        seed_int(settings.seed, step, 1),
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
        pred = evaluation.knn_vote(neighbours, train_extra)
        metrics[f"{name}_knn_error"] = evaluation.error_rate(pred, test_extra)
    return metrics, index, test_emb, used
