"""Table 1 protocol of the official code: query counts, the final-parameter cell,
and the context-vector baseline of App. C (Table 3)."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from maml import evaluation, meta_learner, networks, tasks, training
from maml.experiments import classification_experiment, configs, table1_summary


def _images(classes=12, per_class=20, size=28, channels=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (classes, per_class, size, size) + ((channels,) if channels else ())
    return rng.integers(0, 256, shape, dtype=np.uint8)


class QueryCountTest(tf.test.TestCase):
    """cbfinn/maml main.py: Omniglot draws DataGenerator(update_batch_size * 2)
    examples per class, K support and K query; MiniImagenet update_batch_size + 15
    at meta-training."""

    def test_training_queries_per_configuration(self):
        for name, cfg in configs.CLASSIFICATION_EXPERIMENTS.items():
            expected = cfg.shots if cfg.dataset == "omniglot" else 15
            cfg = dataclasses.replace(cfg, meta_batch_size=2)
            if cfg.dataset == "omniglot":
                images = tf.Variable(_images(classes=25), trainable=False)
            else:
                images = tf.Variable(
                    _images(classes=6, per_class=20, size=84, channels=3),
                    trainable=False,
                )
            sample = classification_experiment.build_trainer(cfg, images)._sample_tasks
            batch = sample(tf.constant([0, 1], tf.int64))
            self.assertEqual(batch.query_x.shape[1], cfg.ways * expected, name)
            self.assertEqual(batch.support_x.shape[1], cfg.ways * cfg.shots, name)
            self.assertEqual(cfg.queries_at_test, cfg.shots, name)
            self.assertNotIn("train_queries", " ".join(cfg.deviations()), name)

    def test_overriding_queries_is_a_labelled_deviation(self):
        cfg = configs.make_config("omniglot_20w1s", train_queries=15)
        self.assertEqual(cfg.queries_at_training, 15)
        self.assertIn("train_queries = 15; paper: 0", cfg.deviations())
        grey = configs.make_config("omniglot_5w1s", omniglot_pixels="antialiased")
        self.assertTrue(any("binary" in d for d in grey.deviations()))
        with self.assertRaisesRegex(ValueError, "--omniglot_pixels"):
            configs.make_config("omniglot_5w1s", omniglot_pixels="grey")


class OfficialCodeVariantTest(tf.test.TestCase):
    """Where paper and official code disagree, both are named configurations."""

    def test_miniimagenet_5shot_meta_batch_of_paper_and_code(self):
        # Paper section 5.2: meta-batches of 4 (1-shot) and 2 (5-shot) tasks;
        # cbfinn/maml main.py's 5-shot usage line: --meta_batch_size=4.
        paper = configs.CLASSIFICATION_EXPERIMENTS["miniimagenet_5w5s"]
        code = configs.CLASSIFICATION_EXPERIMENTS["miniimagenet_5w5s_official"]
        self.assertEqual(paper.meta_batch_size, 2)
        self.assertEqual(
            configs.CLASSIFICATION_EXPERIMENTS["miniimagenet_5w1s"].meta_batch_size, 4
        )
        self.assertEqual(code.meta_batch_size, 4)
        differing = [
            f.name
            for f in dataclasses.fields(paper)
            if getattr(paper, f.name) != getattr(code, f.name)
        ]
        self.assertEqual(differing, ["experiment", "meta_batch_size"])
        self.assertEqual(paper.deviations(), [])
        self.assertIn("meta_batch_size = 4; paper: 2", code.deviations())


class FinalCheckpointCellTest(tf.test.TestCase):
    """The official code tests the final parameters: they are the table cell."""

    def test_cell_is_final_parameters_and_best_is_an_extra_column(self):
        cfg = dataclasses.replace(
            configs.CLASSIFICATION_EXPERIMENTS["omniglot_5w1s"],
            eval_tasks=6,
            val_tasks=4,
            eval_max_steps=3,
        )
        net = classification_experiment.support_network(cfg)
        final = net.init_params(1)
        best = net.init_params(2)
        test = tasks.sample_episodes(
            tf.constant([3, 4], tf.int64),
            tf.constant(_images()),
            cfg.eval_tasks,
            5,
            1,
            1,
        )

        class Trainer:
            def current_params(self):
                return dict(final)

        holder = tf.Module()
        holder.params = {k: tf.Variable(v) for k, v in best.items()}
        history = [
            {
                "iteration": 40,
                "val_accuracy": 0.9,
                "test_accuracy": 0.5,
                "test_ci95": 0.1,
                "best_so_far": True,
            },
            {
                "iteration": 80,
                "val_accuracy": 0.3,
                "test_accuracy": 0.4,
                "test_ci95": 0.1,
                "best_so_far": False,
            },
        ]
        phase = training.PhaseResult(
            "maml", 80, 60_000, 10.0, 1, "cut short", 10.0, 8.0, 1.0
        )
        run_dir = os.path.join(self.get_temp_dir(), "run")
        record = classification_experiment._finish(
            cfg, run_dir, Trainer(), holder, history, phase, test, 0.0
        )

        def reference(params):  # step-3 accuracy of these parameters
            acc = evaluation.classification_curve(
                net, params, test, classification_experiment.loss_fn(cfg), cfg.alpha, 3
            )
            return 100 * acc[:, 3].mean()

        cell = record["cells"][0]
        self.assertEqual(cell["table"], "Table 1")
        self.assertAllClose(cell["ours"]["mean"], reference(final))
        self.assertEqual(cell["details"]["checkpoint"], "final (iteration 80)")
        self.assertIn("iteration 40", cell["details"]["best_on_validation"])
        self.assertAllClose(
            record["extra"]["best_on_validation"]["mean"], reference(best)
        )
        self.assertEqual(record["status"], "cut short")
        # App. C Table 3 repeats the 5-way conv MAML cell.
        self.assertEqual(
            [c["table"] for c in record["cells"]], ["Table 1", "Appendix C Table 3"]
        )
        with open(os.path.join(run_dir, "report.md")) as f:
            report = f.read()
        self.assertIn("checkpoint final (iteration 80)", report)
        self.assertIn("(cut short)", report)
        # Curves evaluated during the session are reused, not recomputed.
        cached = np.zeros([cfg.eval_tasks, cfg.eval_max_steps + 1])
        again = classification_experiment._finish(
            cfg, run_dir, Trainer(), holder, history, phase, test, 0.0, {80: cached}
        )
        self.assertEqual(again["cells"][0]["ours"]["mean"], 0.0)
        self.assertAllClose(
            again["extra"]["best_on_validation"]["mean"], reference(best)
        )
        summary = table1_summary.summary([record])
        self.assertIn(f"| {reference(final):.2f} ± ", summary)
        self.assertIn("80 of 60,000 it", summary)
        self.assertIn("## omniglot_5w1s (cut short)", summary)


class ContextVectorTest(tf.test.TestCase):
    """App. C.1: z concatenated channel-wise to the input; only z is adapted."""

    def _net(self, impl="im2col"):
        return networks.ContextConv4(
            3,
            1,
            image_size=8,
            channels=1,
            filters=4,
            head_init="glorot",
            conv_impl=impl,
        )

    def test_configs_and_registry_cells(self):
        for shots in (1, 5):
            cfg = configs.CLASSIFICATION_EXPERIMENTS[f"omniglot_context_5w{shots}s"]
            self.assertEqual(
                (cfg.table, cfg.table_row, cfg.table_column),
                ("Appendix C Table 3", "context vector", f"{shots}-shot"),
            )
            net = cfg.network()
            self.assertEqual(net.adapted_keys, ("context",))
            params = net.init_params(0)
            self.assertEqual(params["context"].shape, (28, 28, 1))
            self.assertEqual(params["conv0_w"].shape, (3, 3, 2, 64))

    def test_apply_equals_conv4_on_the_concatenated_input(self):
        rng = np.random.default_rng(0)
        net = self._net()
        params = {
            k: tf.constant(rng.standard_normal(v.shape), tf.float32)
            for k, v in net.init_params(0).items()
        }
        x = tf.constant(rng.uniform(size=(2, 5, 8, 8, 1)), tf.float32)
        tiled = networks.tile_params(params, 2)
        plain = networks.Conv4(3, 8, 2, 4, head_init="glorot", conv_impl="im2col")
        z = np.broadcast_to(params["context"].numpy(), (2, 5, 8, 8, 1))
        ref = plain.apply(
            {k: v for k, v in tiled.items() if k != "context"},
            tf.concat([x, z], axis=-1),
        )
        self.assertAllClose(net.apply(tiled, x), ref, rtol=1e-5, atol=1e-5)
        native = self._net("native")
        self.assertAllClose(native.apply(tiled, x), ref, rtol=1e-3, atol=1e-3)

    def test_inner_loop_adapts_only_the_context_and_split_gradient_matches(self):
        rng = np.random.default_rng(1)
        net = self._net()
        params = {
            k: v + 0.1 * rng.standard_normal(v.shape).astype(np.float32)
            for k, v in net.init_params(0).items()
        }
        batch = tasks.sample_episodes(
            tf.constant([5, 6], tf.int64), tf.constant(_images(size=8)), 2, 3, 1, 2
        )
        loss = meta_learner.softmax_cross_entropy_per_task(1)
        fast = meta_learner.adapt(
            net, params, batch.support_x, batch.support_y, loss, 0.4, 2
        )
        for k in params:
            if k == "context":
                self.assertNotAllClose(fast[k][0], params[k])
            else:
                self.assertAllEqual(fast[k][0], params[k])
        obj_a, a = meta_learner.meta_gradient(net, params, batch, loss, 0.4, 1)
        obj_b, b = meta_learner.meta_gradient_split(
            net, self._net("native"), params, batch, loss, 0.4, 1
        )
        self.assertAllClose(obj_a.loss, obj_b.loss, rtol=1e-4)
        for k in a:
            self.assertAllClose(a[k], b[k], rtol=2e-3, atol=2e-5)


class LowRankFirstLayerTest(tf.test.TestCase):
    """The factored first-layer inner loop of the BN-MLP changes no number."""

    def test_meta_gradient_and_adapted_outputs_equal_the_plain_mlp(self):
        rng = np.random.default_rng(4)
        for batch_norm in (True, False):
            plain = networks.MLP((12, 7, 5, 3), batch_norm=batch_norm)
            low = networks.MLP(
                (12, 7, 5, 3), batch_norm=batch_norm, low_rank_first_layer=True
            )
            params = {
                k: tf.constant(rng.standard_normal(v.shape), tf.float64)
                for k, v in plain.init_params(0, tf.float64).items()
            }
            batch = meta_learner.TaskSlice(
                tf.constant(rng.uniform(size=(3, 6, 12))),
                tf.constant(rng.integers(0, 3, (3, 6)), tf.int32),
                tf.constant(rng.uniform(size=(3, 4, 12))),
                tf.constant(rng.integers(0, 3, (3, 4)), tf.int32),
            )
            loss = meta_learner.softmax_cross_entropy_per_task(2)
            for steps in (1, 3):
                for first_order in (False, True):
                    obj_a, a = meta_learner.meta_gradient(
                        plain, params, batch, loss, 0.3, steps, first_order
                    )
                    obj_b, b = meta_learner.meta_gradient(
                        low, params, batch, loss, 0.3, steps, first_order
                    )
                    self.assertAllClose(obj_a.loss, obj_b.loss, rtol=1e-10)
                    for k in a:
                        self.assertAllClose(a[k], b[k], rtol=1e-9, atol=1e-12)
            # Adapted predictions (the evaluation path) agree at every step.
            fa = meta_learner.adapt(
                plain, params, batch.support_x, batch.support_y, loss, 0.3, 2
            )
            fb = meta_learner.adapt(
                low, params, batch.support_x, batch.support_y, loss, 0.3, 2
            )
            self.assertEqual(fb["w0_basis"].shape, (3, 12, 12))  # 2 steps x 6
            self.assertAllClose(
                plain.apply(fa, batch.query_x), low.apply(fb, batch.query_x), rtol=1e-10
            )
            # The factored weight equals the plain per-task weight.
            w0 = fb["w0"] + tf.matmul(fb["w0_basis"], fb["w0_coef"], transpose_a=True)
            self.assertAllClose(w0, fa["w0"], rtol=1e-10)
