"""Export round trip: the served magnet rule equals the NumPy rule; every request
is validated (through tf.saved_model.load and saved_model_cli's loader)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import checkpoint, config, export
from magnet import (
    cluster_index,
    embedding,
    evaluation,
    networks,
    run_files,
    serving,
    trainer,
)
from magnet.experiments import experiment
from tests import serving_cli

SHAPE = (16, 16, 1)
LIMITS = serving.MagnetLimits(max_batch_size=32)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A run directory as the experiment leaves it, with a random network."""
    run_dir = str(tmp_path_factory.mktemp("run"))
    keras.utils.set_random_seed(0)
    cfg = experiment.MagnetConfig(
        embedding_dim=8, steps=6, eval_every=6, clusters_per_class=2, num_neighbours=5
    )
    config.save_config(cfg, run_dir)
    embedder = networks.build_embedder(SHAPE, 8)
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 255, (40, *SHAPE)).astype(np.float32)
    labels = np.arange(40) % 4
    emb = embedding.embed_all(trainer.embed_fn(embedder), train)
    index = cluster_index.ClusterIndex.build(emb, labels, 2, seed=0)
    names = ("zero", "one", "two", "three")
    run_files.save_cluster_model(
        os.path.join(run_dir, "magnet", run_files.CLUSTER_MODEL_FILE),
        index,
        5,
        names,
        6,
    )
    checkpoint.Checkpointer(
        os.path.join(run_dir, "checkpoints", "magnet"), model=embedder
    ).save(6)
    with open(os.path.join(run_dir, run_files.DATA_INFO), "w") as f:
        json.dump({"input_shape": list(SHAPE), "class_names": list(names)}, f)
    export_dir = str(tmp_path_factory.mktemp("export"))
    path = serving.export_run(run_dir, export_dir, limits=LIMITS)
    queries = rng.uniform(0, 255, (30, *SHAPE)).astype(np.float32)
    return run_dir, export_dir, path, embedder, index, queries, names


def test_versioned_layout_and_warmup(fake_run):
    _, export_dir, path, *_ = fake_run
    assert path == os.path.join(export_dir, serving.MODEL_NAME, "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    logs = export.read_warmup_requests(path)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "classify",
        "embed",
    ]
    assert export.read_serving_limits(path) == {"max_batch_size": 32}


def test_classify_equals_magnet_predict_on_the_same_embeddings(fake_run):
    _, _, path, embedder, index, queries, names = fake_run
    loaded = tf.saved_model.load(path)
    assert {"serving_default", "classify", "embed"} <= set(loaded.signatures)
    emb = loaded.signatures["embed"](images=tf.constant(queries))["embeddings"]
    np.testing.assert_allclose(
        emb, embedder(queries, training=False), rtol=1e-5, atol=1e-6
    )
    out = loaded.signatures["classify"](images=tf.constant(queries))
    model = run_files.load_cluster_model(
        os.path.join(fake_run[0], "magnet", run_files.CLUSTER_MODEL_FILE)
    )
    want = evaluation.magnet_predict(
        out["embeddings"].numpy(),
        model["centres"],
        model["cluster_classes"],
        float(model["sigma2"]),
        int(model["num_neighbours"]),
    )
    np.testing.assert_array_equal(out["classes"].numpy(), want)
    assert [n.decode() for n in out["class_names"].numpy()] == [names[c] for c in want]
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
        server = serving.MagnetServer(
            embedder, centres, classes, sigma2, num, [f"c{i}" for i in range(6)], SHAPE
        )
        got = server.classify(tf.constant(queries))["classes"].numpy()
        want = evaluation.magnet_predict(emb, centres, classes, sigma2, num)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="num_neighbours"):
        serving.MagnetServer(embedder, centres, classes, 1.0, 7, ["a"] * 6, SHAPE)
    with pytest.raises(ValueError, match="sigma2"):
        serving.MagnetServer(embedder, centres, classes, 0.0, 2, ["a"] * 6, SHAPE)


