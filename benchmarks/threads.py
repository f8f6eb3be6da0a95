"""Thread-pool flags shared by the benchmarks: time the same graphs under other pools.

TensorFlow runs each op on the intra-op pool (threads one op may use; oneDNN's
convolutions included) and independent ops side by side on the inter-op pool. Both
default to the number of cores. A benchmark that imports this module gets
`--intra_op_threads` and `--inter_op_threads` (0: the default); `apply()` sets them
and must run before the first TensorFlow op, which fixes the pools.

The pools themselves are set by `common.threads.configure`, which the mains use
with their configs' values.
"""

from __future__ import annotations

from absl import flags

from common import threads

INTRA_OP_THREADS = flags.DEFINE_integer(
    "intra_op_threads",
    0,
    "Threads one op may use (tf.config.threading; 0: TensorFlow's default, the "
    "number of cores).",
)
INTER_OP_THREADS = flags.DEFINE_integer(
    "inter_op_threads",
    0,
    "Independent ops run at once (tf.config.threading; 0: TensorFlow's default).",
)


def apply() -> str:
    """Sets the pools from the flags (before any op runs); returns their description."""
    return threads.configure(INTRA_OP_THREADS.value, INTER_OP_THREADS.value)
