"""Seeding: one seed makes a run repeat exactly on CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import tensorflow as tf


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seeds Python, NumPy and TensorFlow, and asks TF for deterministic kernels.

    Args:
        seed: The run's seed.
        deterministic: Also call `tf.config.experimental.enable_op_determinism()`,
            so that repeated runs with the same seed give bitwise-equal results.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