def _rejections(queries):
    """(request, text the error must contain) for every rule."""
    nan, big = queries[:3].copy(), queries[:3].copy()
    nan[1, 2, 3, 0] = np.nan
    big[0, 0, 0, 0] = 300.0
    return [
        (("classify", {"images": nan}), "images must be finite"),
        (
            ("embed", {"images": np.full((2, *SHAPE), np.inf, np.float32)}),
            "images must be finite",
        ),
        (("classify", {"images": big}), "images must be in [0, 255] (pixel values)"),
        (("embed", {"images": -queries[:2] - 1.0}), "images must be in [0, 255]"),
        (
            ("classify", {"images": np.zeros((33, *SHAPE), np.float32)}),
            "images must have 1 to 32 rows (max_batch_size = 32",
        ),
        (
            ("serving_default", {"images": np.zeros((0, *SHAPE), np.float32)}),
            "images must have 1 to 32 rows",
        ),
    ]


def test_loaded_model_rejects_bad_requests_naming_the_input(fake_run):
    path, queries = fake_run[2], fake_run[5]
    loaded = tf.saved_model.load(path)
    for (name, inputs), text in _rejections(queries):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            loaded.signatures[name](**inputs)
        assert text in str(info.value), (text, str(info.value)[:500])
    for shape in ((2, 16, 16, 3), (2, 16, 16), (2, 16, 16, 1, 1), (2, 8, 32, 1)):
        # The loaded signature falls back to running the graph on a tensor its
        # input spec does not describe: the in-graph shape check rejects it.
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"images must have shape \[batch, 16, 16, 1\]",
        ):
            loaded.signatures["classify"](images=tf.zeros(shape))
    for name, inputs in serving_cli.warmup_requests(path):
        loaded.signatures[name](**inputs)
    full = loaded.signatures["classify"](images=tf.zeros((32, *SHAPE)))
    assert full["classes"].shape == (32,)  # max_batch_size itself is accepted.


def test_saved_model_cli_loader_answers_and_rejects(fake_run, tmp_path):
    path, queries = fake_run[2], fake_run[5]
    rejections = _rejections(queries)
    valid = [
        ("classify", {"images": queries[:5]}),
        ("embed", {"images": queries}),
        *serving_cli.warmup_requests(path),
        ("classify", {"images": np.zeros((2, 16, 16, 3), np.float32)}),
    ]
    results = serving_cli.cli_batch(
        [(path, *r) for r, _ in rejections] + [(path, *r) for r in valid], str(tmp_path)
    )
    for (_, text), result in zip(rejections, results, strict=False):
        assert isinstance(result, str) and text in result, (text, result)
    answers = results[len(rejections) :]
    loaded = tf.saved_model.load(path)
    want = loaded.signatures["classify"](images=tf.constant(queries[:5]))
    np.testing.assert_array_equal(answers[0]["classes"], want["classes"].numpy())
    # Another process, possibly other thread pools: float32 round-off only.
    np.testing.assert_allclose(
        answers[0]["scores"], want["scores"].numpy(), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        answers[1]["embeddings"],
        fake_run[3](queries, training=False),
        rtol=1e-5,
        atol=1e-6,
    )
    assert all(isinstance(a, dict) for a in answers[2:4])  # Warm-up requests.
    assert "Cannot feed value of shape (2, 16, 16, 3)" in answers[4]
    assert "images" in answers[4]


def test_saved_model_cli_run_rejects_naming_the_input(fake_run, tmp_path):
    path, queries = fake_run[2], fake_run[5]
    images = queries[:2].copy()
    images[0, 0, 0, 0] = np.nan
    proc, _ = serving_cli.cli_run(path, "classify", {"images": images}, str(tmp_path))
    assert proc.returncode != 0
    assert "images must be finite" in proc.stderr, proc.stderr[-2000:]


def test_export_refuses_runs_without_a_finished_magnet_model(fake_run, tmp_path):
    run_dir = str(tmp_path / "no_magnet")
    config.save_config(experiment.MagnetConfig(losses=("softmax",)), run_dir)
    with pytest.raises(ValueError, match="no trained magnet model"):
        serving.export_run(run_dir, str(tmp_path / "export"))
    stale = fake_run[0]
    model_path = os.path.join(stale, "magnet", run_files.CLUSTER_MODEL_FILE)
    model = run_files.load_cluster_model(model_path)
    np.savez(model_path, **{**model, "step": np.int64(3)})
    try:
        with pytest.raises(ValueError, match="from step 3"):
            serving.export_run(stale, str(tmp_path / "export"))
    finally:
        np.savez(model_path, **model)
