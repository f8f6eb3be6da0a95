"""CIFAR-10 from a tar of JPEG files, decoded once into cached uint8 arrays.

Reads `<folder>/cifar10_jpg.tar`, which holds `train/<class>/NNNN.jpg` (5,000 a
class) and `test/<class>/NNNN.jpg` (1,000 a class), 32x32 RGB JPEGs. Members are
read straight from the tar (nothing is extracted to disk) and decoded with PIL
(`tf.io.decode_jpeg` decodes the same files up to 4 levels apart per pixel, so the
decoder is fixed here).
The class folders must be the ten standard CIFAR-10 classes; labels follow the
standard order of `CLASS_NAMES` (which is also their alphabetical order).

Within a split the examples are ordered by class, then by file name; shuffle before
training. With `max_per_class`, only the first `max_per_class` files (by name) of
each class and split are decoded, so quick runs do not pay for the whole dataset.

A full load is cached as `<cache_dir>/cifar10.npz`, written to a temporary file and
renamed into place, so a failed or interrupted load never leaves a partial cache.
Later loads, including `max_per_class` ones (sliced from it), read the cache and no
longer need the tar. `max_per_class` loads that find no cache decode their subset
and cache nothing. The cache name does not depend on `folder`: use one cache folder
per copy of the dataset.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from typing import NamedTuple

import numpy as np
from PIL import Image

from common import files
from common.data.errors import DatasetError

TAR_NAME = "cifar10_jpg.tar"
"""File name of the JPEG tar inside the data folder."""

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""The CIFAR-10 classes in the standard label order (label `i` is `CLASS_NAMES[i]`).
"""

SPLITS = ("train", "test")
"""Split names (the top-level folders of the tar)."""

NUM_PER_CLASS = {"train": 5000, "test": 1000}
"""Images per class and split in the complete dataset."""

IMAGE_SHAPE = (32, 32, 3)
"""Shape of every image."""

CACHE_NAME = "cifar10.npz"
"""File name of the cache of a full load inside the cache folder."""

_EXTENSIONS = (".jpg", ".jpeg")
_LAYOUT = (
    f"<data_dir>/cifar10/{TAR_NAME} holding train/<class>/NNNN.jpg and "
    "test/<class>/NNNN.jpg"
)


class Cifar10(NamedTuple):
    """Both CIFAR-10 splits in memory.

    Attributes:
        train_images: uint8 `[n_train, 32, 32, 3]`.
        train_labels: int64 `[n_train]`, indices into `class_names`.
        test_images: uint8 `[n_test, 32, 32, 3]`.
        test_labels: int64 `[n_test]`.
        class_names: `CLASS_NAMES`.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]


def _error(message: str) -> DatasetError:
    return DatasetError(f"{message}; expected {_LAYOUT}; set --data_dir")


def _select_members(
    tar: tarfile.TarFile,
    path: str,
    max_per_class: int | None,
) -> dict[str, list[list[tarfile.TarInfo]]]:
    """JPEG members per split and label, sorted by name, at most `max_per_class`."""
    found: dict[str, dict[str, list[tarfile.TarInfo]]] = {s: {} for s in SPLITS}
    for info in tar.getmembers():
        parts = info.name.removeprefix("./").split("/")
        if (
            not info.isfile()
            or len(parts) != 3
            or parts[0] not in found
            or not parts[2].lower().endswith(_EXTENSIONS)
        ):
            continue
        found[parts[0]].setdefault(parts[1], []).append(info)
    selected = {}
    for split, classes in found.items():
        if not classes:
            raise _error(f"CIFAR-10 split {split}/ not found in {path}")
        if sorted(classes) != list(CLASS_NAMES):
            missing = sorted(set(CLASS_NAMES) - set(classes))
            extra = sorted(set(classes) - set(CLASS_NAMES))
            raise _error(
                f"CIFAR-10 split {split}/ in {path} has class folders "
                f"missing {missing} and unexpected {extra}"
            )
        selected[split] = [
            sorted(classes[name], key=lambda m: m.name)[:max_per_class]
            for name in CLASS_NAMES
        ]
    return selected


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            image = np.asarray(im.convert("RGB"), np.uint8)
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError.
        raise _error(f"corrupt image {where} ({e})") from e
    if image.shape != IMAGE_SHAPE:
        raise _error(f"image {where} has shape {image.shape}, not {IMAGE_SHAPE}")
    return image


def _read_tar(path: str, max_per_class: int | None) -> Cifar10:
    if not os.path.isfile(path):
        raise _error(
            f"CIFAR-10 file {os.path.basename(path)} not found in "
            f"{os.path.dirname(path)}"
        )
    arrays = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            selected = _select_members(tar, path, max_per_class)
            for split in SPLITS:
                members = [
                    (m, label) for label, ms in enumerate(selected[split]) for m in ms
                ]
                images = np.zeros((len(members), *IMAGE_SHAPE), np.uint8)
                # Read in archive order (sequential I/O), store in label order.
                order = sorted(
                    range(len(members)), key=lambda i: members[i][0].offset_data
                )
                for i in order:
                    member = members[i][0]
                    f = tar.extractfile(member)
                    data = f.read() if f is not None else b""
                    if len(data) != member.size:
                        raise _error(
                            f"{path} is truncated: member {member.name} "
                            f"has {len(data)} of {member.size} bytes"
                        )
                    images[i] = _decode(data, f"{member.name} in {path}")
                arrays[split] = images, np.array([lb for _, lb in members], np.int64)
    except (tarfile.TarError, EOFError) as e:
        raise _error(f"{path} is not a readable tar ({e})") from e
    return Cifar10(*arrays["train"], *arrays["test"], class_names=CLASS_NAMES)


def _check_counts(data: Cifar10, path: str, expected: dict[str, int]) -> None:
    for split, labels in (("train", data.train_labels), ("test", data.test_labels)):
        counts = np.bincount(labels, minlength=len(CLASS_NAMES))
        short = np.flatnonzero(counts != expected[split])
        if short.size:
            c = int(short[0])
            raise _error(
                f"CIFAR-10 {split}/{CLASS_NAMES[c]} in {path} has "
                f"{counts[c]} images, expected {expected[split]}"
            )


def _first_per_class(
    images: np.ndarray, labels: np.ndarray, max_per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first `max_per_class` examples of every label, keeping the order."""
    keep = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        keep[np.flatnonzero(labels == label)[:max_per_class]] = True
    return images[keep], labels[keep]


