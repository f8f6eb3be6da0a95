"""Tests of the RL seed pool (App. C Table 4/5 over seeds) on made-up runs."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from common import results
from maml.experiments import rl_seed_summary

ROWS = ("MAML (ours)", "context vector")
COLUMNS = ("0 steps", "1 step", "2 steps", "3 steps")


def _write_run(directory: str, seed: int, shift: float, status: str = "complete"):
    """A Table 4 run whose MAML returns are known: task returns -k - shift."""
    rng = np.random.default_rng(seed)
    evaluation = {
        "maml": [
            list(-10.0 / (k + 1) - shift + rng.normal(0, 0.1, 5)) for k in range(4)
        ],
        "oracle": [list(-2.0 - shift + rng.normal(0, 0.1, 5))],
    }
    cells = []
    for row in ROWS:
        for k, column in enumerate(COLUMNS):
            ours = results.mean_ci95(evaluation["maml"][k]) if row == ROWS[0] else None
            cells.append(results.cell("maml", "Appendix C Table 4", row, column, ours))
    results.write_results(
        directory,
        paper="maml",
        experiment="navigation_2d",
        status=status,
        budget={"maml_iterations": "500/500", "train_seconds": 100.0 + seed},
        config={"seed": seed},
        cells=cells,
        deviations=["exact Hessian-vector products"],
        extra={"evaluation": evaluation},
    )
    return evaluation


def test_cells_are_the_mean_and_student_interval_over_seeds(tmp_path):
    dirs, evals = [], []
    for seed, shift in ((0, 0.0), (1, 0.6), (2, -0.3)):
        d = str(tmp_path / f"seed{seed}")
        evals.append(_write_run(d, seed, shift))
        dirs.append(d)
    record = rl_seed_summary.pool(str(tmp_path / "pool"), dirs)
    assert record["status"] == "complete"
    assert record["budget"]["seeds"] == "0, 1, 2"
    assert record["budget"]["train_seconds"] == pytest.approx(303.0)
    for k, column in enumerate(COLUMNS):
        seed_means = np.array([np.mean(e["maml"][k]) for e in evals])
        cell = next(
            c for c in record["cells"] if (c["row"], c["column"]) == (ROWS[0], column)
        )
        assert cell["ours"]["mean"] == pytest.approx(seed_means.mean())
        # t(0.975, 2 degrees of freedom) = 4.303, sample standard deviation.
        half = 4.303 * seed_means.std(ddof=1) / math.sqrt(3)
        assert cell["ours"]["ci95"] == pytest.approx(half, rel=1e-4)
        assert cell["ours"]["n"] == 3
        assert cell["published"]["value"] is not None  # looked up in the registry
    unmeasured = [c for c in record["cells"] if c["row"] == ROWS[1]]
    assert all(c["ours"] is None for c in unmeasured)
    report = (tmp_path / "pool" / results.REPORT_FILE).read_text()
    assert "seed 0" in report and "seed 2" in report  # the per-seed table
    assert os.path.exists(tmp_path / "pool" / rl_seed_summary.POOLED_FIGURE)


def test_a_missing_or_unfinished_seed_makes_the_pool_cut_short(tmp_path):
    done = str(tmp_path / "seed0")
    evaluation = _write_run(done, 0, 0.0)
    missing = str(tmp_path / "seed1")
    record = rl_seed_summary.pool(str(tmp_path / "pool"), [done, missing])
    assert record["status"] == "cut short"
    assert missing in record["budget"]["missing runs"]
    # One seed: its own interval over the test tasks is kept.
    cell = record["cells"][1]
    assert cell["ours"] == pytest.approx(vars(results.mean_ci95(evaluation["maml"][1])))
    _write_run(missing, 1, 0.2, status="cut short")
    record = rl_seed_summary.pool(str(tmp_path / "pool"), [done, missing])
    assert record["status"] == "cut short"


def test_runs_of_different_experiments_are_refused(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _write_run(a, 0, 0.0)
    _write_run(b, 1, 0.0)
    record = results.load_results(b)
    record["experiment"] = "halfcheetah_dir"
    results.write_results(
        b,
        **{
            k: record[k]
            for k in (
                "paper",
                "experiment",
                "status",
                "budget",
                "config",
                "cells",
                "deviations",
                "extra",
            )
        },
    )
    with pytest.raises(ValueError, match="different experiments"):
        rl_seed_summary.pool(str(tmp_path / "pool"), [a, b])
    assert (
        rl_seed_summary.main(["x", str(tmp_path / "pool"), str(tmp_path / "none")]) == 2
    )
