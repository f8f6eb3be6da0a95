"""Labelled image datasets for the magnet-loss experiments, with coarse labels.

`load_dataset(name, data_dir, cache_dir)` returns a `LabelledImages`: uint8 NHWC
train and test images, int64 fine labels, and for some datasets a coarse label per
example (every fine class belongs to exactly one coarse class), for the experiments
that train on one level of a hierarchy and look for the other in the embedding.

`data_dir` is the project's data root (`../shared/data`: `cifar10/`,
`fashion_mnist/`, `omniglot/`). The datasets:

- "cifar10": 10 classes, 32x32x3 (`common.data.cifar10`, from the JPEG tar).
  Coarse: "vehicle" (airplane, automobile, ship, truck) vs "animal" (bird, cat,
  deer, dog, frog, horse).
- "fashion_mnist": 10 classes, 28x28x1 (the idx reader of `common.data.mnist`).
  Coarse: "clothing" (T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt) vs
  "footwear" (Sandal, Sneaker, Ankle boot) vs "bag" (Bag): what an item is worn on
  or used for, so each coarse class is visually coherent (garments, shoes, bags).
- "omniglot_alphabets": fine classes are the 1623 Omniglot characters, coarse
  classes their 50 alphabets; 28x28x1 drawings (LANCZOS-resized, inverted so strokes
  are 255, as `common.data.omniglot`). Omniglot has 20 drawers per character; the
  first 15 (by file name) are the training split and the last 5 the test split, so
  every character appears in both (15 x 1623 = 24,345 train, 5 x 1623 = 8,115
  test).
- The fine-grained sets of the paper, through tensorflow-datasets: "stanford_dogs"
  (120 breeds; train / test), "oxford_flowers102" (102 species; train + validation
  / test) and "oxford_iiit_pet" (37 breeds; trainval / test, coarse: species, "Cat"
  vs "Dog"). Images are resized, whole (aspect ratio not kept), to
  `image_size` x `image_size` RGB with antialiased bilinear filtering. They are
  never downloaded here: a prepared tfds copy is read from
  `<data_dir>/tensorflow_datasets` or `<cache_dir>/tensorflow_datasets`; failing
  that, the dataset's original archives in `<data_dir>/<name>/` (the file names
  tensorflow-datasets registers, e.g. `images.tar`, `lists.tar`, `annotation.tar`
  for Stanford Dogs) are prepared offline into `<cache_dir>/tensorflow_datasets`
  (tfds `manual_dir`). The resized arrays of a full load are cached as
  `<cache_dir>/magnet_<name>_<image_size>.npz` (written to a temporary file and
  renamed into place).

Examples are in the loader's order (class-major for CIFAR-10 and Omniglot, file
order for Fashion-MNIST, tfds order for the fine-grained sets); shuffle before
training. `max_per_class` keeps the first examples of every fine class in each
split, for quick runs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import zipfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from common import files
from common.data import cifar10, mnist, omniglot
from common.data.errors import DatasetError

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST class names in label order."""

COARSE_GROUPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "cifar10": (
        ("vehicle", ("airplane", "automobile", "ship", "truck")),
        ("animal", ("bird", "cat", "deer", "dog", "frog", "horse")),
    ),
    "fashion_mnist": (
        ("clothing", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Shirt")),
        ("footwear", ("Sandal", "Sneaker", "Ankle boot")),
        ("bag", ("Bag",)),
    ),
}
"""Fixed coarse groupings: `(coarse name, fine class names)` in coarse label order."""

OMNIGLOT_TRAIN_DRAWERS = 15
"""Omniglot drawers (of 20, by file name) per character in the training split."""

DEFAULT_FINE_GRAINED_SIZE = 224
"""Default side of the resized fine-grained images (the paper's GoogLeNet input)."""


@dataclasses.dataclass(frozen=True)
class _TfdsDataset:
    """How one fine-grained tfds dataset is named and split."""

    title: str
    homepage: str
    train_split: str
    test_split: str
    coarse_key: str | None = None


FINE_GRAINED = {
    "stanford_dogs": _TfdsDataset(
        "Stanford Dogs",
        "http://vision.stanford.edu/aditya86/ImageNetDogs/",
        "train",
        "test",
    ),
    "oxford_flowers102": _TfdsDataset(
        "Oxford 102 Flowers",
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        "train+validation",
        "test",
    ),
    "oxford_iiit_pet": _TfdsDataset(
        "Oxford-IIIT Pet",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/",
        "train",
        "test",
        coarse_key="species",
    ),
}
"""The fine-grained datasets (tfds builder names) and how they are split."""

