"""MNIST / Fashion-MNIST loading: errors, the idx reader, the real datasets."""

import gzip
import os

import numpy as np
import pytest

from common.data import mnist
from common.data.errors import DatasetError

DATA_DIR = os.environ.get(
    "REPRO_DATA_DIR",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "..",
        "shared",
        "data",
    ),
)
REAL = os.path.join(DATA_DIR, "mnist")
REAL_FASHION = os.path.join(DATA_DIR, "fashion_mnist")


def _has_files(folder):
    return all(
        os.path.exists(os.path.join(folder, f))
        for pair in mnist.FILES.values()
        for f in pair
    )


def _write_idx(path, magic, array, truncate=0):
    header = np.array([magic, len(array), *array.shape[1:]], ">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(data[: len(data) - truncate])


def _fixture(folder, n=(5, 3)):
    """Tiny idx files; returns {split: (images, labels)} as written."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    written = {}
    for split, count in zip(mnist.SPLITS, n, strict=True):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        images_file, labels_file = mnist.FILES[split]
        _write_idx(os.path.join(folder, images_file), 2051, images)
        _write_idx(os.path.join(folder, labels_file), 2049, labels)
        written[split] = images, labels
    return written


def test_missing_directory_fails_in_one_line_naming_file_and_folder(tmp_path):
    missing = str(tmp_path / "nothing")
    for reader in ("tfds", "idx"):
        with pytest.raises(DatasetError, match="--data_dir") as e:
            mnist.load_mnist(missing, str(tmp_path / "prepared"), "test", reader=reader)
        message = str(e.value)
        assert "\n" not in message
        # tfds builds both splits, so it checks the train files first.
        first = "t10k" if reader == "idx" else "train"
        assert f"{first}-images-idx3-ubyte.gz not found in {missing}" in message
    # Nothing was prepared and no download folder is left behind.
    assert not os.path.exists(tmp_path / "prepared") or not any(
        f.startswith(".tmp") for f in os.listdir(tmp_path / "prepared")
    )


def test_one_missing_file_is_named(tmp_path):
    _fixture(tmp_path / "d")
    os.remove(tmp_path / "d" / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz not found"):
        mnist.load_mnist_arrays(str(tmp_path / "d"), split="train", reader="idx")
    # tfds builds both splits, so it needs all four files even for "test".
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz not found"):
        mnist.load_mnist_arrays(str(tmp_path / "d"), str(tmp_path / "p"), "test")


def test_idx_reader_returns_what_was_written(tmp_path):
    written = _fixture(tmp_path / "d")
    for split in mnist.SPLITS:
        x, y = mnist.load_mnist_arrays(
            str(tmp_path / "d"), split=split, name="fashion_mnist"
        )
        images, labels = written[split]
        assert x.dtype == np.float32 and x.shape == (len(images), 28, 28, 1)
        assert y.dtype == np.int64
        np.testing.assert_allclose(x[..., 0] * 255, images, atol=1e-4)
        np.testing.assert_array_equal(y, labels)
    ds = mnist.load_mnist(str(tmp_path / "d"), split="test", reader="idx")
    assert ds.element_spec[0].shape == (28, 28, 1)
    image, label = next(iter(ds))
    np.testing.assert_allclose(
        image.numpy()[..., 0] * 255, written["test"][0][0], atol=1e-4
    )
    assert label.dtype.name == "int64" and int(label) == written["test"][1][0]


def test_truncated_and_corrupt_files_fail_in_one_line(tmp_path):
    _fixture(tmp_path / "d")
    images_file = tmp_path / "d" / "t10k-images-idx3-ubyte.gz"
    images = np.zeros((3, 28, 28), np.uint8)
    _write_idx(images_file, 2051, images, truncate=10)
    with pytest.raises(DatasetError, match="truncated") as e:
        mnist.load_mnist_arrays(str(tmp_path / "d"), split="test", reader="idx")
    assert "\n" not in str(e.value) and "t10k-images-idx3-ubyte.gz" in str(e.value)
    images_file.write_bytes(gzip.compress(b"0123456789abcdef")[:-5])
    with pytest.raises(DatasetError, match="not a readable gzip"):
        mnist.load_mnist_arrays(str(tmp_path / "d"), split="test", reader="idx")
    _write_idx(images_file, 2049, images)
    with pytest.raises(DatasetError, match="magic number"):
        mnist.load_mnist_arrays(str(tmp_path / "d"), split="test", reader="idx")
    # tfds rejects files whose checksum differs from the registered one.
    with pytest.raises(DatasetError, match="checksum") as e:
        mnist.load_mnist_arrays(str(tmp_path / "d"), str(tmp_path / "p"), "test")
    assert "\n" not in str(e.value)
    assert not [f for f in os.listdir(tmp_path / "p") if f.startswith(".tmp")]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        mnist.load_mnist("x", None, "train", name="kmnist")
    with pytest.raises(ValueError, match="unknown MNIST split"):
        mnist.load_mnist("x", None, "validation")
    with pytest.raises(ValueError, match="prepared_dir"):
        mnist.load_mnist("x", None, "train", reader="tfds")


@pytest.mark.skipif(
    not _has_files(REAL), reason="real MNIST not available (set REPRO_DATA_DIR)"
)
def test_real_mnist_through_tfds(tmp_path_factory):
    cache = os.environ.get("REPRO_CACHE_DIR")
    prepared = (
        os.path.join(cache, "tfds") if cache else str(tmp_path_factory.mktemp("tfds"))
    )
    sizes = {}
    for split in mnist.SPLITS:
        x, y = mnist.load_mnist_arrays(REAL, prepared, split)
        sizes[split] = len(x)
        assert x.shape == (len(y), 28, 28, 1) and x.dtype == np.float32
        assert y.dtype == np.int64 and set(np.unique(y).tolist()) == set(range(10))
        assert x.min() == 0.0 and x.max() == 1.0
        assert 0.1 < x.mean() < 0.15  # MNIST's mean intensity is about 0.13
    assert sizes == mnist.NUM_EXAMPLES
    assert not [f for f in os.listdir(prepared) if f.startswith(".tmp")]
    # Same examples as the idx reader, in another order.
    ix, iy = mnist.load_mnist_arrays(REAL, split="test", reader="idx")

    def rows(images, labels):
        keys = [
            im.tobytes() + bytes([lab])
            for im, lab in zip(
                (images * 255).round().astype(np.uint8), labels, strict=True
            )
        ]
        return sorted(keys)

    assert rows(x, y) == rows(ix, iy)
    image, label = next(iter(mnist.load_mnist(REAL, prepared, "test")))
    assert image.shape == (28, 28, 1) and image.dtype.name == "float32"
    assert label.dtype.name == "int64"


@pytest.mark.skipif(
    not _has_files(REAL_FASHION),
    reason="real Fashion-MNIST not available (set REPRO_DATA_DIR)",
)
def test_real_fashion_mnist_through_idx_reader():
    for split in mnist.SPLITS:
        x, y = mnist.load_mnist_arrays(REAL_FASHION, split=split, name="fashion_mnist")
        assert x.shape == (mnist.NUM_EXAMPLES[split], 28, 28, 1)
        assert np.bincount(y).tolist() == [mnist.NUM_EXAMPLES[split] // 10] * 10
        assert x.min() == 0.0 and x.max() == 1.0
