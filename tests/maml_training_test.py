"""train_phase: budgets, time limits, divergence, resume bookkeeping."""

import json
import os
import tempfile

import tensorflow as tf

from maml import training
from maml.experiments import configs, sinusoid_experiment


def _cfg(**kw):
    base = dict(hidden_sizes=(8,), meta_batch_size=4, num_shots=5, jit_compile=False)
    base.update(kw)
    return configs.SinusoidConfig(**base)


class TrainPhaseTest(tf.test.TestCase):
    def test_runs_to_target_checkpoints_and_resumes(self):
        with tempfile.TemporaryDirectory() as d:
            r = training.train_phase(
                "maml",
                sinusoid_experiment.build_trainer(_cfg(), "maml"),
                30,
                d,
                checkpoint_every=10,
                log_every=10,
            )
            self.assertEqual((r.iterations, r.status, r.sessions), (30, "complete", 1))
            state = os.path.join(d, "checkpoints", "maml", training.PHASE_STATE)
            with open(state) as f:
                self.assertEqual(json.load(f)["iterations"], 30)
            # Extending the budget continues from the checkpoint.
            r2 = training.train_phase(
                "maml",
                sinusoid_experiment.build_trainer(_cfg(), "maml"),
                50,
                d,
                checkpoint_every=10,
                log_every=10,
            )
            self.assertEqual((r2.iterations, r2.sessions), (50, 2))
            self.assertGreaterEqual(r2.train_seconds, r.train_seconds)
            # A finished phase is not trained again.
            r3 = training.train_phase(
                "maml",
                sinusoid_experiment.build_trainer(_cfg(), "maml"),
                50,
                d,
                checkpoint_every=10,
                log_every=10,
            )
            self.assertEqual((r3.iterations, r3.session_seconds), (50, 0.0))

    def test_time_limit_cuts_short_and_saves(self):
        with tempfile.TemporaryDirectory() as d:
            r = training.train_phase(
                "maml",
                sinusoid_experiment.build_trainer(_cfg(), "maml"),
                10_000_000,
                d,
                checkpoint_every=1000,
                log_every=5,
                max_seconds=1e-9,
            )
            # The first chunk is one iteration (it measures the rate that sizes
            # the next ones); the limit is checked after it.
            self.assertEqual((r.status, r.iterations), ("cut short", 1))
            self.assertIsNotNone(
                tf.train.latest_checkpoint(os.path.join(d, "checkpoints", "maml"))
            )

    def test_divergence_is_detected_and_not_checkpointed(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = _cfg(alpha=1e6, meta_learning_rate=1e6)
            r = training.train_phase(
                "maml",
                sinusoid_experiment.build_trainer(cfg, "maml"),
                200,
                d,
                checkpoint_every=100,
                log_every=10,
            )
            self.assertEqual(r.status, "diverged")
            self.assertLess(r.iterations, 200)
            self.assertIsNone(
                tf.train.latest_checkpoint(os.path.join(d, "checkpoints", "maml"))
            )

    def test_chunk_sizes_do_not_change_what_is_trained(self):
        # The loop sizes chunks by time, so their boundaries differ from run to
        # run; the trainer draws each iteration's tasks from its own counter, so
        # 10 iterations in one call and in calls of 1, 3 and 6 give the same
        # parameters bit for bit (XLA, as the main runs it, and plain graphs).
        for jit in (True, False):
            whole = sinusoid_experiment.build_trainer(_cfg(jit_compile=jit), "maml")
            whole.train(10)
            pieces = sinusoid_experiment.build_trainer(_cfg(jit_compile=jit), "maml")
            for n in (1, 3, 6):
                pieces.train(n)
            for k, v in whole.current_params().items():
                self.assertAllEqual(v, pieces.current_params()[k], msg=f"{k}, {jit}")


if __name__ == "__main__":
    tf.test.main()
