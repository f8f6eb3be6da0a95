"""Omniglot loading: preprocessing against PIL, cache, errors, the real splits."""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from common.data import omniglot
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
REAL = os.path.join(DATA_DIR, "omniglot")


def _png(rng, mode="L"):
    img = (rng.random((105, 105)) > 0.1).astype(np.uint8) * 255  # white, black ink
    buf = io.BytesIO()
    Image.fromarray(img).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def _fixture(
    folder,
    chars=(("images_background", "Alpha", 2), ("images_evaluation", "Beta", 1)),
    drawings=20,
    mode="L",
):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    raw = {}
    for zip_name in omniglot.ZIPS:
        with zipfile.ZipFile(os.path.join(folder, zip_name), "w") as z:
            for top, alphabet, n in chars:
                if not zip_name.startswith(top):
                    continue
                for c in range(1, n + 1):
                    for d in range(1, drawings + 1):
                        name = f"{top}/{alphabet}/character{c:02d}/{c:04d}_{d:02d}.png"
                        raw[name] = _png(rng, mode)
                        z.writestr(name, raw[name])
    return raw


def test_official_pixels_of_mode_1_pngs_are_binary_nearest_neighbour(tmp_path):
    # The official Omniglot PNGs are 1-bit; the official resize script asks for
    # LANCZOS, which Pillow ignores for mode '1' (nearest neighbour), so the images
    # stay binary. Reference: index arithmetic of nearest-neighbour sampling at
    # pixel centres, in NumPy, not Pillow.
    raw = _fixture(tmp_path / "omni", mode="1")
    name = "images_background/Alpha/character02/0002_07.png"
    with Image.open(io.BytesIO(raw[name])) as im:
        assert im.mode == "1"
        stored = np.asarray(im.convert("L"))
    data = omniglot.load_omniglot(str(tmp_path / "omni"), None, expected_characters=3)
    assert set(np.unique(data.images).tolist()) == {0, 255}
    centres = np.floor((np.arange(28) + 0.5) * 105 / 28).astype(int)
    expected = 255 - stored[np.ix_(centres, centres)]
    np.testing.assert_array_equal(data.images[1, 6], expected)
    # The option keeps this project's earlier grey-level preprocessing.
    grey = omniglot.load_omniglot(
        str(tmp_path / "omni"), None, expected_characters=3, pixels="antialiased"
    )
    assert len(np.unique(grey.images)) > 2
    with pytest.raises(ValueError, match="--omniglot_pixels"):
        omniglot.load_omniglot(str(tmp_path / "omni"), None, pixels="grey")


def test_preprocessing_matches_pil_lanczos_inverted(tmp_path):
    raw = _fixture(tmp_path / "omni")
    data = omniglot.load_omniglot(
        str(tmp_path / "omni"), None, expected_characters=3, pixels="antialiased"
    )
    assert data.images.shape == (3, 20, 28, 28) and data.images.dtype == np.uint8
    assert data.names[0] == "images_background/Alpha/character01"
    name = "images_background/Alpha/character01/0001_03.png"
    ref = Image.open(io.BytesIO(raw[name])).convert("L").resize((28, 28), Image.LANCZOS)
    np.testing.assert_array_equal(data.images[0, 2], 255 - np.asarray(ref))
    assert data.is_background.tolist() == [True, True, False]


def test_cache_is_written_once_and_reused(tmp_path):
    _fixture(tmp_path / "omni")
    first = omniglot.load_omniglot(
        str(tmp_path / "omni"), str(tmp_path / "cache"), expected_characters=3
    )
    assert os.listdir(tmp_path / "cache") == ["omniglot_28_binary.npz"]
    for z in omniglot.ZIPS:
        os.remove(tmp_path / "omni" / z)
    again = omniglot.load_omniglot(
        str(tmp_path / "omni"), str(tmp_path / "cache"), expected_characters=3
    )
    np.testing.assert_array_equal(first.images, again.images)
    assert first.names == again.names


def test_missing_empty_and_corrupt_data_fail_in_one_line(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="--data_dir") as e:
        omniglot.load_omniglot(str(tmp_path / "nothing"), str(cache))
    assert "\n" not in str(e.value)
    _fixture(tmp_path / "short", drawings=3)
    with pytest.raises(DatasetError, match="3 drawings"):
        omniglot.load_omniglot(str(tmp_path / "short"), str(cache))
    bad = tmp_path / "bad"
    bad.mkdir()
    for z in omniglot.ZIPS:
        (bad / z).write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        omniglot.load_omniglot(str(bad), str(cache))
    _fixture(tmp_path / "ok")
    with pytest.raises(DatasetError, match="expected 1623"):
        omniglot.load_omniglot(str(tmp_path / "ok"), str(cache))
    assert not cache.exists() or not [
        f for f in os.listdir(cache) if f.startswith(".tmp")
    ]


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL, omniglot.ZIPS[0])),
    reason="real Omniglot not available (set REPRO_DATA_DIR)",
)
def test_real_omniglot_splits(tmp_path_factory):
    cache = os.environ.get("REPRO_CACHE_DIR") or str(tmp_path_factory.mktemp("c"))
    data = omniglot.load_omniglot(REAL, cache)
    assert data.images.shape == (1623, 20, 28, 28)
    assert set(np.unique(data.images[:50]).tolist()) == {0, 255}  # official: binary
    assert int(data.is_background.sum()) == 964
    # Strokes are 1 (255): most pixels are background.
    assert 0.02 < data.images.mean() / 255 < 0.2
    split = omniglot.split_characters(data)
    assert {k: len(v) for k, v in split.items()} == {
        "train": 1100,
        "val": 100,
        "test": 423,
    }
    every = np.concatenate(list(split.values()))
    assert len(set(every.tolist())) == 1623  # disjoint and covering
    names = {k: {data.names[i] for i in v} for k, v in split.items()}
    assert not names["train"] & names["test"] and not names["val"] & names["test"]
    be = omniglot.split_characters(data, "background_evaluation")
    assert len(be["test"]) == 659 and len(be["train"]) + len(be["val"]) == 964
    assert not set(be["train"]) & set(be["val"])
