"""CIFAR-10 from the JPEG tar: decoding, label order, subsets, cache, errors."""

import io
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from common.data import cifar10
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
REAL = os.path.join(DATA_DIR, "cifar10")

PER_CLASS = {"train": 3, "test": 2}


def _jpeg(rng, size=32, mode="RGB"):
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
        buf, format="JPEG", quality=90
    )
    return buf.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _fixture(
    folder,
    per_class=None,
    classes=cifar10.CLASS_NAMES,
    splits=("train", "test"),
    replace=None,
):
    """Writes a tiny tar; returns {member name: JPEG bytes}.

    Members are added in a scrambled order so the loader must sort them itself.
    `replace` maps member names to bytes written instead of a valid JPEG.
    """
    per_class = per_class or PER_CLASS
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    raw = {
        f"{split}/{c}/{i:04d}.jpg": _jpeg(rng)
        for split in splits
        for c in classes
        for i in range(per_class[split])
    }
    raw.update(replace or {})
    with tarfile.open(os.path.join(folder, cifar10.TAR_NAME), "w") as tar:
        for directory in sorted({n.rsplit("/", 1)[0] for n in raw}):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        _add(tar, "README.txt", b"not an image")
        for name in sorted(raw, reverse=True):
            _add(tar, name, raw[name])
    return raw


def _pil(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_decodes_every_image_in_standard_label_order(tmp_path):
    raw = _fixture(tmp_path / "c")
    data = cifar10.load_cifar10(str(tmp_path / "c"), expected_per_class=PER_CLASS)
    assert data.class_names == cifar10.CLASS_NAMES
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
    for split, images, labels in (
        ("train", data.train_images, data.train_labels),
        ("test", data.test_images, data.test_labels),
    ):
        n = PER_CLASS[split]
        assert images.shape == (10 * n, 32, 32, 3) and images.dtype == np.uint8
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, np.repeat(np.arange(10), n))
        for label, name in enumerate(cifar10.CLASS_NAMES):
            for i in range(n):
                np.testing.assert_array_equal(
                    images[label * n + i], _pil(raw[f"{split}/{name}/{i:04d}.jpg"])
                )


def test_grayscale_jpeg_is_converted_to_rgb(tmp_path):
    gray = _jpeg(np.random.default_rng(1), mode="L")
    _fixture(tmp_path / "c", replace={"train/cat/0001.jpg": gray})
    data = cifar10.load_cifar10(str(tmp_path / "c"), expected_per_class=PER_CLASS)
    image = data.train_images[3 * 3 + 1]
    np.testing.assert_array_equal(image, _pil(gray))
    assert (image[..., 0] == image[..., 2]).all()


def test_max_per_class_takes_the_first_files_and_matches_the_cache(tmp_path):
    _fixture(tmp_path / "c")
    folder, cache = str(tmp_path / "c"), str(tmp_path / "cache")
    small = cifar10.load_cifar10(
        folder, cache, max_per_class=2, expected_per_class=PER_CLASS
    )
    assert not os.path.exists(cache)  # Subsets are not cached.
    assert len(small.train_images) == 20 and len(small.test_images) == 20
    full = cifar10.load_cifar10(folder, cache, expected_per_class=None)
    np.testing.assert_array_equal(small.train_images[:2], full.train_images[:2])
    np.testing.assert_array_equal(small.train_labels, np.repeat(np.arange(10), 2))
    # Sliced from the cache: identical to decoding the subset.
    from_cache = cifar10.load_cifar10(
        folder, cache, max_per_class=2, expected_per_class=PER_CLASS
    )
    for a, b in zip(small, from_cache, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="max_per_class"):
        cifar10.load_cifar10(folder, cache, max_per_class=0)


def test_cache_is_written_once_atomically_and_reused(tmp_path):
    _fixture(tmp_path / "c")
    folder, cache = str(tmp_path / "c"), tmp_path / "cache"
    first = cifar10.load_cifar10(folder, str(cache), expected_per_class=PER_CLASS)
    assert os.listdir(cache) == [cifar10.CACHE_NAME]
    os.remove(tmp_path / "c" / cifar10.TAR_NAME)
    again = cifar10.load_cifar10(folder, str(cache), expected_per_class=PER_CLASS)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # An unreadable cache is rebuilt from the tar.
    (cache / cifar10.CACHE_NAME).write_bytes(b"garbage")
    _fixture(tmp_path / "c")
    rebuilt = cifar10.load_cifar10(folder, str(cache), expected_per_class=PER_CLASS)
    np.testing.assert_array_equal(rebuilt.test_images, first.test_images)
    assert os.listdir(cache) == [cifar10.CACHE_NAME]


def test_missing_and_corrupt_tars_fail_in_one_line(tmp_path):
    cache = tmp_path / "cache"
    missing = str(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="--data_dir") as e:
        cifar10.load_cifar10(missing, str(cache))
    assert f"{cifar10.TAR_NAME} not found in {missing}" in str(e.value)
    assert "\n" not in str(e.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / cifar10.TAR_NAME).write_bytes(b"not a tar" * 100)
    with pytest.raises(DatasetError, match="not a readable tar"):
        cifar10.load_cifar10(str(bad), str(cache))
    _fixture(tmp_path / "cut")
    path = tmp_path / "cut" / cifar10.TAR_NAME
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DatasetError, match="not a readable tar|truncated"):
        cifar10.load_cifar10(str(tmp_path / "cut"), str(cache))
    assert not cache.exists()


def test_layout_and_content_errors_name_the_problem(tmp_path):
    _fixture(tmp_path / "train_only", splits=("train",))
    with pytest.raises(DatasetError, match="split test/ not found"):
        cifar10.load_cifar10(str(tmp_path / "train_only"))
    _fixture(tmp_path / "nine", classes=cifar10.CLASS_NAMES[:9] + ("lorry",))
    with pytest.raises(
        DatasetError,
        match=r"missing \['truck'\] and unexpected "
        r"\['lorry'\]",
    ):
        cifar10.load_cifar10(str(tmp_path / "nine"))
    _fixture(tmp_path / "corrupt", replace={"test/dog/0001.jpg": b"\xff\xd8junk"})
    with pytest.raises(DatasetError, match="corrupt image test/dog/0001.jpg"):
        cifar10.load_cifar10(str(tmp_path / "corrupt"))
    big = _jpeg(np.random.default_rng(2), size=33)
    _fixture(tmp_path / "big", replace={"train/frog/0000.jpg": big})
    with pytest.raises(DatasetError, match=r"shape \(33, 33, 3\)"):
        cifar10.load_cifar10(str(tmp_path / "big"))
    _fixture(tmp_path / "small")
    with pytest.raises(
        DatasetError, match="train/airplane .* has 3 images, expected 5000"
    ):
        cifar10.load_cifar10(str(tmp_path / "small"), str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()  # A refused dataset is not cached.


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL, cifar10.TAR_NAME)),
    reason="real CIFAR-10 not available (set REPRO_DATA_DIR)",
)
def test_real_cifar10_subset():
    data = cifar10.load_cifar10(REAL, max_per_class=4)
    assert data.class_names == cifar10.CLASS_NAMES
    assert data.train_images.shape == (40, 32, 32, 3)
    assert data.test_images.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(data.train_labels, np.repeat(np.arange(10), 4))
    np.testing.assert_array_equal(data.test_labels, np.repeat(np.arange(10), 4))
    # Natural photos: neither blank nor noise-like saturated.
    assert 60 < data.train_images.mean() < 190
    assert data.train_images.std() > 30
    assert not np.array_equal(data.train_images[0], data.train_images[4])
