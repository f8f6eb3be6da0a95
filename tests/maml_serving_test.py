"""Export round trip and request validation of the served MAML models.

One export per model for the whole module: the sinusoid regressor (tiny MLP) and a
3-way classifier (tiny conv4). Every validation rule is checked through
`tf.saved_model.load` and through saved_model_cli's loader (`tests.serving_cli`);
valid answers are compared with the in-process MAML inner loop.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from common import export
from maml import evaluation, meta_learner, networks, serving, tasks
from tests import serving_cli

ALPHA = 0.02
LIMITS = serving.FewShotLimits(max_support_size=6, max_query_size=8)


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    """The exported sinusoid model, loaded once, with its task and network."""
    net = networks.MLP((1, 16, 16, 1), init_stddev=0.3)
    params = net.init_params(1)
    batch = tasks.sample_sinusoid_tasks(tf.constant([3, 4], tf.int64), 1, 5, 7)
    sx, sy = batch.support_x[0].numpy(), batch.support_y[0].numpy()
    qx = batch.query_x[0].numpy()
    root = str(tmp_path_factory.mktemp("sine"))
    module = serving.FewShotModule(
        net, params, meta_learner.mse_per_task, ALPHA, example_shape=(1,), limits=LIMITS
    )
    path = serving.export_few_shot_model(module, root, "sine", sx, sy, qx, 3)
    return {
        "net": net,
        "params": params,
        "sx": sx,
        "sy": sy,
        "qx": qx,
        "root": root,
        "path": path,
        "loaded": tf.saved_model.load(path),
    }


def _expected(sine, steps, sx=None, sy=None):
    sx = sine["sx"] if sx is None else sx
    sy = sine["sy"] if sy is None else sy
    preds = evaluation.adapted_predictions(
        sine["net"],
        sine["params"],
        sx[None],
        sy[None],
        sine["qx"][None],
        meta_learner.mse_per_task,
        ALPHA,
        (steps,),
    )
    return preds[steps][0]


def _adapt(sine, **changes):
    inputs = {
        "support_x": sine["sx"],
        "support_y": sine["sy"],
        "query_x": sine["qx"],
        "num_steps": np.int32(5),
    }
    inputs.update(changes)
    return ("adapt_and_predict", inputs)


def _with_nan(a, value=np.nan):
    a = a.copy()
    a.flat[1] = value
    return a


def _sine_rejections(sine):
    """(request, text the error must contain) for every rule of the sinusoid
    model; the issue's table rows first."""
    sx, sy, qx = sine["sx"], sine["sy"], sine["qx"]
    return [
        (
            _adapt(sine, support_x=sx[:3]),
            "support_y must have as many rows as support_x",
        ),
        (_adapt(sine, num_steps=np.int32(-3)), "num_steps must be in [0, 100]"),
        (_adapt(sine, num_steps=np.int32(100000)), "num_steps must be in [0, 100]"),
        (_adapt(sine, support_x=_with_nan(sx)), "support_x must be finite"),
        (_adapt(sine, support_y=_with_nan(sy, np.inf)), "support_y must be finite"),
        (_adapt(sine, query_x=_with_nan(qx)), "query_x must be finite"),
        (
            _adapt(
                sine,
                support_x=np.zeros((7, 1), np.float32),
                support_y=np.zeros((7, 1), np.float32),
            ),
            "support_x must have 1 to 6 rows (max_support_size = 6",
        ),
        (
            _adapt(
                sine,
                support_x=np.zeros((0, 1), np.float32),
                support_y=np.zeros((0, 1), np.float32),
            ),
            "support_x must have 1 to 6 rows",
        ),
        (
            _adapt(sine, query_x=np.zeros((9, 1), np.float32)),
            "query_x must have 1 to 8 rows (max_query_size = 8",
        ),
        (("predict", {"x": _with_nan(qx, -np.inf)}), "x must be finite"),
        (("predict", {"x": np.zeros((9, 1), np.float32)}), "x must have 1 to 8 rows"),
    ]


