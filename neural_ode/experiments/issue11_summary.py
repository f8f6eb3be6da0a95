"""Summarises the issue-11 Neural ODE runs in one Markdown file for the docs.

`python -m neural_ode.experiments.issue11_summary` reads the `results.json` files
the queued issue-11 jobs copy into `results/` and writes
`results/neural_ode_issue11_SUMMARY.md`:

* Table 2 (spirals) over seeds, from `neural_ode_spiral_seeds`: every cell in raw and
  standardized units per noise level, beside the published value;
* Table 1 (MNIST): the MLP stand-in from `neural_ode_mnist_mlp160` and ResNet, RK-Net,
  ODE-Net from `neural_ode_mnist_annealed`, with budgets and deviations;
* the claims tables of `neural_ode_precision_annealed` (Fig. 3) and
  `neural_ode_memory_annealed`.

A missing input is listed as pending, so the summary can be written at any time.
"""

from __future__ import annotations

import os
from typing import Any

from absl import app, flags

from common import results


def _define_flags() -> None:
    """Defines this main's flags (only when run: other mains share the names)."""
    flags.DEFINE_string(
        "results_dir", "results", "Folder holding the neural_ode_* result folders."
    )
    flags.DEFINE_string(
        "output", "results/neural_ode_issue11_SUMMARY.md", "Markdown file to write."
    )


SOURCES = {
    "table2": "neural_ode_spiral_seeds",
    "mlp": "neural_ode_mnist_mlp160",
    "table1": "neural_ode_mnist_annealed",
    "precision": "neural_ode_precision_annealed",
    "memory": "neural_ode_memory_annealed",
}


def _load(results_dir: str, name: str) -> dict[str, Any] | None:
    path = os.path.join(results_dir, name)
    if not os.path.exists(os.path.join(path, results.RESULTS_FILE)):
        return None
    return results.load_results(path)


def _cell_rows(record: dict[str, Any], columns: tuple[str, ...] = ()) -> list[str]:
    rows = []
    for c in record["cells"]:
        if columns and c["column"] not in columns:
            continue
        ours = c["ours"]
        value = "-" if ours is None else f"{ours['mean']:.4g} ± {ours['ci95']:.2g}"
        rows.append(
            f"| {c['row']} | {c['column']} | {c['published']['value']:g} | {value} | "
            f"{results.format_budget(c['budget'] or {})} | "
            f"{'; '.join(c['deviations']) or 'none'} | {c['verdict']} |"
        )
    return rows


def _claims(record: dict[str, Any]) -> list[str]:
    rows = []
    for table in record["extra"].get("tables", []):
        if table["header"][:2] == ["paper", "ours"]:
            rows += [f"| {r[0]} | {r[1]} | {r[2]} |" for r in table["rows"]]
    return rows


def summary(records: dict[str, dict[str, Any] | None]) -> str:
    """The Markdown summary of the issue-11 records (None: not yet written)."""
    header = [
        "| row | column | published | ours | budget | deviations | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = ["# Neural ODE runs of issue 11", ""]
    for key, title in (
        ("table2", "Table 2 (spirals), in-window RMSE over seeds"),
        ("mlp", "Table 1 (MNIST), MLP stand-in, full protocol"),
        ("table1", "Table 1 (MNIST), annealed compressed schedule"),
    ):
        lines += [f"## {title}", ""]
        record = records.get(key)
        if record is None:
            lines += [f"pending: no results in {SOURCES[key]}", ""]
            continue
        lines += [f"Status: {record['status']}. Source: `results/{SOURCES[key]}`.", ""]
        lines += header + _cell_rows(record) + [""]
        if key == "table2":  # every model (time-gap RNN too) and extrapolation
            for table in record["extra"].get("tables", [])[:2]:
                lines += [
                    f"### {table['title']}",
                    "",
                    "| " + " | ".join(table["header"]) + " |",
                    "|" + "---|" * len(table["header"]),
                ]
                lines += [
                    "| " + " | ".join(map(str, r)) + " |" for r in table["rows"]
                ] + [""]
    for key, title in (
        ("precision", "Fig. 3 claims (annealed ODE-Net)"),
        ("memory", "Memory claim (annealed ODE-Net)"),
    ):
        lines += [f"## {title}", ""]
        record = records.get(key)
        if record is None:
            lines += [f"pending: no results in {SOURCES[key]}", ""]
            continue
        lines += ["| paper | ours | verdict |", "|---|---|---|"]
        lines += _claims(record) + [""]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    results_dir = flags.FLAGS.results_dir
    records = {key: _load(results_dir, name) for key, name in SOURCES.items()}
    text = summary(records)
    os.makedirs(os.path.dirname(os.path.abspath(flags.FLAGS.output)), exist_ok=True)
    with open(flags.FLAGS.output, "w") as f:
        f.write(text + "\n")
    print(f"wrote {flags.FLAGS.output}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
