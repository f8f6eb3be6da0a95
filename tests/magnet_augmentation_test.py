"""Random crop + flip: every output is a window of the zero-padded image, mirrored
or not (checked against all NumPy windows), deterministic for a seed."""

import numpy as np
import tensorflow as tf

from magnet import augmentation


def _windows(image: np.ndarray, pad: int) -> list[np.ndarray]:
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    out = []
    for i in range(2 * pad + 1):
        for j in range(2 * pad + 1):
            window = padded[i : i + h, j : j + w]
            out += [window, window[:, ::-1]]
    return out


def test_outputs_are_padded_windows_possibly_mirrored():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (16, 6, 5, 2), dtype=np.uint8)
    out = augmentation.random_crop_flip(images, pad=2, seed=tf.constant([3, 4])).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    for image, result in zip(images, out, strict=True):
        assert any(np.array_equal(result, w) for w in _windows(image, 2))
    again = augmentation.random_crop_flip(images, pad=2, seed=tf.constant([3, 4]))
    np.testing.assert_array_equal(out, again.numpy())
    # Over 16 images both mirrored and shifted copies occur.
    assert not np.array_equal(out, images.astype(np.float32))


def test_no_pad_no_flip_is_the_identity():
    images = np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1)
    out = augmentation.random_crop_flip(images, pad=0, flip=False)
    np.testing.assert_array_equal(out.numpy(), images.astype(np.float32))
