"""results.json / report.md: the CI formula, verdicts, regenerating the report."""

import json
import math
import os
import tempfile

import numpy as np
import pytest

from common import published, results


def test_ci_is_196_std_over_sqrt_n():
    values = [1.0, 2.0, 3.0, 4.0]
    est = results.mean_ci95(values)
    assert est.mean == pytest.approx(2.5)
    assert est.ci95 == pytest.approx(1.96 * math.sqrt(1.25) / 2.0)
    assert est.n == 4
    with pytest.raises(ValueError):
        results.mean_ci95([])


@pytest.mark.parametrize(
    "ours,higher,expected",
    [
        ({"mean": 98.5, "ci95": 0.1}, True, "within the published 95% CI"),
        (
            {"mean": 97.0, "ci95": 2.0},
            True,
            "consistent (published value inside our 95% CI)",
        ),
        ({"mean": 99.9, "ci95": 0.01}, True, "better"),
        ({"mean": 90.0, "ci95": 0.5}, True, "worse"),
        ({"mean": 90.0, "ci95": 0.5}, False, "better"),
        (
            {"mean": 1e6, "ci95": 2e6},
            False,
            "inconclusive (our 95% CI is wider than the published value)",
        ),
        (
            {"mean": float("nan"), "ci95": float("nan")},
            True,
            "diverged (non-finite result)",
        ),
        (None, True, "not measured"),
    ],
)
def test_verdicts(ours, higher, expected):
    pub = {"value": 98.7, "ci95": 0.4}
    assert results.verdict(pub, ours, higher) == expected


def test_cell_looks_up_the_registry():
    est = results.Estimate(mean=0.5, ci95=0.05, n=600)
    c = results.cell(
        "maml", "Appendix C Table 2", "MAML (ours)", "1 step", est, ["fewer iterations"]
    )
    entry = published.lookup("maml", "Appendix C Table 2", "MAML (ours)", "1 step")
    assert c["published"]["value"] == entry.value
    assert c["published"]["source"] == entry.source
    assert c["verdict"] == results.verdict(c["published"], c["ours"], False)
    with pytest.raises(KeyError):
        results.cell("maml", "Table 99", "x", "y", est)


def _fixture_record(directory):
    cells = [
        results.cell(
            "maml",
            "Appendix C Table 2",
            "MAML (ours)",
            "1 step",
            results.mean_ci95(np.linspace(0.2, 1.0, 600)),
            ["dev A"],
            {"iterations": 10, "target_iterations": 70000, "wall_time_s": 1.0},
        ),
        results.cell(
            "maml", "Appendix C Table 2", "pretrain on all tasks", "10 steps", None
        ),
    ]
    return results.write_results(
        directory,
        paper="maml",
        experiment="sinusoid",
        status="cut short",
        budget={"iterations": 10, "wall_time_s": 3.0, "machine": "test"},
        config={"seed": 0},
        cells=cells,
        deviations=["dev A"],
        figures=["fig.png"],
    )


def test_report_is_regenerated_from_results_json_alone():
    with tempfile.TemporaryDirectory() as d:
        _fixture_record(d)
        with open(os.path.join(d, results.REPORT_FILE)) as f:
            original = f.read()
        os.remove(os.path.join(d, results.REPORT_FILE))
        results.regenerate_report(d)
        with open(os.path.join(d, results.REPORT_FILE)) as f:
            assert f.read() == original
        with open(os.path.join(d, results.RESULTS_FILE)) as f:
            record = json.load(f)
    assert record["status"] == "cut short"
    pub = published.lookup("maml", "Appendix C Table 2", "MAML (ours)", "1 step")
    ours = np.linspace(0.2, 1.0, 600)
    ci = 1.96 * ours.std() / np.sqrt(600)
    assert (
        f"| MAML (ours) | 1 step | {pub.value:.3f} | {ours.mean():.3f} ± "
        f"{ci:.3f} | 10 it of 70,000"
    ) in original
    assert "dev A" in original
    assert "(cut short)" in original  # the verdict carries the run's status
    pre = published.lookup(
        "maml", "Appendix C Table 2", "pretrain on all tasks", "10 steps"
    )
    assert f"| pretrain on all tasks | 10 steps | {pre.value:.3f} | - |" in original
    assert "not measured" in original
    assert "![fig.png](fig.png)" in original


def test_bad_status_is_rejected():
    with tempfile.TemporaryDirectory() as d, pytest.raises(ValueError):
        results.write_results(
            d,
            paper="maml",
            experiment="x",
            status="done",
            budget={},
            config={},
            cells=[],
        )
        assert not os.listdir(d)


def test_overall_status_is_the_worst_part():
    assert results.overall_status([]) == "complete"
    assert results.overall_status(["complete", "complete"]) == "complete"
    assert results.overall_status(["complete", "cut short"]) == "cut short"
    assert results.overall_status(["cut short", "diverged", "complete"]) == "diverged"
