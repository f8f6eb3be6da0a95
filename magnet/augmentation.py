"""Standard CIFAR-style training augmentation: random crop after padding, and flip.

For each image of a batch independently: pad `pad` pixels of zeros on every side,
crop a random `H x W` window, and mirror it left-right with probability 1/2
(He et al. 2016, Section 4.2, the usual CIFAR-10 protocol). Applied to training
batches only; re-clustering, evaluation and serving see the original images.
Labels and the batch order (the cluster-major layout of magnet batches) are
unchanged.
"""

from __future__ import annotations

import tensorflow as tf

DEFAULT_PAD = 4


def random_crop_flip(
    images: tf.Tensor,
    pad: int = DEFAULT_PAD,
    flip: bool = True,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Randomly padded-and-cropped, optionally mirrored copies of a batch.

    Args:
        images: `[B, H, W, C]` images (any dtype); returned as float32.
        pad: Zero padding on each side before cropping (0: no crop).
        flip: Mirror each image left-right with probability 1/2.
        seed: Optional `[2]` int seed of the stateless random ops (the same seed
            gives the same crops and flips); None uses stateful random ops.

    Returns:
        `[B, H, W, C]` float32 augmented images.
    """
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    if seed is None:
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
    seed = tf.cast(seed, tf.int64)
    offsets = tf.random.stateless_uniform(
        [batch, 2], seed, 0, 2 * pad + 1, dtype=tf.int32
    )
    if pad > 0:
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        rows = offsets[:, 0:1] + tf.range(height)[None, :]  # [B, H]
        cols = offsets[:, 1:2] + tf.range(width)[None, :]  # [B, W]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
    if flip:
        mirror = tf.random.stateless_uniform([batch], seed + 1) < 0.5
        images = tf.where(mirror[:, None, None, None], tf.reverse(images, [2]), images)
    return images
