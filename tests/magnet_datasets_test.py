"""Magnet datasets: coarse groupings, fixture loading, the offline tfds path."""

import dataclasses
import gzip
import io
import os
import tarfile
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from common.data import cifar10, mnist, omniglot
from common.data.errors import DatasetError
from magnet import datasets

DATA_DIR = os.environ.get(
    "REPRO_DATA_DIR",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "..",
        "shared",
        "data",
    ),
)


# --- fixtures ---------------------------------------------------------------------


def _cifar10_fixture(data_dir, per_class=3):
    """A tar with `per_class` random 32x32 JPEGs per class and split."""
    rng = np.random.default_rng(0)
    folder = os.path.join(data_dir, "cifar10")
    os.makedirs(folder, exist_ok=True)
    with tarfile.open(os.path.join(folder, cifar10.TAR_NAME), "w") as tar:
        for split in cifar10.SPLITS:
            for name in cifar10.CLASS_NAMES:
                for i in range(per_class):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(
                        buf, format="JPEG"
                    )
                    info = tarfile.TarInfo(f"{split}/{name}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)


def _fashion_fixture(data_dir, counts=(30, 20)):
    """Tiny idx files; returns {split: (uint8 images, labels)} as written."""
    rng = np.random.default_rng(1)
    folder = os.path.join(data_dir, "fashion_mnist")
    os.makedirs(folder, exist_ok=True)
    written = {}
    for split, n in zip(mnist.SPLITS, counts, strict=True):
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for file_name, magic, array in zip(
            mnist.FILES[split], (2051, 2049), (images, labels), strict=True
        ):
            header = np.array([magic, n, *array.shape[1:]], ">i4").tobytes()
            with gzip.open(os.path.join(folder, file_name), "wb") as f:
                f.write(header + array.tobytes())
        written[split] = images, labels
    return written


def _omniglot_fixture(
    data_dir,
    chars=(("images_background", "Alpha", 2), ("images_evaluation", "Beta", 1)),
):
    """Both official zips with random 105x105 drawings, 20 drawers a character."""
    rng = np.random.default_rng(2)
    folder = os.path.join(data_dir, "omniglot")
    os.makedirs(folder, exist_ok=True)
    for zip_name in omniglot.ZIPS:
        with zipfile.ZipFile(os.path.join(folder, zip_name), "w") as z:
            for top, alphabet, n in chars:
                if not zip_name.startswith(top):
                    continue
                for c in range(1, n + 1):
                    for d in range(1, omniglot.DRAWERS + 1):
                        ink = (rng.random((105, 105)) > 0.1).astype(np.uint8) * 255
                        buf = io.BytesIO()
                        Image.fromarray(ink).save(buf, format="PNG")
                        z.writestr(
                            f"{top}/{alphabet}/character{c:02d}/{c:04d}_{d:02d}.png",
                            buf.getvalue(),
                        )


def _examples(sizes, labels, channels=3, coarse=None, seed=3):
    """A tf.data dataset of {"image", "label"[, "species"]} of various sizes."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (h, w, channels), np.uint8) for h, w in sizes]

    def generate():
        for i, image in enumerate(images):
            example = {"image": image, "label": np.int64(labels[i])}
            if coarse is not None:
                example["species"] = np.int64(coarse[i])
            yield example

    signature = {
        "image": tf.TensorSpec((None, None, channels), tf.uint8),
        "label": tf.TensorSpec((), tf.int64),
    }
    if coarse is not None:
        signature["species"] = tf.TensorSpec((), tf.int64)
    return tf.data.Dataset.from_generator(generate, output_signature=signature), images


def _check(data, name, n_train, n_test, shape):
    assert data.name == name
    assert data.train_images.shape == (n_train, *shape)
    assert data.test_images.shape == (n_test, *shape)
    assert data.train_images.dtype == data.test_images.dtype == np.uint8
    for labels in (
        data.train_labels,
        data.test_labels,
        data.coarse_train_labels,
        data.coarse_test_labels,
    ):
        assert labels is None or labels.dtype == np.int64
    assert data.image_shape == shape


# --- coarse groupings and the container ------------------------------------------


@pytest.mark.parametrize(
    "name,classes",
    [
        ("cifar10", cifar10.CLASS_NAMES),
        ("fashion_mnist", datasets.FASHION_MNIST_CLASSES),
    ],
)
def test_every_fine_class_is_in_exactly_one_coarse_group(name, classes):
    groups = datasets.COARSE_GROUPS[name]
    members = [m for _, ms in groups for m in ms]
    assert sorted(members) == sorted(classes)
    mapping, coarse_names = datasets.coarse_mapping(classes, groups)
    assert mapping.dtype == np.int64 and mapping.shape == (10,)
    assert set(mapping.tolist()) == set(range(len(coarse_names)))
    for coarse, (coarse_name, ms) in enumerate(groups):
        assert coarse_names[coarse] == coarse_name
        assert {classes[i] for i in np.flatnonzero(mapping == coarse)} == set(ms)


def test_documented_groupings():
    mapping, names = datasets.coarse_mapping(
        cifar10.CLASS_NAMES, datasets.COARSE_GROUPS["cifar10"]
    )
    assert names == ("vehicle", "animal")
    np.testing.assert_array_equal(mapping, [0, 0, 1, 1, 1, 1, 1, 1, 0, 0])
    mapping, names = datasets.coarse_mapping(
        datasets.FASHION_MNIST_CLASSES, datasets.COARSE_GROUPS["fashion_mnist"]
    )
    assert names == ("clothing", "footwear", "bag")
    np.testing.assert_array_equal(mapping, [0, 0, 0, 0, 0, 1, 0, 1, 2, 1])


def test_coarse_mapping_rejects_bad_groupings():
    classes = ("a", "b", "c")
    with pytest.raises(ValueError, match="'c' is in no coarse group"):
        datasets.coarse_mapping(classes, (("x", ("a", "b")),))
    with pytest.raises(ValueError, match="'a' is in two"):
        datasets.coarse_mapping(classes, (("x", ("a", "b")), ("y", ("a", "c"))))
    with pytest.raises(ValueError, match="'d' is not a class"):
        datasets.coarse_mapping(classes, (("x", ("a", "b", "c", "d")),))


def test_labelled_images_validates_and_is_frozen():
    images = np.zeros((4, 2, 2, 1), np.uint8)
    fine = np.array([0, 1, 2, 0], np.int64)
    data = datasets.LabelledImages(
        "toy",
        images,
        fine,
        images[:2],
        fine[:2],
        ("a", "b", "c"),
        np.array([0, 1, 1, 0], np.int64),
        np.array([0, 1], np.int64),
        ("x", "y"),
    )
    np.testing.assert_array_equal(data.fine_to_coarse(), [0, 1, 1])
    assert data.num_classes == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"
    with pytest.raises(ValueError, match="'a' occurs with two coarse labels"):
        dataclasses.replace(data, coarse_test_labels=np.array([1, 1], np.int64))
    with pytest.raises(ValueError, match="or none"):
        dataclasses.replace(data, coarse_names=None)
    with pytest.raises(ValueError, match="uint8 NHWC"):
        dataclasses.replace(data, train_images=images.astype(np.float32))
    with pytest.raises(ValueError, match="int64"):
        dataclasses.replace(data, train_labels=fine.astype(np.int32))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        dataclasses.replace(data, test_labels=np.array([0, 3], np.int64))
    plain = dataclasses.replace(
        data, coarse_train_labels=None, coarse_test_labels=None, coarse_names=None
    )
    assert plain.fine_to_coarse() is None


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'"):
        datasets.load_dataset("cifar100", str(tmp_path), None)
    with pytest.raises(ValueError, match="max_per_class"):
        datasets.load_dataset("cifar10", str(tmp_path), None, max_per_class=0)
    with pytest.raises(ValueError, match="image_size 64"):
        datasets.load_dataset("cifar10", str(tmp_path), None, image_size=64)


# --- fixture loading --------------------------------------------------------------


def test_cifar10_fixture(tmp_path):
    _cifar10_fixture(tmp_path / "data")
    data = datasets.load_dataset(
        "cifar10", str(tmp_path / "data"), str(tmp_path / "cache"), strict=False
    )
    _check(data, "cifar10", 30, 30, (32, 32, 3))
    assert data.class_names == cifar10.CLASS_NAMES
    assert data.coarse_names == ("vehicle", "animal")
    vehicles = {"airplane", "automobile", "ship", "truck"}
    for labels, coarse in (
        (data.train_labels, data.coarse_train_labels),
        (data.test_labels, data.coarse_test_labels),
    ):
        expected = [0 if data.class_names[c] in vehicles else 1 for c in labels]
        np.testing.assert_array_equal(coarse, expected)
    assert os.listdir(tmp_path / "cache") == [cifar10.CACHE_NAME]
    small = datasets.load_dataset(
        "cifar10", str(tmp_path / "data"), str(tmp_path / "cache"), 1, strict=False
    )
    _check(small, "cifar10", 10, 10, (32, 32, 3))
    np.testing.assert_array_equal(small.train_images[1], data.train_images[3])
    with pytest.raises(DatasetError, match="expected 5000"):
        datasets.load_dataset("cifar10", str(tmp_path / "data"), None)


def test_fashion_mnist_fixture_keeps_exact_pixels(tmp_path):
    written = _fashion_fixture(tmp_path / "data")
    data = datasets.load_dataset(
        "fashion_mnist", str(tmp_path / "data"), None, strict=False
    )
    _check(data, "fashion_mnist", 30, 20, (28, 28, 1))
    np.testing.assert_array_equal(data.train_images[..., 0], written["train"][0])
    np.testing.assert_array_equal(data.test_labels, written["test"][1])
    np.testing.assert_array_equal(
        data.coarse_train_labels, data.fine_to_coarse()[data.train_labels]
    )
    assert data.coarse_names == ("clothing", "footwear", "bag")
    small = datasets.load_dataset(
        "fashion_mnist", str(tmp_path / "data"), None, 2, strict=False
    )
    assert np.bincount(small.train_labels).tolist() == [2] * 10
    with pytest.raises(DatasetError, match="expected 60000"):
        datasets.load_dataset("fashion_mnist", str(tmp_path / "data"), None)


def test_omniglot_alphabets_fixture_splits_drawers(tmp_path):
    _omniglot_fixture(tmp_path / "data")
    cache = str(tmp_path / "cache")
    data = datasets.load_dataset(
        "omniglot_alphabets", str(tmp_path / "data"), cache, strict=False
    )
    _check(data, "omniglot_alphabets", 3 * 15, 3 * 5, (28, 28, 1))
    assert data.class_names == (
        "images_background/Alpha/character01",
        "images_background/Alpha/character02",
        "images_evaluation/Beta/character01",
    )
    assert data.coarse_names == ("Alpha", "Beta")
    np.testing.assert_array_equal(data.fine_to_coarse(), [0, 0, 1])
    np.testing.assert_array_equal(data.train_labels, np.repeat([0, 1, 2], 15))
    np.testing.assert_array_equal(data.test_labels, np.repeat([0, 1, 2], 5))
    # Drawers 1-15 train, 16-20 test, pixels as common.data.omniglot makes them.
    raw = omniglot.load_omniglot(
        str(tmp_path / "data" / "omniglot"),
        cache,
        expected_characters=None,
        pixels="antialiased",
    )
    np.testing.assert_array_equal(data.train_images[15 + 14, ..., 0], raw.images[1, 14])
    np.testing.assert_array_equal(data.test_images[5 * 2, ..., 0], raw.images[2, 15])
    small = datasets.load_dataset(
        "omniglot_alphabets", str(tmp_path / "data"), cache, 2, strict=False
    )
    _check(small, "omniglot_alphabets", 6, 6, (28, 28, 1))
    np.testing.assert_array_equal(small.test_images[2, ..., 0], raw.images[1, 15])
    with pytest.raises(DatasetError, match="expected 1623"):
        datasets.load_dataset("omniglot_alphabets", str(tmp_path / "data"), cache)


# --- the fine-grained (tfds) path -------------------------------------------------


def test_examples_to_arrays_resizes_any_image():
    sizes = [(50, 40), (17, 90), (8, 8), (64, 64)]
    for channels in (1, 3, 4):
        ds, images = _examples(sizes, [0, 1, 0, 2], channels=channels)
        x, y, coarse = datasets.examples_to_arrays(ds, 16)
        assert x.shape == (4, 16, 16, 3) and x.dtype == np.uint8
        assert y.dtype == np.int64 and y.tolist() == [0, 1, 0, 2]
        assert coarse is None
        rgb = np.repeat(images[1], 3, -1) if channels == 1 else images[1][..., :3]
        ref = tf.image.resize(rgb, (16, 16), antialias=True).numpy()
        np.testing.assert_array_equal(x[1], np.clip(np.round(ref), 0, 255))
    flat = {"image": np.full((30, 20, 3), 77, np.uint8), "label": np.int64(5)}
    x, _, _ = datasets.examples_to_arrays(tf.data.Dataset.from_tensors(flat), 8)
    assert (x == 77).all()


def test_examples_to_arrays_limits_per_class_and_stops_early():
    labels = [0, 1, 1, 0, 1, 0, 2, 2]
    ds, images = _examples([(10, 12)] * 8, labels, coarse=[1, 0, 0, 1, 0, 1, 0, 0])
    x, y, coarse = datasets.examples_to_arrays(
        ds, 4, max_per_class=2, coarse_key="species"
    )
    assert y.tolist() == [0, 1, 1, 0, 2, 2]
    assert coarse.tolist() == [1, 0, 0, 1, 0, 0]
    # An endless dataset still ends once every class is full.
    x, y, _ = datasets.examples_to_arrays(
        ds.repeat(), 4, max_per_class=3, num_classes=3
    )
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    empty, labels_, _ = datasets.examples_to_arrays(ds.take(0), 4)
    assert empty.shape == (0, 4, 4, 3) and labels_.shape == (0,)


def _no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


@pytest.mark.parametrize("name", list(datasets.FINE_GRAINED))
def test_missing_fine_grained_data_explains_how_to_provide_it(
    tmp_path, monkeypatch, name
):
    _no_download(monkeypatch)
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    with pytest.raises(DatasetError) as e:
        datasets.load_dataset(name, str(data_dir), str(cache))
    message = str(e.value)
    assert "\n" not in message
    spec = datasets.FINE_GRAINED[name]
    assert f"{spec.title} is not prepared in {data_dir / 'tensorflow_datasets'}" in (
        message
    )
    archives = sorted(i.filename for i in tfds.builder_cls(name).url_infos.values())
    assert archives and f"not found in {data_dir / name}" in message
    assert ", ".join(archives) in message and spec.homepage in message
    assert "manual_dir" in message and "download_and_prepare" in message
    assert os.listdir(data_dir) == [] and not cache.exists()


def test_archives_are_prepared_offline_from_the_manual_dir(tmp_path, monkeypatch):
    calls = []

    def record(self, download_dir=None, download_config=None, **kwargs):
        calls.append((self.name, download_dir, download_config))
        raise RuntimeError("stop after recording")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", record)
    manual = tmp_path / "data" / "stanford_dogs"
    manual.mkdir(parents=True)
    for archive in ("images.tar", "lists.tar", "annotation.tar"):
        (manual / archive).write_bytes(b"")
    with pytest.raises(DatasetError, match="no cache_dir"):
        datasets.load_dataset("stanford_dogs", str(tmp_path / "data"), None)
    with pytest.raises(RuntimeError, match="stop after recording"):
        datasets.load_dataset(
            "stanford_dogs", str(tmp_path / "data"), str(tmp_path / "cache")
        )
    [(name, download_dir, config)] = calls
    assert name == "stanford_dogs"
    assert str(config.manual_dir) == str(manual)
    prepared = tmp_path / "cache" / "tensorflow_datasets"
    assert os.path.dirname(download_dir) == str(prepared)
    assert not os.path.exists(download_dir)  # The temporary downloads are gone.


def _fake_pets(monkeypatch, species_of_breed, requested):
    """Pretends oxford_iiit_pet is prepared, with small synthetic splits."""

    def as_dataset(self, split, **kwargs):
        requested.append(split)
        labels = [0, 1, 2, 1, 0, 36] if split == "train" else [2, 36, 0]
        ds, _ = _examples(
            [(40, 30)] * len(labels),
            labels,
            coarse=[species_of_breed(b) for b in labels],
        )
        return ds

    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "as_dataset", as_dataset)


def test_fine_grained_loading_with_coarse_species_and_cache(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    requested = []
    # tfds names cat breeds with a capital letter and dog breeds in lower case.
    breeds = tfds.builder_cls("oxford_iiit_pet")().info.features["label"].names
    _fake_pets(monkeypatch, lambda b: 0 if breeds[b][0].isupper() else 1, requested)
    cache = tmp_path / "cache"
    data = datasets.load_dataset(
        "oxford_iiit_pet", str(tmp_path), str(cache), image_size=12
    )
    assert requested == ["train", "test"]
    _check(data, "oxford_iiit_pet", 6, 3, (12, 12, 3))
    assert len(data.class_names) == 37 and data.class_names[0] == "Abyssinian"
    assert data.coarse_names == ("Cat", "Dog")
    assert data.train_labels.tolist() == [0, 1, 2, 1, 0, 36]
    assert data.coarse_train_labels.tolist() == [0, 1, 1, 1, 0, 1]
    assert os.listdir(cache) == ["magnet_oxford_iiit_pet_12.npz"]
    # Later loads read the cache: tfds is not asked again.
    monkeypatch.undo()
    _no_download(monkeypatch)
    again = datasets.load_dataset(
        "oxford_iiit_pet", str(tmp_path), str(cache), image_size=12
    )
    np.testing.assert_array_equal(again.train_images, data.train_images)
    assert again.coarse_names == data.coarse_names
    assert again.class_names == data.class_names
    small = datasets.load_dataset(
        "oxford_iiit_pet", str(tmp_path), str(cache), 1, image_size=12
    )
    assert small.train_labels.tolist() == [0, 1, 2, 36]
    assert small.coarse_train_labels.tolist() == [0, 1, 1, 1]


def test_inconsistent_species_is_a_dataset_error(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    position = iter(range(100))
    # Breed 0 comes first and fifth in the training split: species 0, then 1.
    _fake_pets(monkeypatch, lambda b: int(next(position) >= 3), [])
    with pytest.raises(DatasetError, match="inconsistent .* two coarse labels"):
        datasets.load_dataset("oxford_iiit_pet", str(tmp_path), None, image_size=8)


# --- real data --------------------------------------------------------------------


def _real(folder, file_name):
    return pytest.mark.skipif(
        not os.path.exists(os.path.join(DATA_DIR, folder, file_name)),
        reason=f"real {folder} not available (set REPRO_DATA_DIR)",
    )


@_real("cifar10", cifar10.TAR_NAME)
def test_real_cifar10_subset():
    data = datasets.load_dataset("cifar10", DATA_DIR, None, max_per_class=5)
    _check(data, "cifar10", 50, 50, (32, 32, 3))
    assert data.class_names == cifar10.CLASS_NAMES
    assert np.bincount(data.coarse_train_labels).tolist() == [20, 30]
    assert 60 < data.train_images.mean() < 190


@_real("fashion_mnist", mnist.FILES["train"][0])
def test_real_fashion_mnist():
    data = datasets.load_dataset("fashion_mnist", DATA_DIR, None)
    _check(data, "fashion_mnist", 60000, 10000, (28, 28, 1))
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.coarse_test_labels).tolist() == [6000, 3000, 1000]


@_real("omniglot", omniglot.ZIPS[0])
def test_real_omniglot_alphabets(tmp_path_factory):
    cache = os.environ.get("REPRO_CACHE_DIR") or str(tmp_path_factory.mktemp("c"))
    data = datasets.load_dataset("omniglot_alphabets", DATA_DIR, cache)
    _check(data, "omniglot_alphabets", 1623 * 15, 1623 * 5, (28, 28, 1))
    assert len(data.coarse_names) == 50
    assert set(np.unique(data.test_labels).tolist()) == set(range(1623))
    mapping = data.fine_to_coarse()
    assert (mapping >= 0).all() and len(np.unique(mapping)) == 50
    assert 0.02 < data.train_images.mean() / 255 < 0.2
