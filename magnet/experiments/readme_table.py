"""Renders the magnet-study tables (docs/magnet.md's block, by `common.docs`).

Run: `python -m magnet.experiments.readme_table` prints the block;
`python -m common.docs` writes it into docs/magnet.md (the README no longer
holds it).

Reads `results/magnet_<experiment>_<dataset>/results.json` of every study
(`magnet.experiments.study.STUDIES`) and renders the block between
`<!-- magnet-study:start -->` and `<!-- magnet-study:end -->`: per
claim and dataset, our numbers (means over seeds), the verdict and how many of
the planned runs are complete; then, per dataset, each loss's error (mean ±
95% t-CI over seeds, with the rule used), the per-seed values and the error
curves (with triplet's best error, for the iterations claim). Nothing outside
the markers changes. `--check` only prints the block.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from magnet.experiments import study

FLAGS = flags.FLAGS
START = "<!-- magnet-study:start -->"
END = "<!-- magnet-study:end -->"


def load(results_root: str) -> dict[str, dict]:
    """`{study name: results record}` of the studies that have a report."""
    out = {}
    for name, cfg in study.STUDIES.items():
        path = os.path.join(
            results_root, f"magnet_{cfg.experiment}_{cfg.dataset}", "results.json"
        )
        if os.path.exists(path):
            with open(path) as f:
                out[name] = json.load(f)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def block(records: dict[str, dict]) -> str:
    """The Markdown between the markers."""
    lines = [START, ""]
    if not records:
        lines += [
            "No magnet study has reported yet (the runs are queued; see "
            "`python -m magnet.experiments.queue_study`).",
            "",
            END,
        ]
        return "\n".join(lines)
    lines += [
        "| study | claim (abstract) | ours | verdict | runs complete |",
        "|---|---|---|---|---|",
    ]
    for name, rec in records.items():
        budget = rec["budget"]
        runs = f"{budget['runs_complete']} of {budget['runs_planned']}"
        claims = rec["extra"]["tables"][0]["rows"]
        for claim, _, ours, verdict in claims:
            lines.append(
                f"| {name} | {_cell(claim)} | {_cell(ours)} | "
                f"{_cell(verdict)} | {runs} |"
            )
    lines.append("")
    for name, rec in records.items():
        table = rec["extra"]["tables"][1]
        lines += [
            f"**{name}** ({table['title']}; report: "
            f"`results/magnet_{rec['experiment']}/report.md`)",
            "",
        ]
        header = table["header"][:4]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [
            "| " + " | ".join(_cell(str(c)) for c in row[:4]) + " |"
            for row in table["rows"]
        ]
        lines.append("")
        if study.CURVES_FIGURE in rec.get("figures", []):
            path = f"results/magnet_{rec['experiment']}/{study.CURVES_FIGURE}"
            lines += [f"![test error against iterations, {name}]({path})", ""]
    lines.append(END)
    return "\n".join(lines)


def update(readme: str, text: str) -> str:
    """README text with the block replaced (appended if the markers are absent)."""
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        return head + text + tail
    return readme.rstrip("\n") + "\n\n" + text + "\n"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    print(block(load(FLAGS.results_dir)))
    if not FLAGS.check:
        print(
            "docs/magnet.md holds this block; `python -m common.docs` regenerates it "
            "there (this command no longer writes README.md)"
        )


def define_flags() -> None:
    """Defines this main's flags (only when run as a program: no clash with the
    same names in other mains imported by one test process)."""
    flags.DEFINE_string("results_dir", "results", "Results folder.")
    flags.DEFINE_bool("check", False, "Print the block, change nothing.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
