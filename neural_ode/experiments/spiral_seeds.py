"""Table 2 over seeds: pools finished `spirals` runs into one report.

Each `spirals` run (`neural_ode.experiments.spiral_experiment`) trains every
model at one seed and one noise level and keeps every RMSE in `results.json`
(`extra["metrics"]`). This experiment reads several such runs and writes, per
noise level:

* the Table 2 cells (latent ODE and plain RNN, 30/50/100 observed points): the
  in-window RMSE (the run's `cell_target`), mean and 95% CI (1.96 std / sqrt(n),
  `common.results.mean_ci95`) over seeds, in raw and standardized units;
* an extra table with every model (the time-gap RNN too) in the window, and one of
  the extrapolation RMSE (the 100 grid steps after the window);
* the per-seed values and each run's status, so a diverged or cut-short seed is
  visible.

Nothing is trained; a rerun rereads the runs.
"""

from __future__ import annotations

import dataclasses
import os

from common import config as config_lib
from common import results
from neural_ode.experiments import spiral_experiment

RESUMABLE_FIELDS = ("run_dirs",)


@dataclasses.dataclass(frozen=True)
class SpiralSeedsConfig:
    """Which runs to pool.

    Attributes:
        experiment: "spiral_seeds".
        seed: Unused (nothing is random here).
        run_dirs: Directories of finished or cut-short `spirals` runs.
    """

    experiment: str = "spiral_seeds"
    seed: int = 0
    run_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.experiment != "spiral_seeds":
            raise ValueError(
                f"experiment must be 'spiral_seeds', got {self.experiment!r}"
            )
        if not self.run_dirs:
            raise ValueError("run_dirs must name at least one spirals run")


def check_inputs(config: SpiralSeedsConfig) -> None:
    """Raises ValueError (before anything is written) if a run has no results."""
    missing = [
        d
        for d in config.run_dirs
        if not os.path.exists(os.path.join(d, results.RESULTS_FILE))
    ]
    if missing:
        raise ValueError(
            f"no results.json in {', '.join(missing)}: run "
            "`python -m neural_ode.main --experiment=spirals` there first"
        )


def collect(records: list[dict]) -> dict:
    """Groups the runs' metrics by (noise std, model, observed points).

    Returns:
        `{(noise, model, n): [{"seed", "status", "cell_target", **scores}, ...]}`.
    """
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        config = record["config"]
        for m in record["extra"]["metrics"]:
            key = (float(config["noise_std"]), m["model"], int(m["num_observed"]))
            groups.setdefault(key, []).append(
                {"seed": config["seed"], "cell_target": config["cell_target"], **m}
            )
    return groups


def _budget(entries: list[dict]) -> dict:
    """Fewest iterations of any seed, the target, and training time over seeds."""
    budget = {
        "iterations": min(e["iterations"] for e in entries),
        "iterations per seed": sorted(e["iterations"] for e in entries),
    }
    if all("target_iterations" in e for e in entries):
        budget["target_iterations"] = max(e["target_iterations"] for e in entries)
    if all("train_seconds" in e for e in entries):
        budget["train_seconds"] = round(sum(e["train_seconds"] for e in entries), 1)
    return budget


