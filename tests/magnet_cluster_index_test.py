"""Per-class k-means index, its losses, and refreshing it during Keras fit."""

import keras
import numpy as np
import tensorflow as tf

from magnet import cluster_index, embedding, kmeans_callback, loss, sampler


def _data(rng, sizes=(10, 7, 5), dim=4):
    labels = np.concatenate(
        [np.full(n, c) for c, n in zip((3, 8, 1), sizes, strict=True)]
    )
    return rng.normal(size=(len(labels), dim)), labels


def _check_fixed_point(test, index, embeddings):
    """Each example is in its class's cluster with the nearest centre."""
    for i, (x, y) in enumerate(zip(embeddings, index.labels, strict=True)):
        own = np.flatnonzero(index.cluster_classes == y)
        dist = np.sum((index.centres[own] - x) ** 2, axis=1)
        test.assertIn(index.assignments[i], own)
        test.assertAllClose(
            dist[own == index.assignments[i]][0], dist.min(), rtol=1e-9, atol=1e-12
        )


class ClusterIndexTest(tf.test.TestCase):
    def test_each_class_gets_k_clusters(self):
        rng = np.random.default_rng(0)
        x, labels = _data(rng)
        k = 3
        index = cluster_index.ClusterIndex.build(x, labels, k, seed=1)
        self.assertEqual(index.num_clusters, 3 * k)
        self.assertAllEqual(index.cluster_classes, np.repeat([1, 3, 8], k))
        for c in (1, 3, 8):
            clusters = np.unique(index.assignments[labels == c])
            self.assertLen(clusters, k)
            self.assertAllEqual(index.cluster_classes[clusters], [c] * k)
        for cid in range(index.num_clusters):
            members = index.members(cid)
            self.assertAllEqual(index.assignments[members], [cid] * len(members))
            self.assertAllClose(index.centres[cid], x[members].mean(axis=0))
        self.assertCountEqual(np.concatenate(index.state.members), range(len(x)))
        _check_fixed_point(self, index, x)
        sq = np.sum((x - index.centres[index.assignments]) ** 2)
        self.assertAllClose(index.sigma2, sq / (len(x) - 1))

    def test_kmeans_recovers_separated_blobs(self):
        rng = np.random.default_rng(2)
        blob_centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
        blob = np.repeat(np.arange(4), 15)
        x = blob_centres[blob] + rng.normal(size=(60, 2))
        for seed in range(3):
            index = cluster_index.ClusterIndex.build(x, np.zeros(60, int), 4, seed=seed)
            # Same partition as the blobs, up to relabelling.
            pairs = set(zip(blob, index.assignments, strict=True))
            self.assertLen(pairs, 4)

    def test_k_equal_to_class_size_and_duplicates(self):
        x = np.zeros((4, 2))  # All points identical: clusters must stay non-empty.
        index = cluster_index.ClusterIndex.build(x, [0, 0, 1, 1], 2)
        self.assertAllEqual(np.bincount(index.assignments), [1, 1, 1, 1])

    def test_errors(self):
        rng = np.random.default_rng(3)
        x, labels = _data(rng)
        with self.assertRaisesRegex(ValueError, "K=6 exceeds the 5 .* class 1\\."):
            cluster_index.ClusterIndex.build(x, labels, 6)
        with self.assertRaisesRegex(ValueError, "labels of shape"):
            cluster_index.ClusterIndex.build(x, labels[:-1], 2)
        with self.assertRaisesRegex(ValueError, "positive int"):
            cluster_index.ClusterIndex(0)
        with self.assertRaisesRegex(RuntimeError, "call refresh"):
            _ = cluster_index.ClusterIndex(2).assignments

    def test_losses_are_per_example_and_survive_refresh(self):
        rng = np.random.default_rng(4)
        x, labels = _data(rng)
        index = cluster_index.ClusterIndex.build(x, labels, 2, initial_loss=1.0)
        self.assertAllClose(index.cluster_losses(), np.ones(6))
        index.update_losses([0, 1, 2], [4.0, 0.0, 2.0])
        want = [np.mean(index.example_losses[index.members(c)]) for c in range(6)]
        self.assertAllClose(index.cluster_losses(), want)
        index.refresh(x + 1.0, labels)
        self.assertAllClose(index.example_losses[:4], [4.0, 0.0, 2.0, 1.0])
        with self.assertRaisesRegex(ValueError, "non-negative"):
            index.update_losses([0], [-1.0])


