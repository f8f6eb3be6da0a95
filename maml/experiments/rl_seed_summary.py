"""App. C Table 4/5 over seeds: pools RL runs that differ only in the seed.

`python -m maml.experiments.rl_seed_summary OUT_DIR RUN_DIR [RUN_DIR ...]`

Reads the `results.json` of every run directory (one run of `maml.main
--experiment=navigation_2d` or `halfcheetah_dir` per seed) and writes into
`OUT_DIR`:

- `results.json` and `report.md`, whose table cells are the mean over seeds of
  each seed's average return over the test tasks, with a 95% Student-t interval
  over seeds (`common.stats.mean_t_ci`; with a single seed, that seed's own
  interval over test tasks) and the verdict against `common.published`. Every
  seed's value is shown beside the row label and in an extra table, so a reader
  sees the spread the interval summarises;
- `fig4_adaptation.png`: the Fig. 4 curves (average return against the number of
  policy-gradient steps, every model of the runs) averaged over seeds, with
  Student-t bands over seeds, and the published Table 4/5 values as markers.

The status is "complete" only when every listed run exists and finished its
protocol; a listed run without `results.json` (not started yet) makes the pool
"cut short" and is named in the budget.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from common import plots, results, stats
from common.stats import Estimate
from maml.experiments.rl_experiment import LABELS

POOLED_FIGURE = "fig4_adaptation.png"


def _seed_estimate(values: Sequence[float]) -> Estimate:
    mean, half = stats.mean_t_ci(values)
    return Estimate(mean=mean, ci95=half, n=len(values))


def _format(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _check_same_experiment(records: list[dict[str, Any]]) -> None:
    first = records[0]
    for r in records[1:]:
        if r["experiment"] != first["experiment"]:
            raise ValueError(
                "runs of different experiments cannot be pooled: "
                f"{first['experiment']!r} and {r['experiment']!r}"
            )
        keys = [(c["table"], c["row"], c["column"]) for c in r["cells"]]
        if keys != [(c["table"], c["row"], c["column"]) for c in first["cells"]]:
            raise ValueError(
                "the runs' tables differ; were they written by one version?"
            )


def _pooled_cells(records: list[dict[str, Any]]) -> tuple[list[dict], list[list]]:
    """The pooled table cells and the per-seed rows of the extra table."""
    seeds = [r["config"]["seed"] for r in records]
    cells, rows = [], []
    for i, first in enumerate(records[0]["cells"]):
        got = [
            (s, r["cells"][i]["ours"])
            for s, r in zip(seeds, records, strict=True)
            if r["cells"][i]["ours"] is not None
        ]
        values = [o["mean"] for _, o in got]
        if len(got) >= 2:
            ours = _seed_estimate(values)
            details = {"per seed": _format(values)}
        elif got:
            ours = Estimate(**got[0][1])  # one seed: its interval over test tasks
            details = {"one seed": f"{got[0][0]}, CI over test tasks"}
        else:
            ours, details = None, {}
        cell = results.cell(
            records[0]["paper"],
            first["table"],
            first["row"],
            first["column"],
            ours,
            deviations=first["deviations"],
            details=details,
        )
        cells.append(cell)
        pooled = "-" if ours is None else f"{ours.mean:.2f} ± {ours.ci95:.2f}"
        rows.append(
            [
                first["row"],
                first["column"],
                f"{first['published']['value']:.2f}",
                *(
                    f"{r['cells'][i]['ours']['mean']:.2f}"
                    if r["cells"][i]["ours"]
                    else "-"
                    for r in records
                ),
                pooled,
            ]
        )
    return cells, rows


def _curves_over_seeds(
    records: list[dict[str, Any]],
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`{model label: (steps, mean over seeds, t half-width over seeds)}`.

    Each seed contributes its average return over the test tasks at each number
    of gradient steps; models missing from some seed are pooled over the others.
    """
    by_model: dict[str, list[np.ndarray]] = {}
    for r in records:
        for model, returns in r.get("extra", {}).get("evaluation", {}).items():
            by_model.setdefault(model, []).append(
                np.asarray(returns, np.float64).mean(axis=1)
            )
    steps = max((len(c) for cs in by_model.values() for c in cs), default=0)
    curves = {}
    for model, per_seed in by_model.items():
        # The oracle is evaluated without adaptation: drawn flat.
        arr = np.stack([np.resize(c, steps) if len(c) == 1 else c for c in per_seed])
        est = [stats.mean_t_ci(arr[:, k]) for k in range(arr.shape[1])]
        mean = np.array([m for m, _ in est])
        half = np.array([0.0 if not np.isfinite(h) else h for _, h in est])
        curves[LABELS.get(model, model)] = (np.arange(arr.shape[1]), mean, half)
    return curves


