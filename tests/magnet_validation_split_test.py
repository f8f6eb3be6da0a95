"""The tuning split: disjoint, stratified, seeded, leaves the test set alone."""

import numpy as np
import pytest

from magnet.experiments import validation_split


def test_carve_holds_out_per_class_and_partitions_the_training_set():
    labels = np.repeat(np.arange(5), [7, 9, 4, 12, 3])
    keep, held = validation_split.carve(labels, 2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(len(labels)))
    assert np.bincount(labels[held]).tolist() == [2] * 5
    again, held_again = validation_split.carve(labels, 2, seed=3)
    assert np.array_equal(held, held_again) and np.array_equal(keep, again)
    _, other = validation_split.carve(labels, 2, seed=4)
    assert not np.array_equal(held, other)


def test_carve_refuses_classes_too_small():
    with pytest.raises(ValueError, match="too few"):
        validation_split.carve(np.array([0, 0, 1, 1, 1]), 2)
    with pytest.raises(ValueError, match="positive"):
        validation_split.carve(np.array([0, 1]), 0)
