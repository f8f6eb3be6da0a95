"""Results of a reproduction run: `results.json` and the `report.md` made from it.

`results.json` is the machine-readable record: for every table cell the published
value (looked up in `common.published`, with its source), our estimate (mean and 95%
confidence interval), the verdict, and the protocol deviations; plus the run's
budget (iterations, wall time, machine) and status. `report.md` is rendered from
`results.json` alone (`render_report`), so it can be regenerated at any time with
`python -m common.report <run_dir>`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from common import files, machine, published
from common.stats import Estimate, mean_ci95  # noqa: F401 (reports use results.*)

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
STATUSES = ("complete", "cut short", "diverged")


def overall_status(statuses) -> str:
    """A run's status from its parts': "diverged" if any diverged, else "cut
    short" if any was cut short, else "complete" (also for no parts)."""
    statuses = set(statuses)
    if "diverged" in statuses:
        return "diverged"
    return "complete" if statuses <= {"complete"} else "cut short"


def verdict(
    pub: dict[str, Any] | None, ours: dict[str, Any] | None, higher_is_better: bool
) -> str:
    """Compares our estimate with the published value.

    Returns one of: "within the published 95% CI" (our mean lies inside the
    published interval), "consistent (published value inside our 95% CI)",
    "inconclusive" (our interval is wider than the published value itself, so it
    cannot confirm or refute it), "better" / "worse" (outside both intervals, in
    the direction of improvement), or "not measured" / "no published value".
    """
    if ours is None:
        return "not measured"
    if pub is None:
        return "no published value"
    if not all(math.isfinite(v) for v in (ours["mean"], ours["ci95"])):
        return "diverged (non-finite result)"
    diff = ours["mean"] - pub["value"]
    if pub.get("ci95") is not None and abs(diff) <= pub["ci95"]:
        return "within the published 95% CI"
    if ours["ci95"] > abs(pub["value"]):
        return "inconclusive (our 95% CI is wider than the published value)"
    if abs(diff) <= ours["ci95"]:
        return "consistent (published value inside our 95% CI)"
    better = diff > 0 if higher_is_better else diff < 0
    return "better" if better else "worse"


def machine_description() -> str:
    """One line naming the machine a budget was spent on (`common.machine`)."""
    return machine.description()


