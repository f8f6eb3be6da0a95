"""Magnet loss (Rippel et al. 2016): metric learning by adaptive density discrimination.

Public names: `MagnetLoss` (a Keras loss over cluster-major batches),
`ClusterIndex` (per-class k-means over the training embeddings) with
`ClusterRefreshCallback`, `MagnetSampler` (neighbourhood batches for
`model.fit`) with `LossRecorderCallback`. They are resolved on first use, so
importing a submodule does not load the others.

Example (the loss of 2 clusters x 2 examples whose clusters are far apart is
zero: every example is much closer to its own cluster mean than to the other):
    >>> import tensorflow as tf
    >>> from magnet import MagnetLoss
    >>> loss = MagnetLoss(num_clusters=2, examples_per_cluster=2, alpha=1.0)
    >>> emb = tf.constant([[0.0, 0.1], [0.0, -0.1], [10.0, 0.1], [10.0, -0.1]])
    >>> float(loss(tf.constant([0, 0, 1, 1]), emb))
    0.0
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "MagnetLoss": "magnet.loss",
    "ClusterIndex": "magnet.cluster_index",
    "ClusterRefreshCallback": "magnet.kmeans_callback",
    "MagnetSampler": "magnet.sampler",
    "LossRecorderCallback": "magnet.sampler",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'magnet' has no attribute {name!r}")
