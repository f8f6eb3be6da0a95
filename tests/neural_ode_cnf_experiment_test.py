"""The CNF experiment: config validation, verdicts, and a resumable smoke run."""

import json
import os

import pytest

from common import results
from neural_ode.experiments import cnf_experiment as ce
from neural_ode.experiments import cnf_report

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"targets": ("ring", "nope")}, "unknown targets"),
        ({"targets": ["ring"]}, "targets must be a tuple"),
        ({"ml_datasets": ("two_moons", "two_moons")}, "without repeats"),
        ({"targets": (), "ml_datasets": ()}, "nothing to run"),
        ({"widths": ()}, "widths"),
        ({"widths": (2, 0)}, "every width"),
        ({"dm_cnf_iterations": 0}, "dm_cnf_iterations"),
        ({"ml_batch_size": 1.5}, "ml_batch_size"),
        ({"train_tolerance": -1e-3}, "train_tolerance"),
        ({"end_time": float("inf")}, "end_time"),
        ({"method": "euler"}, "method"),
        ({"grid_points": 3}, "grid_points"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_config_validation_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ce.CNFConfig(**kwargs)


def test_default_config_is_the_full_protocol_and_names_its_deviations():
    config = ce.CNFConfig()
    assert config.experiment == "cnf" and config.widths == (2, 8, 32)
    assert config.ml_width == 64 and len(config.targets) == 3
    deviations = " ".join(config.deviations())
    assert "1,000 Adam iterations (paper: 10,000)" in deviations
    assert "500,000" in deviations
    assert "1e-05" in deviations  # the paper's tolerance
    full = ce.CNFConfig(
        dm_cnf_iterations=10_000, dm_nf_iterations=500_000, train_tolerance=1e-5
    )
    assert "paper: 10,000" not in " ".join(full.deviations())


def test_verdicts_follow_the_numbers():
    assert cnf_report.compare((1.0, 0.1), (2.0, 0.1)) == "supported"
    assert cnf_report.compare((2.0, 0.1), (1.0, 0.1)) == "not supported"
    assert cnf_report.compare((1.0, 0.5), (1.2, 0.5)).startswith("inconclusive")
    nan = float("nan")
    assert cnf_report.compare((nan, 0.1), (1.0, 0.1)).startswith("not supported")


def _files(directory):
    out = {}
    for root, _, names in os.walk(os.path.join(directory, "checkpoints")):
        for name in names:
            path = os.path.join(root, name)
            out[path] = os.path.getmtime(path)
    return out


def test_smoke_run_writes_the_report_and_resumes_without_retraining(tmp_path, capsys):
    config = ce.CNFConfig(
        targets=("ring",),
        widths=(2,),
        ml_datasets=("two_moons",),
        ml_width=3,
        dm_cnf_iterations=2,
        dm_nf_iterations=3,
        ml_cnf_iterations=2,
        ml_nf_iterations=3,
        dm_batch_size=32,
        ml_batch_size=32,
        eval_samples=200,
        grid_points=12,
        eval_tolerance=1e-4,
        log_every=1,
        checkpoint_every=2,
    )
    out = str(tmp_path / "run")
    record = ce.run(config, out)
    assert record["status"] == "complete" and record["cells"] == []
    for name in ("results.json", "report.md", "config.json"):
        assert os.path.exists(os.path.join(out, name))
    assert len(record["figures"]) == 3
    for figure in record["figures"]:
        assert os.path.getsize(os.path.join(out, figure)) > 1000
    tables = {t["title"].split(":")[0]: t for t in record["extra"]["tables"]}
    dm = tables["Fig. 4 density matching"]["rows"]
    ml = tables["Fig. 5 maximum likelihood"]["rows"]
    assert len(dm) == 1 and len(ml) == 1
    # The verdict is computed from the measured numbers.
    models = record["extra"]["models"]
    cnf_kl, nf_kl = (models[f"dm_ring_{k}"]["kl"] for k in ("cnf_m2", "nf_k2"))
    expected = cnf_report.compare(
        (cnf_kl, models["dm_ring_cnf_m2"]["kl_ci95"]),
        (nf_kl, models["dm_ring_nf_k2"]["kl_ci95"]),
    )
    assert dm[0][-1] == expected
    assert models["dm_ring_cnf_m2"]["eval_nfe"] > 0
    assert models["dm_ring_cnf_m2"]["train_nfe"]["forward"] > 0
    assert not dm[0][4].startswith("-") and not ml[0][4].startswith("-")
    assert models["ml_two_moons_cnf_m3"]["budget"]["steps"] == 2
    with open(os.path.join(out, "report.md")) as f:
        report = f.read()
    assert "Fig. 4 density matching" in report and "Protocol deviations" in report
    capsys.readouterr()

    before = _files(out)
    again = ce.run(config, out)
    printed = capsys.readouterr().out
    assert "/2 (" not in printed and "/3 (" not in printed  # no training step ran
    assert _files(out) == before  # no checkpoint was rewritten
    assert again["extra"]["models"]["dm_ring_cnf_m2"]["kl"] == cnf_kl
    assert again["status"] == "complete"
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["experiment"] == "cnf"
    assert results.load_results(out)["extra"]["tables"][0]["rows"] == dm
