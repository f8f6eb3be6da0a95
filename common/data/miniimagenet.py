"""MiniImagenet in the Ravi & Larochelle (2017) split, as uint8 image arrays.

The split has 64 train, 16 val and 20 test classes of 600 images each. Two common
layouts of the raw images are recognised under a root folder, per split:

1. CSV layout: `<root>/images/<filename>.jpg` with `<root>/train.csv`, `val.csv`
   and `test.csv`, each starting with the header `filename,label` followed by rows
   such as `n0153282900000005.jpg,n01532829`.
2. Folder layout: `<root>/train/<wnid>/*.jpg` (likewise `val/` and `test/`), one
   sub-folder per class.

Images are resized with PIL's Lanczos filter to `image_size` x `image_size` RGB.
The preprocessed split can be cached as
`<cache_dir>/miniimagenet_<split>_<image_size>.npz`; the cache file is written to a
temporary file in the same folder and renamed into place, so a failed or interrupted
load never leaves a partial cache behind. The cache name does not depend on `root`:
use one cache folder per copy of the dataset.
"""

from __future__ import annotations

import csv
import os
from typing import NamedTuple

import numpy as np
from PIL import Image

from common import files
from common.data.errors import DatasetError

SPLITS = ("train", "val", "test")
"""Split names, in the Ravi & Larochelle order."""

RAVI_LAROCHELLE_CLASSES = {"train": 64, "val": 16, "test": 20}
"""Number of classes per split in the Ravi & Larochelle split."""

RAVI_LAROCHELLE_PER_CLASS = 600
"""Number of images per class in the Ravi & Larochelle split."""

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_LAYOUT_HINT = (
    "expected <root>/images/*.jpg with train.csv/val.csv/test.csv "
    "(header 'filename,label'), or <root>/train/<wnid>/*.jpg "
    "(likewise val/ and test/); set --data_dir to the MiniImagenet root"
)


class MiniImagenetSplit(NamedTuple):
    """One preprocessed MiniImagenet split.

    Attributes:
        images: uint8 array `[num_classes, per_class, image_size, image_size, 3]`;
            `images[c]` are the images of `class_names[c]`.
        class_names: The WordNet ids of the classes, sorted.
    """

    images: np.ndarray
    class_names: list[str]


def _error(message: str) -> DatasetError:
    """Builds a one-line `DatasetError` that names the expected layout."""
    return DatasetError(" ".join(f"{message}: {_LAYOUT_HINT}".split()))


def cache_path(cache_dir: str, split: str, image_size: int) -> str:
    """Returns the path of the cache file of one split at one image size."""
    return os.path.join(cache_dir, f"miniimagenet_{split}_{image_size}.npz")


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(_IMAGE_EXTENSIONS)


