"""MiniImagenet loader on tiny synthetic fixtures in both layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from common.data import miniimagenet
from common.data.errors import DatasetError

WNIDS = ("n03000003", "n01000001", "n02000002")  # Deliberately not sorted.
NUM_CLASSES = 3
PER_CLASS = 4
SIZE = 8  # Output size for most tests: small keeps them fast.


def _random_image(rng: np.random.Generator, grey: bool = False) -> Image.Image:
    """A 12 (wide) x 10 (high) image of random colours."""
    if grey:
        return Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8), "L")
    return Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8), "RGB")


def _make_csv_root(root, splits=("train", "val", "test"), seed=0) -> str:
    """Writes `<root>/images/*.jpg` and `<root>/<split>.csv`."""
    rng = np.random.default_rng(seed)
    os.makedirs(root / "images")
    for s, split in enumerate(splits):
        rows = []
        for wnid in WNIDS:
            wnid = f"{wnid[:-1]}{s}"  # Disjoint classes across splits.
            for i in range(PER_CLASS):
                filename = f"{wnid}{i + 1:08d}.jpg"
                _random_image(rng, grey=i == 0).save(root / "images" / filename)
                rows.append(f"{filename},{wnid}")
        rows.reverse()  # The loader must not depend on the row order.
        (root / f"{split}.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    return str(root)


def _make_folder_root(root, splits=("train", "val", "test"), seed=0) -> str:
    """Writes `<root>/<split>/<wnid>/*.jpg`."""
    rng = np.random.default_rng(seed)
    for s, split in enumerate(splits):
        for wnid in WNIDS:
            wnid = f"{wnid[:-1]}{s}"
            os.makedirs(root / split / wnid)
            for i in range(PER_CLASS):
                path = root / split / wnid / f"{wnid}_{i:04d}.jpg"
                _random_image(rng, grey=i == 0).save(path)
    return str(root)


MAKERS = {"csv": _make_csv_root, "folder": _make_folder_root}


def _load(root, split="train", **kwargs):
    kwargs.setdefault("image_size", SIZE)
    kwargs.setdefault("expected_classes", NUM_CLASSES)
    kwargs.setdefault("expected_per_class", PER_CLASS)
    return miniimagenet.load_miniimagenet_split(str(root), split, **kwargs)


def _reference(path, size) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.LANCZOS))


def _image_paths(root, layout, split) -> dict[str, list[str]]:
    """The fixture's image paths per wnid, in file name order."""
    root = str(root)
    if layout == "folder":
        split_dir = os.path.join(root, split)
        return {
            w: sorted(
                os.path.join(split_dir, w, f)
                for f in os.listdir(os.path.join(split_dir, w))
            )
            for w in os.listdir(split_dir)
        }
    paths: dict[str, list[str]] = {}
    with open(os.path.join(root, f"{split}.csv")) as f:
        for line in f.read().splitlines()[1:]:
            filename, wnid = line.split(",")
            paths.setdefault(wnid, []).append(os.path.join(root, "images", filename))
    return {w: sorted(p) for w, p in paths.items()}


def _assert_data_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "--data_dir" in message
    assert "\n" not in message
    return message


@pytest.mark.parametrize("layout", ["csv", "folder"])
@pytest.mark.parametrize("size", [SIZE, 84])
def test_loads_both_layouts(tmp_path, layout, size):
    root = MAKERS[layout](tmp_path / "mini")
    for s, split in enumerate(miniimagenet.SPLITS):
        data = _load(root, split, image_size=size)
        assert data.images.dtype == np.uint8
        assert data.images.shape == (NUM_CLASSES, PER_CLASS, size, size, 3)
        expected_names = sorted(f"{w[:-1]}{s}" for w in WNIDS)
        assert data.class_names == expected_names
        paths = _image_paths(root, layout, split)
        for c, wnid in enumerate(data.class_names):
            for i, path in enumerate(paths[wnid]):
                np.testing.assert_array_equal(data.images[c, i], _reference(path, size))
        # Greyscale sources come out as RGB with three equal channels.
        grey = data.images[:, 0].astype(int)
        np.testing.assert_array_equal(grey[..., 0], grey[..., 1])


def test_csv_layout_preferred_when_both_present(tmp_path):
    root = _make_csv_root(tmp_path / "mini", splits=("train",))
    _make_folder_root(tmp_path / "mini", splits=("train", "val"), seed=1)
    data = _load(root, "train")
    csv_paths = _image_paths(root, "csv", "train")
    np.testing.assert_array_equal(
        data.images[1, 2], _reference(csv_paths[data.class_names[1]][2], SIZE)
    )
    val = _load(root, "val")  # No val.csv: falls back to the folder layout.
    folder_paths = _image_paths(root, "folder", "val")
    np.testing.assert_array_equal(
        val.images[0, 0], _reference(folder_paths[val.class_names[0]][0], SIZE)
    )


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_cache_is_written_and_reused(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("val",))
    cache_dir = tmp_path / "cache"
    first = _load(root, "val", cache_dir=str(cache_dir))
    assert os.listdir(cache_dir) == [f"miniimagenet_val_{SIZE}.npz"]
    assert os.path.isfile(miniimagenet.cache_path(str(cache_dir), "val", SIZE))

    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            os.remove(os.path.join(dirpath, filename))
    second = _load(root, "val", cache_dir=str(cache_dir))
    np.testing.assert_array_equal(second.images, first.images)
    assert second.images.dtype == np.uint8
    assert second.class_names == first.class_names
    assert isinstance(second.class_names[0], str)

    # A cache of the wrong shape is reported, not silently used.
    with pytest.raises(DatasetError) as excinfo:
        _load(root, "val", cache_dir=str(cache_dir), expected_per_class=5)
    assert "cache" in _assert_data_error(excinfo)


