"""Explicit-weight networks: shapes, parameter counts, init, NumPy reference."""

import numpy as np
import tensorflow as tf

from maml import networks


class MLPTest(tf.test.TestCase):
    def test_paper_sinusoid_network_size(self):
        net = networks.MLP((1, 40, 40, 1))
        params = net.init_params(0)
        # 1*40 + 40 + 40*40 + 40 + 40*1 + 1
        self.assertEqual(net.num_parameters(), 1761)
        self.assertEqual(sum(int(np.prod(p.shape)) for p in params.values()), 1761)

    def test_init_is_truncated_normal_with_zero_biases(self):
        net = networks.MLP((1, 300, 300, 1), init_stddev=0.01)
        params = net.init_params(0)
        w = params["w1"].numpy()
        self.assertLessEqual(np.abs(w).max(), 0.02 + 1e-9)
        # std of a normal truncated at 2 sigma is 0.8796 sigma.
        self.assertAllClose(w.std(), 0.01 * 0.8796, rtol=0.02)
        self.assertAllEqual(params["b0"], np.zeros(300))
        self.assertAllEqual(net.init_params(0)["w0"], params["w0"])
        self.assertNotAllClose(net.init_params(1)["w0"], params["w0"])

    def test_apply_matches_numpy_per_task(self):
        net = networks.MLP((2, 5, 3), init_stddev=1.0)
        rng = np.random.default_rng(1)
        per_task = [
            {
                k: rng.normal(size=v.shape)
                for k, v in net.init_params(0, tf.float64).items()
            }
            for _ in range(4)
        ]
        stacked = {
            k: tf.constant(np.stack([p[k] for p in per_task])) for k in per_task[0]
        }
        x = rng.normal(size=(4, 6, 2))
        out = net.apply(stacked, tf.constant(x)).numpy()
        for t, p in enumerate(per_task):
            h = np.maximum(x[t] @ p["w0"] + p["b0"], 0.0)
            np.testing.assert_allclose(out[t], h @ p["w1"] + p["b1"], rtol=1e-12)

    def test_tile_params_adds_task_axis(self):
        params = networks.MLP((1, 3, 1)).init_params(0)
        tiled = networks.tile_params(params, 5)
        self.assertEqual(tiled["w0"].shape, (5, 1, 3))
        self.assertAllEqual(tiled["b1"][4], params["b1"])

    def test_rejects_bad_sizes(self):
        with self.assertRaises(ValueError):
            networks.MLP((1,))
        with self.assertRaises(ValueError):
            networks.MLP((1, 0, 1))


if __name__ == "__main__":
    tf.test.main()
