"""Tests of `benchmarks.op_profile`: kernel time by op type from TF's profiler."""

import tensorflow as tf

from benchmarks import op_profile


class OpProfileTest(tf.test.TestCase):
    def test_kernel_events_are_told_from_runtime_and_enclosing_events(self):
        self.assertEqual(op_profile._op_type("dense/MatMul:_MklMatMul"), "_MklMatMul")
        self.assertEqual(op_profile._op_type("add:AddV2"), "AddV2")
        for runtime_or_enclosing in (
            "ExecutorState::Process",
            "EagerLocalExecute: __inference_f_12",
            "FunctionRun",
            "while:While",
            "call:StatefulPartitionedCall",
        ):
            self.assertIsNone(op_profile._op_type(runtime_or_enclosing))

    def test_counts_each_kernel_once_per_call_and_ranks_the_dominant_op_first(self):
        # One large matmul (2 * 768^3 flops) against two element-wise ops on
        # 768^2 numbers: the matmul dominates by two orders of magnitude.
        a = tf.Variable(tf.random.stateless_normal([768, 768], seed=[1, 2]))

        @tf.function
        def f():
            return tf.reduce_sum(tf.matmul(a, a) + 1.0)

        breakdown = op_profile.op_time_breakdown(f, calls=3)
        ops = {op: (s, n) for op, s, n in breakdown.op_seconds}
        self.assertTrue(breakdown.op_seconds[0][0].endswith("MatMul"))
        matmul = breakdown.op_seconds[0][0]
        self.assertEqual(ops[matmul][1], 1)  # one launch per call
        self.assertEqual(ops["Sum"][1], 1)
        self.assertAllClose(
            breakdown.kernel_seconds, sum(s for s, _ in ops.values()), rtol=1e-9
        )
        self.assertGreater(breakdown.wall_seconds, 0.0)
        # Kernels run inside the call: their time fits in the call's wall time
        # times the cores that can run them (plus timer slack).
        cores = tf.config.threading.get_intra_op_parallelism_threads() or 64
        self.assertLess(breakdown.kernel_seconds, breakdown.wall_seconds * cores + 1e-3)

    def test_table_lists_top_ops_then_the_rest_with_shares_of_the_total(self):
        breakdown = op_profile.OpBreakdown(
            [("Conv2D", 0.6, 4), ("Mul", 0.3, 10), ("Sum", 0.1, 5)], 1.0, 0.7
        )
        table = op_profile.format_breakdown(breakdown, top=2)
        lines = table.splitlines()
        self.assertEqual(lines[2], "| Conv2D | 0.600 | 60 % | 4 |")
        self.assertEqual(lines[3], "| Mul | 0.300 | 30 % | 10 |")
        self.assertEqual(lines[4], "| 1 other op types | 0.100 | 10 % | 5 |")
        self.assertIn("wall 0.700 s / call", lines[5])


if __name__ == "__main__":
    tf.test.main()
