"""Summarises the Table 1 / App. C Table 3 Omniglot runs in one Markdown file.

`python -m maml.experiments.table1_summary --results_dir=results/maml_table1` reads
every `<results_dir>/<experiment>/results.json` written by the classification main and
writes `<results_dir>/SUMMARY.md`: one row per cell (published value, ours with the
final parameters, best-on-validation, budget, status, verdict) and, per run, the
test accuracy at every budget checkpoint. The queued issue-10 job scripts run it
after copying their results; it can be rerun at any time.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from absl import app, flags

from common import files, results


def _define_flags() -> None:
    """Defines this main's flags (only when run: other mains share the names)."""
    flags.DEFINE_string(
        "results_dir",
        "results/maml_table1",
        "Folder of <experiment>/results.json files.",
    )


def _pm(mean: float, ci95: float | None) -> str:
    return f"{mean:.2f}" + ("" if ci95 is None else f" ± {ci95:.2f}")


def summary(records: list[dict[str, Any]]) -> str:
    """The Markdown summary of classification `results.json` records."""
    lines = [
        "# MAML Omniglot cells (Table 1, App. C Table 3)",
        "",
        "The cell is the test accuracy of the final parameters (95% CI over the "
        "test tasks), as the official code tests its last checkpoint; "
        "best-on-validation is shown beside it. Budget: meta-iterations of the "
        "paper's 60,000 and training minutes on this 2-core CPU.",
        "",
        "| table | row | column | published | ours (final) | best on validation "
        "| budget | status | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in records:
        budget = rec["budget"]
        spent = (
            f"{budget['iterations']:,} of 60,000 it, "
            f"{budget['train_seconds'] / 60:.0f} min"
        )
        best = rec["extra"].get("best_on_validation", {})
        best_text = (
            f"{_pm(best['mean'], best['ci95'])} (it {best['iteration']:,})"
            if best
            else "-"
        )
        for c in rec["cells"]:
            pub, ours = c["published"], c["ours"]
            lines.append(
                "| "
                + " | ".join(
                    [
                        c["table"],
                        c["row"],
                        c["column"],
                        _pm(pub["value"], pub["ci95"]),
                        "-" if ours is None else _pm(ours["mean"], ours["ci95"]),
                        best_text,
                        spent,
                        rec["status"],
                        c["verdict"],
                    ]
                )
                + " |"
            )
    lines.append("")
    for rec in records:
        lines += [
            f"## {rec['experiment']} ({rec['status']})",
            "",
            "| meta-iterations | validation | test (95% CI) |",
            "|---|---|---|",
        ]
        lines += [
            f"| {h['iteration']:,} | {100 * h['val_accuracy']:.2f} | "
            f"{_pm(100 * h['test_accuracy'], 100 * h['test_ci95'])} |"
            for h in rec["extra"].get("history", [])
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    results_dir = flags.FLAGS.results_dir
    paths = sorted(glob.glob(os.path.join(results_dir, "*", "results.json")))
    records = [results.load_results(os.path.dirname(p)) for p in paths]
    path = os.path.join(flags.FLAGS.results_dir, "SUMMARY.md")
    files.atomic_write_text(path, summary(records))
    print(f"wrote {path} ({len(records)} runs)")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
