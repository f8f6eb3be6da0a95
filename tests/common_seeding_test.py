"""One seed makes TensorFlow, NumPy and Python draws repeat."""

import random

import numpy as np
import tensorflow as tf

from common import seeding


def _draws():
    return (random.random(), float(np.random.rand()), float(tf.random.uniform([])))


def test_same_seed_same_draws_other_seed_other_draws():
    seeding.seed_everything(5)
    a = _draws()
    seeding.seed_everything(5)
    b = _draws()
    seeding.seed_everything(6)
    c = _draws()
    assert a == b
    assert a != c
