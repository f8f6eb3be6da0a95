"""The sinusoid task sampler: paper ranges, shapes, the function, determinism."""

import math

import numpy as np
import tensorflow as tf

from maml import tasks


def _sample(seed=(1, 2), t=500, k=5, q=7):
    return tasks.sample_sinusoid_tasks(tf.constant(seed, tf.int64), t, k, q)


class SinusoidTasksTest(tf.test.TestCase):
    def test_shapes(self):
        b = _sample(t=25, k=10, q=10)
        self.assertEqual(b.support_x.shape, (25, 10, 1))
        self.assertEqual(b.support_y.shape, (25, 10, 1))
        self.assertEqual(b.query_x.shape, (25, 10, 1))
        self.assertEqual(b.amplitude.shape, (25,))

    def test_ranges_are_the_papers(self):
        b = _sample()
        amp, phase = b.amplitude.numpy(), b.phase.numpy()
        x = np.concatenate([b.support_x.numpy(), b.query_x.numpy()], axis=1)
        self.assertTrue(np.all((amp >= 0.1) & (amp <= 5.0)))
        self.assertTrue(np.all((phase >= 0.0) & (phase <= math.pi)))
        self.assertTrue(np.all((x >= -5.0) & (x <= 5.0)))
        # Uniform draws fill their ranges.
        self.assertLess(amp.min(), 0.3)
        self.assertGreater(amp.max(), 4.8)
        self.assertGreater(phase.max(), 3.0)
        self.assertLess(x.min(), -4.9)

    def test_targets_are_a_sin_x_minus_phase(self):
        b = _sample(t=20)
        for x, y in ((b.support_x, b.support_y), (b.query_x, b.query_y)):
            expected = b.amplitude.numpy()[:, None, None] * np.sin(
                x.numpy() - b.phase.numpy()[:, None, None]
            )
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)

    def test_support_and_query_share_the_task(self):
        b = _sample(t=3, k=2, q=2)
        self.assertEqual(b.support_x.shape[0], b.query_x.shape[0])
        self.assertFalse(np.allclose(b.support_x.numpy(), b.query_x.numpy()))

    def test_a_seed_determines_the_batch(self):
        a, b, c = _sample((5, 9)), _sample((5, 9)), _sample((5, 10))
        self.assertAllEqual(a.support_x, b.support_x)
        self.assertAllEqual(a.amplitude, b.amplitude)
        self.assertNotAllClose(a.support_x, c.support_x)


if __name__ == "__main__":
    tf.test.main()
