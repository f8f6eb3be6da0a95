"""The embedding network shared by magnet, softmax and triplet training.

The paper fine-tunes an ImageNet-pretrained GoogLeNet. On a CPU we use a small
convolutional network instead, the same architecture for all three losses:

    pixels in [0, 255] -> Rescaling(1/255)
    -> len(widths) stages of [Conv3x3 - GroupNorm - ReLU] x convs_per_stage
       + MaxPool 2x2
    -> global average pool -> Dense(embedding_dim)   (the embedding)

With the defaults (widths 32-64-128, one convolution per stage, embedding 64) it
has about 0.1 M parameters; a training step on a 48-image 32x32x3 batch costs
tens of milliseconds on two cores and embedding an image well under a
millisecond, which keeps re-clustering the training set affordable (see
`benchmarks/magnet_benchmark.py`). Two convolutions per stage triple the cost.

Group normalisation (8 groups) instead of the paper's batch normalisation: an
example's embedding must not depend on its batch. Magnet batches hold a few
neighbouring clusters of a few classes, so batch statistics in training differ
from the population statistics batch norm uses at inference, and the moving
averages are noisy or stale in short runs; re-clustering, evaluation and
serving all embed in inference mode. Measured here with batch norm: a softmax
network at 22% test error in inference mode and 15% with batch statistics.
The embedding is the output of the final linear layer; the softmax baseline adds
one linear layer on top (`build_classifier`), so its embedding is its penultimate
layer, and triplet training L2-normalises it (`with_l2_normalization`, no weights),
as FaceNet does.

Warm start (`warm_start`): the paper initialises every method from a network
pretrained on ImageNet (other data) and fine-tuned briefly. We have no such
network. The experiments start every loss from the same random initialisation
by default (`warm_start_epochs=0`); `warm_start` trains the embedding network
plus a throw-away linear head with softmax cross-entropy on the *training* set,
a head start on the target labels the paper's protocol does not have, kept as
an option only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import training_loop

DEFAULT_WIDTHS = (32, 64, 128)
GROUPS = 8
"""Groups of the group normalisation after every convolution."""
WARM_START = "warm_start"


def build_embedder(
    input_shape: Sequence[int],
    embedding_dim: int = 64,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    convs_per_stage: int = 1,
    name: str = "embedder",
) -> keras.Model:
    """The convolutional embedding network (see the module docstring).

    Args:
        input_shape: `(height, width, channels)` of the images.
        embedding_dim: Size of the embedding.
        widths: Channels of each stage; every stage halves the resolution.
        convs_per_stage: Conv-GroupNorm-ReLU layers per stage.
        name: Model name.

    Returns:
        A model from float pixel values in [0, 255], `[B, H, W, C]`, to
        embeddings `[B, embedding_dim]`.

    Raises:
        ValueError: A size is not positive, or the image is too small for the
            number of stages.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {tuple(input_shape)}."
        )
    if embedding_dim < 1 or convs_per_stage < 1 or not widths or min(widths) < 1:
        raise ValueError(
            "embedding_dim, convs_per_stage and widths must be positive, "
            f"got {embedding_dim}, {convs_per_stage}, {tuple(widths)}."
        )
    if min(shape[:2]) < 2 ** len(widths):
        raise ValueError(
            f"images of {shape[0]}x{shape[1]} are too small for "
            f"{len(widths)} stages of 2x2 pooling."
        )
    inputs = keras.Input(shape=shape, dtype="float32", name="images")
    h = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, width in enumerate(widths):
        for j in range(convs_per_stage):
            h = keras.layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"conv{i}_{j}"
            )(h)
            h = keras.layers.GroupNormalization(min(GROUPS, width), name=f"gn{i}_{j}")(
                h
            )
            h = keras.layers.ReLU(name=f"relu{i}_{j}")(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(embedding_dim, name="embedding")(h)
    return keras.Model(inputs, outputs, name=name)


def build_classifier(
    embedder: keras.Model, num_classes: int, name: str = "classifier"
) -> keras.Model:
    """The softmax variant: a linear layer to class logits on the embedding.

    The classifier shares the embedder's layers (training one trains the other),
    so the embedder's output is the classifier's penultimate layer.

    Args:
        embedder: An embedding network (`build_embedder`).
        num_classes: Number of classes.
        name: Model name.

    Returns:
        A model from images to logits `[B, num_classes]`.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
    logits = keras.layers.Dense(num_classes, name="logits")(embedder.output)
    return keras.Model(embedder.input, logits, name=name)


def with_l2_normalization(
    embedder: keras.Model, name: str = "normalized_embedder"
) -> keras.Model:
    """The embedder followed by L2 normalisation (no extra weights)."""
    out = keras.layers.UnitNormalization(name="l2_normalize")(embedder.output)
    return keras.Model(embedder.input, out, name=name)


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Sets `target`'s weights to `source`'s (same architecture)."""
    target.set_weights(source.get_weights())


def epoch_batch(seed: int, step: int, batch_size: int, num_examples: int) -> np.ndarray:
    """Indices of uniform batch `step`: a seeded permutation per epoch, in order.

    The batch depends only on `(seed, step)`, so a resumed run sees the same
    batches as an uninterrupted one.
    """
    per_epoch = max(1, num_examples // batch_size)
    epoch, position = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return perm[position * batch_size : (position + 1) * batch_size]


def softmax_train_step(
    classifier: keras.Model, optimizer: keras.optimizers.Optimizer
) -> tf.types.experimental.PolymorphicFunction:
    """A compiled cross-entropy training step `(images, labels) -> (loss, acc)`.

    Images may be uint8 or float pixels in [0, 255]; labels int64.
    """

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = classifier(tf.cast(images, tf.float32), training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        variables = classifier.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        accuracy = tf.reduce_mean(
            tf.cast(
                tf.argmax(logits, -1, output_type=labels.dtype) == labels, tf.float32
            )
        )
        return loss, accuracy

    return step


def warm_start_steps(epochs: float, num_examples: int, batch_size: int) -> int:
    """Softmax steps of a warm start of `epochs` epochs (0 when epochs is 0)."""
    if epochs <= 0:
        return 0
    return max(1, round(epochs * max(1, num_examples // batch_size)))


def warm_start(
    embedder: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    epochs: float,
    run_dir: str,
    *,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    log_every: int = 100,
    stream: Any = None,
) -> tuple[training_loop.LoopResult | None, list[np.ndarray] | None]:
    """Trains `embedder` in place with a softmax head for `epochs` epochs.

    Runs through `common.training_loop.run_training` under the name
    `"warm_start"`, so it resumes after a kill and is skipped by a rerun of a
    finished run (its checkpoint restores the warm-started weights).

    Args:
        embedder: The embedding network, trained in place.
        images: `[N, H, W, C]` training images (uint8 or float pixels).
        labels: `[N]` integer labels in `[0, num_classes)`.
        num_classes: Number of classes of the throw-away head.
        epochs: Epochs of training; 0 does nothing.
        run_dir: Run directory (checkpoints, TensorBoard).
        batch_size: Batch size.
        learning_rate: Adam learning rate.
        seed: Seed of the batch order and head initialisation.
        log_every: Steps between progress lines.
        stream: Where progress lines go (stdout by default).

    Returns:
        `(loop result, head weights)`, both None when `epochs` is 0. The head
        weights can initialise the softmax baseline's classifier.
    """
    steps = warm_start_steps(epochs, len(images), batch_size)
    if steps == 0:
        return None, None
    keras.utils.set_random_seed(seed)
    classifier = build_classifier(embedder, num_classes, name="warm_start_classifier")
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(classifier.trainable_variables)  # Slots before any restore.
    step_fn_tf = softmax_train_step(classifier, optimizer)
    labels = np.asarray(labels, dtype=np.int64)

    def step_fn(step: int) -> dict:
        idx = epoch_batch(seed, step, batch_size, len(images))
        loss, accuracy = step_fn_tf(images[idx], labels[idx])
        return {"loss": loss, "accuracy": accuracy}

    loop = training_loop.run_training(
        WARM_START,
        step_fn,
        steps,
        run_dir,
        {"classifier": classifier, "optimizer": optimizer},
        log_every=log_every,
        checkpoint_every=max(steps // 4, 1),
        stream=stream,
    )
    return loop, classifier.get_layer("logits").get_weights()
