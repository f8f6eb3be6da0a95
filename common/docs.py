"""The generated tables of README.md and docs/: `python -m common.docs [--check]`.

Every results table in the README and in `docs/*.md` sits between two markers,

    <!-- generated: KIND [ARGUMENT ...] -->
    ...
    <!-- end generated -->

and is rendered from the runs' `results.json` files (whose cells carry the
published values of `common.published`), never typed by hand. This command
re-renders every block in place; `--check` changes nothing and exits with status 1
naming each block whose text differs from what the results give, so the docs and
the reports cannot drift (a test runs it). Kinds:

- `summary`: the README's table, one line per reproduced table or figure
  (`common.docs_plan.SUMMARY`): our number, the published one, the verdict, a
  link.
- `cells RUN_DIR`: every published-number cell of one run.
- `extra RUN_DIR INDEX`: the run's INDEX-th extra table (0-based).
- `plan NAME`: the cells of `common.docs_plan.PLANS[NAME]` with the registry's
  published value, our value where a run has reported it and "queued" where
  none has.
- `maml-table2`: App. C Table 2 over seeds
  (`maml.experiments.table2_report.readme_block`).
- `magnet-study`: the magnet study at convergence
  (`magnet.experiments.readme_table.block`).

Links inside a block are written relative to the page that holds it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # two blocks import TensorFlow

import glob  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from common import files, published, results  # noqa: E402

BEGIN = re.compile(r"<!-- generated: (?P<spec>[^>]*?) -->\n")
END = "<!-- end generated -->"
PAGES = ("README.md", "docs/*.md")
COMMAND = "python -m common.docs"


from common.docs_plan import (  # noqa: E402
    PLANS,
    SINUSOID_SEEDS,
    SUMMARY,
    Cell,
    ClaimLine,
    Line,
)

# --- Reading results and formatting -----------------------------------------------


def _load(root: str, run: str) -> dict[str, Any] | None:
    path = os.path.join(root, run, results.RESULTS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _find(record: dict[str, Any] | None, cell: Cell) -> dict[str, Any] | None:
    if record is None:
        return None
    for c in record["cells"]:
        if (c["table"], c["row"], c["column"]) != (cell.table, cell.row, cell.column):
            continue
        text = json.dumps(
            [c.get("details", {}), c.get("deviations", [])], ensure_ascii=False
        )
        if all(m in text for m in cell.match):
            return c
    return None


def _digits(unit: str) -> int:
    return 3 if unit in ("MSE", "RMSE", "parameters (millions)") else 2


def _number(value: float, digits: int) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e4:
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def format_published(entry: published.Published) -> str:
    """The registry value as printed in our tables (with its CI when printed)."""
    text = f"{entry.value:g}"
    return text if entry.ci95 is None else f"{text} ± {entry.ci95:g}"


def format_ours(found: dict[str, Any] | None, unit: str, with_ci: bool = True) -> str:
    """Our estimate of a results.json cell ("-" when the cell has none)."""
    if found is None or found.get("ours") is None:
        return "-"
    ours, digits = found["ours"], _digits(unit)
    text = _number(ours["mean"], digits)
    if with_ci and ours.get("ci95"):
        text += f" ± {_number(ours['ci95'], digits)}"
    return text


def short_verdict(text: str) -> str:
    """A verdict without its parenthesised explanation."""
    text = re.split(r" \(| \[|: ", text, maxsplit=1)[0]
    return text.replace("within the published 95% CI", "within published CI")


def _status(record: dict[str, Any] | None) -> str:
    if record is None or record.get("status") == "complete":
        return ""
    return f" ({record['status']})"


def _link(path: str, text: str) -> str:
    return f"[{text}]({path})"


def _row(cells: Sequence[str]) -> str:
    return (
        "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"
    )


def _header(*names: str) -> list[str]:
    return [_row(names), "|" + "---|" * len(names)]


# --- Renderers ---------------------------------------------------------------------


def _line_cells(line: Line, root: str) -> tuple[list[str], str, str]:
    """ours (one value per cell), published and verdict of a cells line."""
    ours, pubs, verdicts = [], [], []
    for cell in line.cells:
        entry = published.lookup(cell.paper, cell.table, cell.row, cell.column)
        record = _load(root, cell.run)
        found = _find(record, cell)
        pubs.append(format_published(entry))
        if found is None or found.get("ours") is None:
            ours.append("-")
            verdicts.append(line.missing)
        else:
            ours.append(format_ours(found, entry.unit, with_ci=len(line.cells) == 1))
            verdicts.append(short_verdict(found["verdict"]) + _status(record))
    if len(set(verdicts)) == 1 and len(verdicts) > 1:
        verdict = verdicts[0]
        if verdict != line.missing:
            verdict += f" (all {len(verdicts)})"
    else:
        verdict = " / ".join(verdicts)
    return ours, " / ".join(pubs), verdict


def _claim_rows(
    record: dict[str, Any], claim_column: int
) -> list[tuple[str, str, str]]:
    """(claim, ours, short verdict) of each row of a run's claims table."""
    table = record["extra"]["tables"][0]
    return [
        (str(r[claim_column]), str(r[-2]), short_verdict(str(r[-1])))
        for r in table["rows"]
    ]


