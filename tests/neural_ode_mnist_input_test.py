"""`neural_ode.data.mnist_input`: the crops and batch order of the MNIST protocol."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from common import stats
from neural_ode.data import mnist_input


def test_random_crops_are_shifted_windows_of_the_padded_image():
    images = tf.random.uniform([6, 28, 28, 1])
    crops = mnist_input.random_crops(images, tf.constant([1, 2], tf.int64)).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (4, 4), (4, 4), (0, 0)])
    for i in range(6):
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if np.array_equal(padded[i, dy : dy + 28, dx : dx + 28], crops[i])
        ]
        assert matches, f"crop {i} is not a 28x28 window of the padded image"


def test_batch_indices_cover_each_epoch_once_and_differ_between_epochs():
    n, b = 100, 10
    epoch0 = np.concatenate([mnist_input.batch_indices(3, s, b, n) for s in range(10)])
    epoch1 = np.concatenate(
        [mnist_input.batch_indices(3, s, b, n) for s in range(10, 20)]
    )
    assert sorted(epoch0) == list(range(n)) and sorted(epoch1) == list(range(n))
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(
        mnist_input.batch_indices(3, 4, b, n),
        mnist_input.batch_indices(3, 4, b, n),
    )


def test_table1_error_ci_is_the_normal_approximation():
    # The Test Error cells' CI (common.stats, used by the mnist experiment).
    p = 42 / 10000
    assert stats.binomial_ci95(42, 10000) == pytest.approx(
        100 * 1.96 * np.sqrt(p * (1 - p) / 10000)
    )
