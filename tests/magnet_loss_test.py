"""Magnet loss against a per-example NumPy reference, edge cases and errors."""

import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from magnet import loss as magnet_loss

EPS = magnet_loss.DEFAULT_EPSILON


def _reference(x, labels, m, d, alpha, eps=EPS):
    """Paper eq. 4-5 with explicit loops: (per-example losses, sigma^2, means)."""
    n = m * d
    means = [np.mean(x[j * d : (j + 1) * d], axis=0) for j in range(m)]
    own = [float(np.sum((x[i] - means[i // d]) ** 2)) for i in range(n)]
    sigma2 = sum(own) / (n - 1)
    losses = []
    for i in range(n):
        numerator = math.exp(-own[i] / (2 * (sigma2 + eps)) - alpha)
        denominator = 0.0
        for j in range(m):
            if labels[j * d] != labels[i]:
                dist = float(np.sum((x[i] - means[j]) ** 2))
                denominator += math.exp(-dist / (2 * (sigma2 + eps)))
        losses.append(max(0.0, -math.log(numerator / denominator)))
    return np.array(losses), sigma2, np.array(means)


def _labels(cluster_classes, d):
    return np.repeat(np.asarray(cluster_classes), d)


class MagnetLossTermsTest(tf.test.TestCase):
    def test_matches_numpy_reference_on_random_batches(self):
        rng = np.random.default_rng(0)
        # (M, D, alpha, class of each cluster); repeated classes test the mask.
        cases = [
            (2, 3, 1.0, [0, 1]),
            (3, 4, 1.0, [0, 1, 2]),
            (4, 2, 0.5, [0, 1, 0, 2]),
            (5, 3, 2.0, [3, 3, 1, 1, 7]),
            (3, 5, 0.0, [1, 2, 2]),
            (6, 2, 1.5, [0, 1, 2, 3, 4, 5]),
        ]
        for m, d, alpha, classes in cases:
            with self.subTest(m=m, d=d, alpha=alpha):
                x = rng.normal(size=(m * d, 5)) * rng.uniform(0.3, 2.0)
                labels = _labels(classes, d)
                want, want_s2, want_mu = _reference(x, labels, m, d, alpha)
                got, s2, mu = magnet_loss.magnet_loss_terms(x, labels, m, d, alpha)
                self.assertEqual(got.dtype, tf.float64)
                self.assertAllClose(got, want, rtol=1e-10, atol=1e-12)
                self.assertAllClose(s2, want_s2, rtol=1e-12)
                self.assertAllClose(mu, want_mu, rtol=1e-12)
                self.assertGreater(np.sum(want > 0), 0)  # Not a trivial case.

    def test_keras_loss_is_mean_of_reference_and_reduction_none(self):
        rng = np.random.default_rng(1)
        m, d, alpha = 4, 3, 0.7
        x = rng.normal(size=(m * d, 6)).astype(np.float32)
        labels = _labels([0, 1, 2, 1], d)
        want, _, _ = _reference(x.astype(np.float64), labels, m, d, alpha)
        loss = magnet_loss.MagnetLoss(m, d, alpha=alpha)
        self.assertAllClose(loss(labels, x), np.mean(want), rtol=1e-5)
        per_example = magnet_loss.MagnetLoss(m, d, alpha=alpha, reduction=None)
        self.assertAllClose(per_example(labels, x), want, rtol=1e-5, atol=1e-6)
        # Labels as a column, as Keras data pipelines sometimes produce.
        self.assertAllClose(loss(labels[:, None], x), np.mean(want), rtol=1e-5)

    def test_graph_mode_with_unknown_shapes_matches_eager(self):
        rng = np.random.default_rng(2)
        m, d = 3, 2
        x = rng.normal(size=(m * d, 4)).astype(np.float32)
        labels = _labels([0, 1, 2], d).astype(np.int32)
        fn = tf.function(
            lambda e, y: magnet_loss.magnet_loss_terms(e, y, m, d)[0],
            input_signature=[
                tf.TensorSpec([None, None], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ],
        )
        eager, _, _ = magnet_loss.magnet_loss_terms(x, labels, m, d)
        self.assertAllClose(fn(x, labels), eager, rtol=1e-6)

    def test_zero_loss_when_clusters_far_apart(self):
        rng = np.random.default_rng(3)
        m, d = 4, 5
        centres = np.arange(m)[:, None] * 100.0 * np.ones((1, 3))
        x = np.repeat(centres, d, axis=0) + 0.1 * rng.normal(size=(m * d, 3))
        losses, _, _ = magnet_loss.magnet_loss_terms(
            x, _labels(range(m), d), m, d, alpha=1.0
        )
        self.assertAllEqual(losses, np.zeros(m * d))

    def test_sigma_zero_is_finite_and_correct(self):
        m, d, alpha = 3, 4, 1.0
        # Each cluster collapsed to a point, the points apart: sigma^2 = 0, and the
        # impostor terms vanish next to exp(0 - alpha), so every loss is 0.
        x = np.repeat(np.eye(m, 2 * m), d, axis=0)
        losses, s2, _ = magnet_loss.magnet_loss_terms(
            x, _labels(range(m), d), m, d, alpha
        )
        self.assertEqual(float(s2), 0.0)
        self.assertAllEqual(losses, np.zeros(m * d))
        # Everything at one point: loss = alpha + log(number of impostor clusters).
        same = np.ones((m * d, 2))
        losses, _, _ = magnet_loss.magnet_loss_terms(
            same, _labels([0, 1, 1], d), m, d, alpha
        )
        want = np.repeat([alpha + math.log(2), alpha, alpha], d)
        self.assertAllClose(losses, want, rtol=1e-12)

    def test_single_example_per_cluster(self):
        alpha = 0.5
        # Clusters 0 and 1 (different classes) coincide; cluster 2 is far away.
        x = np.array([[0.0, 0.0], [0.0, 0.0], [50.0, 0.0]])
        losses, s2, mu = magnet_loss.magnet_loss_terms(x, [0, 1, 2], 3, 1, alpha)
        self.assertEqual(float(s2), 0.0)
        self.assertAllClose(mu, x)
        self.assertAllClose(losses, [alpha, alpha, 0.0], rtol=1e-12)
        keras_loss = magnet_loss.MagnetLoss(3, 1, alpha=alpha)
        self.assertAllClose(keras_loss([0, 1, 2], x), 2 * alpha / 3, rtol=1e-6)

    def test_gradients_are_finite(self):
        rng = np.random.default_rng(4)
        cases = [
            (rng.normal(size=(8, 3)), 4, 2, [0, 1, 0, 1]),
            (np.repeat(np.eye(3), 2, axis=0), 3, 2, [0, 1, 2]),  # sigma^2 = 0
            (rng.normal(size=(4, 3)), 4, 1, [0, 1, 2, 3]),  # D = 1
            (np.ones((6, 3)), 3, 2, [0, 1, 2]),
        ]  # all identical
        for x, m, d, classes in cases:
            with self.subTest(m=m, d=d):
                x = tf.Variable(x.astype(np.float32))
                loss = magnet_loss.MagnetLoss(m, d)
                with tf.GradientTape() as tape:
                    value = loss(_labels(classes, d), x)
                grad = tape.gradient(value, x)
                self.assertTrue(np.isfinite(value.numpy()))
                self.assertTrue(np.all(np.isfinite(grad.numpy())))

    def test_gradient_matches_finite_differences(self):
        rng = np.random.default_rng(5)
        m, d = 3, 2
        x0 = rng.normal(size=(m * d, 2))
        labels = _labels([0, 1, 2], d)
        x = tf.Variable(x0)
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(magnet_loss.magnet_loss_terms(x, labels, m, d)[0])
        grad = tape.gradient(value, x).numpy()
        numeric = np.zeros_like(x0)
        h = 1e-6
        for idx in np.ndindex(*x0.shape):
            up, down = x0.copy(), x0.copy()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (
                np.mean(_reference(up, labels, m, d, 1.0)[0])
                - np.mean(_reference(down, labels, m, d, 1.0)[0])
            ) / (2 * h)
        self.assertAllClose(grad, numeric, atol=1e-6)
        self.assertGreater(np.abs(grad).max(), 1e-3)


class MagnetLossSerialisationTest(tf.test.TestCase):
    def test_config_round_trip(self):
        loss = magnet_loss.MagnetLoss(6, 4, alpha=2.5, epsilon=1e-6, name="mag")
        config = loss.get_config()
        self.assertEqual(config["num_clusters"], 6)
        self.assertEqual(config["examples_per_cluster"], 4)
        self.assertEqual(config["alpha"], 2.5)
        restored = magnet_loss.MagnetLoss.from_config(config)
        self.assertEqual(restored.get_config(), config)
        serialised = keras.saving.serialize_keras_object(loss)
        self.assertEqual(serialised["registered_name"], "magnet>MagnetLoss")
        again = keras.saving.deserialize_keras_object(serialised)
        self.assertIsInstance(again, magnet_loss.MagnetLoss)
        self.assertEqual(again.get_config(), config)
        x = np.random.default_rng(6).normal(size=(24, 3)).astype(np.float32)
        labels = _labels(range(6), 4)
        self.assertAllClose(again(labels, x), loss(labels, x))

    def test_compiled_model_save_and_load(self):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss=magnet_loss.MagnetLoss(2, 2, alpha=0.3))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            loaded = keras.models.load_model(path)
        x = np.random.default_rng(7).normal(size=(4, 3)).astype(np.float32)
        y = np.array([0, 0, 1, 1])
        self.assertAllClose(
            loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
        )


class MagnetLossErrorsTest(tf.test.TestCase):
    def test_bad_batch_size(self):
        loss = magnet_loss.MagnetLoss(3, 2)
        with self.assertRaisesRegex(ValueError, "M\\*D = 6 embeddings, got 5"):
            loss(np.zeros(5), np.zeros((5, 2)))
        with self.assertRaisesRegex(ValueError, "M\\*D = 6 class labels, got 4"):
            loss(np.zeros(4), np.zeros((6, 2)))

    def test_bad_label_and_embedding_shapes(self):
        loss = magnet_loss.MagnetLoss(3, 2)
        x = np.zeros((6, 2))
        with self.assertRaisesRegex(ValueError, "got shape \\(6, 2\\)"):
            loss(np.zeros((6, 2)), x)
        with self.assertRaisesRegex(ValueError, "got rank 3"):
            loss(np.zeros((6, 1, 1)), x)
        with self.assertRaisesRegex(ValueError, "got rank 0"):
            loss(np.float32(0.0), x)
        with self.assertRaisesRegex(ValueError, "embeddings of shape"):
            loss(np.zeros(6), np.zeros(6))

    def test_dynamic_shapes_fail_assertions(self):
        fn = tf.function(
            lambda e, y: magnet_loss.magnet_loss_terms(e, y, 3, 2)[0],
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ],
        )
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "M\\*D = 6"):
            fn(np.zeros((5, 2), np.float32), np.arange(5, dtype=np.int32))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "two classes"):
            fn(np.zeros((6, 2), np.float32), np.zeros(6, np.int32))

    def test_no_impostor_and_impure_clusters(self):
        with self.assertRaisesRegex(ValueError, "no impostors"):
            magnet_loss.magnet_loss_terms(np.zeros((4, 2)), [1, 1, 1, 1], 2, 2)
        with self.assertRaisesRegex(ValueError, "labels of each cluster"):
            magnet_loss.magnet_loss_terms(np.zeros((4, 2)), [0, 1, 1, 1], 2, 2)

    def test_bad_constructor_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_clusters must be >= 1"):
            magnet_loss.MagnetLoss(0, 2)
        with self.assertRaisesRegex(ValueError, "examples_per_cluster must be"):
            magnet_loss.MagnetLoss(2, 1.5)
        with self.assertRaisesRegex(ValueError, "alpha must be finite"):
            magnet_loss.MagnetLoss(2, 2, alpha=float("nan"))


if __name__ == "__main__":
    tf.test.main()