DATASETS = ("cifar10", "fashion_mnist", "omniglot_alphabets", *FINE_GRAINED)
"""Every name `load_dataset` accepts."""


@dataclasses.dataclass(frozen=True, eq=False)
class LabelledImages:
    """A labelled image dataset with its train and test splits in memory.

    Attributes:
        name: The dataset name (one of `DATASETS`).
        train_images: uint8 `[n_train, height, width, channels]`.
        train_labels: int64 `[n_train]`, indices into `class_names`.
        test_images: uint8 `[n_test, height, width, channels]`.
        test_labels: int64 `[n_test]`.
        class_names: Name of every fine class, in label order.
        coarse_train_labels: int64 `[n_train]` indices into `coarse_names`, or None
            when the dataset has no coarse level.
        coarse_test_labels: int64 `[n_test]`, or None.
        coarse_names: Name of every coarse class, or None.

    Raises:
        ValueError: on construction, when the arrays have wrong dtypes or shapes,
            labels are out of range, the coarse fields are only partly given, or a
            fine class occurs with two coarse labels.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    coarse_train_labels: np.ndarray | None = None
    coarse_test_labels: np.ndarray | None = None
    coarse_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        splits = (
            ("train", self.train_images, self.train_labels, self.coarse_train_labels),
            ("test", self.test_images, self.test_labels, self.coarse_test_labels),
        )
        coarse_given = [
            c is not None
            for c in (
                self.coarse_train_labels,
                self.coarse_test_labels,
                self.coarse_names,
            )
        ]
        if any(coarse_given) and not all(coarse_given):
            raise ValueError(
                f"{self.name}: give all of coarse_train_labels, "
                "coarse_test_labels and coarse_names, or none"
            )
        for split, images, labels, coarse in splits:
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{self.name} {split} images must be uint8 NHWC, "
                    f"not {images.dtype} {images.shape}"
                )
            if images.shape[1:] != self.train_images.shape[1:]:
                raise ValueError(
                    f"{self.name}: train and test images differ in "
                    f"shape ({self.train_images.shape[1:]} vs "
                    f"{images.shape[1:]})"
                )
            for what, values, count in (
                ("labels", labels, len(self.class_names)),
                ("coarse labels", coarse, len(self.coarse_names or ())),
            ):
                if values is None:
                    continue
                if values.dtype != np.int64 or values.shape != (len(images),):
                    raise ValueError(
                        f"{self.name} {split} {what} must be int64 "
                        f"[{len(images)}], not {values.dtype} "
                        f"{values.shape}"
                    )
                if values.size and not 0 <= values.min() <= values.max() < count:
                    raise ValueError(
                        f"{self.name} {split} {what} must lie in 0..{count - 1}"
                    )
        self.fine_to_coarse()

    @property
    def num_classes(self) -> int:
        """Number of fine classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(height, width, channels)` of every image."""
        return tuple(self.train_images.shape[1:])

    def fine_to_coarse(self) -> np.ndarray | None:
        """The coarse label of every fine class, or None without a coarse level.

        Returns:
            int64 `[num_classes]`; -1 for fine classes absent from both splits.

        Raises:
            ValueError: a fine class occurs with two different coarse labels.
        """
        if self.coarse_names is None:
            return None
        fine = np.concatenate([self.train_labels, self.test_labels])
        coarse = np.concatenate([self.coarse_train_labels, self.coarse_test_labels])
        mapping = np.full(self.num_classes, -1, np.int64)
        mapping[fine] = coarse
        conflict = np.flatnonzero(mapping[fine] != coarse)
        if conflict.size:
            c = int(fine[conflict[0]])
            raise ValueError(
                f"{self.name}: fine class {self.class_names[c]!r} "
                "occurs with two coarse labels"
            )
        return mapping


def coarse_mapping(
    class_names: tuple[str, ...],
    groups: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The coarse label of every fine class under a fixed grouping.

    Args:
        class_names: Fine class names in label order.
        groups: `(coarse name, fine class names)` pairs in coarse label order, as
            in `COARSE_GROUPS`.

    Returns:
        `(fine_to_coarse, coarse_names)`: int64 `[len(class_names)]` and the coarse
        names.

    Raises:
        ValueError: a fine class is in no group or in several, or a group names an
            unknown class.
    """
    mapping = np.full(len(class_names), -1, np.int64)
    for coarse, (_, members) in enumerate(groups):
        for member in members:
            if member not in class_names:
                raise ValueError(f"coarse group member {member!r} is not a class")
            fine = class_names.index(member)
            if mapping[fine] != -1:
                raise ValueError(f"class {member!r} is in two coarse groups")
            mapping[fine] = coarse
    if (mapping == -1).any():
        raise ValueError(
            f"class {class_names[int(np.argmax(mapping == -1))]!r} is "
            "in no coarse group"
        )
    return mapping, tuple(name for name, _ in groups)


def _first_per_class(labels: np.ndarray, max_per_class: int | None) -> np.ndarray:
    """Indices of the first `max_per_class` examples of every label, in order."""
    if max_per_class is None:
        return np.arange(len(labels))
    keep = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        keep[np.flatnonzero(labels == label)[:max_per_class]] = True
    return np.flatnonzero(keep)


def _with_groups(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: tuple[str, ...],
) -> LabelledImages:
    mapping, coarse_names = coarse_mapping(class_names, COARSE_GROUPS[name])
    return LabelledImages(
        name=name,
        train_images=train[0],
        train_labels=train[1],
        test_images=test[0],
        test_labels=test[1],
        class_names=class_names,
        coarse_train_labels=mapping[train[1]],
        coarse_test_labels=mapping[test[1]],
        coarse_names=coarse_names,
    )


def _load_cifar10(
    data_dir: str, cache_dir: str | None, max_per_class: int | None, strict: bool
) -> LabelledImages:
    data = cifar10.load_cifar10(
        os.path.join(data_dir, "cifar10"),
        cache_dir,
        max_per_class,
        expected_per_class=cifar10.NUM_PER_CLASS if strict else None,
    )
    return _with_groups(
        "cifar10",
        (data.train_images, data.train_labels),
        (data.test_images, data.test_labels),
        data.class_names,
    )


def _load_fashion_mnist(
    data_dir: str, max_per_class: int | None, strict: bool
) -> LabelledImages:
    folder = os.path.join(data_dir, "fashion_mnist")
    splits = {}
    for split in mnist.SPLITS:
        images, labels = mnist.load_mnist_arrays(
            folder, None, split, name="fashion_mnist", reader="idx"
        )
        if strict and len(labels) != mnist.NUM_EXAMPLES[split]:
            raise DatasetError(
                f"Fashion-MNIST {split} split in {folder} has "
                f"{len(labels)} examples, expected "
                f"{mnist.NUM_EXAMPLES[split]}; set --data_dir"
            )
        keep = _first_per_class(labels, max_per_class)
        # The reader returns u / 255 in float32, which rounds back to u exactly.
        splits[split] = (np.rint(images[keep] * 255).astype(np.uint8), labels[keep])
    return _with_groups(
        "fashion_mnist", splits["train"], splits["test"], FASHION_MNIST_CLASSES
    )


def _load_omniglot(
    data_dir: str,
    cache_dir: str | None,
    max_per_class: int | None,
    strict: bool,
    image_size: int,
) -> LabelledImages:
    data = omniglot.load_omniglot(
        os.path.join(data_dir, "omniglot"),
        cache_dir,
        size=image_size,
        expected_characters=omniglot.NUM_CHARACTERS if strict else None,
        pixels="antialiased",
    )  # grey levels, as before MAML's binary default
    alphabets = [name.split("/")[1] for name in data.names]
    coarse_names = tuple(sorted(set(alphabets)))
    character_alphabet = np.array([coarse_names.index(a) for a in alphabets], np.int64)
    drawers = {
        "train": np.arange(OMNIGLOT_TRAIN_DRAWERS),
        "test": np.arange(OMNIGLOT_TRAIN_DRAWERS, omniglot.DRAWERS),
    }
    fields = {}
    for split, chosen in drawers.items():
        chosen = chosen[:max_per_class]
        images = data.images[:, chosen]  # [characters, drawers, size, size]
        labels = np.repeat(np.arange(len(data.names), dtype=np.int64), len(chosen))
        fields[f"{split}_images"] = images.reshape(-1, image_size, image_size, 1)
        fields[f"{split}_labels"] = labels
        fields[f"coarse_{split}_labels"] = character_alphabet[labels]
    return LabelledImages(
        name="omniglot_alphabets",
        class_names=tuple(data.names),
        coarse_names=coarse_names,
        **fields,
    )


def examples_to_arrays(
    dataset: tf.data.Dataset,
    image_size: int,
    max_per_class: int | None = None,
    num_classes: int | None = None,
    coarse_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Resizes a dataset of `{"image", "label"}` examples into arrays.

    Images of any size with 1, 3 or 4 channels (alpha dropped) become
    `image_size` x `image_size` RGB, resized whole with antialiased bilinear
    filtering and rounded to uint8.

    Args:
        dataset: Unbatched examples: "image" uint8 `[h, w, c]`, "label" an integer
            scalar, and `coarse_key` when given.
        image_size: Output side.
        max_per_class: Keep only the first this many examples of every label.
        num_classes: Number of labels; with `max_per_class`, reading stops once
            every label is full.
        coarse_key: Key of an integer coarse label to return as well.

    Returns:
        `(images, labels, coarse)`: uint8 `[n, image_size, image_size, 3]`, int64
        `[n]`, and int64 `[n]` coarse labels (None without `coarse_key`), in the
        dataset's order.
    """
    keys = ("image", "label") if coarse_key is None else ("image", "label", coarse_key)

    def resize(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        image = example["image"]
        image = tf.cond(
            tf.shape(image)[-1] == 1,
            lambda: tf.tile(image, [1, 1, 3]),
            lambda: image[..., :3],
        )
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        out = {k: tf.cast(example[k], tf.int64) for k in keys[1:]}
        out["image"] = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return out

    dataset = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    counts: dict[int, int] = {}
    for example in dataset.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        label = int(example["label"])
        if max_per_class is not None:
            if counts.get(label, 0) >= max_per_class:
                continue
            counts[label] = counts.get(label, 0) + 1
        for k in keys:
            columns[k].append(example[k])
        if (
            max_per_class is not None
            and num_classes is not None
            and len(counts) == num_classes
            and min(counts.values()) >= max_per_class
        ):
            break
    images = (
        np.stack(columns["image"])
        if columns["image"]
        else np.zeros((0, image_size, image_size, 3), np.uint8)
    )
    labels = np.array(columns["label"], np.int64)
    coarse = None if coarse_key is None else np.array(columns[coarse_key], np.int64)
    return images, labels, coarse


def _archives(name: str) -> list[str]:
    """The archive file names tensorflow-datasets registers for `name`."""
    return sorted(
        info.filename for info in (tfds.builder_cls(name).url_infos or {}).values()
    )


def _prepared_builder(
    name: str, data_dir: str, cache_dir: str | None
) -> tfds.core.DatasetBuilder:
    """A prepared tfds builder of `name`, prepared offline from archives if need be.

    Never downloads: without a prepared copy or the complete archives it raises.
    """
    spec = FINE_GRAINED[name]
    candidates = [os.path.join(data_dir, "tensorflow_datasets")]
    if cache_dir is not None:
        candidates.append(os.path.join(cache_dir, "tensorflow_datasets"))
    for tfds_dir in candidates:
        builder = tfds.builder(name, data_dir=tfds_dir)
        if builder.is_prepared():
            return builder
    manual_dir = os.path.join(data_dir, name)
    archives = _archives(name)
    missing = [a for a in archives if not os.path.isfile(os.path.join(manual_dir, a))]
    if missing or cache_dir is None:
        need = (
            f"archive {missing[0]} not found in {manual_dir}"
            if missing
            else "no cache_dir to prepare it in"
        )
        raise DatasetError(
            f"{spec.title} is not prepared in {' or '.join(candidates)} and {need}; "
            f"download {', '.join(archives)} from {spec.homepage} into {manual_dir} "
            "(tfds manual_dir), or copy a tfds copy prepared on a connected machine "
            f"(tfds.builder('{name}').download_and_prepare()) to "
            f"{candidates[0]}; set --data_dir"
        )
    builder = tfds.builder(name, data_dir=candidates[-1])
    os.makedirs(candidates[-1], exist_ok=True)
    download_dir = tempfile.mkdtemp(dir=candidates[-1], prefix=".tmp-downloads-")
    try:
        builder.download_and_prepare(
            download_dir=download_dir,
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
        )
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
    return builder


_CACHE_KEYS = (
    "train_images",
    "train_labels",
    "test_images",
    "test_labels",
    "class_names",
    "coarse_train_labels",
    "coarse_test_labels",
    "coarse_names",
)


def _read_cache(path: str, name: str) -> LabelledImages | None:
    """The cached dataset, or None when unreadable or malformed."""
    try:
        with np.load(path) as f:
            fields = {k: f[k] for k in _CACHE_KEYS if k in f}
        for k in ("class_names", "coarse_names"):
            if k in fields:
                fields[k] = tuple(str(n) for n in fields[k])
        return LabelledImages(name=name, **fields)
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(path: str, data: LabelledImages) -> None:
    arrays = {k: getattr(data, k) for k in _CACHE_KEYS if getattr(data, k) is not None}
    for k in ("class_names", "coarse_names"):
        if k in arrays:
            arrays[k] = np.array(arrays[k])
    files.atomic_write_npz(path, **arrays)


def _subset(data: LabelledImages, max_per_class: int | None) -> LabelledImages:
    """The first `max_per_class` examples of every fine class in each split."""
    if max_per_class is None:
        return data
    train = _first_per_class(data.train_labels, max_per_class)
    test = _first_per_class(data.test_labels, max_per_class)
    coarse = data.coarse_names is not None
    return dataclasses.replace(
        data,
        train_images=data.train_images[train],
        train_labels=data.train_labels[train],
        test_images=data.test_images[test],
        test_labels=data.test_labels[test],
        coarse_train_labels=data.coarse_train_labels[train] if coarse else None,
        coarse_test_labels=data.coarse_test_labels[test] if coarse else None,
    )


def _load_fine_grained(
    name: str,
    data_dir: str,
    cache_dir: str | None,
    max_per_class: int | None,
    image_size: int,
) -> LabelledImages:
    cache = (
        None
        if cache_dir is None
        else os.path.join(cache_dir, f"magnet_{name}_{image_size}.npz")
    )
    if cache and os.path.exists(cache):
        cached = _read_cache(cache, name)
        if cached is not None:
            return _subset(cached, max_per_class)
    spec = FINE_GRAINED[name]
    builder = _prepared_builder(name, data_dir, cache_dir)
    features = builder.info.features
    num_classes = features["label"].num_classes
    fields = {}
    for split, tfds_split in (("train", spec.train_split), ("test", spec.test_split)):
        images, labels, coarse = examples_to_arrays(
            builder.as_dataset(split=tfds_split, shuffle_files=False),
            image_size,
            max_per_class,
            num_classes,
            spec.coarse_key,
        )
        fields[f"{split}_images"], fields[f"{split}_labels"] = images, labels
        if coarse is not None:
            fields[f"coarse_{split}_labels"] = coarse
    coarse_names = (
        None if spec.coarse_key is None else tuple(features[spec.coarse_key].names)
    )
    try:
        data = LabelledImages(
            name=name,
            class_names=tuple(features["label"].names),
            coarse_names=coarse_names,
            **fields,
        )
    except ValueError as e:
        raise DatasetError(
            f"{spec.title} prepared by tfds is inconsistent ({e})"
        ) from e
    if cache and max_per_class is None:
        _write_cache(cache, data)
    return data


def load_dataset(
    name: str,
    data_dir: str,
    cache_dir: str | None,
    max_per_class: int | None = None,
    *,
    image_size: int | None = None,
    strict: bool = True,
) -> LabelledImages:
    """Loads a dataset for the magnet experiments; see the module docstring.

    Args:
        name: One of `DATASETS`.
        data_dir: The data root, holding `cifar10/`, `fashion_mnist/`,
            `omniglot/`, and for the fine-grained sets `tensorflow_datasets/` or
            `<name>/` with the original archives.
        cache_dir: Where preprocessed arrays (and fine-grained tfds copies prepared
            from archives) are cached; None caches nothing.
        max_per_class: Keep only the first this many examples of every fine class
            in each split (None: all).
        image_size: Image side for "omniglot_alphabets" (default 28) and the
            fine-grained sets (default 224); CIFAR-10 and Fashion-MNIST only take
            their native 32 and 28.
        strict: Refuse CIFAR-10, Fashion-MNIST and Omniglot copies without the
            official number of examples (False accepts small test fixtures).

    Returns:
        The dataset, with coarse labels for "cifar10", "fashion_mnist",
        "omniglot_alphabets" and "oxford_iiit_pet".

    Raises:
        DatasetError: missing, corrupt or incomplete data, in one line naming the
            file and folder (and, for the fine-grained sets, how to provide them).
        ValueError: unknown name, or invalid `max_per_class` or `image_size`.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: use one of {list(DATASETS)}")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1, not {max_per_class}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be at least 1, not {image_size}")
    native = {"cifar10": cifar10.IMAGE_SHAPE[0], "fashion_mnist": 28}
    if name in native:
        if image_size not in (None, native[name]):
            raise ValueError(
                f"{name} images are {native[name]}x{native[name]}; "
                f"image_size {image_size} is not supported"
            )
        if name == "cifar10":
            return _load_cifar10(data_dir, cache_dir, max_per_class, strict)
        return _load_fashion_mnist(data_dir, max_per_class, strict)
    if name == "omniglot_alphabets":
        return _load_omniglot(
            data_dir, cache_dir, max_per_class, strict, image_size or 28
        )
    return _load_fine_grained(
        name,
        data_dir,
        cache_dir,
        max_per_class,
        image_size or DEFAULT_FINE_GRAINED_SIZE,
    )
