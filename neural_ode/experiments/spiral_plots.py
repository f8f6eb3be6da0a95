"""Fig. 8 of the Neural ODE paper: test spirals with each model's estimate."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from common import plots
from neural_ode.data import spirals

PLOT_COLORS = {
    "latent_ode": "tab:blue",
    "rnn": "tab:orange",
    "rnn_time_gaps": "tab:green",
}


def plot_indices(test: spirals.Spirals, count: int) -> np.ndarray:
    """The first test spirals of each direction, alternating (clockwise first)."""
    cw = np.flatnonzero(test.clockwise)
    ccw = np.flatnonzero(~test.clockwise)
    order = [i for pair in zip(cw, ccw, strict=False) for i in pair]
    order += [i for i in range(len(test)) if i not in order]
    return np.asarray(order[:count], np.int64)


def plot_spirals(
    path: str,
    test: spirals.Spirals,
    subsamples: dict[int, spirals.Subsample],
    indices: np.ndarray,
    paths: dict[tuple[str, int], np.ndarray],
    labels: Mapping[str, str],
) -> str:
    """Fig. 8 style: observed points, truth and each model's prediction.

    Args:
        path: Output PNG.
        test: The test spirals.
        subsamples: `{n: Subsample}` of the test spirals.
        indices: Test spirals to draw (columns).
        paths: `{(model, n): [len(indices), q, 2]}`, each model's estimates over
            the window and the continuation (200 points).
        labels: Legend label of each model.

    Returns:
        `path`.
    """
    plt = plots.pyplot()

    sizes = sorted(subsamples)
    fig, axes = plt.subplots(
        len(sizes),
        len(indices),
        figsize=(3.2 * len(indices), 3.0 * len(sizes)),
        squeeze=False,
    )
    for r, n in enumerate(sizes):
        for c, i in enumerate(indices):
            ax = axes[r, c]
            ax.plot(
                *test.true_trajectories[i].T,
                color="0.6",
                lw=1,
                label="truth (observed window)",
            )
            ax.plot(
                *test.extrapolation_trajectories[i].T,
                color="black",
                lw=1,
                ls="--",
                label="truth (extrapolation)",
            )
            ax.scatter(
                *subsamples[n].observations[i].T,
                s=6,
                color="0.3",
                label=f"{n} observations",
            )
            for (model, size), pred in paths.items():
                if size == n:
                    ax.plot(
                        *pred[c].T,
                        color=PLOT_COLORS[model],
                        lw=1.4,
                        label=labels[model],
                    )
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_title(f"test spiral {i}, {n}/100 observed", fontsize=9)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
