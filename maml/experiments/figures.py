"""MAML's sinusoid figures: Fig. 2 (adapted curves) and Fig. 3 (MSE vs steps)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from common import plots


def plot_adapted_curves(
    path: str,
    x_grid: np.ndarray,
    truth: np.ndarray,
    panels: Mapping[str, Mapping[str, object]],
) -> str:
    """Fig. 2: ground truth, pre-update and adapted predictions, per method and K.

    Args:
        path: Output PNG.
        x_grid: `[M]` inputs where curves are drawn.
        truth: `[M]` ground-truth outputs.
        panels: `{title: {"support_x": [K], "support_y": [K],
            "predictions": {steps: [M]}}}`.

    Returns:
        `path`.
    """
    n = len(panels)
    plt = plots.pyplot()
    cols = 2
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(5.0 * cols, 3.5 * rows), squeeze=False
    )
    styles = {0: ":", 1: "--"}
    for ax, (title, panel) in zip(axes.ravel(), panels.items(), strict=False):
        ax.plot(x_grid, truth, color="red", label="ground truth")
        for steps, pred in sorted(panel["predictions"].items()):
            label = (
                "pre-update"
                if steps == 0
                else (f"after {steps} grad step{'s' if steps > 1 else ''}")
            )
            ax.plot(x_grid, pred, linestyle=styles.get(steps, "-"), label=label)
        ax.scatter(
            panel["support_x"],
            panel["support_y"],
            marker="^",
            color="purple",
            zorder=5,
            label="used for grad",
        )
        ax.set_title(title)
        ax.set_xlim(x_grid.min(), x_grid.max())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_learning_curves(
    path: str,
    curves: Mapping[int, Mapping[str, Sequence]],
    published: Mapping[int, Mapping[str, tuple]] | None = None,
) -> str:
    """Fig. 3: MSE vs number of gradient steps for each K, with 95% CI bands.

    Args:
        path: Output PNG.
        curves: `{K: {label: (means, ci95s)}}` over steps 0..N.
        published: `{K: {label: (steps, values)}}` published points to overlay.

    Returns:
        `path`.
    """
    panels = {}
    refs = {}
    for k, by_label in curves.items():
        title = f"k-shot regression, k={k}"
        panels[title] = {
            label: (np.arange(len(means)), means, cis)
            for label, (means, cis) in by_label.items()
        }
        if published and k in published:
            refs[title] = published[k]
    return plots.plot_curve_panels(
        path, panels, "number of gradient steps", "mean squared error", refs
    )
