"""Training the three losses on tiny synthetic data: curves, index, resume."""

import dataclasses
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from magnet import networks, run_files, trainer
from tests.magnet_fixtures import synthetic_dataset

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

SETTINGS = trainer.TrainSettings(
    steps=6,
    num_clusters=4,
    examples_per_cluster=3,
    clusters_per_class=2,
    num_neighbours=4,
    learning_rate=3e-3,
    refresh_every=2,
    eval_every=3,
    knn_k=3,
    embedding_dim=8,
    log_every=3,
)
SNAPSHOTS = 10  # Test embeddings saved per evaluation.


def _data(**kwargs):
    ds = synthetic_dataset(**kwargs)
    return trainer.TrainData(
        train_images=ds.train_images,
        train_labels=ds.train_labels,
        test_images=ds.test_images,
        test_labels=ds.test_labels,
        class_names=ds.class_names,
        extra_labels={"coarse": (ds.coarse_train_labels, ds.coarse_test_labels)},
    )


@pytest.fixture(scope="module")
def data():
    return _data(num_classes=4, train_per_class=12, test_per_class=4)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Each loss trained once for SETTINGS: {loss: (result, run_dir, output)}."""
    out = {}
    for loss_name in trainer.LOSSES:
        run_dir = tmp_path_factory.mktemp(loss_name)
        stream = io.StringIO()
        result = trainer.train(
            loss_name,
            data,
            SETTINGS,
            str(run_dir),
            stream=stream,
            snapshot_examples=SNAPSHOTS,
        )
        out[loss_name] = (result, run_dir, stream.getvalue())
    return out


@pytest.mark.parametrize("loss_name", trainer.LOSSES)
def test_each_loss_trains_and_evaluates_every_eval_every(loss_name, data, runs):
    result, tmp_path, output = runs[loss_name]
    assert result.loop.status == "complete" and result.loop.steps == 6
    assert [e["step"] for e in result.curve] == [0, 3, 6]
    keys = {
        "knn_error",
        "centroid_error",
        "magnet_error",
        "coarse_knn_error",
        "error",
        "train_seconds",
    }
    if loss_name == "softmax":
        keys.add("softmax_error")
        assert result.classifier is not None
    for entry in result.curve:
        assert keys <= set(entry)
        assert all(0.0 <= entry[k] <= 1.0 for k in keys if k.endswith("error"))
        assert entry["error"] == entry[trainer.PRIMARY_RULE[loss_name]]
    assert result.curve[-1]["train_seconds"] > 0.0
    assert f"[{loss_name}] 6/6" in output
    loss_dir = tmp_path / loss_name
    with open(loss_dir / run_files.CURVE_FILE) as f:
        assert json.load(f) == result.curve
    snaps = sorted(os.listdir(loss_dir / run_files.SNAPSHOT_DIR))
    assert snaps == [f"step_{s:08d}.npz" for s in (0, 3, 6)]
    with np.load(loss_dir / run_files.SNAPSHOT_DIR / snaps[-1]) as f:
        assert f["embeddings"].shape == (SNAPSHOTS, 8)
        assert f["labels"].shape == f["coarse_labels"].shape == (SNAPSHOTS,)
        assert len(np.unique(f["labels"])) > 1  # A random subset, not one class.
    model = run_files.load_cluster_model(str(loss_dir / run_files.CLUSTER_MODEL_FILE))
    assert model["centres"].shape == (8, 8)
    assert int(model["num_neighbours"]) == 4 and int(model["step"]) == 6
    assert list(model["class_names"]) == list(data.class_names)
    emb = result.embedder(data.test_images[:3].astype(np.float32), training=False)
    if loss_name == "triplet":
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert os.listdir(tmp_path / "tensorboard" / loss_name)


def test_magnet_step_records_training_losses_and_refreshes(runs):
    result, tmp_path, _ = runs["magnet"]
    assert result.loop.last_metrics["sigma2"] > 0
    reader = tf.train.load_checkpoint(str(tmp_path / "checkpoints" / "magnet"))
    names = {n.split("/")[0] for n in reader.get_variable_to_shape_map()}
    assert {"example_losses", "refresh_embeddings", "refresh_step"} <= names
    losses = reader.get_tensor("example_losses/.ATTRIBUTES/VARIABLE_VALUE")
    # Seen examples carry their training loss, unseen ones the initial 1.0.
    assert np.any(losses != 1.0)
    assert reader.get_tensor("refresh_step/.ATTRIBUTES/VARIABLE_VALUE") == 6 - 2


def test_interrupted_magnet_run_resumes_to_the_same_weights(data, runs, tmp_path):
    whole = runs["magnet"][0]
    first = dataclasses.replace(SETTINGS, steps=3)
    part = trainer.train(
        "magnet", data, first, str(tmp_path / "split"), stream=io.StringIO()
    )
    assert part.loop.steps == 3
    resumed = trainer.train(
        "magnet", data, SETTINGS, str(tmp_path / "split"), stream=io.StringIO()
    )
    assert (resumed.loop.steps, resumed.loop.sessions) == (6, 2)
    for a, b in zip(
        whole.embedder.get_weights(), resumed.embedder.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [e["step"] for e in resumed.curve] == [0, 3, 6]
    # A finished run reruns without training.
    stream = io.StringIO()
    again = trainer.train(
        "magnet", data, SETTINGS, str(tmp_path / "split"), stream=stream
    )
    assert again.loop.sessions == 2 and "/6" not in stream.getvalue()
    assert again.curve == resumed.curve


@pytest.mark.parametrize("cached", [False, True])
def test_a_fit_interrupted_mid_epoch_resumes_to_the_same_weights(
    data, runs, tmp_path, monkeypatch, cached
):
    """A crash inside `fit` (after the step-3 checkpoint) loses steps 4-5 only.

    With `cached`, refreshes re-cluster the embedding cache (kept from training
    batches, augmented) and re-embed every 4 steps.
    """
    settings, pad = SETTINGS, trainer.AUGMENT_PAD
    if cached:
        settings, pad = dataclasses.replace(SETTINGS, reembed_every=4, augment=True), 2
        whole = trainer.train(
            "magnet",
            data,
            settings,
            str(tmp_path / "whole"),
            stream=io.StringIO(),
            augment_pad=pad,
        )
    else:
        whole = runs["magnet"][0]
    original = trainer._Run.on_train_batch_end

    def crash_after_five(self, batch, logs=None):
        original(self, batch, logs)
        if self.step == 5:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(trainer._Run, "on_train_batch_end", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(
            "magnet",
            data,
            settings,
            str(tmp_path / "split"),
            stream=io.StringIO(),
            augment_pad=pad,
        )
    monkeypatch.setattr(trainer._Run, "on_train_batch_end", original)
    resumed = trainer.train(
        "magnet",
        data,
        settings,
        str(tmp_path / "split"),
        stream=io.StringIO(),
        augment_pad=pad,
    )
    assert resumed.loop.steps == 6 and resumed.loop.status == "complete"
    for a, b in zip(
        whole.embedder.get_weights(), resumed.embedder.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [e["step"] for e in resumed.curve] == [0, 3, 6]
    assert resumed.curve[-1]["sigma2_running"] == pytest.approx(
        whole.curve[-1]["sigma2_running"], rel=1e-5
    )


def test_an_evaluation_killed_after_its_checkpoint_runs_on_resume(
    data, runs, tmp_path, monkeypatch
):
    whole = runs["triplet"][0]
    original = trainer.evaluate

    def killed_at_three(*args, **kwargs):
        if args[3] == 3:
            raise KeyboardInterrupt("killed during the evaluation")
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", killed_at_three)
    with pytest.raises(KeyboardInterrupt):
        trainer.train("triplet", data, SETTINGS, str(tmp_path), stream=io.StringIO())
    monkeypatch.setattr(trainer, "evaluate", original)
    resumed = trainer.train(
        "triplet", data, SETTINGS, str(tmp_path), stream=io.StringIO()
    )
    assert [e["step"] for e in resumed.curve] == [0, 3, 6]
    assert resumed.curve[1]["knn_error"] == whole.curve[1]["knn_error"]


def test_initial_weights_are_used(data, tmp_path):
    base = networks.build_embedder(data.input_shape, 8)
    weights = [w + 0.5 for w in base.get_weights()]
    head = [np.ones((8, 4), np.float32), np.zeros(4, np.float32)]
    settings = dataclasses.replace(SETTINGS, steps=1, eval_every=1)
    result = trainer.train(
        "softmax",
        data,
        settings,
        str(tmp_path),
        {"embedder": weights, "head": head},
        stream=io.StringIO(),
    )
    first_entry = result.curve[0]
    base.set_weights(weights)
    metrics, _, _, _ = trainer.evaluate(trainer.embed_fn(base), data, settings, 0)
    assert first_entry["knn_error"] == metrics["knn_error"]


@pytest.mark.parametrize(
    "change,match",
    [
        ({"clusters_per_class": 13}, "clusters_per_class"),
        ({"num_clusters": 9}, "impostor"),
    ],
)
def test_bad_settings_for_the_data(change, match, data, tmp_path):
    with pytest.raises(ValueError, match=match):
        trainer.train(
            "magnet", data, dataclasses.replace(SETTINGS, **change), str(tmp_path)
        )
    with pytest.raises(ValueError, match="loss"):
        trainer.train("contrastive", data, SETTINGS, str(tmp_path))
