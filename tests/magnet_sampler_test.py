"""Neighbourhood sampling: batch layout, impostor neighbours, loss-driven seeds."""

import numpy as np
import tensorflow as tf

from magnet import cluster_index, sampler


def _setup(num_classes=5, per_class=12, k=3, m=4, d=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes) * 2 + 1, per_class)
    embeddings = rng.normal(size=(len(labels), 3))
    # Images encode their own index, so batches can be traced back.
    images = np.arange(len(labels), dtype=np.float32)[:, None] * np.ones(
        (1, 2), np.float32
    )
    index = cluster_index.ClusterIndex.build(embeddings, labels, k, seed=seed)
    return (
        images,
        labels,
        index,
        sampler.MagnetSampler(images, labels, index, m, d, seed=seed),
    )


class MagnetSamplerTest(tf.test.TestCase):
    def test_batches_are_m_clusters_of_d_examples(self):
        _, labels, index, s = _setup()
        m, d = 4, 3
        for _ in range(50):
            batch = s.sample_batch_indices().reshape(m, d)
            clusters = index.assignments[batch]
            self.assertAllEqual(clusters, np.repeat(clusters[:, :1], d, axis=1))
            self.assertLen(np.unique(clusters[:, 0]), m)
            for row in batch:
                # Without replacement whenever the cluster has D examples.
                size = len(index.members(index.assignments[row[0]]))
                self.assertLen(np.unique(row), min(d, size))
                self.assertLen(np.unique(labels[row]), 1)

    def test_neighbours_are_the_nearest_impostors(self):
        _, _, index, s = _setup()
        seen = set()
        for _ in range(60):
            clusters = s.sample_clusters()
            seed, neighbours = clusters[0], clusters[1:]
            seen.add(int(seed))
            classes = index.cluster_classes
            self.assertNotIn(classes[seed], classes[neighbours])
            impostors = [
                c for c in range(index.num_clusters) if classes[c] != classes[seed]
            ]
            dist = {
                c: float(np.sum((index.centres[c] - index.centres[seed]) ** 2))
                for c in impostors
            }
            want = sorted(impostors, key=lambda c: dist[c])[:3]
            self.assertAllEqual(neighbours, want)
        self.assertGreater(len(seen), 5)

    def test_seed_frequency_follows_cluster_losses(self):
        _, _, index, s = _setup(seed=1)
        weights = np.arange(index.num_clusters, dtype=np.float64)  # Cluster 0: 0.
        for c in range(index.num_clusters):
            members = index.members(c)
            index.update_losses(members, np.full(len(members), weights[c]))
        self.assertAllClose(index.cluster_losses(), weights)
        draws = 20000
        seeds = np.array([s.sample_clusters()[0] for _ in range(draws)])
        freq = np.bincount(seeds, minlength=index.num_clusters) / draws
        want = weights / weights.sum()
        self.assertEqual(freq[0], 0.0)
        # 5 binomial standard deviations, plus slack.
        bound = 5 * np.sqrt(want * (1 - want) / draws) + 1e-3
        self.assertAllLessEqual(np.abs(freq - want) - bound, 0.0)
        # All-zero losses fall back to uniform seeds.
        index.update_losses(np.arange(index.num_examples), np.zeros(index.num_examples))
        seeds = np.array([s.sample_clusters()[0] for _ in range(3000)])
        self.assertLen(np.unique(seeds), index.num_clusters)

    def test_small_clusters_repeat_examples(self):
        labels = np.repeat([0, 1, 2], 2)
        index = cluster_index.ClusterIndex.build(np.eye(6), labels, 1)
        s = sampler.MagnetSampler(np.arange(6), labels, index, 3, 5, seed=0)
        batch = s.sample_batch_indices().reshape(3, 5)
        for row in batch:
            members = index.members(index.assignments[row[0]])
            self.assertCountEqual(np.unique(row), members)

    def test_dataset_yields_cluster_major_image_label_batches(self):
        _, labels, index, s = _setup()
        for images, batch_labels in s.dataset().take(3):
            self.assertEqual(images.shape, (12, 2))
            self.assertEqual(batch_labels.shape, (12,))
            rows = images.numpy()[:, 0].astype(int)
            self.assertAllEqual(batch_labels, labels[rows])
            clusters = index.assignments[rows].reshape(4, 3)
            self.assertAllEqual(clusters, np.repeat(clusters[:, :1], 3, axis=1))

    def test_index_can_be_swapped(self):
        images, labels, _, s = _setup()
        new = cluster_index.ClusterIndex.build(
            np.random.default_rng(9).normal(size=(len(labels), 3)), labels, 4, seed=9
        )
        s.index = new
        batch = s.sample_batch_indices().reshape(4, 3)
        self.assertLess(new.assignments[batch].max(), new.num_clusters)
        clusters = new.assignments[batch]
        self.assertAllEqual(clusters, np.repeat(clusters[:, :1], 3, axis=1))
        other = cluster_index.ClusterIndex.build(
            images, np.tile([0, 1], len(labels) // 2), 1
        )
        with self.assertRaisesRegex(ValueError, "other labels"):
            s.index = other

    def test_record_losses_uses_pending_batches(self):
        _, _, index, s = _setup()
        first = s.sample_batch_indices()
        s.sample_batch_indices()
        s.record_losses(np.full(12, 7.0))
        self.assertAllEqual(index.example_losses[first], np.full(12, 7.0))
        s.record_losses(np.full(12, 3.0))
        s.record_losses(np.full(12, 5.0))  # Nothing pending: ignored.
        self.assertIsNone(s.pop_pending())

    def test_errors(self):
        labels = np.repeat([0, 1], 4)
        index = cluster_index.ClusterIndex.build(np.eye(8), labels, 1)
        with self.assertRaisesRegex(ValueError, "impostor clusters"):
            sampler.MagnetSampler(np.eye(8), labels, index, 3, 2)
        with self.assertRaisesRegex(ValueError, "num_clusters >= 2"):
            sampler.MagnetSampler(np.eye(8), labels, index, 1, 2)
        with self.assertRaisesRegex(RuntimeError, "call refresh"):
            sampler.MagnetSampler(
                np.eye(8), labels, cluster_index.ClusterIndex(1), 2, 2
            )


if __name__ == "__main__":
    tf.test.main()
