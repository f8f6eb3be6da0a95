"""The experiments end to end on tiny synthetic data; claims and config checks."""

import dataclasses
import json
import os

import pytest

from common import results
from common.data.errors import DatasetError
from magnet import run_files
from magnet.experiments import experiment
from tests.magnet_fixtures import synthetic_dataset

TINY = dict(
    steps=4,
    num_clusters=4,
    examples_per_cluster=3,
    clusters_per_class=2,
    num_neighbours=4,
    embedding_dim=8,
    refresh_every=2,
    eval_every=2,
    warm_start_epochs=1.0,
    knn_k=3,
    log_every=2,
    learning_rate=3e-3,
)


@pytest.fixture(autouse=True)
def synthetic(monkeypatch):
    data = synthetic_dataset(num_classes=4, train_per_class=12, test_per_class=4)
    monkeypatch.setattr(experiment, "load_labelled_images", lambda config: data)
    return data


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    """One tiny classification run, shared by the tests that read it."""
    with pytest.MonkeyPatch.context() as mp:
        data = synthetic_dataset(num_classes=4, train_per_class=12, test_per_class=4)
        mp.setattr(experiment, "load_labelled_images", lambda config: data)
        run_dir = str(tmp_path_factory.mktemp("classification"))
        config = experiment.MagnetConfig(**TINY)
        record = experiment.run(config, run_dir)
    return config, run_dir, record


def test_classification_writes_results_report_and_figures(classification_run):
    _, run_dir, record = classification_run
    for name in (
        "config.json",
        "results.json",
        "report.md",
        run_files.DATA_INFO,
        experiment.CURVES_FIGURE,
        experiment.EMBEDDINGS_FIGURE,
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    for loss in ("magnet", "softmax", "triplet", "warm_start"):
        assert os.listdir(os.path.join(run_dir, "tensorboard", loss)), loss
    assert record["status"] == "complete" and record["cells"] == []
    assert record["budget"]["iterations_per_loss"] == {
        "magnet": 4,
        "softmax": 4,
        "triplet": 4,
    }
    assert record["budget"]["warm_start_steps"] == 4
    assert sorted(record["figures"]) == sorted(
        [experiment.CURVES_FIGURE, experiment.EMBEDDINGS_FIGURE]
    )
    curves = record["extra"]["curves"]
    assert [e["step"] for e in curves["magnet"]] == [0, 2, 4]
    claims = record["extra"]["tables"][0]
    assert claims["header"] == ["claim", "paper states", "ours", "verdict", "deviation"]
    assert [row[1] for row in claims["rows"]] == [
        experiment.CLAIMS["triplet_error"],
        experiment.CLAIMS["softmax_error"],
        experiment.CLAIMS["speed"],
    ]
    for row in claims["rows"]:
        assert row[3] and "fashion_mnist" in row[4] and "Stanford Dogs" in row[4]
    assert any("Dataset: fashion_mnist" in d for d in record["deviations"])
    with open(os.path.join(run_dir, "report.md")) as f:
        report = f.read()
    assert "The paper's claims" in report and "Test error by loss" in report
    assert "magnet rule" in report


def test_rerun_resumes_without_training(classification_run, synthetic, capsys):
    config, run_dir, record = classification_run
    capsys.readouterr()
    again = experiment.run(config, run_dir)
    out = capsys.readouterr().out
    assert "[magnet]" not in out and "[warm_start]" not in out
    assert again["extra"]["curves"] == record["extra"]["curves"]
    assert again["extra"]["tables"][:2] == record["extra"]["tables"][:2]
    assert again["budget"]["sessions"] == 1
    more = dataclasses.replace(config, steps=6)  # steps may grow on resume.
    longer = experiment.run(more, run_dir)
    assert [e["step"] for e in longer["extra"]["curves"]["softmax"]] == [0, 2, 4, 6]
    assert longer["budget"]["sessions"] == 2


def test_hierarchy_trains_on_coarse_and_scores_fine_labels(tmp_path):
    config = experiment.MagnetConfig(
        experiment="hierarchy",
        losses=("magnet", "softmax"),
        **{**TINY, "num_clusters": 2, "clusters_per_class": 3},
    )
    record = experiment.run(config, str(tmp_path))
    with open(tmp_path / run_files.DATA_INFO) as f:
        assert json.load(f)["class_names"] == ["group0", "group1"]
    final = record["extra"]["curves"]["magnet"][-1]
    assert 0.0 <= final["fine_knn_error"] <= 1.0
    rows = record["extra"]["tables"][0]["rows"]
    assert [r[1] for r in rows] == [
        experiment.CLAIMS["hierarchy_softmax"],
        experiment.CLAIMS["hierarchy_triplet"],
    ]
    assert rows[1][3] == "not measured (loss not trained)"
    assert "fine-label kNN error (%)" in record["extra"]["tables"][1]["header"]
    assert results.load_results(str(tmp_path))["experiment"] == "hierarchy"


@pytest.mark.parametrize(
    "change,match",
    [
        ({"experiment": "attributes"}, "experiment"),
        ({"dataset": "imagenet"}, "dataset"),
        ({"losses": ("magnet", "contrastive")}, "losses"),
        ({"losses": ()}, "losses"),
        ({"losses": ("magnet", "magnet")}, "losses"),
        ({"steps": 0}, "steps"),
        ({"num_clusters": 1}, "num_clusters"),
        ({"examples_per_cluster": 1}, "examples_per_cluster"),
        ({"alpha": -1.0}, "alpha"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_per_class": 0}, "max_per_class"),
        ({"warm_start_epochs": float("nan")}, "warm_start_epochs"),
        ({"max_train_minutes": 0.0}, "max_train_minutes"),
    ],
)
def test_bad_config_values(change, match):
    with pytest.raises(ValueError, match=match):
        experiment.MagnetConfig(**change)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"clusters_per_class": 13}, "clusters_per_class"),
        ({"num_clusters": 12}, "impostor"),
    ],
)
def test_configs_that_do_not_fit_the_data_fail_before_writing(change, match, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        experiment.run(experiment.MagnetConfig(**{**TINY, **change}), str(run_dir))
    assert not run_dir.exists()


def test_hierarchy_needs_coarse_labels(monkeypatch, synthetic, tmp_path):
    flat = dataclasses.replace(
        synthetic, coarse_train_labels=None, coarse_test_labels=None, coarse_names=None
    )
    monkeypatch.setattr(experiment, "load_labelled_images", lambda config: flat)
    with pytest.raises(ValueError, match="coarse labels"):
        experiment.run(
            experiment.MagnetConfig(experiment="hierarchy", **TINY),
            str(tmp_path / "run"),
        )
    assert not (tmp_path / "run").exists()


def test_missing_dataset_files_raise_dataset_error(monkeypatch, tmp_path):
    monkeypatch.undo()
    config = experiment.MagnetConfig(
        data_dir=str(tmp_path / "nowhere"), cache_dir=str(tmp_path / "cache"), **TINY
    )
    with pytest.raises(DatasetError):
        experiment.check_inputs(config)