def _claim_summary(line: ClaimLine, root: str) -> list[str]:
    """ours, published (the claims) and verdict of a claims line."""
    claims: list[tuple[str, str, str]] = []
    statuses = set()
    for run in line.runs:
        record = _load(root, run)
        if record is not None:
            claims += _claim_rows(record, line.claim_column)
            statuses.add(_status(record))
    if not claims:
        return ["-", "-", "queued"]
    # A bracketed tail names one measurement of a claim ("... (Fig. 3c)
    # [training log, ...]"): the claim itself is the text before it.
    statements = list(dict.fromkeys(c[0].split(" [")[0] for c in claims))
    ours = "; ".join(c[1] for c in claims)
    if all(c[1] == "-" for c in claims):
        ours = "-"
    elif len(statements) < len(claims):
        ours = f"{len(claims)} cells"
    elif len(ours) > 90:
        ours = "see docs"
    pub = "; ".join(statements)
    if len(pub) > 120:
        pub = f"{len(statements)} claims of the paper's text"
    counts: dict[str, int] = {}
    for c in claims:
        counts[c[2]] = counts.get(c[2], 0) + 1
    if len(claims) == 1:
        verdict = claims[0][2]
    else:
        verdict = ", ".join(f"{v}: {n} of {len(claims)}" for v, n in counts.items())
    return [ours, pub, verdict + "".join(sorted(statuses))]


def render_summary(root: str) -> str:
    """The README's summary table, one line per reproduced table or figure."""
    lines = _header("reproduced (link: details)", "ours", "published", "verdict")
    for line in SUMMARY:
        what = _link(line.page, line.what)
        if isinstance(line, Line):
            ours, pub, verdict = _line_cells(line, root)
            lines.append(_row([what, " / ".join(ours), pub, verdict]))
            continue
        lines.append(_row([what, *_claim_summary(line, root)]))
    lines += [
        "",
        "Published values and claims: `common/published.py`. "
        f"Regenerate with `{COMMAND}`.",
    ]
    return "\n".join(lines)


def render_cells(root: str, run: str) -> str:
    """Every published-number cell of one run, with its budget and deviations."""
    record = _load(root, run)
    if record is None:
        return f"No results yet in `{run}/` (queued)."
    report = _link(os.path.join(run, results.REPORT_FILE), "report")
    lines = [
        f"Status: **{record['status']}**; {report}.",
        "",
        *_header(
            "row",
            "column",
            "published",
            "ours (mean ± 95% CI)",
            "budget",
            "deviations",
            "verdict",
        ),
    ]
    for c in record["cells"]:
        pub = c["published"]
        entry = published.lookup(record["paper"], c["table"], c["row"], c["column"])
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
            _row(
                [
                    row,
                    c["column"],
                    format_published(entry),
                    format_ours(c, pub["unit"] if pub else ""),
                    results.format_budget(c.get("budget") or record["budget"]),
                    "; ".join(c["deviations"]) or "none",
                    c["verdict"] + _status(record),
                ]
            )
        )
    return "\n".join(lines)


def render_extra(root: str, run: str, index: int) -> str:
    """The run's `index`-th extra table (`results.json` extra.tables)."""
    record = _load(root, run)
    if record is None:
        return f"No results yet in `{run}/` (queued)."
    table = record["extra"]["tables"][index]
    report = _link(os.path.join(run, results.REPORT_FILE), "report")
    lines = [
        f"**{table['title']}** ({report})",
        "",
        *_header(*map(str, table["header"])),
    ]
    lines += [_row([str(v) for v in row]) for row in table["rows"]]
    return "\n".join(lines)


def render_plan(root: str, name: str) -> str:
    """The planned cells of `PLANS[name]`: published, ours or "queued", verdict."""
    lines = _header(
        "cell", "published", "ours (mean ± 95% CI)", "verdict", "budget", "run"
    )
    for cell in PLANS[name]:
        entry = published.lookup(cell.paper, cell.table, cell.row, cell.column)
        record = _load(root, cell.run)
        found = _find(record, cell)
        label = cell.label or f"{cell.row}, {cell.column}"
        if found is None or found.get("ours") is None:
            lines.append(
                _row(
                    [
                        label,
                        format_published(entry),
                        "-",
                        "queued",
                        "-",
                        f"`{cell.run}/`",
                    ]
                )
            )
            continue
        lines.append(
            _row(
                [
                    label,
                    format_published(entry),
                    format_ours(found, entry.unit),
                    found["verdict"] + _status(record),
                    results.format_budget(found.get("budget") or record["budget"]),
                    _link(os.path.join(cell.run, results.REPORT_FILE), "report"),
                ]
            )
        )
    return "\n".join(lines)


