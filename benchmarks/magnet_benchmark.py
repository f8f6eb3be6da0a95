"""Cost of magnet training: a step of each loss, and one cluster-index refresh.

`python -m benchmarks.magnet_benchmark` builds the embedding network of
`magnet.networks` (the one every loss trains) for `--image_shape` inputs and
times, at batch size M * D (`--num_clusters` x `--examples_per_cluster`):

* the compiled training step of each loss alone (forward, backward, Adam);
* the magnet step as the trainer runs it: drawing the batch from the cluster
  index (`MagnetSampler`), gathering the images, the step, and writing the
  per-example losses back into the index;
* one refresh of the cluster index: embedding `--num_train` training images in
  inference mode, then k-means with K = `--clusters_per_class` per class over
  `--num_classes` classes; and its cost per step when done every
  `--refresh_every` steps.

Medians over `--repeats` timed calls after two warm-up calls; random pixels
(timings do not depend on the values). Prints a Markdown table. Run it alone:
other jobs on the 2 cores distort the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from magnet import cluster_index, networks, sampler, trainer, triplet  # noqa: E402

IMAGE_SHAPE = flags.DEFINE_list("image_shape", ["32", "32", "3"],
                                "Input height, width, channels.")
NUM_CLUSTERS = flags.DEFINE_integer("num_clusters", 12, "M, clusters per batch.")
EXAMPLES = flags.DEFINE_integer("examples_per_cluster", 4, "D, examples per cluster.")
CLUSTERS_PER_CLASS = flags.DEFINE_integer("clusters_per_class", 8, "K.")
NUM_CLASSES = flags.DEFINE_integer("num_classes", 10, "Classes of the training set.")
NUM_TRAIN = flags.DEFINE_integer("num_train", 10_000,
                                 "Training images embedded by a refresh.")
REFRESH_EVERY = flags.DEFINE_integer("refresh_every", 250,
                                     "Steps between refreshes (amortised cost).")
EMBEDDING_DIM = flags.DEFINE_integer("embedding_dim", 64, "Embedding size.")
REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per step (median).")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of `fn()` after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for value in tf.nest.flatten(fn()):
            np.asarray(value)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def benchmark(image_shape: tuple[int, int, int], m: int, d: int, k: int,
              num_classes: int, num_train: int, refresh_every: int,
              embedding_dim: int, repeats: int) -> list[list[str]]:
    """Times the steps and the refresh; returns Markdown table rows."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    batch = m * d
    settings = trainer.TrainSettings(steps=1, num_clusters=m, examples_per_cluster=d,
                                     clusters_per_class=k,
                                     embedding_dim=embedding_dim)
    images = rng.integers(0, 256, (num_train, *image_shape), dtype=np.uint8)
    labels = np.arange(num_train, dtype=np.int64) % num_classes
    batch_images = images[:batch]
    magnet_labels = np.repeat(np.arange(m) % num_classes, d).astype(np.int64)

    def fresh():
        return networks.build_embedder(image_shape, embedding_dim)

    softmax = networks.softmax_train_step(
        networks.build_classifier(fresh(), num_classes), keras.optimizers.Adam())
    softmax_s = median_seconds(lambda: softmax(batch_images, labels[:batch]),
                               repeats)
    magnet_model = fresh()
    magnet = trainer.magnet_train_step(magnet_model, keras.optimizers.Adam(),
                                       settings)
    magnet_s = median_seconds(lambda: magnet(batch_images, magnet_labels), repeats)
    triplet_step = trainer.triplet_train_step(
        networks.with_l2_normalization(fresh()), keras.optimizers.Adam(),
        triplet.DEFAULT_MARGIN)
    balanced = triplet.ClassBalancedBatches(labels, m, max(2, batch // min(
        m, num_classes)))
    triplet_idx = balanced.indices(0)
    triplet_s = median_seconds(
        lambda: triplet_step(images[triplet_idx], labels[triplet_idx]), repeats)

    embed = trainer.embed_fn(magnet_model)
    start = time.perf_counter()
    embeddings = cluster_index.embed_all(embed, images, 500)
    embed_s = time.perf_counter() - start  # Includes one trace of `embed`.
    start = time.perf_counter()
    embeddings = cluster_index.embed_all(embed, images, 500)
    embed_s = min(embed_s, time.perf_counter() - start)
    start = time.perf_counter()
    index = cluster_index.ClusterIndex.build(embeddings, labels, k, seed=0)
    kmeans_s = time.perf_counter() - start

    def full_magnet_step():
        batch_sampler = sampler.MagnetSampler(images, labels, index, m, d,
                                              seed=int(rng.integers(1 << 30)))
        idx = batch_sampler.sample_batch_indices()
        _, losses, _ = magnet(images[idx], labels[idx])
        index.update_losses(idx, losses.numpy())

    full_s = median_seconds(full_magnet_step, repeats)
    refresh_s = embed_s + kmeans_s
    ms = 1000.0
    return [
        ["softmax step (compiled)", f"{softmax_s * ms:.1f} ms", "1.00x"],
        ["triplet step, semi-hard (compiled)", f"{triplet_s * ms:.1f} ms",
         f"{triplet_s / softmax_s:.2f}x"],
        ["magnet step (compiled)", f"{magnet_s * ms:.1f} ms",
         f"{magnet_s / softmax_s:.2f}x"],
        ["magnet step + sampling + loss recording", f"{full_s * ms:.1f} ms",
         f"{full_s / softmax_s:.2f}x"],
        [f"refresh: embed {num_train:,} images", f"{embed_s:.2f} s",
         f"{embed_s / softmax_s:.0f} softmax steps"],
        [f"refresh: k-means, K={k} x {num_classes} classes", f"{kmeans_s:.2f} s",
         f"{kmeans_s / softmax_s:.0f} softmax steps"],
        [f"magnet step incl. refresh every {refresh_every} steps",
         f"{(full_s + refresh_s / refresh_every) * ms:.1f} ms",
         f"{(full_s + refresh_s / refresh_every) / softmax_s:.2f}x"],
    ]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    shape = tuple(int(s) for s in IMAGE_SHAPE.value)
    if len(shape) != 3:
        raise app.UsageError("--image_shape takes height,width,channels")
    rows = benchmark(shape, NUM_CLUSTERS.value, EXAMPLES.value,
                     CLUSTERS_PER_CLASS.value, NUM_CLASSES.value, NUM_TRAIN.value,
                     REFRESH_EVERY.value, EMBEDDING_DIM.value, REPEATS.value)
    batch = NUM_CLUSTERS.value * EXAMPLES.value
    print(f"Magnet benchmark: {'x'.join(map(str, shape))} images, batch "
          f"M*D = {NUM_CLUSTERS.value}x{EXAMPLES.value} = {batch}, embedding "
          f"{EMBEDDING_DIM.value}, {os.cpu_count()} CPU cores (medians of "
          f"{REPEATS.value}).\n")
    print("| what | time | relative to a softmax step |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    app.run(main)
