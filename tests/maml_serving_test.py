"""Export round trip: the served signatures equal the in-process model."""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from common import export
from maml import evaluation, meta_learner, networks, serving, tasks


def _saved_model_cli():
    """The saved_model_cli of this interpreter's environment."""
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return [path] if os.path.exists(path) else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


class ServingTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.net = networks.MLP((1, 16, 16, 1), init_stddev=0.3)
        cls.params = cls.net.init_params(1)
        cls.alpha = 0.02
        batch = tasks.sample_sinusoid_tasks(tf.constant([3, 4], tf.int64), 1, 5, 7)
        cls.sx, cls.sy = batch.support_x[0].numpy(), batch.support_y[0].numpy()
        cls.qx = batch.query_x[0].numpy()
        cls.export_root = tempfile.mkdtemp()
        module = serving.FewShotModule(cls.net, cls.params, meta_learner.mse_per_task,
                                       cls.alpha, example_shape=(1,))
        cls.path = serving.export_few_shot_model(module, cls.export_root, "sine",
                                                 cls.sx, cls.sy, cls.qx, 3)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.export_root, ignore_errors=True)
        super().tearDownClass()

    def _expected(self, steps):
        preds = evaluation.adapted_predictions(
            self.net, self.params, self.sx[None], self.sy[None], self.qx[None],
            meta_learner.mse_per_task, self.alpha, (steps,))
        return preds[steps][0]

    def test_versioned_layout_and_next_version(self):
        self.assertEqual(self.path, os.path.join(self.export_root, "sine", "1"))
        self.assertTrue(os.path.exists(os.path.join(self.path, "saved_model.pb")))
        self.assertEqual(export.next_version(os.path.join(self.export_root, "sine")), 2)

    def test_loaded_signatures_match_in_process_model(self):
        loaded = tf.saved_model.load(self.path)
        self.assertEqual(set(loaded.signatures),
                         {"serving_default", "predict", "adapt_and_predict"})
        out = loaded.signatures["predict"](x=tf.constant(self.qx))["outputs"]
        self.assertAllClose(out, self._expected(0), rtol=1e-5, atol=1e-6)
        for steps in (0, 1, 4):
            out = loaded.signatures["adapt_and_predict"](
                support_x=tf.constant(self.sx), support_y=tf.constant(self.sy),
                query_x=tf.constant(self.qx), num_steps=tf.constant(steps))["outputs"]
            self.assertAllClose(out, self._expected(steps), rtol=1e-5, atol=1e-6)
        self.assertNotAllClose(self._expected(0), self._expected(4))

    def test_saved_model_cli_run_with_npy_inputs(self):
        d = self.get_temp_dir()
        files = {"support_x": self.sx, "support_y": self.sy, "query_x": self.qx,
                 "num_steps": np.int32(4)}
        for name, value in files.items():
            np.save(os.path.join(d, f"{name}.npy"), value)
        inputs = ";".join(f"{n}={os.path.join(d, n + '.npy')}" for n in files)
        out_dir = os.path.join(d, "out")
        subprocess.run(
            _saved_model_cli() + ["run", "--dir", self.path, "--tag_set", "serve",
                                  "--signature_def", "adapt_and_predict", "--inputs",
                                  inputs, "--outdir", out_dir],
            check=True, capture_output=True)
        served = np.load(os.path.join(out_dir, "outputs.npy"))
        self.assertAllClose(served, self._expected(4), rtol=1e-5, atol=1e-6)

    def test_warmup_requests_cover_both_signatures(self):
        logs = export.read_warmup_requests(self.path)
        names = [log.predict_log.request.model_spec.signature_name for log in logs]
        self.assertEqual(names, ["predict", "adapt_and_predict"])
        request = logs[1].predict_log.request
        self.assertEqual(request.model_spec.name, "sine")
        self.assertAllClose(tf.make_ndarray(request.inputs["support_x"]), self.sx)
        self.assertEqual(int(tf.make_ndarray(request.inputs["num_steps"])), 3)


if __name__ == "__main__":
    tf.test.main()


class ClassificationServingTest(tf.test.TestCase):

    def test_adapt_and_predict_probabilities_via_saved_model_cli(self):
        rng = np.random.default_rng(0)
        net = networks.Conv4(3, filters=8)
        params = net.init_params(0)
        sx = rng.uniform(size=(6, 28, 28, 1)).astype(np.float32)
        sy = np.repeat(np.arange(3, dtype=np.int32), 2)
        qx = rng.uniform(size=(4, 28, 28, 1)).astype(np.float32)
        module = serving.classification_module(net, params, 2, 0.4)
        root = self.get_temp_dir()
        path = serving.export_few_shot_model(module, root, "omni", sx, sy, qx, 3)
        loss = meta_learner.softmax_cross_entropy_per_task(2)
        fast = meta_learner.adapt(net, params, sx[None], sy[None], loss, 0.4, 3)
        expected = tf.nn.softmax(net.apply(fast, qx[None])[0]).numpy()
        loaded = tf.saved_model.load(path)
        out = loaded.signatures["adapt_and_predict"](
            support_x=tf.constant(sx), support_y=tf.constant(sy),
            query_x=tf.constant(qx), num_steps=tf.constant(3))["outputs"]
        self.assertAllClose(out, expected, rtol=1e-4, atol=1e-5)
        files = {"support_x": sx, "support_y": sy, "query_x": qx,
                 "num_steps": np.int32(3)}
        for name, value in files.items():
            np.save(os.path.join(root, f"{name}.npy"), value)
        inputs = ";".join(f"{n}={os.path.join(root, n + '.npy')}" for n in files)
        subprocess.run(
            _saved_model_cli() + ["run", "--dir", path, "--tag_set", "serve",
                                  "--signature_def", "adapt_and_predict", "--inputs",
                                  inputs, "--outdir", os.path.join(root, "out")],
            check=True, capture_output=True)
        served = np.load(os.path.join(root, "out", "outputs.npy"))
        self.assertAllClose(served, expected, rtol=1e-4, atol=1e-5)
        self.assertAllClose(served.sum(axis=-1), np.ones(4), atol=1e-5)
