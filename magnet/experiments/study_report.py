"""The study's report: per-seed runs aggregated into results.json and report.md.

`report(study, output_dir)` reads whatever units have finished (or stopped), and
writes per loss the mean error over seeds with its 95% Student-t interval and
the per-seed values, the abstract's claims decided on the paired per-seed
errors (`magnet.experiments.verdicts`), the mean error curves with triplet's
best error (the iterations claim), the tuning grid, and the protocol's
deviations from the paper. It can run at any time.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from common import config as config_lib
from common import results, stats
from magnet import run_files
from magnet.experiments import experiment, study, verdicts


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def _est(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    mean, half = stats.mean_t_ci(finite)
    if not math.isfinite(half):
        return f"{100 * mean:.2f} (1 seed)"
    return f"{100 * mean:.2f} ± {100 * half:.2f}"


def verdict_suffix(
    complete: int, total: int, flat_by_loss: dict[str, str], max_steps: int
) -> str:
    """What every claim's verdict adds about the runs it rests on.

    Args:
        complete: Final runs complete.
        total: Final runs planned (losses x seeds).
        flat_by_loss: Per loss, `study.flat_last_quarter` of its mean curve
            ("yes (...)", "no (...)" or "-").
        max_steps: The iteration cap of the extension rule.

    Returns:
        "" when every run is complete and every mean curve is flat; else a
        bracketed note: runs missing, or the budget cap reached before the
        curves flattened (the issue's "flat over the last quarter" rule unmet,
        so the verdict holds at that budget, not at convergence).

        >>> note = verdict_suffix(9, 9, {"magnet": "no (-1.7 pts)"}, 40_000)
        >>> note.startswith(" [at the 40,000-iteration cap") and "magnet" in note
        True
    """
    if complete < total:
        return f" [{complete} of {total} runs complete; not final]"
    moving = [loss for loss, flat in flat_by_loss.items() if flat.startswith("no")]
    if not moving:
        return ""
    return (
        f" [at the {max_steps:,}-iteration cap, mean error not yet flat over the "
        f"last quarter for {', '.join(moving)}: not at convergence]"
    )


def report(cfg: study.StudyConfig, output_dir: str) -> dict[str, Any]:
    """Aggregates finished and partial runs into results.json + report.md."""
    hierarchy = cfg.experiment == "hierarchy"
    primary = study.primary_key(cfg.experiment)
    rule = {
        "magnet": "magnet rule, running sigma^2 (paper)",
        "softmax": "softmax argmax",
        "triplet": "kNN",
    }
    finals: dict[str, dict[int, dict[str, float]]] = {}
    curves: dict[str, list[list[dict[str, float]]]] = {}
    statuses, budget_seconds, refresh = [], 0.0, []
    error_rows, flat_by_loss = [], {}
    for loss in cfg.losses:
        finals[loss], curves[loss] = {}, []
        per_seed, seconds, iters, num_test = [], [], [], 1
        target = study.target_steps(cfg, loss)
        for seed in cfg.seeds:
            run_dir = cfg.seed_dir(loss, seed)
            record = study.read_record(run_dir)
            curve = study.unit_curve(run_dir, loss)
            if record is None or not curve:
                per_seed.append(f"s{seed}: not run")
                statuses.append("not run")
                continue
            status = record["status"]
            if status == "complete" and record["config"]["steps"] < target:
                status = f"extending to {target:,}"  # Not flat yet (target_steps).
            statuses.append(status)
            num_test = int(record["extra"].get("test_examples", 1))
            final = curve[-1]
            if status == "complete":  # Means, curves and claims: finished runs only.
                finals[loss][seed] = final
                curves[loss].append(curve)
            budget_seconds += float(record["budget"]["train_seconds"])
            seconds.append(float(record["budget"]["train_seconds"]))
            iters.append(int(final["step"]))
            mark = "" if status == "complete" else f" ({status})"
            per_seed.append(f"s{seed}: {_pct(final.get(primary))}{mark}")
            info = os.path.join(run_dir, "checkpoints", loss, run_files.STATE_FILE)
            if loss == "magnet" and os.path.exists(info):
                with open(info) as f:
                    state = json.load(f)
                if state["train_seconds"] > 0:
                    refresh.append(state["refresh_seconds"] / state["train_seconds"])
        got = finals[loss].values()

        def values(key: str, got=got) -> list[float]:
            return [e[key] for e in got if key in e]

        row = [loss]
        if hierarchy:
            row.append(_est(values("fine_knn_error")))
        flat = study.flat_last_quarter(
            study.mean_curve(curves[loss], primary), target, num_test
        )
        flat_by_loss[loss] = flat
        row += [
            _est(values("error")) + f" ({rule[loss]})",
            "; ".join(per_seed),
            _est(values("knn_error")),
            _est(values("magnet_error_running")),
            _est(values("magnet_error_recomputed")),
            _est(values("softmax_error")),
            ", ".join(f"{i:,}" for i in iters) or "-",
            ", ".join(f"{s / 60:.1f}" for s in seconds) or "-",
            flat,
        ]
        error_rows.append(row)
    header = (
        ["loss"]
        + (["fine-label kNN error (%)"] if hierarchy else [])
        + [
            ("coarse " if hierarchy else "") + "error, own rule (%, mean ± "
            "95% t-CI over seeds)",
            "per seed (%)",
            "kNN (%)",
            "magnet rule, running sigma^2 (%)",
            "magnet rule, recomputed sigma^2 (%)",
            "softmax argmax (%)",
            "iterations per seed",
            "training minutes per seed",
            "mean curve flat over the last quarter",
        ]
    )

    claim_rows, details = [], {}
    for key in study.claims_for(cfg.experiment):
        claim = study.stated(key)
        if key == "speed":
            target_curve = study.mean_curve(curves.get("triplet", []), "error")
            magnet_curve = study.mean_curve(curves.get("magnet", []), "error")
            ours, verdict, info = verdicts.speed_verdict(
                magnet_curve or None, target_curve or None, cfg.eval_every
            )
            details["speed"] = info
        else:
            baseline = "triplet" if "triplet" in key else "softmax"
            ours_m, ours_b = finals.get("magnet", {}), finals.get(baseline, {})
            paired = [s for s in cfg.seeds if s in ours_m and s in ours_b]
            ours, verdict = verdicts.seed_gain_verdict(
                [ours_m[s][primary] for s in paired],
                [ours_b[s][primary] for s in paired],
                claim.low,
                claim.high,
            )
        claim_rows.append([claim.statement, claim.source, ours, verdict])
    complete = sum(s == "complete" for s in statuses)
    total = len(cfg.losses) * len(cfg.seeds)
    status = "complete" if complete == total else "cut short"
    suffix = verdict_suffix(complete, total, flat_by_loss, cfg.max_steps)
    for row in claim_rows:
        row[3] += suffix

    target = details.get("speed", {}).get("target_error")
    figures = []
    if any(curves.values()):
        os.makedirs(output_dir, exist_ok=True)
        study.plot_curves(
            os.path.join(output_dir, study.CURVES_FIGURE),
            {k: v for k, v in curves.items() if v},
            {k: primary for k in curves},
            target,
            f"{cfg.experiment}, {cfg.dataset}: test error by loss (thin: seeds)",
        )
        figures.append(study.CURVES_FIGURE)
    grid_rows = []
    for loss in cfg.losses:
        if not cfg.tune:
            continue
        _, rows = study.choose(cfg, loss)
        grid_rows += [[loss, *r] for r in rows]
    tables = [
        {
            "title": "The abstract's claims, decided on the per-seed runs",
            "header": ["claim (paper states)", "source", "ours", "verdict"],
            "rows": claim_rows,
        },
        {
            "title": f"Test error by loss ({cfg.dataset}, seeds {list(cfg.seeds)})",
            "header": header,
            "rows": error_rows,
        },
    ]
    if details.get("speed"):
        tables.append(
            experiment.speed_table(
                "Iterations to triplet's best error (mean curves over seeds)",
                details["speed"],
            )
        )
    if grid_rows:
        tables.append(
            {
                "title": (
                    f"Tuning grid ({cfg.grid_steps:,} iterations, validation "
                    f"split of {cfg.validation_per_class} training images per "
                    "class, seed 0)"
                ),
                "header": [
                    "loss",
                    "point",
                    "values",
                    "validation error (%)",
                    "status",
                    "",
                ],
                "rows": grid_rows,
            }
        )
    elif cfg.tuned_from:
        tables.append(
            {
                "title": "Tuned values",
                "header": ["source"],
                "rows": [
                    [
                        f"the grid of {cfg.tuned_from} (K raised to at "
                        f"least {cfg.min_clusters_per_class} for the "
                        "coarse labels' impostors)"
                    ]
                ],
            }
        )
    else:
        tables.append(
            {
                "title": "Tuned values",
                "header": ["source"],
                "rows": [
                    [
                        "no grid: every loss uses the base values of "
                        "magnet.trainer.TrainSettings (learning rate "
                        "1e-3; triplet margin 0.2; alpha 1, K 8, 12x4)"
                    ]
                ],
            }
        )
    deviations = [
        f"Dataset {cfg.dataset} instead of "
        f"{experiment.PAPER_DATASETS[cfg.experiment]}; a 0.1M-parameter CNN instead "
        "of GoogLeNet.",
        "Every loss of a seed starts from the same random initialisation (no "
        "pretraining, no warm start on the target labels).",
        f"Budget: at least {cfg.steps:,} iterations per run (batch 48), extended "
        f"by {cfg.extend_by:,} (up to {cfg.max_steps:,}) while a loss's mean "
        "test-error curve over the seeds is not flat over its last quarter (the "
        "final runs have no validation split; the same stopping rule for every "
        f"loss); test evaluations every {cfg.eval_every:,} iterations and at "
        f"{cfg.checkpoint_every}·2^j before.",
        f"Magnet cluster index re-clustered every {cfg.refresh_every:,} iterations "
        "from the embeddings kept from training batches, the training set "
        f"re-embedded every {cfg.reembed_every:,}"
        + (
            f" (refresh time {100 * min(refresh):.1f}-{100 * max(refresh):.1f}% of "
            "training time in these runs)"
            if refresh
            else ""
        )
        + ".",
        *(
            f"Tuning grid, {loss}: {edge}, at the grid's edge (the grid varies one "
            "factor at a time around its base point, so the other factors were "
            "tried at the base values)."
            for loss in cfg.losses
            for edge in study.grid_edges(
                loss, study.chosen_overrides(cfg, loss), dict(cfg.base)
            )
        ),
        "Claims 1-2 and 4: 95% Student-t intervals over seeds of the paired "
        "difference; claim 3 on the mean curves (evaluation resolution).",
    ]
    budget = {
        "train_seconds": round(budget_seconds, 1),
        "runs_complete": complete,
        "runs_planned": total,
        "iterations": max(study.target_steps(cfg, loss) for loss in cfg.losses),
        "iterations per loss": {
            loss: study.target_steps(cfg, loss) for loss in cfg.losses
        },
        "machine": results.machine_description(),
    }
    return results.write_results(
        output_dir,
        paper="magnet",
        experiment=f"{cfg.experiment}_{cfg.dataset}",
        status=status,
        budget=budget,
        config=config_lib.to_dict(cfg),
        cells=[],
        deviations=deviations,
        figures=figures,
        extra={
            "tables": tables,
            "claims": details,
            "finals": {k: {str(s): e for s, e in v.items()} for k, v in finals.items()},
        },
    )
