"""Thread-pool flags shared by the benchmarks: time the same graphs under other pools.

TensorFlow runs each op on the intra-op pool (threads one op may use; oneDNN's
convolutions included) and independent ops side by side on the inter-op pool. Both
default to the number of cores. A benchmark that imports this module gets
`--intra_op_threads` and `--inter_op_threads` (0: the default); `apply()` sets them
and must run before the first TensorFlow op, which fixes the pools.

Example:
    >>> describe(0, 2)
    'threads: intra-op default, inter-op 2'
"""

from __future__ import annotations

import tensorflow as tf
from absl import flags

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


def describe(intra: int, inter: int) -> str:
    """A one-line description of a pool setting (0 = default)."""
    return f"threads: intra-op {intra or 'default'}, inter-op {inter or 'default'}"


def apply() -> str:
    """Sets the pools from the flags (before any op runs); returns `describe`."""
    tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS.value)
    tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS.value)
    return describe(INTRA_OP_THREADS.value, INTER_OP_THREADS.value)
