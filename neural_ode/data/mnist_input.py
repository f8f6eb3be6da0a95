"""The MNIST input pipeline's pieces of the authors' `odenet_mnist` protocol.

torchdiffeq `examples/odenet_mnist.py` trains on random 28x28 crops of the
4-pixel zero-padded images (`random_crops`) and reshuffles the training set every
epoch; `batch_indices` draws each epoch's order from a seeded permutation, so a
run resumed at any step sees the same batches as an uninterrupted one. The image
files are read by `common.data.mnist`.

Example (each epoch visits every example once, in a seeded order):
    >>> import numpy as np
    >>> first_epoch = [batch_indices(0, step, 4, num_examples=8) for step in (0, 1)]
    >>> sorted(np.concatenate(first_epoch).tolist())
    [0, 1, 2, 3, 4, 5, 6, 7]
    >>> import tensorflow as tf
    >>> random_crops(tf.zeros([2, 28, 28, 1]), tf.constant([0, 1])).shape
    TensorShape([2, 28, 28, 1])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

TRAIN_EXAMPLES = 60_000


def random_crops(images: tf.Tensor, seed: tf.Tensor, pad: int = 4) -> tf.Tensor:
    """Per-example random 28x28 crops of the zero-padded images (stateless)."""
    size = images.shape[1]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed, 0, 2 * pad + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(size)[None]
    cols = offsets[:, 1:] + tf.range(size)[None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def batch_indices(
    seed: int, step: int, batch_size: int, num_examples: int = TRAIN_EXAMPLES
) -> np.ndarray:
    """Training indices of `step`: a seeded permutation per epoch, in order."""
    per_epoch = max(1, num_examples // batch_size)
    epoch, position = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return perm[position * batch_size : (position + 1) * batch_size]
