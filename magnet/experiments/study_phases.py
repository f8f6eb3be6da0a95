"""The study's training phases: the grid, then the seeds, under a time budget.

`run_phase(study, "grid" | "seeds" | "all", ...)` runs the phase's units (one
`magnet.experiments.experiment.run` each, in its own run directory) one after
another, each resuming where it stopped and skipping complete ones, until the
budget of training minutes (summed over the units of this call; evaluations not
counted) is spent. Seeds run seed by seed (the losses of seed 0 first), and a
loss's seeds only once its grid is complete (`study.chosen_overrides`).
"""

from __future__ import annotations

import dataclasses

from common import config as config_lib
from magnet.experiments import experiment, study


def run_unit(cfg: experiment.MagnetConfig, run_dir: str, minutes: float) -> float:
    """Trains one unit for at most `minutes`; returns the training minutes spent."""
    before = _train_seconds(run_dir)
    cfg = dataclasses.replace(cfg, max_train_minutes=max(minutes, 0.5))
    config_lib.claim_output_dir(run_dir, cfg, experiment.RESUMABLE_FIELDS)
    print(f"[study] unit {run_dir}", flush=True)
    experiment.run(cfg, run_dir)
    return (_train_seconds(run_dir) - before) / 60.0


def _train_seconds(run_dir: str) -> float:
    record = study.read_record(run_dir)
    return 0.0 if record is None else float(record["budget"]["train_seconds"])


def _finished(record: dict | None, steps: int) -> bool:
    """Diverged, or complete at `steps` or more (a longer target resumes it)."""
    if record is None:
        return False
    if record["status"] == "diverged":
        return True
    return record["status"] == "complete" and record["config"]["steps"] >= steps


def units(
    cfg: study.StudyConfig, phase: str, losses: list[str], seeds: list[int]
) -> list[tuple[str, experiment.MagnetConfig | None, str]]:
    """`(run_dir, config or None, note)` of a phase's units, in running order.

    Grid: loss by loss, point by point. Seeds: seed by seed (all losses of seed
    0 first, so the first complete comparison comes as early as possible).
    """
    out = []
    if phase == "grid":
        for loss in losses if cfg.tune else []:
            for name, overrides in study.GRID[loss]:
                out.append(
                    (
                        cfg.grid_dir(loss, name),
                        cfg.unit_config(loss, 0, overrides, grid=True),
                        "",
                    )
                )
        return out
    chosen = {loss: study.chosen_overrides(cfg, loss) for loss in losses}
    target = {loss: study.target_steps(cfg, loss) for loss in losses}
    for seed in seeds:
        for loss in losses:
            if chosen[loss] is None:
                out.append(
                    (
                        cfg.seed_dir(loss, seed),
                        None,
                        f"{loss}: grid not complete, seed {seed} skipped",
                    )
                )
            else:
                out.append(
                    (
                        cfg.seed_dir(loss, seed),
                        cfg.unit_config(
                            loss, seed, chosen[loss], grid=False, steps=target[loss]
                        ),
                        "",
                    )
                )
    return out


def run_phase(
    cfg: study.StudyConfig,
    phase: str,
    losses: list[str],
    seeds: list[int],
    budget_minutes: float,
) -> float:
    """Runs a phase's units in order until the budget is spent.

    Phase "all" is "grid" then "seeds" with what is left of the budget.

    Returns:
        The training minutes spent.
    """
    if phase == "all":
        spent = run_phase(cfg, "grid", losses, seeds, budget_minutes)
        return spent + run_phase(cfg, "seeds", losses, seeds, budget_minutes - spent)
    spent = 0.0
    for run_dir, unit_cfg, note in units(cfg, phase, losses, seeds):
        if unit_cfg is None:
            print(f"[study] {note}", flush=True)
            continue
        if _finished(study.read_record(run_dir), unit_cfg.steps):
            continue
        left = budget_minutes - spent
        if left < 1.0:
            print(
                f"[study] budget of {budget_minutes:g} training minutes spent; "
                "rerun to continue",
                flush=True,
            )
            break
        spent += run_unit(unit_cfg, run_dir, left)
        if phase == "grid":
            study.save_choices(cfg)
    if phase == "grid":
        study.save_choices(cfg)
    print(f"[study] {phase}: {spent:.1f} training minutes this invocation", flush=True)
    return spent