def run(config: SpiralSeedsConfig, output_dir: str) -> dict:
    """Pools the runs and writes results.json and report.md."""
    check_inputs(config)
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    records = [results.load_results(d) for d in config.run_dirs]
    groups = collect(records)
    cells, window_rows, extrap_rows, seed_rows = [], [], [], []
    for (noise, model, n), entries in sorted(groups.items()):
        label = spiral_experiment.MODEL_LABELS[model]
        column = f"{n}/100"
        seeds = sorted(e["seed"] for e in entries)
        incomplete = [e["seed"] for e in entries if e["status"] != "complete"]
        target = "window_" + entries[0]["cell_target"]
        estimates = {}
        for key in ("window_clean", "window_noisy", "extrapolation"):
            for unit in ("raw", "standardized"):
                estimates[key, unit] = results.mean_ci95(
                    [e[key][unit] for e in entries]
                )
        deviations = [
            f"noise std {noise:g}",
            f"{len(entries)} seeds ({', '.join(map(str, seeds))}): mean "
            "and 95% CI over seeds of the pooled RMSE",
        ]
        if incomplete:
            deviations.append(
                "seeds not complete: " + ", ".join(map(str, sorted(incomplete)))
            )
        if model in spiral_experiment.TABLE2_ROWS:
            raw_extrapolation = f"{estimates['extrapolation', 'raw'].mean:.4f}"
            for unit in ("raw", "standardized"):
                cells.append(
                    results.cell(
                        "neural_ode",
                        "Table 2",
                        spiral_experiment.TABLE2_ROWS[model],
                        column,
                        estimates[target, unit],
                        deviations=deviations + [f"{unit} units"],
                        budget=_budget(entries),
                        details={"extrapolation RMSE (raw)": raw_extrapolation},
                    )
                )

        def fmt(estimate: results.Estimate) -> str:
            return f"{estimate.mean:.4f} ± {estimate.ci95:.4f}"

        window_rows.append(
            [
                f"{noise:g}",
                label,
                column,
                fmt(estimates["window_clean", "raw"]),
                fmt(estimates["window_clean", "standardized"]),
                fmt(estimates["window_noisy", "raw"]),
                fmt(estimates["window_noisy", "standardized"]),
                len(entries),
            ]
        )
        extrap_rows.append(
            [
                f"{noise:g}",
                label,
                column,
                fmt(estimates["extrapolation", "raw"]),
                fmt(estimates["extrapolation", "standardized"]),
                len(entries),
            ]
        )
        for e in sorted(entries, key=lambda e: e["seed"]):
            seed_rows.append(
                [
                    f"{noise:g}",
                    label,
                    column,
                    e["seed"],
                    f"{e['window_clean']['raw']:.4f}",
                    f"{e['window_clean']['standardized']:.4f}",
                    f"{e['extrapolation']['raw']:.4f}",
                    e["iterations"],
                    e["status"],
                ]
            )
    statuses = [r["status"] for r in records]
    status = results.overall_status(statuses)
    return results.write_results(
        output_dir,
        paper="neural_ode",
        experiment=config.experiment,
        status=status,
        budget={
            "runs": list(config.run_dirs),
            "train_seconds": round(
                sum(r["budget"].get("train_seconds", 0.0) for r in records), 1
            ),
            "machine": results.machine_description(),
        },
        config=config_lib.to_dict(config),
        cells=cells,
        deviations=sorted(
            {
                d
                for r in records
                for d in r["deviations"]
                if not d.startswith("raw units")
            }
        )
        + ["per-run training budgets: see the per-seed table"],
        extra={
            "tables": [
                {
                    "title": "In the window (Table 2 reading), every model: "
                    "mean ± 95% CI over seeds of the pooled RMSE",
                    "header": [
                        "noise std",
                        "model",
                        "observed",
                        "clean target, raw",
                        "clean target, standardized",
                        "noisy target, raw",
                        "noisy target, standardized",
                        "seeds",
                    ],
                    "rows": window_rows,
                },
                {
                    "title": "Extrapolation (100 grid steps after the window, "
                    "noise-free targets): mean ± 95% CI over seeds of the pooled RMSE",
                    "header": [
                        "noise std",
                        "model",
                        "observed",
                        "raw",
                        "standardized",
                        "seeds",
                    ],
                    "rows": extrap_rows,
                },
                {
                    "title": "Per seed",
                    "header": [
                        "noise std",
                        "model",
                        "observed",
                        "seed",
                        "window RMSE (clean, raw)",
                        "window RMSE (standardized)",
                        "extrapolation RMSE (raw)",
                        "iterations",
                        "status",
                    ],
                    "rows": seed_rows,
                },
            ]
        },
    )
