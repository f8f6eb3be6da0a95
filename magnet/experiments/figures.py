"""The experiment's figures: test embeddings over training, error curves.

`plot_embeddings` draws the embedding snapshots `magnet.trainer` saves at every
evaluation (`<run_dir>/<loss>/embeddings/step_*.npz`) as a grid of 2-D PCA
projections, losses by points of training; `curve_panels` turns the evaluation
curves into the panels `common.plots.plot_curve_panels` draws, with 95%
binomial intervals.
"""

from __future__ import annotations

import math
import os

import numpy as np

from common import plots, stats
from magnet import run_files

LABELS = {"magnet": "magnet", "softmax": "softmax", "triplet": "triplet"}
"""Legend and title names of the losses."""


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Projection on the two leading principal components."""
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def plot_embeddings(
    path: str, run_dir: str, losses: tuple[str, ...], label_key: str, columns: int = 4
) -> str | None:
    """Grid of 2-D PCA test embeddings: losses x points of training.

    Args:
        path: Output PNG.
        run_dir: Run directory (snapshots under `<loss>/embeddings/`).
        losses: Rows.
        label_key: Snapshot array to colour by ("labels" or "fine_labels").
        columns: Snapshots per loss, evenly spaced over those saved.

    Returns:
        `path`, or None when no snapshot exists.
    """
    rows = []
    for loss_name in losses:
        folder = os.path.join(run_dir, loss_name, run_files.SNAPSHOT_DIR)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        if names:
            picks = np.unique(
                np.linspace(0, len(names) - 1, min(columns, len(names)))
                .round()
                .astype(int)
            )
            rows.append((loss_name, [names[i] for i in picks]))
    if not rows:
        return None
    width = max(len(r[1]) for r in rows)
    plt = plots.pyplot()
    fig, axes = plt.subplots(
        len(rows), width, figsize=(2.8 * width, 2.8 * len(rows)), squeeze=False
    )
    for r, (loss_name, names) in enumerate(rows):
        for c in range(width):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(names):
                ax.axis("off")
                continue
            with np.load(
                os.path.join(run_dir, loss_name, run_files.SNAPSHOT_DIR, names[c])
            ) as f:
                emb, labels = f["embeddings"], f[label_key]
            xy = pca_2d(emb.astype(np.float64))
            ax.scatter(
                xy[:, 0],
                xy[:, 1],
                c=labels,
                cmap="tab10" if labels.max() < 10 else "nipy_spectral",
                s=4,
            )
            step = int(names[c].split("_")[1].split(".")[0])
            ax.set_title(f"{LABELS[loss_name]}, step {step}", fontsize=9)
    fig.suptitle(
        f"Test embeddings (2-D PCA), coloured by "
        f"{'fine class' if label_key == 'fine_labels' else 'class'}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def curve_panels(
    curves: dict[str, list[dict[str, float]]], keys: dict[str, str], n: int
) -> dict[str, dict[str, tuple]]:
    """Panels of `common.plots.plot_curve_panels` from evaluation curves.

    Args:
        curves: `{loss: [{"step", metric: error fraction, ...}, ...]}`.
        keys: `{panel title: metric}`.
        n: Evaluation examples behind every error (for the 95% intervals).

    Returns:
        `{panel title: {loss label: (steps, errors in %, 95% half-widths in
        %)}}`, panels without a finite point left out.
    """
    panels: dict[str, dict[str, tuple]] = {}
    for title, key in keys.items():
        panel = {}
        for loss_name, curve in curves.items():
            points = [e for e in curve if key in e and math.isfinite(e[key])]
            if points:
                x = [e["step"] for e in points]
                y = [100 * e[key] for e in points]
                ci = [100 * stats.proportion_ci95(e[key], n) for e in points]
                panel[LABELS[loss_name]] = (x, y, ci)
        if panel:
            panels[title] = panel
    return panels
