"""Semi-hard triplet loss against a loop-by-loop NumPy reference; batch sampler."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from magnet import triplet


def _reference(x, labels, margin, squared=True):
    """FaceNet semi-hard mining with explicit loops: (mean loss, active fraction)."""
    b = len(x)
    dist = np.array([[np.sum((x[i] - x[j]) ** 2) for j in range(b)] for i in range(b)])
    if not squared:
        dist = np.sqrt(np.maximum(dist, 1e-12))
    total, count, active = 0.0, 0, 0
    for a in range(b):
        negatives = [n for n in range(b) if labels[n] != labels[a]]
        if not negatives:
            continue
        for p in range(b):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [dist[a, n] for n in negatives if dist[a, n] > dist[a, p]]
            d_an = min(farther) if farther else max(dist[a, n] for n in negatives)
            loss = max(0.0, dist[a, p] - d_an + margin)
            total += loss
            count += 1
            active += loss > 0
    return (total / count if count else 0.0), (active / count if count else 0.0)


@pytest.mark.parametrize(
    "seed,classes,per_class,dim,margin,squared",
    [
        (0, 3, 4, 5, 0.2, True),
        (1, 5, 2, 3, 0.5, True),
        (2, 2, 6, 8, 0.1, False),
        (3, 4, 3, 2, 1.0, True),
    ],
)
def test_matches_numpy_reference(seed, classes, per_class, dim, margin, squared):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(classes) * 3 + 1, per_class))
    x = rng.normal(size=(len(labels), dim)).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    want, want_active = _reference(x, labels, margin, squared)
    got, active = triplet.semi_hard_triplet_loss(
        tf.constant(x), tf.constant(labels), margin, squared
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(active.numpy(), want_active)


def test_unnormalized_and_uneven_classes_match_reference():
    rng = np.random.default_rng(7)
    labels = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5])  # Class 1 has no positive.
    x = rng.normal(size=(len(labels), 4)) * 3.0
    want, _ = _reference(x, labels, 0.3)
    got, _ = triplet.semi_hard_triplet_loss(tf.constant(x), tf.constant(labels), 0.3)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


def test_single_class_batch_gives_zero_loss_and_finite_gradient():
    x = tf.Variable(np.random.default_rng(0).normal(size=(6, 3)))
    with tf.GradientTape() as tape:
        loss, _ = triplet.semi_hard_triplet_loss(x, tf.zeros([6], tf.int64))
    grad = tape.gradient(loss, x)
    assert loss.numpy() == 0.0
    assert np.all(np.isfinite(grad.numpy()))


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 3)
    x0 = rng.normal(size=(9, 4))
    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        loss, _ = triplet.semi_hard_triplet_loss(x, labels, 0.5)
    grad = tape.gradient(loss, x).numpy()
    eps = 1e-6
    numeric = np.zeros_like(x0)
    for i in range(x0.shape[0]):
        for j in range(x0.shape[1]):
            for sign in (1, -1):
                xp = x0.copy()
                xp[i, j] += sign * eps
                numeric[i, j] += sign * _reference(xp, labels, 0.5)[0] / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_training_separates_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 8)
    x = tf.Variable(rng.normal(size=(24, 2)) * 0.1)
    opt = keras.optimizers.SGD(0.5)
    first = None
    for _ in range(100):
        with tf.GradientTape() as tape:
            normalized = tf.math.l2_normalize(x, axis=1)
            loss, _ = triplet.semi_hard_triplet_loss(normalized, labels)
        first = float(loss) if first is None else first
        opt.apply_gradients([(tape.gradient(loss, x), x)])
    assert float(loss) < 0.5 * first


def test_keras_loss_wrapper_and_config():
    loss = triplet.TripletSemiHardLoss(margin=0.3)
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 4).astype(np.float32)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    want, _ = _reference(x.astype(np.float64), labels, 0.3)
    np.testing.assert_allclose(float(loss(labels, x)), want, rtol=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.margin == 0.3 and again.squared
    with pytest.raises(ValueError, match="margin"):
        triplet.TripletSemiHardLoss(margin=-1.0)


def test_class_balanced_batches():
    labels = np.repeat(np.arange(6), [5, 5, 5, 5, 5, 1])
    batches = triplet.ClassBalancedBatches(labels, 4, 3, seed=2)
    for step in range(20):
        idx = batches.indices(step)
        assert idx.shape == (12,)
        grouped = labels[idx].reshape(4, 3)
        assert np.all(grouped == grouped[:, :1])
        assert len(np.unique(grouped[:, 0])) == 4
        np.testing.assert_array_equal(idx, batches.indices(step))
    assert triplet.ClassBalancedBatches(labels, 10, 2).classes_per_batch == 6
    with pytest.raises(ValueError, match="two classes"):
        triplet.ClassBalancedBatches(np.zeros(5), 2, 2)
    with pytest.raises(ValueError, match="examples_per_class"):
        triplet.ClassBalancedBatches(labels, 2, 1)
