"""Shared test fixtures for the Neural ODE experiments: tiny MNIST idx files."""

from __future__ import annotations

import gzip
import os

import numpy as np

from common.data import mnist


def _write_idx(path: str, magic: int, array: np.ndarray) -> None:
    header = np.array([magic, len(array), *array.shape[1:]], ">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(
    folder: str, train: int = 64, test: int = 32, seed: int = 0
) -> str:
    """Writes the four MNIST idx files with random digits; returns `folder`.

    Labels are a function of the image (its brightest quadrant and total ink), so a
    classifier can learn them, but nothing depends on that in the tests.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        images_file, labels_file = mnist.FILES[split]
        _write_idx(os.path.join(folder, images_file), 2051, images)
        _write_idx(os.path.join(folder, labels_file), 2049, labels)
    return folder


def train_tiny_odenet(root: str) -> str:
    """Trains a 1-epoch ODE-Net `mnist` run on tiny fixtures; returns its run dir."""
    from neural_ode.experiments import mnist_experiment  # noqa: PLC0415

    data = write_tiny_mnist(os.path.join(root, "mnist"), train=32, test=16)
    run_dir = os.path.join(root, "mnist_run")
    mnist_experiment.run(
        mnist_experiment.MNISTConfig(
            models=("odenet",),
            epochs=1,
            batch_size=16,
            data_dir=data,
            reader="idx",
            log_every=1,
            checkpoint_every=1,
            eval_batch_size=16,
        ),
        run_dir,
    )
    return run_dir
