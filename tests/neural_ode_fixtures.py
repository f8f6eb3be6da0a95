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


def untrained_odenet_run(root: str, nfe_log: list[list[int]] | None = None) -> str:
    """Writes an MNIST run directory holding an untrained ODE-Net; returns it.

    The layout `mnist_experiment.run` leaves (saved config, `checkpoints/odenet`),
    with the config's data dir pointing at tiny idx fixtures, so the studies that
    read a finished run (precision, serving) can be tested without training one:
    they do not care how good the weights are. (Training the tiny run first took
    ~25 of the precision test's ~32 s.)

    Args:
        root: Folder to write into (`root/mnist`, `root/mnist_run`).
        nfe_log: Rows `[step, forward NFE, backward NFE]` to write as the
            run's training NFE log (`odenet/nfe_log.json`); None writes none.
    """
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from common import config as config_lib  # noqa: PLC0415
    from common import files  # noqa: PLC0415
    from neural_ode import mnist_models  # noqa: PLC0415
    from neural_ode.experiments import mnist_experiment  # noqa: PLC0415

    data = write_tiny_mnist(os.path.join(root, "mnist"), train=32, test=16)
    run_dir = os.path.join(root, "mnist_run")
    cfg = mnist_experiment.MNISTConfig(
        models=("odenet",), epochs=1, batch_size=16, data_dir=data, reader="idx"
    )
    config_lib.save_config(cfg, run_dir)
    keras.utils.set_random_seed(0)
    model = mnist_models.build_model("odenet", cfg.solver())
    tf.train.Checkpoint(model=model).save(
        os.path.join(run_dir, "checkpoints", "odenet", "ckpt")
    )
    if nfe_log is not None:
        files.atomic_write_json(
            os.path.join(run_dir, "odenet", mnist_experiment.NFE_LOG), nfe_log
        )
    return run_dir