def test_no_cache_dir_writes_nothing(tmp_path):
    root = _make_folder_root(tmp_path / "mini", splits=("test",))
    before = sorted(os.listdir(tmp_path))
    _load(root, "test")
    assert sorted(os.listdir(tmp_path)) == before


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        _load(tmp_path / "nowhere")
    message = _assert_data_error(excinfo)
    assert "not found under" in message and "train.csv" in message


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_missing_split(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("train",))
    with pytest.raises(DatasetError) as excinfo:
        _load(root, "test")
    assert "test split not found" in _assert_data_error(excinfo)


def test_empty_split_csv(tmp_path):
    root = _make_csv_root(tmp_path / "mini", splits=("train",))
    (tmp_path / "mini" / "train.csv").write_text("filename,label\n")
    with pytest.raises(DatasetError) as excinfo:
        _load(root)
    assert "empty" in _assert_data_error(excinfo)


def test_empty_split_folder(tmp_path):
    os.makedirs(tmp_path / "mini" / "train" / "n01000001")
    with pytest.raises(DatasetError) as excinfo:
        _load(tmp_path / "mini")
    assert "empty" in _assert_data_error(excinfo)


def test_bad_csv_header(tmp_path):
    root = _make_csv_root(tmp_path / "mini", splits=("train",))
    csv_file = tmp_path / "mini" / "train.csv"
    csv_file.write_text(csv_file.read_text().replace("filename,label", "a,b"))
    with pytest.raises(DatasetError) as excinfo:
        _load(root)
    assert "header" in _assert_data_error(excinfo)


def test_csv_row_names_missing_image(tmp_path):
    root = _make_csv_root(tmp_path / "mini", splits=("train",))
    os.remove(_image_paths(root, "csv", "train")[sorted(WNIDS)[0][:-1] + "0"][1])
    with pytest.raises(DatasetError) as excinfo:
        _load(root)
    assert "missing" in _assert_data_error(excinfo)


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_corrupt_image_names_file_and_leaves_no_cache(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("train",))
    bad = _image_paths(root, layout, "train")[sorted(WNIDS)[-1][:-1] + "0"][-1]
    with open(bad, "wb") as f:
        f.write(b"this is not a jpeg" * 10)
    cache_dir = tmp_path / "cache"
    os.makedirs(cache_dir)
    with pytest.raises(DatasetError) as excinfo:
        _load(root, cache_dir=str(cache_dir))
    message = _assert_data_error(excinfo)
    assert bad in message and "corrupt" in message
    assert os.listdir(cache_dir) == []


def test_truncated_image_raises(tmp_path):
    root = _make_folder_root(tmp_path / "mini", splits=("train",))
    bad = _image_paths(root, "folder", "train")[sorted(WNIDS)[0][:-1] + "0"][2]
    with open(bad, "rb") as f:
        head = f.read(200)
    with open(bad, "wb") as f:
        f.write(head)
    with pytest.raises(DatasetError) as excinfo:
        _load(root, cache_dir=str(tmp_path / "cache"))
    assert bad in _assert_data_error(excinfo)
    assert not os.path.exists(tmp_path / "cache") or not os.listdir(tmp_path / "cache")


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_wrong_number_of_classes(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("train",))
    with pytest.raises(DatasetError) as excinfo:
        _load(root, expected_classes=NUM_CLASSES + 1)
    assert "expected 4" in _assert_data_error(excinfo)


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_wrong_images_per_class(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("train",))
    with pytest.raises(DatasetError) as excinfo:
        _load(root, expected_per_class=PER_CLASS + 1)
    assert "images per class" in _assert_data_error(excinfo)


def test_defaults_are_ravi_larochelle(tmp_path):
    root = _make_folder_root(tmp_path / "mini", splits=("val",))
    with pytest.raises(DatasetError) as excinfo:
        miniimagenet.load_miniimagenet_split(root, "val", image_size=SIZE)
    assert "expected 16" in _assert_data_error(excinfo)
    with pytest.raises(DatasetError) as excinfo:
        miniimagenet.load_miniimagenet_split(
            root, "val", image_size=SIZE, expected_classes=NUM_CLASSES
        )
    assert "expected 600" in _assert_data_error(excinfo)


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_uneven_class_sizes(tmp_path, layout):
    root = MAKERS[layout](tmp_path / "mini", splits=("train",))
    if layout == "folder":
        os.remove(_image_paths(root, layout, "train")[WNIDS[0][:-1] + "0"][0])
    else:
        csv_file = tmp_path / "mini" / "train.csv"
        lines = csv_file.read_text().splitlines()
        csv_file.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError) as excinfo:
        _load(root)
    assert "different image counts" in _assert_data_error(excinfo)


def test_unknown_split(tmp_path):
    root = _make_folder_root(tmp_path / "mini", splits=("train",))
    with pytest.raises(DatasetError) as excinfo:
        _load(root, "validation")
    assert "validation" in _assert_data_error(excinfo)


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)
