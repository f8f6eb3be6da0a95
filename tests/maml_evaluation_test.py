"""Meta-test evaluation: curves against a NumPy reference, step-size tuning."""

import numpy as np
import tensorflow as tf

from maml import evaluation, meta_learner, networks, tasks


def _numpy_linear_curve(w, b, sx, sy, qx, qy, alpha, steps):
    """Per-task query MSE of GD on a linear model y = x w + b, in NumPy."""
    out = []
    for t in range(sx.shape[0]):
        wt, bt = w.copy(), b.copy()
        row = []
        for _ in range(steps + 1):
            row.append(np.mean((qx[t] @ wt + bt - qy[t]) ** 2))
            r = sx[t] @ wt + bt - sy[t]
            gw = 2.0 / r.size * sx[t].T @ r
            gb = 2.0 / r.size * r.sum(axis=0)
            wt, bt = wt - alpha * gw, bt - alpha * gb
        out.append(row)
    return np.array(out)


class EvaluationTest(tf.test.TestCase):
    def test_curve_matches_numpy_gradient_descent(self):
        rng = np.random.default_rng(0)
        net = networks.MLP((2, 1))
        w, b = rng.normal(size=(2, 1)), rng.normal(size=(1,))
        sx, sy = rng.normal(size=(5, 4, 2)), rng.normal(size=(5, 4, 1))
        qx, qy = rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 3, 1))
        batch = tasks.RegressionBatch(
            *(tf.constant(a) for a in (sx, sy, qx, qy)), amplitude=None, phase=None
        )
        got = evaluation.adaptation_curve(
            net,
            {"w0": tf.constant(w), "b0": tf.constant(b)},
            batch,
            meta_learner.mse_per_task,
            0.1,
            4,
        )
        np.testing.assert_allclose(
            got, _numpy_linear_curve(w, b, sx, sy, qx, qy, 0.1, 4), rtol=1e-10
        )

    def test_adapted_predictions_agree_with_curve_steps(self):
        net = networks.MLP((1, 10, 1), init_stddev=0.5)
        params = net.init_params(0)
        batch = tasks.sample_sinusoid_tasks(tf.constant([0, 1], tf.int64), 3, 5, 5)
        preds = evaluation.adapted_predictions(
            net,
            params,
            batch.support_x,
            batch.support_y,
            batch.query_x,
            meta_learner.mse_per_task,
            0.01,
            (0, 2),
        )
        curve = evaluation.adaptation_curve(
            net, params, batch, meta_learner.mse_per_task, 0.01, 2
        )
        for s in (0, 2):
            mse = np.mean((preds[s] - batch.query_y.numpy()) ** 2, axis=(1, 2))
            self.assertAllClose(mse, curve[:, s], rtol=1e-5)

    def test_tune_step_size_picks_lowest_validation_loss(self):
        # Linear least squares with step sizes far too small, right, or unstable.
        rng = np.random.default_rng(1)
        net = networks.MLP((1, 1))
        x = rng.uniform(-1, 1, size=(20, 10, 1))
        y = 3.0 * x
        batch = tasks.RegressionBatch(
            *(tf.constant(a) for a in (x, y, x, y)), amplitude=None, phase=None
        )
        params = {"w0": tf.zeros((1, 1), tf.float64), "b0": tf.zeros((1,), tf.float64)}
        best, scores = evaluation.tune_step_size(
            net, params, batch, meta_learner.mse_per_task, (1e-4, 0.5, 50.0), 5
        )
        self.assertEqual(best, 0.5)
        self.assertGreater(scores[1e-4], scores[0.5])
        self.assertEqual(len(scores), 3)

    def test_curve_estimates_use_the_ci_formula(self):
        curve = np.array([[1.0, 2.0], [3.0, 6.0]])
        est = evaluation.curve_estimates(curve)
        self.assertAlmostEqual(est[1].mean, 4.0)
        self.assertAlmostEqual(est[1].ci95, 1.96 * 2.0 / np.sqrt(2))


if __name__ == "__main__":
    tf.test.main()
