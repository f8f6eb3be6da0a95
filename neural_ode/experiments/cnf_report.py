"""The CNF experiment's report: verdicts, tables and figures (Figs. 4-5).

Reads the per-model records and arrays `neural_ode.experiments.cnf_experiment`
produces; `config` is its `CNFConfig`. Drawing selects Matplotlib's headless
backend on first use (`common.plots.pyplot`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from common import plots
from neural_ode.data import densities

DM_BOX = densities.BOX
ML_BOX = 4.5
DM_CLAIM = "CNF (M units) reaches a lower loss than NF (K = M layers)"
ML_CLAIM = "CNF fits the data better than the NF of one-unit layers"


def compare(better: tuple[float, float], worse: tuple[float, float]) -> str:
    """Verdict on "the first (mean, ci95) is lower than the second".

    "supported" when the difference is below zero by more than its 95% CI
    half-width (sqrt of the summed squared half-widths, independent samples),
    "not supported" when above zero by more than that, else "inconclusive".
    """
    diff = better[0] - worse[0]
    half = math.hypot(better[1], worse[1])
    if not math.isfinite(diff):
        return "not supported (non-finite result)"
    if diff + half < 0:
        return "supported"
    if diff - half > 0:
        return "not supported"
    return "inconclusive (95% CIs overlap)"


def _fmt(mean: float, ci: float) -> str:
    return "nan" if not math.isfinite(mean) else f"{mean:.3f} ± {ci:.3f}"


def _nfe_text(record: dict) -> str:
    """ "forward / backward (training, mean of the last logged steps), eval"."""
    train = record.get("train_nfe", {})
    values = (train.get("forward"), train.get("backward"), record.get("eval_nfe"))
    return " / ".join("-" if v is None else f"{v:.0f}" for v in values)


def dm_table(config: Any, records: dict[str, dict]) -> dict[str, Any]:
    """Fig. 4's table: NF against CNF KL per target and width, with verdicts."""
    rows = []
    for target in config.targets:
        for width in config.widths:
            nf = records[f"dm_{target}_nf_k{width}"]
            cn = records[f"dm_{target}_cnf_m{width}"]
            rows.append(
                [
                    target,
                    width,
                    _fmt(nf["kl"], nf["kl_ci95"]),
                    _fmt(cn["kl"], cn["kl_ci95"]),
                    _nfe_text(cn),
                    DM_CLAIM,
                    compare((cn["kl"], cn["kl_ci95"]), (nf["kl"], nf["kl_ci95"])),
                ]
            )
    return {
        "title": "Fig. 4 density matching: KL(q || p) in nats (lower is better)",
        "header": [
            "target",
            "K = M",
            "NF, K layers",
            "CNF, M units",
            "CNF NFE (train fwd / bwd, eval)",
            "paper's claim",
            "verdict",
        ],
        "rows": rows,
    }


def ml_table(config: Any, records: dict[str, dict]) -> dict[str, Any]:
    """Fig. 5's table: held-out NLL of NF and CNF per dataset, with verdicts."""
    rows = []
    for dataset in config.ml_datasets:
        nf = records[f"ml_{dataset}_nf_k{config.ml_width}"]
        cn = records[f"ml_{dataset}_cnf_m{config.ml_width}"]
        nfe = _nfe_text(cn)
        rows.append(
            [
                dataset,
                _fmt(nf["floor_nll"], nf["floor_nll_ci95"]),
                _fmt(nf["nll"], nf["nll_ci95"]),
                _fmt(cn["nll"], cn["nll_ci95"]),
                nfe,
                ML_CLAIM,
                compare((cn["nll"], cn["nll_ci95"]), (nf["nll"], nf["nll_ci95"])),
            ]
        )
    return {
        "title": "Fig. 5 maximum likelihood: held-out NLL in nats (lower is better)",
        "header": [
            "dataset",
            "true density (floor)",
            f"NF, {config.ml_width} layers",
            f"CNF, M = {config.ml_width}",
            "CNF NFE (train fwd / bwd, eval)",
            "paper's claim",
            "verdict",
        ],
        "rows": rows,
    }


