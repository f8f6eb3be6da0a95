"""Magnet evaluation rule, kNN and nearest centroid against brute force."""

import collections
import math

import numpy as np
import tensorflow as tf

from magnet import evaluation


def _brute_knn(queries, refs, ref_labels, k):
    """Majority vote of the k nearest; a tie goes to the class seen first."""
    out = []
    for q in queries:
        dist = [float(np.sum((q - r) ** 2)) for r in refs]
        order = sorted(range(len(refs)), key=lambda i: dist[i])[:k]
        votes = collections.Counter(ref_labels[i] for i in order)
        best = max(votes.values())
        out.append(next(ref_labels[i] for i in order if votes[ref_labels[i]] == best))
    return np.array(out)


def _brute_magnet(queries, centres, classes, sigma2, num_neighbours):
    """Sum of exp(-d / (2 sigma^2)) per class over the L nearest centres."""
    out = []
    for q in queries:
        dist = [float(np.sum((q - c) ** 2)) for c in centres]
        nearest = sorted(range(len(centres)), key=lambda i: dist[i])[:num_neighbours]
        scores = collections.defaultdict(float)
        for i in nearest:
            scores[classes[i]] += math.exp(-dist[i] / (2 * sigma2))
        out.append(max(sorted(scores), key=lambda c: scores[c]))
    return np.array(out)


class EvaluationTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.centres = rng.normal(size=(12, 3))
        self.cluster_classes = np.array([5, 5, 5, 2, 2, 2, 9, 9, 9, 0, 0, 0])
        self.queries = rng.normal(size=(200, 3)) * 1.2

    def test_magnet_rule_with_one_neighbour_is_nearest_centroid(self):
        for sigma2 in (0.01, 1.0, 100.0):
            got = evaluation.magnet_predict(
                self.queries, self.centres, self.cluster_classes, sigma2, 1, chunk=64
            )
            want = evaluation.nearest_centroid_predict(
                self.queries, self.centres, self.cluster_classes
            )
            self.assertAllEqual(got, want)
        # And nearest centroid is the argmin by brute force.
        brute = [
            self.cluster_classes[
                np.argmin([np.sum((q - c) ** 2) for c in self.centres])
            ]
            for q in self.queries
        ]
        self.assertAllEqual(want, brute)

    def test_magnet_rule_matches_brute_force(self):
        for sigma2 in (0.3, 2.0):
            for num_neighbours in (2, 5, 12):
                got = evaluation.magnet_predict(
                    self.queries,
                    self.centres,
                    self.cluster_classes,
                    sigma2,
                    num_neighbours,
                    chunk=37,
                )
                want = _brute_magnet(
                    self.queries,
                    self.centres,
                    self.cluster_classes,
                    sigma2,
                    num_neighbours,
                )
                self.assertAllEqual(got, want)

    def test_magnet_rule_survives_tiny_sigma(self):
        far = self.queries * 1e3
        got = evaluation.magnet_predict(
            far, self.centres, self.cluster_classes, 1e-8, 4
        )
        want = evaluation.nearest_centroid_predict(
            far, self.centres, self.cluster_classes
        )
        self.assertAllEqual(got, want)

    def test_knn_matches_brute_force(self):
        rng = np.random.default_rng(1)
        refs = rng.normal(size=(60, 4))
        ref_labels = rng.integers(0, 4, size=60) * 10 + 3
        queries = rng.normal(size=(40, 4))
        for k in (1, 2, 4, 7, 60):
            with self.subTest(k=k):
                got = evaluation.knn_predict(queries, refs, ref_labels, k, chunk=16)
                self.assertAllEqual(got, _brute_knn(queries, refs, ref_labels, k))

    def test_nearest_neighbours_are_the_brute_force_order(self):
        rng = np.random.default_rng(2)
        refs = rng.normal(size=(50, 3))
        queries = rng.normal(size=(30, 3))
        got = evaluation.nearest_neighbours(queries, refs, 6, chunk=7)
        want = [
            sorted(range(50), key=lambda i: float(np.sum((q - refs[i]) ** 2)))[:6]
            for q in queries
        ]
        self.assertAllEqual(got, want)

    def test_one_neighbour_search_serves_every_labelling(self):
        rng = np.random.default_rng(3)
        refs = rng.normal(size=(80, 4))
        queries = rng.normal(size=(25, 4))
        fine = rng.integers(0, 8, size=80)
        coarse = fine // 4  # A hierarchy: two coarse classes of four fine ones.
        neighbours = evaluation.nearest_neighbours(queries, refs, 5)
        for labels in (fine, coarse):
            self.assertAllEqual(
                evaluation.knn_vote(neighbours, labels),
                _brute_knn(queries, refs, labels, 5),
            )

    def test_class_centroids_and_error_rate(self):
        x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
        centroids, classes = evaluation.class_centroids(x, [7, 7, 1])
        self.assertAllEqual(classes, [1, 7])
        self.assertAllClose(centroids, [[10.0, 10.0], [1.0, 0.0]])
        self.assertAllClose(evaluation.error_rate([1, 2, 3, 4], [1, 0, 3, 0]), 0.5)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_neighbours L must be in"):
            evaluation.magnet_predict(
                self.queries, self.centres, self.cluster_classes, 1.0, 13
            )
        with self.assertRaisesRegex(ValueError, "sigma2 must be > 0"):
            evaluation.magnet_predict(
                self.queries, self.centres, self.cluster_classes, 0.0, 1
            )
        with self.assertRaisesRegex(ValueError, "k must be in"):
            evaluation.knn_predict(self.queries, self.centres, self.cluster_classes, 0)
        with self.assertRaisesRegex(ValueError, "embedding dims differ"):
            evaluation.knn_predict(
                self.queries[:, :2], self.centres, self.cluster_classes, 1
            )


if __name__ == "__main__":
    tf.test.main()
