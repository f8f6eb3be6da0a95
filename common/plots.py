"""Plots shared by the reproductions: the headless Matplotlib set-up and curves.

`pyplot()` is the one place that selects Matplotlib's file-only "Agg" backend
(runs happen on machines without a display); modules that draw call it instead of
importing `matplotlib.pyplot` themselves, so importing a module never changes the
backend of a user's notebook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import ModuleType

import numpy as np


def pyplot() -> ModuleType:
    """`matplotlib.pyplot`, with the headless "Agg" backend selected on first use."""
    import matplotlib  # noqa: PLC0415 (only runs that draw need Matplotlib)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_curve_panels(
    path: str,
    panels: Mapping[str, Mapping[str, tuple]],
    xlabel: str,
    ylabel: str,
    reference_points: Mapping[str, Mapping[str, Sequence]] | None = None,
) -> str:
    """Side-by-side panels of curves with 95% CI bands, saved as a PNG.

    Args:
        path: Output PNG path.
        panels: `{panel title: {curve label: (x, mean, ci95)}}`.
        xlabel: Label of every x axis.
        ylabel: Label of the y axes.
        reference_points: Optional `{panel title: {label: (xs, ys)}}` plotted as
            markers, e.g. the published numbers.

    Returns:
        `path`.
    """
    n = len(panels)
    plt = pyplot()
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, (x, mean, ci) in curves.items():
            x, mean, ci = map(np.asarray, (x, mean, ci))
            (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
            ax.fill_between(x, mean - ci, mean + ci, alpha=0.2, color=line.get_color())
        refs = (reference_points or {}).get(title, {})
        for marker, (label, (xs, ys)) in zip("xP*D", refs.items(), strict=False):
            ax.scatter(
                xs, ys, marker=marker, s=50, color="black", zorder=5, label=label
            )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
