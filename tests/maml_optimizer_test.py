"""The in-graph Adam equals keras.optimizers.Adam."""

import keras
import numpy as np
import tensorflow as tf

from maml import optimizer


class AdamTest(tf.test.TestCase):
    def test_matches_keras_adam_over_several_steps(self):
        rng = np.random.default_rng(0)
        init = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=(4,))}
        grads_seq = [
            {k: rng.normal(size=v.shape) for k, v in init.items()} for _ in range(6)
        ]
        variables = {k: tf.Variable(v, dtype=tf.float64) for k, v in init.items()}
        keras_adam = keras.optimizers.Adam(learning_rate=1e-2, epsilon=1e-8)
        params = {k: tf.constant(v) for k, v in init.items()}
        state = optimizer.adam_init(params)
        for grads in grads_seq:
            keras_adam.apply_gradients(
                [(tf.constant(grads[k]), variables[k]) for k in sorted(variables)]
            )
            params, state = optimizer.adam_update(
                params, {k: tf.constant(g) for k, g in grads.items()}, state, 1e-2
            )
        for k in init:
            # Keras keeps its learning rate and step count in float32.
            self.assertAllClose(params[k], variables[k], rtol=1e-5, atol=1e-7)
        self.assertEqual(float(state.count), 6.0)


if __name__ == "__main__":
    tf.test.main()