def cell(
    paper: str,
    table: str,
    row: str,
    column: str,
    ours: Estimate | None,
    deviations: Sequence[str] = (),
    budget: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One table cell of `results.json`, with the published value looked up.

    Args:
        paper, table, row, column: The cell in `common.published`.
        ours: Our estimate, or None when not measured.
        deviations: Protocol deviations that apply to this cell.
        budget: Compute behind this cell when it differs from the run's budget
            (e.g. a baseline trained for another number of iterations).
        details: Extra facts for this cell, shown beside the row label
            (e.g. a tuned step size).
    """
    entry = published.lookup(paper, table, row, column)
    pub = {
        "value": entry.value,
        "ci95": entry.ci95,
        "source": entry.source,
        "unit": entry.unit,
    }
    ours_d = None if ours is None else dataclasses.asdict(ours)
    return {
        "table": table,
        "row": row,
        "column": column,
        "budget": budget,
        "published": pub,
        "ours": ours_d,
        "higher_is_better": entry.higher_is_better,
        "verdict": verdict(pub, ours_d, entry.higher_is_better),
        "deviations": list(deviations),
        "details": details or {},
    }


def write_results(
    directory: str,
    *,
    paper: str,
    experiment: str,
    status: str,
    budget: dict[str, Any],
    config: dict[str, Any],
    cells: Sequence[dict[str, Any]],
    deviations: Sequence[str] = (),
    figures: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes `results.json` and `report.md` into `directory`; returns the record.

    Args:
        directory: The run directory.
        paper: Key of `common.published.PAPERS`.
        experiment: Name of the experiment configuration.
        status: One of `STATUSES`.
        budget: Compute spent: iterations, wall time, machine, ...
        config: The resolved config as a dict.
        cells: Table cells made with `cell`.
        deviations: Run-wide protocol deviations.
        figures: Paths (relative to `directory`) of the figures written.
        extra: Anything else worth keeping (full curves, tuned values). Its
            optional "tables" entry, a list of `{"title", "header", "rows"}`, is
            rendered into the report after the published-number tables.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    record = {
        "paper": paper,
        "paper_title": published.PAPERS[paper],
        "experiment": experiment,
        "status": status,
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "budget": dict(budget),
        "config": config,
        "deviations": list(deviations),
        "cells": list(cells),
        "figures": list(figures),
        "extra": extra or {},
    }
    os.makedirs(directory, exist_ok=True)
    files.atomic_write_json(os.path.join(directory, RESULTS_FILE), record)
    files.atomic_write_text(os.path.join(directory, REPORT_FILE), render_report(record))
    return record


def _fmt(value: float | None, ci95: float | None = None, digits: int = 2) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    if ci95 is not None:
        text += f" ± {ci95:.{digits}f}"
    return text


def _digits(unit: str) -> int:
    return 3 if unit in ("MSE", "RMSE") else 2


def format_budget(budget: dict[str, Any]) -> str:
    """A short budget string for a table cell."""
    parts = []
    if "iterations" in budget:
        it = f"{budget['iterations']:,} it"
        if budget.get("target_iterations") not in (None, budget["iterations"]):
            it += f" of {budget['target_iterations']:,}"
        parts.append(it)
    if "steps" in budget:
        steps = f"{budget['steps']:,} steps"
        if budget.get("target_steps") not in (None, budget["steps"]):
            steps += f" of {budget['target_steps']:,}"
        parts.append(steps)
    if "epochs" in budget:
        parts.append(f"{budget['epochs']:g} epochs")
    if "wall_time_s" in budget:
        parts.append(f"{budget['wall_time_s'] / 60:.1f} min")
    elif "train_seconds" in budget:
        parts.append(f"{budget['train_seconds'] / 60:.1f} min training")
    # The CPU, where recorded: minutes on two CPUs are not the same compute.
    cpu = machine.short_name(str(budget.get("machine", "")))
    if cpu and parts:
        parts.append(cpu)
    return ", ".join(parts) if parts else "-"


def render_report(record: dict[str, Any]) -> str:
    """Renders the Markdown report of a `results.json` record."""
    budget = record["budget"]
    lines = [
        f"# {record['experiment']}: reproduction report",
        "",
        f"Paper: {record['paper_title']}",
        "",
        f"Status: **{record['status']}**. Written {record['written']}.",
        "",
        "Budget: " + ", ".join(f"{k} = {v}" for k, v in budget.items()),
        "",
    ]
    if record["deviations"]:
        lines += ["Protocol deviations:", ""]
        lines += [f"- {d}" for d in record["deviations"]] + [""]
    tables: dict[str, list[dict[str, Any]]] = {}
    for c in record["cells"]:
        tables.setdefault(c["table"], []).append(c)
    status_note = "" if record["status"] == "complete" else f" ({record['status']})"
    for name, cells in tables.items():
        lines += [
            f"## {name}",
            "",
            "| row | column | published | ours (mean ± 95% CI) | budget "
            "| protocol deviations | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in cells:
            pub, ours = c["published"], c["ours"]
            digits = _digits(pub["unit"] if pub else "")
            row = c["row"]
            if c.get("details"):
                row += (
                    " ("
                    + ", ".join(
                        f"{k.replace('_', ' ')} {v}" for k, v in c["details"].items()
                    )
                    + ")"
                )
            lines.append(
                "| "
                + " | ".join(
                    [
                        row,
                        c["column"],
                        _fmt(pub and pub["value"], pub and pub["ci95"], digits),
                        "-"
                        if ours is None
                        else _fmt(ours["mean"], ours["ci95"], digits),
                        format_budget(c.get("budget") or budget),
                        "; ".join(c["deviations"]) or "none",
                        c["verdict"] + status_note,
                    ]
                )
                + " |"
            )
        lines.append("")
        units = sorted({c["published"]["unit"] for c in cells if c["published"]})
        sources = sorted(
            {
                c["published"]["source"].split(", row")[0]
                for c in cells
                if c["published"]
            }
        )
        lines += [
            f"Unit: {', '.join(units)}. Published values: {'; '.join(sources)}.",
            "",
        ]
    for extra_table in record.get("extra", {}).get("tables", []):
        lines += [
            f"## {extra_table['title']}",
            "",
            "| " + " | ".join(extra_table["header"]) + " |",
            "|" + "---|" * len(extra_table["header"]),
        ]
        lines += [
            "| " + " | ".join(str(v) for v in row) + " |" for row in extra_table["rows"]
        ]
        lines.append("")
    if record["figures"]:
        lines += ["## Figures", ""]
        lines += [f"![{os.path.basename(f)}]({f})" for f in record["figures"]] + [""]
    return "\n".join(lines)


def load_results(directory: str) -> dict[str, Any]:
    """Reads `results.json` of a run directory."""
    with open(os.path.join(directory, RESULTS_FILE)) as f:
        return json.load(f)


def regenerate_report(directory: str) -> str:
    """Rewrites `report.md` of a run from its `results.json`; returns the path."""
    path = os.path.join(directory, REPORT_FILE)
    files.atomic_write_text(path, render_report(load_results(directory)))
    return path
