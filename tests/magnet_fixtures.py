"""Tiny synthetic image datasets for the magnet tests (no files needed).

Each fine class is a fixed random low-resolution pattern, upsampled and overlaid
with per-image noise, so a small conv net separates the classes in a few steps.
Fine class c belongs to coarse class c // fine_per_coarse.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class FakeLabelledImages:
    """Same fields as `magnet.datasets.LabelledImages`."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    coarse_train_labels: np.ndarray | None = None
    coarse_test_labels: np.ndarray | None = None
    coarse_names: tuple[str, ...] | None = None


def _images(
    labels: np.ndarray, patterns: np.ndarray, rng: np.random.Generator, noise: float
) -> np.ndarray:
    base = patterns[labels]
    out = base + rng.normal(scale=noise, size=base.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def synthetic_dataset(
    num_classes: int = 4,
    train_per_class: int = 24,
    test_per_class: int = 8,
    size: int = 16,
    channels: int = 1,
    fine_per_coarse: int = 2,
    noise: float = 40.0,
    seed: int = 0,
) -> FakeLabelledImages:
    """A `LabelledImages`-like dataset with coarse labels.

    Args:
        num_classes: Fine classes.
        train_per_class: Training images per class.
        test_per_class: Test images per class.
        size: Image height and width.
        channels: Channels.
        fine_per_coarse: Fine classes per coarse class.
        noise: Pixel noise standard deviation.
        seed: Seed.
    """
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, size=(num_classes, 4, 4, channels))
    patterns = np.repeat(np.repeat(low, size // 4, axis=1), size // 4, axis=2)
    train_labels = np.repeat(np.arange(num_classes), train_per_class)
    test_labels = np.repeat(np.arange(num_classes), test_per_class)
    num_coarse = -(-num_classes // fine_per_coarse)
    return FakeLabelledImages(
        name="synthetic",
        train_images=_images(train_labels, patterns, rng, noise),
        train_labels=train_labels.astype(np.int64),
        test_images=_images(test_labels, patterns, rng, noise),
        test_labels=test_labels.astype(np.int64),
        class_names=tuple(f"class{c}" for c in range(num_classes)),
        coarse_train_labels=(train_labels // fine_per_coarse).astype(np.int64),
        coarse_test_labels=(test_labels // fine_per_coarse).astype(np.int64),
        coarse_names=tuple(f"group{c}" for c in range(num_coarse)),
    )