class ClusterRefreshCallbackTest(tf.test.TestCase):
    def test_fit_refreshes_index_from_images_and_labels_only(self):
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(5)
        images = rng.normal(size=(48, 6)).astype(np.float32)
        labels = np.repeat(np.arange(4), 12)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        m, d = 3, 4
        index = cluster_index.ClusterIndex.build(
            embedding.embed_all(model, images), labels, 2, seed=0
        )
        batches = sampler.MagnetSampler(images, labels, index, m, d, seed=0)
        magnet = loss.MagnetLoss(m, d, alpha=1.0)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=magnet)
        old_centres = index.centres.copy()
        refresh = kmeans_callback.ClusterRefreshCallback(batches, every=1, unit="epoch")
        by_step = kmeans_callback.ClusterRefreshCallback(
            batches, every=2, unit="step", batch_size=10
        )
        recorder = sampler.LossRecorderCallback(batches, magnet)
        history = model.fit(
            batches.dataset(),
            steps_per_epoch=4,
            epochs=2,
            callbacks=[by_step, refresh, recorder],
            shuffle=False,
            verbose=0,
        )
        self.assertTrue(np.all(np.isfinite(history.history["loss"])))
        # 1 build + 2 epoch refreshes + 8 / 2 step refreshes.
        self.assertEqual(index.refresh_count, 1 + 2 + 4)
        final = embedding.embed_all(model, images)
        self.assertNotAllClose(index.centres, old_centres)
        for cid in range(index.num_clusters):
            self.assertAllClose(
                index.centres[cid], final[index.members(cid)].mean(axis=0), atol=1e-5
            )
        _check_fixed_point(self, index, final)
        # The recorder replaced some initial losses with measured ones.
        self.assertGreater(np.sum(index.example_losses != index.initial_loss), 0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "unit must be"):
            kmeans_callback.ClusterRefreshCallback(None, unit="batch")
        with self.assertRaisesRegex(ValueError, "every must be"):
            kmeans_callback.ClusterRefreshCallback(None, every=0)


if __name__ == "__main__":
    tf.test.main()


def test_cached_refreshes_recluster_the_cache_and_reembed_on_schedule():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 8)
    images = rng.normal(size=(24, 5))
    calls = []

    def embed(x):
        calls.append(len(x))
        return np.asarray(x, np.float64) * 2.0

    index = cluster_index.ClusterIndex.build(embed(images), labels, 2, seed=0)
    calls.clear()
    batches = sampler.MagnetSampler(images, labels, index, 3, 2, seed=0)
    refresh = kmeans_callback.ClusterRefreshCallback(
        batches, embed_fn=embed, every=2, unit="step", seed=7, reembed_every=4
    )
    refresh.refresh()  # Full: fills the cache.
    np.testing.assert_allclose(batches.embedding_cache, 2.0 * images, rtol=1e-6)
    idx = batches.sample_batch_indices(0)
    moved = rng.normal(size=(6, 5)) + 10.0
    batches.record_losses(np.full(6, 0.5), idx, moved)
    np.testing.assert_allclose(batches.embedding_cache[idx], moved, rtol=1e-6)
    calls.clear()
    for _ in range(2):
        refresh.on_train_batch_end(0)
    assert calls == []  # Step 2: k-means on the cache only.
    expected = cluster_index.ClusterIndex.build(
        batches.embedding_cache.astype(np.float64),
        labels,
        2,
        seed=kmeans_callback.refresh_seed(7, 2),
    )
    np.testing.assert_allclose(index.centres, expected.centres)
    for _ in range(2):
        refresh.on_train_batch_end(0)
    assert sum(calls) == 24  # Step 4: the whole training set re-embedded.
    np.testing.assert_allclose(batches.embedding_cache, 2.0 * images, rtol=1e-6)
    assert refresh.refreshes == 3 and refresh.last_step == 4