def _strip_markers(text: str, begin: str, end: str) -> str:
    lines = text.split("\n")
    return "\n".join(x for x in lines if x not in (begin, end)).strip("\n")


def render_maml_table2(root: str) -> str:
    """App. C Table 2 over seeds, from `results/maml_sinusoid_seeds`."""
    from maml.experiments import table2_report  # noqa: PLC0415 (only this block)

    record = _load(root, SINUSOID_SEEDS)
    if record is None:
        return f"No results yet in `{SINUSOID_SEEDS}/` (queued)."
    text = table2_report.readme_block(record)
    return _strip_markers(text, table2_report.README_BEGIN, table2_report.README_END)


def render_magnet_study(root: str) -> str:
    """The magnet study's claims and per-loss errors (`magnet.readme_table`)."""
    from magnet.experiments import readme_table  # noqa: PLC0415 (only this block)

    text = readme_table.block(readme_table.load(os.path.join(root, "results")))
    return _strip_markers(text, readme_table.START, readme_table.END)


RENDERERS: dict[str, Callable[..., str]] = {
    "summary": render_summary,
    "cells": render_cells,
    "extra": lambda root, run, index: render_extra(root, run, int(index)),
    "plan": render_plan,
    "maml-table2": render_maml_table2,
    "magnet-study": render_magnet_study,
}


# --- Pages -------------------------------------------------------------------------

_LINK = re.compile(r"(\]\()([^)#\s]+)([)#])")


def relink(text: str, page: str, root: str) -> str:
    """Rewrites repository-relative link targets as relative to `page`."""
    page_dir = os.path.dirname(page)
    if not page_dir:
        return text

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if (
            "://" in target
            or target.startswith(("/", "../", "./"))
            or not (
                os.path.exists(os.path.join(root, target))
                or target.startswith(("results/", "docs/"))
            )
        ):
            return m.group(0)
        return m.group(1) + os.path.relpath(target, page_dir) + m.group(3)

    return _LINK.sub(fix, text)


def render_block(spec: str, page: str, root: str) -> str:
    """The text of one generated block (between its markers)."""
    kind, *args = spec.split()
    if kind not in RENDERERS:
        raise ValueError(
            f"{page}: unknown generated block kind {kind!r} "
            f"(known: {', '.join(RENDERERS)})"
        )
    return relink(RENDERERS[kind](root, *args), page, root)


def render_page(text: str, page: str, root: str) -> tuple[str, list[str]]:
    """The page with every generated block re-rendered; and the specs found."""
    out, specs, pos = [], [], 0
    for m in BEGIN.finditer(text):
        if m.start() < pos:
            continue
        end = text.find(END, m.end())
        if end < 0:
            raise ValueError(f"{page}: block '{m.group('spec')}' has no {END!r}")
        out.append(text[pos : m.end()])
        out.append("\n" + render_block(m.group("spec"), page, root) + "\n\n")
        specs.append(m.group("spec"))
        pos = end
    out.append(text[pos:])
    return "".join(out), specs


def pages(root: str) -> list[str]:
    """The pages holding generated blocks, relative to `root`."""
    found = []
    for pattern in PAGES:
        found += sorted(
            os.path.relpath(p, root) for p in glob.glob(os.path.join(root, pattern))
        )
    return found


def generated_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of every generated block, markers included."""
    spans = []
    for m in BEGIN.finditer(text):
        end = text.find(END, m.end())
        if end >= 0:
            spans.append((m.start(), end + len(END)))
    return spans


def update(root: str, check: bool = False) -> list[str]:
    """Re-renders every page; returns the pages whose blocks were (or would be)
    changed. With `check`, nothing is written."""
    changed = []
    for page in pages(root):
        path = os.path.join(root, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new, _ = render_page(text, page, root)
        if new != text:
            changed.append(page)
            if not check:
                files.atomic_write_text(path, new)
    return changed


def main(argv: Sequence[str]) -> int:
    """`python -m common.docs [--check] [--root=DIR]`; returns the exit status."""
    check = "--check" in argv
    root = "."
    for arg in argv:
        if arg.startswith("--root="):
            root = arg.split("=", 1)[1]
        elif arg != "--check":
            print(
                f"usage: {COMMAND} [--check] [--root=DIR]; got {arg!r}", file=sys.stderr
            )
            return 2
    changed = update(root, check=check)
    if check and changed:
        print(
            "generated blocks differ from the results in: "
            + ", ".join(changed)
            + f" (run `{COMMAND}`)",
            file=sys.stderr,
        )
        return 1
    print(
        ("up to date: " if not changed else "rewrote: ")
        + ", ".join(changed or pages(root))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
