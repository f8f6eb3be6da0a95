"""Embedding a whole array with a Keras model or a batch function, in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

EmbedFn = Callable[[np.ndarray], Any]
"""A function from a batch of inputs to its embeddings."""


def as_embed_fn(embedder: keras.Layer | EmbedFn) -> EmbedFn:
    """A batch -> embeddings function; Keras models run with `training=False`.

    Inputs are cast to float32 first (uint8 pixel arrays are accepted).
    """
    if isinstance(embedder, keras.Layer):

        @tf.function(reduce_retracing=True)
        def embed(x):
            return embedder(tf.cast(x, tf.float32), training=False)

        return embed
    return embedder


def embed_all(
    embedder: keras.Layer | EmbedFn, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Embeds a whole array in batches.

    Args:
        embedder: A Keras model/layer or a function from a batch to embeddings.
        images: `[N, ...]` inputs.
        batch_size: Batch size of the forward passes.

    Returns:
        `[N, dim]` NumPy embeddings.

    Example (a function as the embedder, three inputs in batches of two):
        >>> import numpy as np
        >>> embed_all(lambda x: 2 * x, np.arange(6.0).reshape(3, 2),
        ...           batch_size=2).tolist()
        [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
    """
    fn = as_embed_fn(embedder)
    out = [
        np.asarray(fn(images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out, axis=0)
