"""Magnet loss (Rippel et al. 2016): metric learning by adaptive density discrimination.

Public names, resolved on first use (importing a submodule does not load the
others):

* the loss and its batches: `MagnetLoss` (a Keras loss over cluster-major
  batches), `ClusterIndex` (per-class k-means over the training embeddings)
  with `ClusterRefreshCallback`, `MagnetSampler` (neighbourhood batches for
  `model.fit`) with `LossRecorderCallback`, `MagnetBatchStats` and
  `Sigma2RunningAverage` (per-example losses and the paper's sigma^2 from
  `fit`'s own forward pass);
* evaluation: `magnet_predict` (the paper's rule over the L nearest cluster
  centres), `knn_predict`, `embed_all`;
* the baselines' pieces: `TripletSemiHardLoss`, `ClassBalancedBatches`;
* training and serving: `build_embedder` (the small CNN), `TrainSettings`,
  `TrainData` and `train` (magnet, softmax or triplet through `fit`,
  resumable), `MagnetServer`, `MagnetLimits` and `export_server` (TF Serving).

The reproduction harness (the paper's experiments, studies and reports) is
`magnet.experiments`, run by `python -m magnet.main` and
`python -m magnet.study_main`.

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
    "MagnetBatchStats": "magnet.batch_stats",
    "Sigma2RunningAverage": "magnet.batch_stats",
    "magnet_predict": "magnet.evaluation",
    "knn_predict": "magnet.evaluation",
    "embed_all": "magnet.embedding",
    "TripletSemiHardLoss": "magnet.triplet",
    "ClassBalancedBatches": "magnet.triplet",
    "build_embedder": "magnet.networks",
    "TrainSettings": "magnet.train_settings",
    "TrainData": "magnet.train_settings",
    "train": "magnet.trainer",
    "MagnetServer": "magnet.serving",
    "MagnetLimits": "magnet.serving",
    "export_server": "magnet.serving",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'magnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
