"""MNIST and Fashion-MNIST from the four canonical idx files, offline.

Both datasets ship as `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
`t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` in one folder. Two
readers are available:

- "tfds": tensorflow-datasets builds its `mnist` (or `fashion_mnist`) dataset from the
  folder as a manual download directory, once, into `prepared_dir`; later loads read
  the prepared copy (and no longer need the folder). tfds checks the sha256 of every
  manual file against the checksums it registers, so it only accepts byte-identical
  copies of the official files. The build writes its downloads to a temporary folder
  inside `prepared_dir` and removes it afterwards.
- "idx": a plain reader of the gzipped idx files, which checks the headers and sizes
  instead of checksums. It accepts recompressed copies (such as the Fashion-MNIST
  files this project uses, whose gzip bytes differ from the registered ones) and
  needs no `prepared_dir`.

"auto" uses tfds for MNIST and the idx reader for Fashion-MNIST. Either way images are
float32 `[28, 28, 1]` in [0, 1] and labels int64 in 0..9, in the reader's order (tfds
stores the examples in another order than the idx files).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download.download_manager import (
    NonMatchingChecksumError,
)

from common.data.errors import DatasetError

DATASETS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
"""Supported dataset names (also the tfds builder names) and their titles."""

SPLITS = ("train", "test")
"""Split names."""

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
"""The (images, labels) idx files of each split."""

NUM_EXAMPLES = {"train": 60000, "test": 10000}
"""Examples per split in the official datasets."""

READERS = ("auto", "tfds", "idx")
"""Reader choices; see the module docstring."""

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049
_SIZE = 28
_LAYOUT = (
    "the four idx files train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz in one folder"
)


def _error(message: str) -> DatasetError:
    return DatasetError(f"{message}; expected {_LAYOUT}; set --data_dir")


def _check_args(name: str, split: str, reader: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: use one of {sorted(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(
            f"unknown {DATASETS[name]} split {split!r}: use one of {list(SPLITS)}"
        )
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r}: use one of {list(READERS)}")
    if reader == "auto":
        return "tfds" if name == "mnist" else "idx"
    return reader


def _check_files(folder: str, name: str, splits: tuple[str, ...]) -> None:
    """Raises DatasetError naming the first missing or empty file."""
    for split in splits:
        for file_name in FILES[split]:
            path = os.path.join(folder, file_name)
            if not os.path.isfile(path):
                raise _error(f"{DATASETS[name]} file {file_name} not found in {folder}")
            if os.path.getsize(path) == 0:
                raise _error(f"{DATASETS[name]} file {file_name} in {folder} is empty")


def _read_idx(path: str, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """Reads one gzipped idx file of unsigned bytes, checking header and size."""
    header_len = 4 * (2 + len(item_shape))
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError.
        raise _error(f"{path} is not a readable gzip file ({e})") from e
    if len(data) < header_len:
        raise _error(
            f"{path} is truncated: {len(data)} bytes, shorter than its idx header"
        )
    header = np.frombuffer(data, ">i4", count=header_len // 4)
    if header[0] != magic:
        raise _error(f"{path} has idx magic number {header[0]}, not {magic}")
    if tuple(header[2:]) != item_shape:
        raise _error(
            f"{path} holds items of shape {tuple(header[2:].tolist())}, "
            f"not {item_shape}"
        )
    count = int(header[1])
    expected = header_len + count * int(np.prod(item_shape))
    if len(data) != expected:
        raise _error(
            f"{path} is truncated or padded: {len(data)} bytes, its header "
            f"announces {count} items ({expected} bytes)"
        )
    return np.frombuffer(data, np.uint8, offset=header_len).reshape(
        (count, *item_shape)
    )


def _read_idx_split(
    folder: str, name: str, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images `[n, 28, 28, 1]` and int64 labels `[n]` of one split."""
    _check_files(folder, name, (split,))
    images_file, labels_file = FILES[split]
    images = _read_idx(os.path.join(folder, images_file), _IMAGES_MAGIC, (_SIZE, _SIZE))
    labels = _read_idx(os.path.join(folder, labels_file), _LABELS_MAGIC, ())
    if len(images) != len(labels):
        raise _error(
            f"{DATASETS[name]} {split} split in {folder} has "
            f"{len(images)} images but {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise _error(
            f"{os.path.join(folder, labels_file)} holds label "
            f"{labels.max()}, outside 0..9"
        )
    return images[..., None], labels.astype(np.int64)


