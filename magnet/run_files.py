"""The files of a training run directory, and their readers and writers.

`magnet.trainer.train(loss, ..., run_dir)` leaves, per loss, under
`<run_dir>/<loss>/`: the evaluation curve (`curve.json`), test-embedding
snapshots (`embeddings/step_*.npz`) and the magnet rule's clustering of the last
evaluation (`cluster_model.npz`, what serving needs beside the weights); under
`<run_dir>/checkpoints/<loss>/` the checkpoints and `fit_state.json` (training
seconds, sessions, refreshes). `<run_dir>/data_info.json` records the input
shape and class names. Serving (`magnet.serving`) reads these files without the
training code. Every write is atomic (`common.files`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from common import files
from magnet import cluster_index as cluster_index_lib

CURVE_FILE = "curve.json"
"""`<run_dir>/<loss>/curve.json`: the evaluations so far, one entry per step."""
CLUSTER_MODEL_FILE = "cluster_model.npz"
"""`<run_dir>/<loss>/cluster_model.npz`: the magnet rule's clustering."""
SNAPSHOT_DIR = "embeddings"
"""`<run_dir>/<loss>/embeddings/step_XXXXXXXX.npz`: test-embedding snapshots."""
STATE_FILE = "fit_state.json"
"""`<run_dir>/checkpoints/<loss>/fit_state.json`: training seconds, sessions."""
DATA_INFO = "data_info.json"
"""`<run_dir>/data_info.json`: input shape and class names (`save_data_info`)."""


def write_json(path: str, value: Any) -> None:
    """Writes `value` as JSON (indent 1) to `path` atomically."""
    files.atomic_write_json(path, value, indent=1)


def load_curve(loss_dir: str) -> list[dict[str, float]]:
    """The evaluations saved so far for one loss (empty if none)."""
    path = os.path.join(loss_dir, CURVE_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def save_cluster_model(
    path: str,
    index: cluster_index_lib.ClusterIndex,
    num_neighbours: int,
    class_names: tuple[str, ...],
    step: int,
    sigma2: float | None = None,
) -> None:
    """Writes the magnet rule's clustering (for serving) atomically.

    `sigma2` is the rule's variance (default: the index's recomputed one).
    """
    sigma2 = index.sigma2 if sigma2 is None else sigma2
    files.atomic_write_npz(
        path,
        centres=index.centres.astype(np.float32),
        cluster_classes=index.cluster_classes.astype(np.int64),
        sigma2=np.float64(max(sigma2, 1e-12)),
        num_neighbours=np.int64(min(num_neighbours, index.num_clusters)),
        class_names=np.asarray(class_names, dtype=str),
        step=np.int64(step),
    )


def load_cluster_model(path: str) -> dict[str, np.ndarray]:
    """Reads a file written by `save_cluster_model`."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def save_data_info(
    run_dir: str,
    *,
    input_shape: Sequence[int],
    class_names: Sequence[str],
    num_train: int,
    num_test: int,
    embedding_dim: int,
) -> str:
    """Writes `<run_dir>/data_info.json` (what serving needs to rebuild the
    network: input shape, class names, embedding size); returns its path."""
    info = {
        "input_shape": list(input_shape),
        "class_names": list(class_names),
        "num_train": num_train,
        "num_test": num_test,
        "embedding_dim": embedding_dim,
    }
    path = os.path.join(run_dir, DATA_INFO)
    write_json(path, info)
    return path


def load_data_info(run_dir: str) -> dict[str, Any]:
    """Reads the file written by `save_data_info`."""
    with open(os.path.join(run_dir, DATA_INFO)) as f:
        return json.load(f)