def _read_cache(path: str) -> Cifar10 | None:
    """The cached dataset, or None when the cache is unreadable or malformed."""
    try:
        with np.load(path) as f:
            data = Cifar10(
                f["train_images"],
                f["train_labels"],
                f["test_images"],
                f["test_labels"],
                tuple(str(n) for n in f["class_names"]),
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    well_formed = (
        data.class_names == CLASS_NAMES
        and data.train_images.shape[1:] == IMAGE_SHAPE
        and data.test_images.shape[1:] == IMAGE_SHAPE
        and len(data.train_images) == len(data.train_labels)
        and len(data.test_images) == len(data.test_labels)
    )
    return data if well_formed else None


def _write_cache(path: str, data: Cifar10) -> None:
    files.atomic_write_npz(
        path,
        train_images=data.train_images,
        train_labels=data.train_labels,
        test_images=data.test_images,
        test_labels=data.test_labels,
        class_names=np.array(data.class_names),
    )


def load_cifar10(
    folder: str,
    cache_dir: str | None = None,
    max_per_class: int | None = None,
    expected_per_class: dict[str, int] | None = NUM_PER_CLASS,
) -> Cifar10:
    """Loads both CIFAR-10 splits, from the cache when present.

    Args:
        folder: Folder holding `cifar10_jpg.tar`.
        cache_dir: Where to cache a full load (None: no cache).
        max_per_class: Keep only the first this many images (by file name) of each
            class in each split (None: all).
        expected_per_class: Refuse a dataset whose classes do not have this many
            images per split (capped at `max_per_class`); None accepts any number,
            for test fixtures.

    Returns:
        The two splits, ordered by class then file name, and the class names.

    Raises:
        DatasetError: missing, corrupt or truncated tar, missing split, unexpected
            class folders, corrupt or wrongly sized images, or wrong counts; one
            line naming the file and folder.
        ValueError: `max_per_class` below 1.
    """
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1, not {max_per_class}")
    path = os.path.join(folder, TAR_NAME)
    cache = None if cache_dir is None else os.path.join(cache_dir, CACHE_NAME)
    data = _read_cache(cache) if cache and os.path.exists(cache) else None
    source = cache
    if data is None:
        data, source = _read_tar(path, max_per_class), path
    elif max_per_class is not None:
        data = Cifar10(
            *_first_per_class(data.train_images, data.train_labels, max_per_class),
            *_first_per_class(data.test_images, data.test_labels, max_per_class),
            class_names=data.class_names,
        )
    if expected_per_class is not None:
        expected = {
            s: min(n, max_per_class or n) for s, n in expected_per_class.items()
        }
        _check_counts(data, source, expected)
    if cache and source == path and max_per_class is None:
        _write_cache(cache, data)
    return data
