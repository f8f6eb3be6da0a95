"""Checkpointer: restore the latest complete state."""

import tensorflow as tf

from common import checkpoint


class CheckpointerTest(tf.test.TestCase):
    def test_save_and_restore_latest(self):
        d = self.get_temp_dir()
        v = tf.Variable([1.0, 2.0])
        ckpt = checkpoint.Checkpointer(d, v=v)
        self.assertIsNone(ckpt.restore_latest())
        ckpt.save(10)
        v.assign([5.0, 6.0])
        ckpt.save(20)
        w = tf.Variable([0.0, 0.0])
        path = checkpoint.Checkpointer(d, v=w).restore_latest()
        self.assertTrue(path.endswith("-20"))
        self.assertAllEqual(w, [5.0, 6.0])


if __name__ == "__main__":
    tf.test.main()
