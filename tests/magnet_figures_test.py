"""The experiment's figures: the 2-D projection of the embedding plots."""

import numpy as np

from magnet.experiments import figures


def test_pca_2d_keeps_the_two_widest_directions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([10.0, 0.1, 5.0, 0.1, 0.1])
    xy = figures.pca_2d(x)
    assert xy.shape == (200, 2)
    assert np.var(xy[:, 0]) > np.var(xy[:, 1]) > 10 * np.var(x[:, 1])
