"""The oracle's inputs: (x, amplitude, phase) per point, as cbfinn/maml builds them."""

import numpy as np
import tensorflow as tf

from maml import oracle_baseline, tasks


def test_oracle_inputs_append_each_tasks_amplitude_and_phase():
    x = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    amp = np.array([0.5, 2.0, 4.0], np.float32)
    ph = np.array([0.1, 1.0, 3.0], np.float32)
    got = oracle_baseline.oracle_inputs(
        tf.constant(x), tf.constant(amp), tf.constant(ph)
    ).numpy()
    want = np.concatenate(
        [
            x,
            np.broadcast_to(amp[:, None, None], (3, 4, 1)),
            np.broadcast_to(ph[:, None, None], (3, 4, 1)),
        ],
        axis=-1,
    )
    np.testing.assert_array_equal(got, want)
    assert got.shape[-1] == oracle_baseline.ORACLE_INPUTS == 3


def test_oracle_batch_inputs_determine_the_targets():
    batch = tasks.sample_sinusoid_tasks(tf.constant([4, 2], tf.int64), 5, 6, 7)
    ob = oracle_baseline.oracle_batch(batch)
    for xs, ys in ((ob.support_x, ob.support_y), (ob.query_x, ob.query_y)):
        xs = xs.numpy()
        np.testing.assert_allclose(
            ys.numpy()[..., 0],
            xs[..., 1] * np.sin(xs[..., 0] - xs[..., 2]),
            rtol=1e-5,
            atol=1e-5,
        )
    np.testing.assert_array_equal(ob.support_y.numpy(), batch.support_y.numpy())
    sample = oracle_baseline.oracle_sampler(5, 6, 7)
    again = sample(tf.constant([4, 2], tf.int64))
    np.testing.assert_array_equal(again.query_x.numpy(), ob.query_x.numpy())