def test_versioned_layout_limits_and_warmup(sine):
    path, root = sine["path"], sine["root"]
    assert path == os.path.join(root, "sine", "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert export.next_version(os.path.join(root, "sine")) == 2
    assert export.read_serving_limits(path) == {
        "max_num_steps": 100,
        "max_support_size": 6,
        "max_query_size": 8,
    }
    requests = serving_cli.warmup_requests(path)
    assert [name for name, _ in requests] == ["predict", "adapt_and_predict"]
    np.testing.assert_allclose(requests[1][1]["support_x"], sine["sx"])
    assert int(requests[1][1]["num_steps"]) == 3
    for name, inputs in requests:  # The warm-up requests pass validation.
        sine["loaded"].signatures[name](**inputs)


def test_loaded_signatures_match_in_process_model(sine):
    loaded = sine["loaded"]
    assert set(loaded.signatures) == {"serving_default", "predict", "adapt_and_predict"}
    out = loaded.signatures["predict"](x=tf.constant(sine["qx"]))["outputs"]
    np.testing.assert_allclose(out, _expected(sine, 0), rtol=1e-5, atol=1e-6)
    for steps in (0, 1, 4, 100):  # 100: the largest num_steps the export allows.
        _, inputs = _adapt(sine, num_steps=np.int32(steps))
        out = loaded.signatures["adapt_and_predict"](**inputs)["outputs"]
        np.testing.assert_allclose(out, _expected(sine, steps), rtol=1e-5, atol=1e-6)
    assert not np.allclose(_expected(sine, 0), _expected(sine, 4))


def test_loaded_model_rejects_each_bad_request_naming_the_input(sine):
    loaded = sine["loaded"]
    for (name, inputs), text in _sine_rejections(sine):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            loaded.signatures[name](**inputs)
        assert text in str(info.value), (text, str(info.value)[:500])
    # Shapes the input spec does not describe: a loaded signature still runs its
    # graph on some of them, where the in-graph check rejects them.
    for changes, text in (
        ({"support_x": np.zeros((5, 2), np.float32)}, "support_x"),
        (
            {"support_x": np.zeros((5, 1, 1), np.float32)},
            "support_x must have shape [rows, 1]",
        ),
        (
            {"support_y": np.zeros((5,), np.float32)},
            "support_y must have shape [rows, 1]",
        ),
        (
            {"num_steps": np.array([3], np.int32)},
            "Shape of tensor num_steps [1] is not compatible with expected shape []",
        ),
    ):
        with pytest.raises(
            (TypeError, ValueError, tf.errors.InvalidArgumentError),
            match=re.escape(text),
        ):
            loaded.signatures["adapt_and_predict"](
                **{k: tf.constant(v) for k, v in _adapt(sine, **changes)[1].items()}
            )


def test_saved_model_cli_run_rejects_naming_the_input(sine, tmp_path):
    _, inputs = _adapt(sine, num_steps=np.int32(100000))
    proc, _ = serving_cli.cli_run(
        sine["path"], "adapt_and_predict", inputs, str(tmp_path)
    )
    assert proc.returncode != 0
    assert "num_steps must be in [0, 100]" in proc.stderr, proc.stderr[-2000:]


def test_export_refuses_warmup_steps_beyond_the_limit(sine, tmp_path):
    module = serving.FewShotModule(
        sine["net"],
        sine["params"],
        meta_learner.mse_per_task,
        ALPHA,
        example_shape=(1,),
        limits=serving.FewShotLimits(max_num_steps=2),
    )
    with pytest.raises(ValueError, match="max_num_steps"):
        serving.export_few_shot_model(
            module, str(tmp_path), "sine", sine["sx"], sine["sy"], sine["qx"], 3
        )
    with pytest.raises(ValueError, match="max_num_steps"):
        serving.FewShotLimits(max_num_steps=0)


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    """An exported 3-way 2-shot conv4 classifier and its in-process answer."""
    rng = np.random.default_rng(0)
    net = networks.Conv4(3, filters=8)
    params = net.init_params(0)
    sx = rng.uniform(size=(6, 28, 28, 1)).astype(np.float32)
    sy = np.repeat(np.arange(3, dtype=np.int32), 2)
    qx = rng.uniform(size=(4, 28, 28, 1)).astype(np.float32)
    module = serving.classification_module(net, params, 2, 0.4)
    root = str(tmp_path_factory.mktemp("omni"))
    path = serving.export_few_shot_model(module, root, "omni", sx, sy, qx, 3)
    loss = meta_learner.softmax_cross_entropy_per_task(2)
    fast = meta_learner.adapt(net, params, sx[None], sy[None], loss, 0.4, 3)
    expected = tf.nn.softmax(net.apply(fast, qx[None])[0]).numpy()
    inputs = {"support_x": sx, "support_y": sy, "query_x": qx, "num_steps": np.int32(3)}
    return path, inputs, expected


def _omni_rejections(inputs):
    sx, sy, qx = inputs["support_x"], inputs["support_y"], inputs["query_x"]

    def changed(**kw):
        return ("adapt_and_predict", {**inputs, **kw})

    return [
        (
            changed(support_y=np.array([0, 0, 1, 1, 2, 3], np.int32)),
            "support_y must be in [0, 2] (labels of a 3-way model)",
        ),
        (
            changed(support_y=np.array([0, 0, 1, 1, 2, -1], np.int32)),
            "support_y must be in [0, 2]",
        ),
        (changed(support_y=sy[:4]), "support_y must have as many rows as support_x"),
        (changed(support_x=_with_nan(sx)), "support_x must be finite"),
        (changed(query_x=qx * 255.0), "query_x must be in [0, 1]"),
        (changed(num_steps=np.int32(101)), "num_steps must be in [0, 100]"),
        (("predict", {"x": -qx - 1.0}), "x must be in [0, 1]"),
    ]


def test_classification_answers_and_rejections(omni):
    path, inputs, expected = omni
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["adapt_and_predict"](**inputs)["outputs"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    for (name, request), text in _omni_rejections(inputs):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            loaded.signatures[name](**request)
        assert text in str(info.value), (text, str(info.value)[:500])
    for name, request in serving_cli.warmup_requests(path):
        loaded.signatures[name](**request)


def test_saved_model_cli_loader_answers_and_rejects_as_tf_saved_model_load(
    sine, omni, tmp_path
):
    """Both models' rejections, valid answers and warm-up requests through the
    TF1 loader that saved_model_cli uses, in one subprocess."""
    omni_path, omni_inputs, omni_expected = omni
    rejections = [(sine["path"], r, t) for r, t in _sine_rejections(sine)] + [
        (omni_path, r, t) for r, t in _omni_rejections(omni_inputs)
    ]
    valid = [
        (sine["path"], *_adapt(sine, num_steps=np.int32(100))),
        (sine["path"], *_adapt(sine, num_steps=np.int32(0))),
        (omni_path, "adapt_and_predict", omni_inputs),
        *[(sine["path"], *r) for r in serving_cli.warmup_requests(sine["path"])],
        *[(omni_path, *r) for r in serving_cli.warmup_requests(omni_path)],
        (sine["path"], *_adapt(sine, support_x=np.zeros((5, 2), np.float32))),
    ]
    results = serving_cli.cli_batch(
        [(p, *r) for p, r, _ in rejections] + valid, str(tmp_path)
    )
    for (_, _, text), result in zip(rejections, results, strict=False):
        assert isinstance(result, str) and text in result, (text, result)
    answers = results[len(rejections) :]
    np.testing.assert_allclose(
        answers[0]["outputs"], _expected(sine, 100), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        answers[1]["outputs"], _expected(sine, 0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        answers[2]["outputs"], omni_expected, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        answers[2]["outputs"].sum(axis=-1), np.ones(4), atol=1e-5
    )
    assert all(isinstance(a, dict) for a in answers[3:-1])  # Warm-up requests.
    assert "Cannot feed value of shape (5, 2)" in answers[-1]
    assert "support_x" in answers[-1]
