"""README.md and docs/: size, links, runnable snippets, tables generated from results.

The README stays short (at most 10 KB) and holds the CI's test command verbatim;
every relative link in it and in docs/ points at an existing file; its Python
snippets run (in a fresh process each, with their loop counts cut to a tiny
budget); every generated table equals what `python -m common.docs` renders from
the committed `results.json` files; and no published number of
`common/published.py` is typed by hand outside a generated block.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from common import docs, published, results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md"))
)


def _read(page: str) -> str:
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        return f.read()


def test_readme_is_at_most_10_kb():
    assert os.path.getsize(README) <= 10 * 1024


def test_docs_pages_exist():
    for page in ("maml", "neural_ode", "magnet", "serving", "development"):
        assert f"docs/{page}.md" in PAGES


def test_readme_holds_the_ci_test_command_verbatim():
    with open(os.path.join(REPO, ".ci", "run")) as f:
        ci = f.read().split("\n")
    command = ci[ci.index("# The README's test command, verbatim:") + 1]
    assert f"```\n{command}\n```" in _read("README.md")


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    with open(path, encoding="utf-8") as f:
        headings = re.findall(r"^#+ (.+)$", f.read(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    broken = []
    for target in _LINK.findall(_read(page)):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        path = os.path.normpath(
            os.path.join(REPO, os.path.dirname(page), file or os.path.basename(page))
        )
        if not os.path.exists(path) or (
            anchor and path.endswith(".md") and anchor not in _anchors(path)
        ):
            broken.append(target)
    assert not broken, f"{page}: links to missing files or headings {broken}"


def _module_exists(module: str) -> bool:
    path = os.path.join(REPO, *module.split("."))
    return os.path.exists(path + ".py") or os.path.exists(
        os.path.join(path, "__init__.py")
    )


@pytest.mark.parametrize("page", PAGES)
def test_commands_and_files_named_exist(page):
    """Every `python -m <project module>` and every `<package>/....py` named."""
    text = _read(page)
    packages = ("common", "maml", "neural_ode", "magnet", "benchmarks", "tests")
    modules = {
        m
        for m in re.findall(r"python -m ([\w.]+)", text)
        if m.split(".")[0] in packages
    }
    missing = sorted(m for m in modules if not _module_exists(m))
    files = set(re.findall(rf"\b((?:{'|'.join(packages)})/[\w/]+\.py)\b", text))
    missing += sorted(f for f in files if not os.path.exists(os.path.join(REPO, f)))
    assert not missing, f"{page} names modules or files that do not exist: {missing}"


def test_generated_blocks_match_the_results():
    assert docs.update(REPO, check=True) == [], (
        "the generated tables differ from results/*/results.json: run "
        "`python -m common.docs`"
    )


def _published_texts(entry: published.Published) -> set[str]:
    """How a published value would be typed (numbers with a decimal point only:
    an integer such as 95 is too common in prose to mean the paper's 95.0)."""
    value = abs(entry.value)
    texts = {f"{value:g}"}
    if round(value, 2) == value:
        texts.add(f"{value:.2f}")  # with the paper's trailing zero (1.60)
    if round(value, 3) != value:
        texts.add(f"{value:.3f}")  # a 4-decimal value rounded (0.394)
    return {t for t in texts if "." in t}


def _papers(page: str) -> set[str]:
    """The papers whose numbers a page could quote (a paper's page: its own)."""
    name = os.path.splitext(os.path.basename(page))[0]
    return {name} if name in published.PAPERS else set(published.PAPERS)


def _outside_generated(text: str) -> str:
    out, pos = [], 0
    for start, end in docs.generated_spans(text):
        out.append(text[pos:start])
        pos = end
    return "".join(out) + text[pos:]


@pytest.mark.parametrize("page", PAGES)
def test_no_published_number_typed_by_hand(page):
    text = _outside_generated(_read(page))
    found = []
    for entry in published.REGISTRY:
        if entry.paper not in _papers(page):
            continue
        for number in _published_texts(entry):
            if re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", text):
                found.append(f"{number} ({entry.source})")
    assert not found, (
        f"{page} types published numbers outside generated blocks: {found}"
    )


def test_summary_shows_each_published_value_from_the_registry():
    summary = docs.render_summary(REPO)
    for line in docs.SUMMARY:
        if isinstance(line, docs.Line):
            for cell in line.cells:
                entry = published.lookup(cell.paper, cell.table, cell.row, cell.column)
                assert docs.format_published(entry) in summary


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _read("README.md"), re.S)


