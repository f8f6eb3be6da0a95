"""Tests of the inner loop and meta-gradient against independent references."""

import functools

import numpy as np
import tensorflow as tf

from maml import meta_learner, meta_trainer, networks, tasks


def _batch(seed, num_tasks, k, dtype=tf.float64):
    return tasks.sample_sinusoid_tasks(
        tf.constant([seed, 0], tf.int64), num_tasks, k, k, dtype=dtype
    )


def _small_mlp_params(seed=3):
    # Random (not zero) biases keep every ReLU away from its kink, where finite
    # differences and the almost-everywhere derivative disagree.
    net = networks.MLP((1, 6, 5, 1), init_stddev=0.5)
    params = net.init_params(seed, tf.float64)
    rng = np.random.default_rng(seed)
    for k in params:
        if k.startswith("b"):
            params[k] = tf.constant(rng.normal(0.0, 0.5, params[k].shape))
    return net, params


def _flatten(params):
    keys = sorted(params)
    return keys, np.concatenate([params[k].numpy().ravel() for k in keys])


def _unflatten(keys, shapes, vec):
    out, i = {}, 0
    for k in keys:
        n = int(np.prod(shapes[k]))
        out[k] = tf.constant(vec[i : i + n].reshape(shapes[k]), tf.float64)
        i += n
    return out


class MetaGradientTest(tf.test.TestCase):
    def _objective_value(self, net, params, batch, alpha, steps):
        return float(
            meta_learner.maml_objective(
                net,
                params,
                batch,
                meta_learner.mse_per_task,
                alpha,
                steps,
                first_order=False,
            ).loss
        )

    def test_second_order_matches_central_finite_differences(self):
        net, params = _small_mlp_params()
        batch = _batch(1, num_tasks=3, k=4)
        alpha, steps = 0.05, 2
        _, grads = meta_learner.meta_gradient(
            net, params, batch, meta_learner.mse_per_task, alpha, steps
        )
        keys, theta = _flatten(params)
        shapes = {k: params[k].shape for k in keys}
        analytic = np.concatenate([grads[k].numpy().ravel() for k in keys])
        eps = 1e-6
        numeric = np.zeros_like(theta)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = eps
            plus = self._objective_value(
                net, _unflatten(keys, shapes, theta + e), batch, alpha, steps
            )
            minus = self._objective_value(
                net, _unflatten(keys, shapes, theta - e), batch, alpha, steps
            )
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)

    def test_first_order_is_query_gradient_at_adapted_weights(self):
        net, params = _small_mlp_params()
        batch = _batch(2, num_tasks=4, k=5)
        alpha, steps = 0.05, 2
        _, fo_grads = meta_learner.meta_gradient(
            net,
            params,
            batch,
            meta_learner.mse_per_task,
            alpha,
            steps,
            first_order=True,
        )
        # Independent reference: adapt, then treat the fast weights as leaves.
        fast = meta_learner.adapt(
            net,
            params,
            batch.support_x,
            batch.support_y,
            meta_learner.mse_per_task,
            alpha,
            steps,
        )
        fast = {k: tf.constant(v.numpy()) for k, v in fast.items()}
        with tf.GradientTape() as tape:
            tape.watch(list(fast.values()))
            loss = tf.reduce_mean(
                meta_learner.mse_per_task(net.apply(fast, batch.query_x), batch.query_y)
            )
        per_task = tape.gradient(loss, fast)
        for k in params:
            self.assertAllClose(
                fo_grads[k], tf.reduce_sum(per_task[k], axis=0), rtol=1e-10, atol=1e-12
            )
        _, so_grads = meta_learner.meta_gradient(
            net, params, batch, meta_learner.mse_per_task, alpha, steps
        )
        diff = max(
            float(tf.reduce_max(tf.abs(so_grads[k] - fo_grads[k]))) for k in params
        )
        self.assertGreater(diff, 1e-6)  # second order is really different

    def test_linear_regression_closed_form(self):
        # y = x.w + b with MSE: grad L = 2/n A^T (A theta - y), H = 2/n A^T A with
        # A = [x, 1]. MAML meta-gradient for one step: (I - alpha H_s) grad L_q.
        rng = np.random.default_rng(0)
        d, n, t, alpha = 3, 6, 2, 0.1
        net = networks.MLP((d, 1))
        params = {
            "w0": tf.constant(rng.normal(size=(d, 1))),
            "b0": tf.constant(rng.normal(size=(1,))),
        }
        xs, ys = rng.normal(size=(t, n, d)), rng.normal(size=(t, n, 1))
        xq, yq = rng.normal(size=(t, n, d)), rng.normal(size=(t, n, 1))
        batch = tasks.RegressionBatch(
            *(tf.constant(a) for a in (xs, ys, xq, yq)), amplitude=None, phase=None
        )
        _, grads = meta_learner.meta_gradient(
            net, params, batch, meta_learner.mse_per_task, alpha, 1
        )
        theta = np.concatenate([params["w0"].numpy().ravel(), params["b0"].numpy()])
        expected = np.zeros_like(theta)
        for i in range(t):
            a_s = np.hstack([xs[i], np.ones((n, 1))])
            a_q = np.hstack([xq[i], np.ones((n, 1))])
            g_s = 2.0 / n * a_s.T @ (a_s @ theta - ys[i, :, 0])
            h_s = 2.0 / n * a_s.T @ a_s
            theta_i = theta - alpha * g_s
            g_q = 2.0 / n * a_q.T @ (a_q @ theta_i - yq[i, :, 0])
            expected += (np.eye(d + 1) - alpha * h_s) @ g_q / t
        got = np.concatenate([grads["w0"].numpy().ravel(), grads["b0"].numpy()])
        np.testing.assert_allclose(got, expected, rtol=1e-10)

    def test_zero_steps_returns_meta_model_and_one_step_lowers_support_loss(self):
        net, params = _small_mlp_params()
        batch = _batch(4, num_tasks=5, k=10)
        same = meta_learner.adapt(
            net,
            params,
            batch.support_x,
            batch.support_y,
            meta_learner.mse_per_task,
            0.01,
            0,
        )
        for k in params:
            for i in range(5):
                self.assertAllEqual(same[k][i], params[k])
        tiled = networks.tile_params(params, 5)
        one = meta_learner.adapt(
            net,
            params,
            batch.support_x,
            batch.support_y,
            meta_learner.mse_per_task,
            0.01,
            1,
        )
        before = meta_learner.mse_per_task(
            net.apply(tiled, batch.support_x), batch.support_y
        )
        after = meta_learner.mse_per_task(
            net.apply(one, batch.support_x), batch.support_y
        )
        self.assertTrue(np.all(after.numpy() < before.numpy()))

    def test_pretrain_objective_is_plain_support_loss_gradient(self):
        net, params = _small_mlp_params()
        batch = _batch(5, num_tasks=3, k=4)
        _, grads = meta_learner.meta_gradient(
            net, params, batch, meta_learner.mse_per_task, 0.01, 1, objective="pretrain"
        )
        with tf.GradientTape() as tape:
            tape.watch(list(params.values()))
            losses = [
                tf.reduce_mean(
                    tf.square(
                        net.apply(
                            networks.tile_params(params, 1), batch.support_x[i : i + 1]
                        )
                        - batch.support_y[i : i + 1]
                    )
                )
                for i in range(3)
            ]
            loss = tf.add_n(losses) / 3.0
        expected = tape.gradient(loss, params)
        for k in params:
            self.assertAllClose(grads[k], expected[k])


