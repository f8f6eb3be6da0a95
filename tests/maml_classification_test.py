"""Few-shot classification: episodes, conv4, meta-gradients, a real training run."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from common.data import omniglot
from maml import meta_learner, networks, tasks
from maml.experiments import classification_experiment, configs
from tests.bare_env import REPO, bare_env

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

DATA_DIR = os.environ.get(
    "REPRO_DATA_DIR",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "..",
        "shared",
        "data",
    ),
)
HAVE_OMNIGLOT = os.path.exists(os.path.join(DATA_DIR, "omniglot", omniglot.ZIPS[0]))


def _images(classes=12, per_class=20, size=28, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (classes, per_class, size, size), dtype=np.uint8)


class EpisodeTest(tf.test.TestCase):
    def test_shapes_labels_and_distinct_classes(self):
        images = _images()
        ep = tasks.sample_episodes(
            tf.constant([1, 2], tf.int64), tf.constant(images), 6, 5, 2, 3, rotate=True
        )
        self.assertEqual(ep.support_x.shape, (6, 10, 28, 28, 1))
        self.assertEqual(ep.query_x.shape, (6, 15, 28, 28, 1))
        self.assertAllEqual(ep.support_y[0], np.repeat(np.arange(5), 2))
        self.assertAllEqual(ep.query_y[0], np.repeat(np.arange(5), 3))
        for t in range(6):
            self.assertLen(set(ep.classes[t].numpy().tolist()), 5)
        # The label -> class assignment is a fresh permutation per task.
        self.assertGreater(len({tuple(c) for c in ep.classes.numpy().tolist()}), 1)

    def test_rotation_is_per_class_multiple_of_90_and_examples_distinct(self):
        images = _images()
        ep = tasks.sample_episodes(
            tf.constant([3, 4], tf.int64), tf.constant(images), 8, 4, 2, 2, rotate=True
        )
        x = np.concatenate(
            [
                ep.support_x.numpy().reshape(8, 4, 2, 28, 28),
                ep.query_x.numpy().reshape(8, 4, 2, 28, 28),
            ],
            axis=2,
        )
        seen_rotations = set()
        for t in range(8):
            for n in range(4):
                c, k = int(ep.classes[t, n]), int(ep.rotations[t, n])
                seen_rotations.add(k)
                matched = []
                for img in x[t, n]:
                    unrot = np.rot90(img, -k)  # undo the class's rotation
                    hits = [
                        e
                        for e in range(20)
                        if np.allclose(unrot, images[c, e] / 255.0, atol=1e-6)
                    ]
                    self.assertLen(hits, 1)
                    matched.append(hits[0])
                self.assertLen(set(matched), 4)  # 4 distinct drawings
        self.assertEqual(seen_rotations, {0, 1, 2, 3})

    def test_deterministic_per_seed(self):
        images = tf.constant(_images())
        a = tasks.sample_episodes(tf.constant([5, 6], tf.int64), images, 3, 5, 1, 1)
        b = tasks.sample_episodes(tf.constant([5, 6], tf.int64), images, 3, 5, 1, 1)
        c = tasks.sample_episodes(tf.constant([5, 7], tf.int64), images, 3, 5, 1, 1)
        self.assertAllEqual(a.support_x, b.support_x)
        self.assertNotAllClose(a.support_x, c.support_x)

    def test_every_config_has_consistent_shapes(self):
        for name, cfg in configs.CLASSIFICATION_EXPERIMENTS.items():
            size = 28 if cfg.dataset == "omniglot" else 84
            net = cfg.network(impl="patches")
            params = net.init_params(0)
            x = tf.zeros([2, cfg.ways * cfg.shots, size, size, 1 if size == 28 else 3])
            out = net.apply(networks.tile_params(params, 2), x)
            self.assertEqual(out.shape, (2, cfg.ways * cfg.shots, cfg.ways), name)


class Conv4Test(tf.test.TestCase):
    def test_parameter_counts(self):
        omni = networks.Conv4(5)
        # conv: 3*3*cin*64 + 64 bias; 4 batch-norm offsets of 64; head 64*5 + 5.
        expected = (9 * 1 * 64 + 64) + 3 * (9 * 64 * 64 + 64) + 4 * 64 + 64 * 5 + 5
        self.assertEqual(omni.num_parameters(), expected)
        mini = networks.Conv4(5, 84, 3, 32, "maxpool", "flatten", "glorot")
        self.assertEqual(mini.feature_size(), 5 * 5 * 32)
        expected = (9 * 3 * 32 + 32) + 3 * (9 * 32 * 32 + 32) + 4 * 32 + 800 * 5 + 5
        self.assertEqual(mini.num_parameters(), expected)
        mlp = configs.CLASSIFICATION_EXPERIMENTS["omniglot_nonconv_5w1s"].network()
        self.assertEqual(mlp.layer_sizes, (784, 256, 128, 64, 64, 5))

    def test_implementations_compute_the_same_function(self):
        rng = np.random.default_rng(0)
        for args in ((5,), (5, 84, 3, 32, "maxpool", "flatten", "glorot")):
            nets = {
                impl: networks.Conv4(*args, conv_impl=impl)
                for impl in ("native", "patches", "im2col", "grouped")
            }
            params = nets["native"].init_params(1)
            params = {
                k: v + 0.1 * rng.standard_normal(v.shape).astype(np.float32)
                for k, v in params.items()
            }
            size, ch = (28, 1) if len(args) == 1 else (84, 3)
            x = tf.constant(rng.uniform(size=(2, 6, size, size, ch)), tf.float32)
            tiled = networks.tile_params(params, 2)
            ref = nets["native"].apply(tiled, x)
            for impl in ("patches", "im2col", "grouped"):
                self.assertAllClose(
                    nets[impl].apply(tiled, x), ref, rtol=1e-3, atol=1e-3
                )

    def test_second_order_matches_finite_differences_and_differs_from_first(self):
        net = networks.Conv4(2, 8, 1, 3, conv_impl="im2col", head_init="glorot")
        rng = np.random.default_rng(2)
        params = {
            k: tf.constant(v.numpy() + 0.3 * rng.standard_normal(v.shape))
            for k, v in net.init_params(0, tf.float64).items()
        }
        batch = meta_learner.TaskSlice(
            tf.constant(rng.uniform(size=(2, 4, 8, 8, 1))),
            tf.constant([[0, 1, 0, 1], [1, 0, 1, 0]], tf.int32),
            tf.constant(rng.uniform(size=(2, 4, 8, 8, 1))),
            tf.constant([[0, 0, 1, 1], [1, 1, 0, 0]], tf.int32),
        )
        loss = meta_learner.softmax_cross_entropy_per_task(2)

        def objective(p):
            return float(
                meta_learner.maml_objective(net, p, batch, loss, 0.3, 2, False).loss
            )

        _, so = meta_learner.meta_gradient(net, params, batch, loss, 0.3, 2)
        _, fo = meta_learner.meta_gradient(
            net, params, batch, loss, 0.3, 2, first_order=True
        )
        eps = 1e-6
        for key in ("conv1_w", "bn2_beta", "out_w"):
            flat = params[key].numpy().ravel()
            for i in rng.choice(flat.size, 3, replace=False):
                e = np.zeros_like(flat)
                e[i] = eps
                plus = dict(
                    params, **{key: tf.constant((flat + e).reshape(params[key].shape))}
                )
                minus = dict(
                    params, **{key: tf.constant((flat - e).reshape(params[key].shape))}
                )
                numeric = (objective(plus) - objective(minus)) / (2 * eps)
                self.assertAllClose(
                    so[key].numpy().ravel()[i], numeric, rtol=1e-4, atol=1e-7
                )
        diff = max(float(tf.reduce_max(tf.abs(so[k] - fo[k]))) for k in so)
        self.assertGreater(diff, 1e-4)
        # The batch-norm offsets are not adapted by the inner loop.
        fast = meta_learner.adapt(
            net, params, batch.support_x, batch.support_y, loss, 0.3, 2
        )
        self.assertAllEqual(fast["bn0_beta"][0], params["bn0_beta"])
        self.assertNotAllClose(fast["conv0_w"][0], params["conv0_w"])

    def test_split_meta_gradient_equals_batched(self):
        rng = np.random.default_rng(3)
        batch = tasks.sample_episodes(
            tf.constant([7, 8], tf.int64),
            tf.constant(_images()),
            3,
            4,
            1,
            3,
            rotate=True,
        )
        loss = meta_learner.softmax_cross_entropy_per_task(1)
        net = networks.Conv4(4, filters=8, conv_impl="patches")
        qnet = networks.Conv4(4, filters=8, conv_impl="native")
        params = {
            k: v + 0.05 * rng.standard_normal(v.shape).astype(np.float32)
            for k, v in net.init_params(0).items()
        }
        for first_order in (False, True):
            obj_a, a = meta_learner.meta_gradient(
                net, params, batch, loss, 0.4, 2, first_order
            )
            obj_b, b = meta_learner.meta_gradient_split(
                net, qnet, params, batch, loss, 0.4, 2, first_order
            )
            self.assertAllClose(obj_a.loss, obj_b.loss, rtol=1e-4)
            for k in a:
                self.assertAllClose(a[k], b[k], rtol=2e-3, atol=2e-5)

    def test_grouped_inner_loop_matches_float64_reference(self):
        if not networks.grouped_convolution_differentiable():
            self.skipTest("this TensorFlow has no CPU gradient for grouped convs")
        # "grouped" (oneDNN grouped convolution; float32 only: TF has no CPU
        # gradient for grouped convolutions in float64) against the im2col
        # network in float64, through a 3-step second-order inner loop.
        rng = np.random.default_rng(4)
        batch = tasks.sample_episodes(
            tf.constant([9, 10], tf.int64), tf.constant(_images()), 3, 4, 1, 2
        )
        ref_net = networks.Conv4(4, filters=8, conv_impl="im2col")
        params = {
            k: v + 0.05 * rng.standard_normal(v.shape)
            for k, v in ref_net.init_params(0, tf.float64).items()
        }
        loss = meta_learner.softmax_cross_entropy_per_task(1)

        def grads(net, dtype):
            cast = {k: tf.constant(v.numpy(), dtype) for k, v in params.items()}
            b = meta_learner.TaskSlice(
                tf.cast(batch.support_x, dtype),
                batch.support_y,
                tf.cast(batch.query_x, dtype),
                batch.query_y,
            )
            return meta_learner.meta_gradient(net, cast, b, loss, 0.4, 3)[1]

        ref = grads(ref_net, tf.float64)
        got = grads(networks.Conv4(4, filters=8, conv_impl="grouped"), tf.float32)
        for k in ref:
            if k.startswith("conv") and k.endswith("_b"):
                continue  # cancelled by batch norm: exactly zero, both are noise
            scale = float(tf.reduce_max(tf.abs(ref[k])))
            self.assertAllClose(got[k], ref[k], atol=1e-4 * scale, rtol=0)

    def test_inner_loop_falls_back_where_grouped_gradients_are_missing(self):
        # TF's own CPU kernels (oneDNN off, as on ARM) cannot differentiate a
        # grouped convolution; the trainer must then use the im2col form.
        code = (
            "import tensorflow as tf\n"
            "from maml import meta_learner, networks, tasks\n"
            "from maml.experiments import classification_experiment as ce\n"
            "from maml.experiments import configs\n"
            "cfg = configs.CLASSIFICATION_EXPERIMENTS['omniglot_5w1s']\n"
            "net = ce.support_network(cfg)\n"
            "print('impl', net.conv_impl)\n"
            "images = tf.random.uniform([6, 3, 28, 28], 0, 255, seed=1)\n"
            "batch = tasks.sample_episodes(tf.constant([1, 2], tf.int64),\n"
            "    tf.cast(images, tf.uint8), 2, 5, 1, 1)\n"
            "loss = meta_learner.softmax_cross_entropy_per_task(1)\n"
            "_, g = meta_learner.meta_gradient(net, net.init_params(0), batch,\n"
            "    loss, 0.4, 1)\n"
            "print('finite', all(bool(tf.reduce_all(tf.math.is_finite(v)))\n"
            "    for v in g.values()))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            env=bare_env(TF_ENABLE_ONEDNN_OPTS="0"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        self.assertIn("impl patches", out.stdout)
        self.assertIn("finite True", out.stdout)
        if networks.grouped_convolution_differentiable():
            cfg = configs.CLASSIFICATION_EXPERIMENTS["omniglot_5w1s"]
            net = classification_experiment.support_network(cfg)
            self.assertEqual(net.conv_impl, "grouped")


@pytest.mark.skipif(not HAVE_OMNIGLOT, reason="real Omniglot not available")
class RealOmniglotTest(tf.test.TestCase):
    def test_tiny_meta_training_beats_chance_and_resumes_exactly(self):
        cfg = dataclasses.replace(
            configs.CLASSIFICATION_EXPERIMENTS["omniglot_5w1s"],
            meta_batch_size=8,
            num_iterations=120,
            eval_tasks=100,
            val_tasks=20,
            eval_every=120,
            checkpoint_every=60,
            log_every=60,
        )
        cache = os.environ.get("REPRO_CACHE_DIR") or self.get_temp_dir()
        splits = classification_experiment.load_splits(cfg, DATA_DIR, cache)
        images = tf.Variable(splits["train"], trainable=False)
        test = classification_experiment.eval_episodes(
            cfg, tf.constant(splits["test"]), "test", cfg.eval_tasks
        )
        trainer = classification_experiment.build_trainer(cfg, images)
        first = trainer.train(60)
        ckpt = tf.train.Checkpoint(trainer=trainer).save(self.get_temp_dir() + "/c")
        second = trainer.train(60)
        after = classification_experiment.accuracy_curve(
            cfg, trainer.current_params(), test
        )
        # Meta-training lowers the post-update query loss...
        self.assertLess(second.loss, 0.9 * first.loss)
        # ...and adapted 5-way accuracy is far above chance (20%), while the
        # un-adapted model (0 steps) is at chance: labels are permuted per task.
        self.assertGreater(after[:, 3].mean(), 0.5)
        self.assertLess(after[:, 0].mean(), 0.35)
        resumed = classification_experiment.build_trainer(cfg, images)
        tf.train.Checkpoint(trainer=resumed).restore(ckpt)
        resumed.train(60)
        for k in trainer.params:
            self.assertAllClose(
                resumed.params[k], trainer.params[k], rtol=1e-5, atol=1e-6
            )