def test_readme_has_the_three_library_snippets():
    code = "\n".join(_snippets())
    for name in ("MAML(", "odeint(", "ODEBlock(", "MagnetLoss(", ".fit("):
        assert name in code


def tiny_budget(code: str) -> str:
    """The snippet with its loop counts cut to a few steps."""
    code = re.sub(r"range\(\d+\)", "range(3)", code)
    code = re.sub(r"steps_per_epoch=\d+", "steps_per_epoch=3", code)
    return re.sub(r"epochs=\d+", "epochs=1", code)


@pytest.mark.parametrize("index", range(3))
def test_readme_snippet_runs(index):
    code = tiny_budget(_snippets()[index])
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- The generator itself, on a tiny results tree ----------------------------------


def _write_run(root, status="complete", mean=0.5):
    cell = results.cell(
        "maml",
        "Appendix C Table 2",
        "MAML (ours)",
        "1 step",
        results.Estimate(mean, 0.1, 600),
    )
    results.write_results(
        os.path.join(root, "results", "run"),
        paper="maml",
        experiment="tiny",
        status=status,
        budget={"iterations": 7},
        config={},
        cells=[cell],
    )


def test_cells_block_is_rendered_checked_and_relinked(tmp_path):
    root = str(tmp_path)
    _write_run(root)
    os.makedirs(os.path.join(root, "docs"))
    page = os.path.join(root, "docs", "page.md")
    with open(page, "w") as f:
        f.write(
            "intro\n<!-- generated: cells results/run -->\nold\n"
            "<!-- end generated -->\noutro\n"
        )
    assert docs.update(root, check=True) == ["docs/page.md"]
    assert docs.update(root) == ["docs/page.md"]
    with open(page) as f:
        text = f.read()
    entry = published.lookup("maml", "Appendix C Table 2", "MAML (ours)", "1 step")
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old" not in text and docs.format_published(entry) in text
    assert "0.500 ± 0.100" in text  # ours, 3 decimals for an MSE
    assert "(../results/run/report.md)" in text  # relative to docs/
    assert docs.update(root, check=True) == []  # idempotent
    _write_run(root, mean=0.9)
    assert docs.update(root, check=True) == ["docs/page.md"]
    assert docs.main(["--check", f"--root={root}"]) == 1


def test_plan_cell_without_a_run_is_queued(tmp_path):
    text = docs.render_plan(str(tmp_path), "maml-table1")
    assert text.count("| queued |") == len(docs.PLANS["maml-table1"])


def test_unknown_block_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown generated block kind"):
        docs.render_block("nonsense", "README.md", str(tmp_path))


def _claims_of_run(tmp_path, rows):
    """The claims line's (ours, claims, verdict) of one run with these rows."""
    record = {
        "status": "complete",
        "extra": {
            "tables": [{"title": "t", "header": ["a", "ours", "v"], "rows": rows}]
        },
    }
    run = tmp_path / "results" / "x"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(record))
    line = docs.ClaimLine("what", ("results/x",), "docs/x.md")
    ours, claims, verdict = docs._claim_summary(line, str(tmp_path))
    return ours, claims, verdict


def test_claim_lines_count_verdicts(tmp_path):
    rows = [
        ["c", "1", "supported"],
        ["c", "2", "supported"],
        ["d", "3", "not supported (why)"],
    ]
    ours, claims, verdict = _claims_of_run(tmp_path, rows)
    assert claims == "c; d" and verdict == "supported: 2 of 3, not supported: 1 of 3"
    assert ours == "3 cells"


def test_claim_lines_count_measurements_of_one_claim_once(tmp_path):
    # Two measurements of one claim, named in brackets, are one claim, two cells.
    rows = [
        ["c [training log]", "1", "supported"],
        ["c [trained weights]", "2", "partly: why"],
    ]
    ours, claims, verdict = _claims_of_run(tmp_path, rows)
    assert claims == "c" and ours == "2 cells"
    assert verdict == "supported: 1 of 2, partly: 1 of 2"
