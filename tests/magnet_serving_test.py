"""Export round trip: the served magnet rule equals the NumPy rule."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import checkpoint, config, export
from magnet import cluster_index, evaluation, experiment, networks, serving, trainer

SHAPE = (16, 16, 1)


def _saved_model_cli():
    """The saved_model_cli of this interpreter's environment."""
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return [path] if os.path.exists(path) else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A run directory as the experiment leaves it, with a random network."""
    run_dir = str(tmp_path_factory.mktemp("run"))
    keras.utils.set_random_seed(0)
    cfg = experiment.MagnetConfig(embedding_dim=8, steps=6, clusters_per_class=2,
                                  num_neighbours=5)
    config.save_config(cfg, run_dir)
    embedder = networks.build_embedder(SHAPE, 8)
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 255, (40, *SHAPE)).astype(np.float32)
    labels = np.arange(40) % 4
    emb = cluster_index.embed_all(trainer.embed_fn(embedder), train)
    index = cluster_index.ClusterIndex.build(emb, labels, 2, seed=0)
    names = ("zero", "one", "two", "three")
    trainer.save_cluster_model(os.path.join(run_dir, "magnet",
                                            trainer.CLUSTER_MODEL_FILE),
                               index, 5, names, 6)
    checkpoint.Checkpointer(os.path.join(run_dir, "checkpoints", "magnet"),
                            model=embedder).save(6)
    with open(os.path.join(run_dir, experiment.DATA_INFO), "w") as f:
        json.dump({"input_shape": list(SHAPE), "class_names": list(names)}, f)
    export_dir = str(tmp_path_factory.mktemp("export"))
    path = serving.export_run(run_dir, export_dir)
    queries = rng.uniform(0, 255, (30, *SHAPE)).astype(np.float32)
    return run_dir, export_dir, path, embedder, index, queries, names


def test_versioned_layout_and_warmup(fake_run):
    _, export_dir, path, *_ = fake_run
    assert path == os.path.join(export_dir, serving.MODEL_NAME, "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    logs = export.read_warmup_requests(path)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "classify", "embed"]


def test_classify_equals_magnet_predict_on_the_same_embeddings(fake_run):
    _, _, path, embedder, index, queries, names = fake_run
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "classify", "embed"} <= set(loaded.signatures)
    emb = loaded.signatures["embed"](images=tf.constant(queries))["embeddings"]
    np.testing.assert_allclose(emb, embedder(queries, training=False), rtol=1e-5,
                               atol=1e-6)
    out = loaded.signatures["classify"](images=tf.constant(queries))
    model = trainer.load_cluster_model(os.path.join(
        fake_run[0], "magnet", trainer.CLUSTER_MODEL_FILE))
    want = evaluation.magnet_predict(out["embeddings"].numpy(), model["centres"],
                                     model["cluster_classes"], float(model["sigma2"]),
                                     int(model["num_neighbours"]))
    np.testing.assert_array_equal(out["classes"].numpy(), want)
    assert [n.decode() for n in out["class_names"].numpy()] == [names[c]
                                                                for c in want]
    scores = out["scores"].numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(scores, axis=1), want)
    default = loaded.signatures["serving_default"](images=tf.constant(queries))
    np.testing.assert_array_equal(default["classes"], out["classes"])


def test_classify_matches_numpy_rule_with_sharp_kernel_and_l_equal_1():
    keras.utils.set_random_seed(1)
    embedder = networks.build_embedder(SHAPE, 4)
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 4))
    classes = np.array([2, 0, 2, 5, 0, 5])
    queries = rng.uniform(0, 255, (25, *SHAPE)).astype(np.float32)
    emb = embedder(queries, training=False).numpy()
    for sigma2, num in ((1e-3, 1), (10.0, 6), (0.5, 3)):
        server = serving.MagnetServer(embedder, centres, classes, sigma2, num,
                                      [f"c{i}" for i in range(6)], SHAPE)
        got = server.classify(tf.constant(queries))["classes"].numpy()
        want = evaluation.magnet_predict(emb, centres, classes, sigma2, num)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="num_neighbours"):
        serving.MagnetServer(embedder, centres, classes, 1.0, 7, ["a"] * 6, SHAPE)
    with pytest.raises(ValueError, match="sigma2"):
        serving.MagnetServer(embedder, centres, classes, 0.0, 2, ["a"] * 6, SHAPE)


def test_saved_model_cli_run(fake_run, tmp_path):
    _, _, path, _, _, queries, _ = fake_run
    np.save(tmp_path / "images.npy", queries[:5])
    out_dir = tmp_path / "out"
    proc = subprocess.run(
        _saved_model_cli() + ["run", "--dir", path, "--tag_set", "serve",
                              "--signature_def", "classify", "--inputs",
                              f"images={tmp_path / 'images.npy'}", "--outdir",
                              str(out_dir)],
        check=False, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    classes = np.load(out_dir / "classes.npy")
    loaded = tf.saved_model.load(path)
    want = loaded.signatures["classify"](images=tf.constant(queries[:5]))["classes"]
    np.testing.assert_array_equal(classes, want.numpy())


def test_export_refuses_runs_without_a_finished_magnet_model(fake_run, tmp_path):
    run_dir = str(tmp_path / "no_magnet")
    config.save_config(experiment.MagnetConfig(losses=("softmax",)), run_dir)
    with pytest.raises(ValueError, match="no trained magnet model"):
        serving.export_run(run_dir, str(tmp_path / "export"))
    stale = fake_run[0]
    model_path = os.path.join(stale, "magnet", trainer.CLUSTER_MODEL_FILE)
    model = trainer.load_cluster_model(model_path)
    np.savez(model_path, **{**model, "step": np.int64(3)})
    try:
        with pytest.raises(ValueError, match="from step 3"):
            serving.export_run(stale, str(tmp_path / "export"))
    finally:
        np.savez(model_path, **model)