def _tfds_builder(
    folder: str, prepared_dir: str | None, name: str
) -> tfds.core.DatasetBuilder:
    """The tfds builder of `name`, prepared from `folder` if not yet prepared."""
    if prepared_dir is None:
        raise ValueError(
            "the tfds reader needs a prepared_dir for the prepared dataset"
        )
    builder = tfds.builder(name, data_dir=prepared_dir)
    if builder.is_prepared():
        return builder
    # tfds would try to download a missing manual file: refuse before that.
    _check_files(folder, name, SPLITS)
    os.makedirs(prepared_dir, exist_ok=True)
    download_dir = tempfile.mkdtemp(dir=prepared_dir, prefix=".tmp-downloads-")
    config = tfds.download.DownloadConfig(manual_dir=folder)
    try:
        builder.download_and_prepare(download_dir=download_dir, download_config=config)
    except NonMatchingChecksumError as e:
        bad = next((f for f in FILES["train"] + FILES["test"] if f in str(e)), "a file")
        raise _error(
            f"{DATASETS[name]} file {bad} in {folder} does not match the "
            "checksum tensorflow-datasets registers (truncated, altered "
            "or recompressed; reader='idx' accepts recompressed copies)"
        ) from e
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
    return builder


def _to_float(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(image, tf.float32) / 255.0, tf.cast(label, tf.int64)


def load_mnist_arrays(
    folder: str,
    prepared_dir: str | None = None,
    split: str = "train",
    name: str = "mnist",
    reader: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split into memory.

    Args:
        folder: Folder holding the four idx `.gz` files of the dataset.
        prepared_dir: tfds data directory for the prepared dataset (tfds reader
            only; built on first use).
        split: "train" or "test".
        name: "mnist" or "fashion_mnist".
        reader: "auto", "tfds" or "idx"; see the module docstring.

    Returns:
        `(images, labels)`: float32 `[n, 28, 28, 1]` in [0, 1] and int64 `[n]`.

    Raises:
        DatasetError: missing, empty, truncated or altered files, naming the file
            and folder.
        ValueError: unknown name, split or reader, or no `prepared_dir` for tfds.
    """
    reader = _check_args(name, split, reader)
    if reader == "idx":
        images, labels = _read_idx_split(folder, name, split)
    else:
        builder = _tfds_builder(folder, prepared_dir, name)
        images, labels = tfds.as_numpy(
            builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
        )
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def load_mnist(
    folder: str,
    prepared_dir: str | None = None,
    split: str = "train",
    name: str = "mnist",
    reader: str = "auto",
) -> tf.data.Dataset:
    """Loads one split as a dataset of `(image, label)` examples.

    Args:
        folder: Folder holding the four idx `.gz` files of the dataset.
        prepared_dir: tfds data directory for the prepared dataset (tfds reader
            only; built on first use).
        split: "train" or "test".
        name: "mnist" or "fashion_mnist".
        reader: "auto", "tfds" or "idx"; see the module docstring.

    Returns:
        Unbatched, unshuffled dataset of float32 `[28, 28, 1]` images in [0, 1] and
        int64 scalar labels.

    Raises:
        DatasetError: missing, empty, truncated or altered files, naming the file
            and folder.
        ValueError: unknown name, split or reader, or no `prepared_dir` for tfds.
    """
    reader = _check_args(name, split, reader)
    if reader == "idx":
        images, labels = _read_idx_split(folder, name, split)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
    else:
        builder = _tfds_builder(folder, prepared_dir, name)
        ds = builder.as_dataset(split=split, as_supervised=True)
    return ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)


def check_files(folder: str, name: str = "mnist") -> None:
    """Raises `DatasetError` unless `folder` holds all four files of `name`."""
    _check_args(name, "train", "auto")
    _check_files(folder, name, SPLITS)
