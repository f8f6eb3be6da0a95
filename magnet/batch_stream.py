"""The training batches of `fit`, keyed by step so that a resumed run sees the
same stream as an uninterrupted one.

`fit(initial_epoch=...)` only renumbers epochs, so the batch stream is built
here: `step_keyed` turns a step -> indices function (a sampler's or a seeded
permutation's) into a generator starting at the resumed step, `batch_dataset`
wraps it in a `tf.data.Dataset` (augmentation seeded by step, no read-ahead),
and `distribute_batches` splits every batch across a strategy's replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from common import distribute
from magnet import augmentation
from magnet.train_settings import AUGMENT_PAD, TrainSettings


def step_keyed(
    batch: Callable[[int], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    start: int,
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A generator factory of `(images, labels)` for steps start, start + 1, ..."""

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        step = start
        while True:
            idx = batch(step)
            step += 1
            yield images[idx], labels[idx]

    return generate


def batch_dataset(
    generate: Callable[[], Iterator],
    images: np.ndarray,
    batch_size: int,
    settings: TrainSettings,
    start: int,
    augment_pad: int = AUGMENT_PAD,
) -> tf.data.Dataset:
    """The training `tf.data.Dataset` of a step-keyed batch stream.

    Args:
        generate: Generator factory of `(images, labels)` batches for steps
            start, start + 1, ...
        images: The training images (for shapes and dtype).
        batch_size: Rows per batch.
        settings: `augment` and `seed` are used.
        start: The step of the first batch (seeds its augmentation).
        augment_pad: Padding of the random crop (with `settings.augment`).

    Returns:
        Batches of float32 images (augmented if asked) and int64 labels.
    """
    signature = (
        tf.TensorSpec(
            (batch_size, *images.shape[1:]),
            tf.uint8 if images.dtype == np.uint8 else tf.float32,
        ),
        tf.TensorSpec((batch_size,), tf.int64),
    )
    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    steps = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
    seed = int(settings.seed)

    def prepare(batch, step):
        x, y = batch
        if settings.augment:
            x = augmentation.random_crop_flip(
                x, augment_pad, seed=tf.stack([tf.constant(seed, tf.int64), step])
            )
        else:
            x = tf.cast(x, tf.float32)
        return x, y

    # No read-ahead (tf.data otherwise injects a prefetch and autotunes one):
    # batch s is drawn after step s - 1 has updated the index, so the stream is
    # a function of the seed, and a resumed run draws the same batches.
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    options.autotune.enabled = False
    return tf.data.Dataset.zip((ds, steps)).map(prepare).with_options(options)


def distribute_batches(
    dataset: tf.data.Dataset, strategy: tf.distribute.Strategy, batch_size: int
) -> tf.distribute.DistributedDataset:
    """Each batch of `dataset` split evenly across the replicas of `strategy`.

    Replica r gets rows [r * B / R, (r + 1) * B / R) of every batch, so gathering
    the replicas' rows in replica order rebuilds the batch. Every worker (input
    pipeline) runs the same seeded stream and keeps its own replicas' rows. The
    distributed dataset prefetches nothing: like the single-device stream, batch
    s is drawn after step s - 1 has updated the cluster index.

    Raises:
        ValueError: the batch does not split evenly across the replicas.
    """
    replicas, share = distribute.replica_share(strategy, batch_size)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def split(x, y):
            parts = [
                tf.reshape(t, [replicas, share, *t.shape[1:]])[first : first + local]
                for t in (x, y)
            ]
            return tf.data.Dataset.from_tensor_slices(tuple(parts))

        return dataset.flat_map(split)

    return strategy.distribute_datasets_from_function(
        dataset_fn,
        tf.distribute.InputOptions(experimental_per_replica_buffer_size=0),
    )