def _list_csv_split(root: str, split: str) -> dict[str, list[str]]:
    """Reads `<root>/<split>.csv`; returns image paths grouped by wnid."""
    csv_file = os.path.join(root, f"{split}.csv")
    images_dir = os.path.join(root, "images")
    files: dict[str, list[str]] = {}
    try:
        with open(csv_file, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise _error(f"Cannot read MiniImagenet split file {csv_file} ({e})") from e
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows or [cell.strip() for cell in rows[0]] != ["filename", "label"]:
        raise _error(
            f"MiniImagenet split file {csv_file} does not start with the "
            "header 'filename,label'"
        )
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise _error(
                f"MiniImagenet split file {csv_file} line {line} is not "
                "'filename,label'"
            )
        filename, label = row[0].strip(), row[1].strip()
        files.setdefault(label, []).append(os.path.join(images_dir, filename))
    return files


def _list_folder_split(split_dir: str) -> dict[str, list[str]]:
    """Lists `<split_dir>/<wnid>/*.jpg`; returns image paths grouped by wnid."""
    files: dict[str, list[str]] = {}
    try:
        class_dirs = [
            e
            for e in os.scandir(split_dir)
            if e.is_dir() and not e.name.startswith(".")
        ]
        for class_dir in class_dirs:
            files[class_dir.name] = [
                e.path
                for e in os.scandir(class_dir.path)
                if e.is_file() and _is_image(e.name)
            ]
    except OSError as e:
        raise _error(f"Cannot list MiniImagenet folder {split_dir} ({e})") from e
    return files


def _list_split(root: str, split: str) -> dict[str, list[str]]:
    """Detects the layout of `split` under `root`; returns paths grouped by wnid."""
    if not os.path.isdir(root):
        raise _error(f"MiniImagenet not found under {root}")
    csv_file = os.path.join(root, f"{split}.csv")
    images_dir = os.path.join(root, "images")
    split_dir = os.path.join(root, split)
    if os.path.isfile(csv_file) and os.path.isdir(images_dir):
        return _list_csv_split(root, split)
    if os.path.isdir(split_dir):
        return _list_folder_split(split_dir)
    if os.path.isfile(csv_file):
        raise _error(
            f"MiniImagenet split file {csv_file} found but the image "
            f"folder {images_dir} is missing"
        )
    raise _error(
        f"MiniImagenet {split} split not found under {root} (neither "
        f"{csv_file} nor {split_dir} exists)"
    )


def _check_counts(
    files: dict[str, list[str]],
    where: str,
    expected_classes: int,
    expected_per_class: int,
) -> None:
    """Raises `DatasetError` unless the class and per-class counts are expected."""
    if not files or not any(files.values()):
        raise _error(f"MiniImagenet {where} is empty (no images)")
    if len(files) != expected_classes:
        raise _error(
            f"MiniImagenet {where} has {len(files)} classes, expected "
            f"{expected_classes}"
        )
    counts = {name: len(paths) for name, paths in files.items()}
    if len(set(counts.values())) > 1:
        fewest = min(counts, key=lambda name: (counts[name], name))
        most = max(counts, key=lambda name: (counts[name], name))
        raise _error(
            f"MiniImagenet {where} has classes with different image counts "
            f"({fewest}: {counts[fewest]}, {most}: {counts[most]})"
        )
    per_class = next(iter(counts.values()))
    if per_class != expected_per_class:
        raise _error(
            f"MiniImagenet {where} has {per_class} images per class, "
            f"expected {expected_per_class}"
        )


def _load_image(path: str, image_size: int) -> np.ndarray:
    """Reads one image as uint8 RGB `[image_size, image_size, 3]`."""
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize(
                (image_size, image_size), Image.LANCZOS
            )
        return np.asarray(resized, dtype=np.uint8)
    except FileNotFoundError as e:
        raise _error(f"MiniImagenet image {path} is missing") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise _error(
            f"MiniImagenet image {path} is unreadable or corrupt "
            f"({type(e).__name__}: {e})"
        ) from e


def _check_array(
    split: MiniImagenetSplit,
    where: str,
    expected_classes: int,
    expected_per_class: int,
    image_size: int,
) -> None:
    """Raises `DatasetError` unless a cached split has the expected shape."""
    expected = (expected_classes, expected_per_class, image_size, image_size, 3)
    if split.images.dtype != np.uint8 or split.images.shape != expected:
        raise _error(
            f"MiniImagenet cache {where} holds {split.images.dtype} images "
            f"of shape {split.images.shape}, expected uint8 {expected} "
            "(delete the cache file to rebuild it)"
        )
    if len(split.class_names) != expected_classes:
        raise _error(
            f"MiniImagenet cache {where} holds {len(split.class_names)} "
            f"class names, expected {expected_classes} (delete the cache "
            "file to rebuild it)"
        )


def _read_cache(path: str) -> MiniImagenetSplit:
    """Reads a cache file written by `_write_cache`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return MiniImagenetSplit(
                images=data["images"], class_names=[str(n) for n in data["class_names"]]
            )
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise _error(
            f"MiniImagenet cache file {path} is unreadable ({e}); delete "
            "it to rebuild the cache"
        ) from e


def _write_cache(path: str, split: MiniImagenetSplit) -> None:
    """Writes `split` to `path` atomically (temporary file, then rename)."""
    files.atomic_write_npz(
        path, images=split.images, class_names=np.asarray(split.class_names, dtype=str)
    )


def load_miniimagenet_split(
    root: str,
    split: str,
    cache_dir: str | None = None,
    image_size: int = 84,
    expected_classes: int | None = None,
    expected_per_class: int | None = None,
) -> MiniImagenetSplit:
    """Loads one MiniImagenet split as a uint8 array, preprocessing it once.

    If `cache_dir` holds the cache file of this split and image size it is read
    (the raw images are then not needed); otherwise the images under `root` are
    read, resized, checked and, if `cache_dir` is set, cached.

    Args:
        root: The MiniImagenet root folder (CSV or folder layout, see module doc).
        split: "train", "val" or "test".
        cache_dir: Folder of the preprocessed cache, or None for no cache.
        image_size: Side of the square RGB images, in pixels.
        expected_classes: Number of classes the split must have; None means the
            Ravi & Larochelle number (64 / 16 / 20 for train / val / test).
        expected_per_class: Number of images every class must have; None means 600.

    Returns:
        The split: `images[c, i]` is image `i` (in file name order) of class
        `class_names[c]`, classes sorted by WordNet id.

    Raises:
        DatasetError: The split name is unknown, `root` or the split is missing or
            empty, an image is unreadable or corrupt, or the number of classes or
            of images per class is not the expected one.
        ValueError: `image_size` is not positive.
    """
    if split not in SPLITS:
        raise _error(
            f"Unknown MiniImagenet split {split!r}, expected one of {', '.join(SPLITS)}"
        )
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if expected_classes is None:
        expected_classes = RAVI_LAROCHELLE_CLASSES[split]
    if expected_per_class is None:
        expected_per_class = RAVI_LAROCHELLE_PER_CLASS

    cache_file = cache_path(cache_dir, split, image_size) if cache_dir else None
    if cache_file and os.path.isfile(cache_file):
        cached = _read_cache(cache_file)
        _check_array(
            cached, cache_file, expected_classes, expected_per_class, image_size
        )
        return cached

    files = _list_split(root, split)
    _check_counts(
        files, f"{split} split under {root}", expected_classes, expected_per_class
    )
    class_names = sorted(files)
    images = np.empty(
        (expected_classes, expected_per_class, image_size, image_size, 3), np.uint8
    )
    for c, name in enumerate(class_names):
        for i, path in enumerate(sorted(files[name])):
            images[c, i] = _load_image(path, image_size)
    result = MiniImagenetSplit(images=images, class_names=class_names)
    if cache_file:
        _write_cache(cache_file, result)
    return result