class MetaTrainerTest(tf.test.TestCase):
    def _trainer(self, jit=True, seed=0):
        net = networks.MLP((1, 8, 8, 1))
        sample = functools.partial(
            tasks.sample_sinusoid_tasks, num_tasks=4, num_support=5, num_query=5
        )
        return meta_trainer.MetaTrainer(
            net,
            net.init_params(seed),
            sample,
            meta_learner.mse_per_task,
            0.01,
            1,
            1e-3,
            seed=7,
            jit_compile=jit,
        )

    def test_loop_equals_stepwise_reference_and_traces_once(self):
        trainer = self._trainer(jit=False)
        start = trainer.current_params()
        trainer.train(3)
        trainer.train(2)
        self.assertEqual(trainer._train.experimental_get_tracing_count(), 1)
        # Reference: the same five iterations, one `step` at a time, eagerly.
        ref = self._trainer(jit=False)
        params = start
        from maml import optimizer

        state = optimizer.adam_init(params)
        for i in range(5):
            params, state, _ = ref.step(params, state, tf.constant(i, tf.int64))
        for k in params:
            self.assertAllClose(trainer.params[k], params[k], rtol=1e-5, atol=1e-7)
        self.assertEqual(int(trainer.iteration.numpy()), 5)

    def test_resume_from_checkpoint_is_bitwise_identical(self):
        straight = self._trainer()
        straight.train(30)
        first = self._trainer()
        first.train(15)
        path = tf.train.Checkpoint(trainer=first).save(self.get_temp_dir() + "/ckpt")
        resumed = self._trainer(seed=99)  # other init: must be overwritten
        tf.train.Checkpoint(trainer=resumed).restore(path).assert_consumed()
        resumed.train(15)
        for k in straight.params:
            self.assertAllEqual(straight.params[k], resumed.params[k])
        self.assertAllEqual(straight.adam_v["w0"], resumed.adam_v["w0"])

    def test_meta_training_reduces_held_out_post_update_loss(self):
        net = networks.MLP((1, 40, 40, 1))
        sample = functools.partial(
            tasks.sample_sinusoid_tasks, num_tasks=25, num_support=10, num_query=10
        )
        trainer = meta_trainer.MetaTrainer(
            net,
            net.init_params(0),
            sample,
            meta_learner.mse_per_task,
            0.01,
            1,
            1e-3,
            seed=3,
        )
        held_out = tasks.sample_sinusoid_tasks(
            tf.constant([99, 99], tf.int64), 200, 10, 10
        )

        def post_update_loss():
            obj = meta_learner.maml_objective(
                net,
                trainer.current_params(),
                held_out,
                meta_learner.mse_per_task,
                0.01,
                1,
                first_order=False,
            )
            return float(obj.post_update_query_loss)

        before = post_update_loss()
        trainer.train(3000)
        self.assertLess(post_update_loss(), 0.5 * before)

    def test_gradient_clipping_bounds_the_update_input(self):
        net = networks.MLP((1, 4, 1))
        sample = functools.partial(
            tasks.sample_sinusoid_tasks, num_tasks=2, num_support=3, num_query=3
        )
        trainer = meta_trainer.MetaTrainer(
            net,
            net.init_params(0),
            sample,
            meta_learner.mse_per_task,
            0.01,
            1,
            1e-3,
            seed=0,
            grad_clip=1e-4,
            jit_compile=False,
        )
        trainer.train(1)
        # After one Adam step, m = (1 - beta_1) g with |g| <= clip.
        for k in trainer.params:
            self.assertLessEqual(
                float(tf.reduce_max(tf.abs(trainer.adam_m[k]))), 0.1 * 1e-4 + 1e-12
            )


if __name__ == "__main__":
    tf.test.main()
