"""Table 2 from seeds: aggregation against NumPy on synthetic seed runs, README."""

import json
import os

import numpy as np
import pytest

from common import published, results
from maml.experiments import seed_statistics, table2_report

STEPS = 11


def _write_run(directory, arrays, status="complete", budget=None):
    os.makedirs(directory, exist_ok=True)
    seed_statistics.save_per_task(os.path.join(directory, "per_task_mse.npz"), arrays)
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump({"status": status, "budget": budget or {"iterations": 70_000}}, f)


def _curves(rng, scale, tasks=30):
    return (rng.gamma(2.0, scale, size=(tasks, STEPS))).astype(np.float32)


@pytest.fixture
def runs_dir(tmp_path):
    rng = np.random.default_rng(0)
    for s in range(5):
        paper = {"maml_k5": _curves(rng, 0.3), "pretrain_k5": _curves(rng, 1.2)}
        if s == 2:
            paper["maml_k5"][4, 5:] = np.inf  # one diverged task in one seed
        _write_run(tmp_path / "sinusoid" / f"seed_{s}", paper)
        _write_run(
            tmp_path / "sinusoid_official" / f"seed_{s}",
            {"maml_k5": _curves(rng, 0.4), "pretrain_k5": _curves(rng, 1.2)},
        )
        _write_run(
            tmp_path / "baselines" / f"seed_{s}",
            {
                f"{k}_k5": _curves(rng, 2.0)
                for k in ("multitask_none", "multitask_l2", "multitask_mean", "oracle")
            },
            budget={"oracle_iterations": 70_000, "regressors_per_variant": 500},
        )
    return str(tmp_path)


def test_cells_compare_the_median_over_seeds_of_per_seed_means(runs_dir, tmp_path):
    record = table2_report.write_aggregate(runs_dir, str(tmp_path / "out"))
    assert record["status"] == "complete"
    by_key = {}
    for c in record["cells"]:
        by_key.setdefault((c["row"], c["column"]), []).append(c)
    assert len(by_key[("MAML (ours)", "5 steps")]) == 2  # paper and official alpha
    paper_cell = by_key[("MAML (ours)", "5 steps")][0]
    seeds = [
        seed_statistics.load_per_task(
            os.path.join(runs_dir, "sinusoid", f"seed_{s}", "per_task_mse.npz")
        )["maml_k5"]
        for s in range(5)
    ]
    means = [np.mean(a[:, 5].astype(np.float64)) for a in seeds]
    assert paper_cell["ours"]["mean"] == pytest.approx(np.median(means))
    assert np.isinf(max(means))  # the diverged seed is in the data, not dropped
    entry = published.lookup("maml", "Appendix C Table 2", "MAML (ours)", "5 steps")
    assert paper_cell["published"]["value"] == entry.value
    rows = {c["row"] for c in record["cells"]}
    assert rows == {e.row for e in published.table("maml", "Appendix C Table 2")}
    table = record["extra"]["tables"][0]
    paper_row = [
        r for r in table["rows"] if r[0].startswith("MAML, paper") and r[1] == 5
    ][0]
    assert paper_row[6].startswith("1 (0, 0, 1, 0, 0)")
    assert paper_row[11].startswith("5 seeds × 70,000 it per seed (full protocol)")
    oracle_rows = [r for r in table["rows"] if r[0].startswith("oracle")]
    assert [r[1] for r in oracle_rows] == [0, 1, 5, 10] and oracle_rows[0][2] == "-"
    assert "median over seeds" in record["extra"]["statistic_compared"]


def test_per_task_arrays_are_stored_exactly(runs_dir, tmp_path):
    out = str(tmp_path / "out")
    table2_report.write_aggregate(runs_dir, out)
    stored = seed_statistics.load_per_task(os.path.join(out, "per_task_mse_k5.npz"))
    original = seed_statistics.load_per_task(
        os.path.join(runs_dir, "baselines", "seed_3", "per_task_mse.npz")
    )
    np.testing.assert_array_equal(
        stored["multitask_l2_seed3"], original["multitask_l2_k5"]
    )
    assert len(stored) == 7 * 5
    assert os.path.exists(os.path.join(out, results.REPORT_FILE))


def test_too_few_or_unfinished_seeds_are_labelled(runs_dir, tmp_path):
    import shutil

    shutil.rmtree(os.path.join(runs_dir, "baselines", "seed_4"))
    with open(os.path.join(runs_dir, "sinusoid", "seed_1", "results.json"), "w") as f:
        json.dump({"status": "cut short", "budget": {"iterations": 9_000}}, f)
    record = table2_report.write_aggregate(runs_dir, str(tmp_path / "out"))
    assert record["status"] == "cut short"
    assert any("4 of 5 seeds" in m for m in record["extra"]["missing"])
    maml = [
        c
        for c in record["cells"]
        if c["details"]["configuration"].startswith("MAML, paper")
    ]
    assert all("seeds [1] cut short" in c["deviations"] for c in maml)


def test_readme_block_is_replaced_and_nothing_else(runs_dir, tmp_path):
    record = table2_report.write_aggregate(runs_dir, str(tmp_path / "out"))
    readme = tmp_path / "README.md"
    readme.write_text(
        "before\n"
        + table2_report.README_BEGIN
        + "\nold table\n"
        + table2_report.README_END
        + "\nafter\n"
    )
    assert table2_report.update_readme(str(readme), record)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n")
    assert "old table" not in text and "multi-task, reg to mean θ" in text
    assert table2_report.update_readme(str(readme), record)  # idempotent
    assert readme.read_text() == text
    other = tmp_path / "OTHER.md"
    other.write_text("no markers\n")
    assert not table2_report.update_readme(str(other), record)
    assert other.read_text() == "no markers\n"


def test_long_training_rows_appear_only_with_seeds(runs_dir, tmp_path):
    record = table2_report.write_aggregate(runs_dir, str(tmp_path / "a"))
    labels = {r[0] for r in record["extra"]["tables"][0]["rows"]}
    assert not any("long training" in label for label in labels)
    rng = np.random.default_rng(1)
    _write_run(
        os.path.join(runs_dir, "baselines_long", "seed_0"),
        {
            f"{k}_k5": _curves(rng, 2.0)
            for k in ("multitask_none", "multitask_l2", "multitask_mean", "oracle")
        },
    )
    record = table2_report.write_aggregate(runs_dir, str(tmp_path / "b"))
    long_cells = [
        c
        for c in record["cells"]
        if c["details"]["configuration"].endswith("long training")
    ]
    assert {c["row"] for c in long_cells} == {
        "multi-task, no reg",
        "multi-task, l2 reg",
        "multi-task, reg to mean θ",
    }
    assert all("1 of 5 seeds" in c["deviations"] for c in long_cells)
    assert record["status"] == "complete"  # the optional rows do not hold it back
