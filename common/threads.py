"""TensorFlow's CPU thread pools, set once per process before the first op.

TensorFlow runs each op on the intra-op pool (the threads one op may use, oneDNN's
convolutions included) and independent ops side by side on the inter-op pool;
both default to one thread per core. On the 2-core machine of this project, one
thread per op with two ops at a time (intra-op 1, inter-op 2) was measured alone
against the default (`results/maml_table1_benchmark/threads.md`, two interleaved
rounds): a second-order Omniglot 5-way 1-shot meta-iteration 0.182 -> 0.148 s, the
ODE-Net block's forward+backward 0.418 -> 0.331 s, while 20-way 1-shot went
0.97 -> 1.01 s. The experiments whose configs carry `intra_op_threads` and
`inter_op_threads` choose per workload; 0 keeps TensorFlow's default. Threads
change which core computes what, not the maths.

Example:
    >>> describe(1, 2)
    'threads: intra-op 1, inter-op 2'
    >>> describe(0, 0)
    'threads: intra-op default, inter-op default'
"""

from __future__ import annotations

import tensorflow as tf

from common import validation


def describe(intra_op: int, inter_op: int) -> str:
    """A one-line description of a pool setting (0 = TensorFlow's default)."""
    return (
        f"threads: intra-op {intra_op or 'default'}, inter-op {inter_op or 'default'}"
    )


def configure(intra_op: int = 0, inter_op: int = 0) -> str:
    """Sets the two pools; 0 leaves a pool at TensorFlow's default.

    Args:
        intra_op: Threads one op may use (0: default, one per core).
        inter_op: Independent ops run at once (0: default).

    Returns:
        `describe(intra_op, inter_op)`.

    Raises:
        ValueError: A negative count.
        RuntimeError: TensorFlow already ran an op with other pools (they are
            fixed at the first op of the process).
    """
    for name, value in (("intra_op_threads", intra_op), ("inter_op_threads", inter_op)):
        validation.require_int(name, value)
        validation.require_non_negative(name, value)
    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as e:
        raise RuntimeError(
            f"cannot set {describe(intra_op, inter_op)}: TensorFlow has already "
            f"started ({e}); set them before the first op of the process"
        ) from None
    return describe(intra_op, inter_op)