def pool(out_dir: str, run_dirs: Sequence[str]) -> dict[str, Any]:
    """Writes the pooled `results.json`, `report.md` and Fig. 4; returns the record.

    Args:
        out_dir: Where to write.
        run_dirs: One run directory per seed; those without `results.json` count
            as missing (the pool is then "cut short").

    Raises:
        ValueError: No run has results, or the runs are of different experiments.
    """
    present = [
        d for d in run_dirs if os.path.exists(os.path.join(d, results.RESULTS_FILE))
    ]
    missing = [d for d in run_dirs if d not in present]
    if not present:
        raise ValueError("none of the run directories has a results.json")
    records = [results.load_results(d) for d in present]
    _check_same_experiment(records)
    seeds = [r["config"]["seed"] for r in records]
    cells, seed_rows = _pooled_cells(records)
    complete = not missing and all(r["status"] == "complete" for r in records)
    budget: dict[str, Any] = {"seeds": ", ".join(str(s) for s in seeds)}
    for key in records[0]["budget"]:
        if key in ("machine", "train_seconds"):
            continue
        got = sorted({str(r["budget"].get(key)) for r in records})
        budget[key] = got[0] if len(got) == 1 else " / ".join(got)
    budget["train_seconds"] = round(
        sum(float(r["budget"].get("train_seconds", 0.0)) for r in records), 1
    )
    if missing:
        budget["missing runs"] = ", ".join(missing)
    budget["machine"] = records[0]["budget"].get("machine", "")
    deviations = list(
        dict.fromkeys(d for r in records for d in r["deviations"])
    )  # every seed's, in order, once
    extra: dict[str, Any] = {
        "seeds": seeds,
        "runs": [
            {"run_dir": d, "seed": r["config"]["seed"], "status": r["status"]}
            for d, r in zip(present, records, strict=True)
        ],
        "statistic": "mean over seeds of each seed's average return over the "
        "test tasks; 95% Student-t interval over seeds",
        "tables": [
            {
                "title": "Every seed: average return over the test tasks",
                "header": [
                    "row",
                    "column",
                    "published",
                    *(f"seed {s}" for s in seeds),
                    "mean ± 95% t-interval over seeds",
                ],
                "rows": seed_rows,
            }
        ],
    }
    figures = []
    curves = _curves_over_seeds(records)
    if curves:
        os.makedirs(out_dir, exist_ok=True)
        title = f"{records[0]['experiment']}, {len(records)} seed(s)"
        published: dict[str, tuple[list[int], list[float]]] = {}
        for c in records[0]["cells"]:
            xs, ys = published.setdefault(f"published, {c['row']}", ([], []))
            xs.append(int(c["column"].split()[0]))  # "2 steps" -> 2
            ys.append(c["published"]["value"])
        plots.plot_curve_panels(
            os.path.join(out_dir, POOLED_FIGURE),
            {title: curves},
            "number of gradient steps",
            "average return (mean over seeds)",
            reference_points={title: published},
        )
        figures.append(POOLED_FIGURE)
    return results.write_results(
        out_dir,
        paper=records[0]["paper"],
        experiment=f"{records[0]['experiment']} over seeds",
        status="complete" if complete else "cut short",
        budget=budget,
        config={"run_dirs": list(run_dirs), "seeds": seeds},
        cells=cells,
        deviations=deviations,
        figures=figures,
        extra=extra,
    )


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(
            "usage: python -m maml.experiments.rl_seed_summary OUT_DIR RUN_DIR "
            "[RUN_DIR ...]",
            file=sys.stderr,
        )
        return 2
    try:
        pool(argv[1], argv[2:])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(os.path.join(argv[1], results.REPORT_FILE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