def budget_table(records: dict[str, dict]) -> dict[str, Any]:
    """Iterations, seconds and status of every trained model."""
    rows = []
    for rec in records.values():
        b = rec["budget"]
        per_it = b["train_seconds"] / b["steps"] if b["steps"] else float("nan")
        rows.append(
            [
                rec["name"],
                rec["params"],
                f"{b['steps']:,} of {b['target_steps']:,}",
                f"{b['train_seconds']:.1f}",
                f"{1000 * per_it:.1f}",
                rec["status"],
            ]
        )
    return {
        "title": "Training budget per model",
        "header": [
            "model",
            "parameters",
            "iterations",
            "train seconds (incl. compilation)",
            "ms / iteration",
            "status",
        ],
        "rows": rows,
    }


def _hist(ax, points: np.ndarray, box: float, bins: int) -> None:
    finite = points[np.isfinite(points).all(axis=1)]
    ax.hist2d(
        finite[:, 0],
        finite[:, 1],
        bins=bins,
        range=[[-box, box], [-box, box]],
        cmap="viridis",
    )


def _clean(ax, title: str | None = None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=8)


def plot_dm_samples(
    path: str, config: Any, records: dict[str, dict], arrays: dict[str, dict]
) -> str:
    """Fig. 4: each target's density beside NF and CNF samples at every width."""
    plt = plots.pyplot()
    widths = config.widths
    cols = 1 + 2 * len(widths)
    fig, axes = plt.subplots(
        len(config.targets),
        cols,
        figsize=(1.6 * cols, 1.7 * len(config.targets)),
        squeeze=False,
    )
    n = config.grid_points
    points, _ = densities.grid(DM_BOX, n)
    for row, target in zip(axes, config.targets, strict=True):
        density = np.exp(
            -densities.ENERGIES[target](tf.constant(points, tf.float64)).numpy()
        ).reshape(n, n)
        row[0].imshow(density, origin="lower", extent=[-DM_BOX, DM_BOX] * 2)
        _clean(row[0], f"{target}: target")
        for j, (kind, label) in enumerate((("nf", "NF K"), ("cnf", "CNF M"))):
            for i, width in enumerate(widths):
                name = f"dm_{target}_{kind}_{'k' if kind == 'nf' else 'm'}{width}"
                ax = row[1 + j * len(widths) + i]
                _hist(ax, arrays[name]["samples"], DM_BOX, 80)
                _clean(ax, f"{label}={width}, KL {records[name]['kl']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_dm_loss(path: str, config: Any, records: dict[str, dict]) -> str:
    """Fig. 4d: KL against K = M, NF and CNF, with 95% CI bars, per target."""
    plt = plots.pyplot()
    n = len(config.targets)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, target in zip(axes[0], config.targets, strict=True):
        for kind, label, letter in (
            ("nf", "NF (K layers)", "k"),
            ("cnf", "CNF (M units)", "m"),
        ):
            recs = [records[f"dm_{target}_{kind}_{letter}{w}"] for w in config.widths]
            ax.errorbar(
                config.widths,
                [r["kl"] for r in recs],
                yerr=[r["kl_ci95"] for r in recs],
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(config.widths, [str(w) for w in config.widths])
        ax.set_title(target)
        ax.set_xlabel("K = M")
        ax.set_ylabel("KL(q || p) (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ml(
    path: str, config: Any, records: dict[str, dict], arrays: dict[str, dict]
) -> str:
    """Fig. 5: the flows' samples along the way, their density and the data."""
    plt = plots.pyplot()
    rows = [(d, kind) for d in config.ml_datasets for kind in ("nf", "cnf")]
    stages = 6
    cols = stages + 2
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(1.6 * cols, 1.7 * len(rows)), squeeze=False
    )
    n = config.grid_points
    for row, (dataset, kind) in zip(axes, rows, strict=True):
        letter = "k" if kind == "nf" else "m"
        name = f"ml_{dataset}_{kind}_{letter}{config.ml_width}"
        rec, arr = records[name], arrays[name]
        for i in range(stages):
            _hist(row[i], arr["path"][i], ML_BOX, 70)
            _clean(row[i], f"{kind.upper()} {rec['stages'][i]}")
        density = np.exp(arr["grid_log_q"].reshape(n, n))
        row[stages].imshow(density, origin="lower", extent=[-ML_BOX, ML_BOX] * 2)
        _clean(row[stages], f"density, NLL {rec['nll']:.2f}")
        _hist(row[stages + 1], arr["test"], ML_BOX, 70)
        _clean(row[stages + 1], f"{dataset} data")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
