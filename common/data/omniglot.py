"""Omniglot from the official zips, preprocessed once into a cached array.

Reads `images_background.zip` and `images_evaluation.zip` (layout
`<set>/<Alphabet>/characterNN/<id>_<drawer>.png`, 20 drawings per character) from a
data folder, resizes each 105x105 drawing to 28x28 and inverts it so strokes are 1.

Two preprocessings (`pixels`):
- "binary" (default, the official MAML code): `data/omniglot_resized/resize_images.py`
  of cbfinn/maml calls `im.resize((28, 28), resample=Image.LANCZOS)` on the PNG as
  stored. The Omniglot PNGs are mode '1' (1 bit), and Pillow resizes mode '1' (and
  'P') images with nearest-neighbour whatever filter is asked for, so the official
  images stay binary (0 or 255).
- "antialiased": convert to 8-bit grey ('L') first, then LANCZOS: grey levels along
  the strokes (this project's earlier preprocessing, kept as an option).

The result is cached as `<cache_dir>/omniglot_<size>_<pixels>.npz` (uint8, strokes
255), written to a temporary file and renamed, so a failed or interrupted
preprocessing leaves nothing half-written.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import NamedTuple

import numpy as np
from PIL import Image

from common import files
from common.data.errors import DatasetError

ZIPS = ("images_background.zip", "images_evaluation.zip")
DRAWERS = 20
NUM_CHARACTERS = 1623
PIXELS = ("binary", "antialiased")
LAYOUT = (
    "<data_dir>/omniglot/images_background.zip and images_evaluation.zip "
    "(official layout <set>/<Alphabet>/characterNN/<id>_<drawer>.png)"
)


class Omniglot(NamedTuple):
    """All Omniglot characters.

    Attributes:
        images: uint8 `[characters, 20, size, size]`, strokes 255, background 0.
        names: `"<set>/<Alphabet>/<character>"` of every character, sorted.
    """

    images: np.ndarray
    names: list[str]

    @property
    def is_background(self) -> np.ndarray:
        """True for characters of the background set."""
        return np.array([n.startswith("images_background/") for n in self.names])


def _error(message: str) -> DatasetError:
    return DatasetError(f"{message}; expected {LAYOUT}; set --data_dir")


def resize_drawing(im: Image.Image, size: int, pixels: str = "binary") -> np.ndarray:
    """One drawing as a uint8 `[size, size]` array, strokes 255 (see module doc).

    Args:
        im: The drawing as stored (mode '1' for the official PNGs).
        size: Output height = width.
        pixels: "binary" (resize in the stored mode, as the official code) or
            "antialiased" (convert to 'L', then resize).
    """
    if pixels == "binary":
        small = im.resize((size, size), Image.LANCZOS).convert("L")
    elif pixels == "antialiased":
        small = im.convert("L").resize((size, size), Image.LANCZOS)
    else:
        raise ValueError(
            f"pixels must be one of {PIXELS}, got {pixels!r}: fix --omniglot_pixels"
        )
    return 255 - np.asarray(small, np.uint8)


def _read_zips(folder: str, size: int, pixels: str) -> Omniglot:
    characters: dict[str, list[tuple[str, bytes]]] = {}
    for zip_name in ZIPS:
        path = os.path.join(folder, zip_name)
        if not os.path.exists(path):
            raise _error(f"Omniglot file {path} not found")
        try:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    parts = info.filename.split("/")
                    if (
                        info.is_dir()
                        or len(parts) != 4
                        or not parts[3].endswith(".png")
                    ):
                        continue
                    characters.setdefault("/".join(parts[:3]), []).append(
                        (parts[3], z.read(info))
                    )
        except zipfile.BadZipFile as e:
            raise _error(f"{path} is not a readable zip ({e})") from e
    if not characters:
        raise _error(f"no character images found in {folder}")
    names = sorted(characters)
    images = np.zeros((len(names), DRAWERS, size, size), np.uint8)
    for i, name in enumerate(names):
        files = sorted(characters[name])
        if len(files) != DRAWERS:
            raise _error(f"character {name} has {len(files)} drawings, not {DRAWERS}")
        for j, (file_name, data) in enumerate(files):
            try:
                with Image.open(io.BytesIO(data)) as im:
                    images[i, j] = resize_drawing(im, size, pixels)
            except OSError as e:
                raise _error(f"corrupt image {name}/{file_name} ({e})") from e
    return Omniglot(images=images, names=names)


def load_omniglot(
    folder: str,
    cache_dir: str | None = None,
    size: int = 28,
    expected_characters: int | None = NUM_CHARACTERS,
    pixels: str = "binary",
) -> Omniglot:
    """Loads Omniglot, from the cache when present.

    Args:
        folder: Folder holding the two official zips.
        cache_dir: Where to cache the preprocessed array (None: no cache).
        size: Output image size.
        expected_characters: Refuse a dataset with another number of characters
            (None: accept any, for test fixtures).
        pixels: "binary" (the official MAML preprocessing) or "antialiased".

    Raises:
        DatasetError: missing, empty or corrupt data, naming the layout and flag.
    """
    if pixels not in PIXELS:
        raise ValueError(
            f"pixels must be one of {PIXELS}, got {pixels!r}: fix --omniglot_pixels"
        )
    cache = (
        None
        if cache_dir is None
        else os.path.join(cache_dir, f"omniglot_{size}_{pixels}.npz")
    )
    if cache and os.path.exists(cache):
        with np.load(cache) as f:
            data = Omniglot(images=f["images"], names=[str(n) for n in f["names"]])
    else:
        data = _read_zips(folder, size, pixels)
        if cache:
            files.atomic_write_npz(
                cache, images=data.images, names=np.array(data.names)
            )
    if expected_characters is not None and len(data.names) != expected_characters:
        raise _error(
            f"found {len(data.names)} characters, expected {expected_characters}"
        )
    return data


def split_characters(
    data: Omniglot,
    split: str = "official",
    seed: int = 1,
    num_train: int = 1100,
    num_val: int = 100,
) -> dict[str, np.ndarray]:
    """Meta-train / meta-val / meta-test character indices.

    Args:
        data: The dataset.
        split: "official": all characters shuffled with `seed`, the first
            `num_train` for meta-training, the next `num_val` for validation, the
            rest (423 of 1623) for meta-test, as the official MAML code (its
            "1200 train" = train + val). "background_evaluation": the background set
            for training (minus `num_val` validation characters drawn with `seed`),
            the evaluation set for test.
        seed: Shuffle seed.
        num_train: Training characters ("official").
        num_val: Validation characters.

    Returns:
        `{"train": idx, "val": idx, "test": idx}`, disjoint, sorted.
    """
    rng = np.random.default_rng(seed)
    n = len(data.names)
    if split == "official":
        order = rng.permutation(n)
        parts = {
            "train": order[:num_train],
            "val": order[num_train : num_train + num_val],
            "test": order[num_train + num_val :],
        }
    elif split == "background_evaluation":
        background = np.flatnonzero(data.is_background)
        order = rng.permutation(background)
        parts = {
            "train": order[num_val:],
            "val": order[:num_val],
            "test": np.flatnonzero(~data.is_background),
        }
    else:
        raise ValueError(
            f"unknown Omniglot split {split!r}: use 'official' or "
            "'background_evaluation' (--omniglot_split)"
        )
    return {k: np.sort(v) for k, v in parts.items()}
