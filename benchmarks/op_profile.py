"""Where a traced TensorFlow function spends its time, by op type.

`op_time_breakdown(fn, calls)` runs `fn` under TensorFlow's profiler and sums the
kernel time of every op type over the host's executor threads, per call. The sum
over op types is CPU time spent in kernels (on 2 cores it can reach twice the wall
time); the difference to wall time times cores is executor overhead and idle
cores. Function-call and control-flow ops (`PartitionedCall`, `While`, ...) are
left out: their events enclose the kernels they run, which are counted
themselves.

Example:
    >>> v = tf.Variable(tf.ones([512, 512]))
    >>> f = tf.function(lambda: tf.reduce_sum(tf.matmul(v, v)))
    >>> breakdown = op_time_breakdown(f, calls=2)
    >>> breakdown.op_seconds[0][0].endswith("MatMul")  # most time ('_MklMatMul')
    True
"""

from __future__ import annotations

import collections
import glob
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

# Ops whose profiler events enclose other kernels' events (counted separately).
_ENCLOSING_OPS = frozenset(
    {
        "PartitionedCall",
        "StatefulPartitionedCall",
        "While",
        "StatelessWhile",
        "If",
        "StatelessIf",
        "Case",
        "StatelessCase",
    }
)


class OpBreakdown(NamedTuple):
    """Kernel time by op type, per call of the profiled function.

    Attributes:
        op_seconds: `(op type, seconds per call, kernel launches per call)`, most
            time first. oneDNN kernels keep TF's `_Mkl`/`_MklNative` prefixes.
        kernel_seconds: Sum of `op_seconds` (CPU-seconds in kernels per call).
        wall_seconds: Wall time per call while profiling (the profiler adds a
            little).
    """

    op_seconds: list[tuple[str, float, int]]
    kernel_seconds: float
    wall_seconds: float


_KERNEL_EVENT = re.compile(r"^[^\s:]+:([A-Za-z_][A-Za-z0-9_]*)$")


def _op_type(event_name: str) -> str | None:
    """'scope/node:OpType' -> 'OpType'; None for events that are not op kernels
    (executor and runtime events such as 'ExecutorState::Process')."""
    match = _KERNEL_EVENT.match(event_name)
    if match is None or match.group(1) in _ENCLOSING_OPS:
        return None
    return match.group(1)


def op_time_breakdown(fn: Callable[[], object], calls: int = 3) -> OpBreakdown:
    """Profiles `calls` calls of `fn` (called once before, to trace and warm up).

    Args:
        fn: A no-argument callable, typically a `tf.function` or a trainer step;
            its outputs are fetched to NumPy so that the work is finished.
        calls: Profiled calls; the figures are per call.

    Returns:
        An `OpBreakdown`.

    Raises:
        RuntimeError: If the profiler wrote no trace (profiler unavailable).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    def run() -> None:
        for value in tf.nest.flatten(fn()):
            if isinstance(value, tf.Tensor | tf.Variable):
                np.asarray(value)

    run()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(calls):
            run()
        wall = (time.perf_counter() - start) / calls
        tf.profiler.experimental.stop()
        paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        if not paths:
            raise RuntimeError(f"the TF profiler wrote no trace under {logdir}")
        space = xplane_pb2.XSpace()
        with open(paths[0], "rb") as f:
            space.ParseFromString(f.read())
    seconds: collections.Counter[str] = collections.Counter()
    launches: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        for line in plane.lines:
            for event in line.events:
                op = _op_type(plane.event_metadata[event.metadata_id].name)
                if op is not None:
                    seconds[op] += event.duration_ps * 1e-12 / calls
                    launches[op] += 1
    rows = [(op, s, round(launches[op] / calls)) for op, s in seconds.most_common()]
    return OpBreakdown(rows, float(sum(seconds.values())), wall)


def format_breakdown(breakdown: OpBreakdown, top: int = 12) -> str:
    """A Markdown table of the `top` op types and the rest, with shares."""
    total = breakdown.kernel_seconds or 1.0
    lines = [
        "| op type | CPU-s / call | share | kernels / call |",
        "|---|---|---|---|",
    ]
    for op, s, n in breakdown.op_seconds[:top]:
        lines.append(f"| {op} | {s:.3f} | {100 * s / total:.0f} % | {n} |")
    rest = breakdown.op_seconds[top:]
    if rest:
        s = sum(r[1] for r in rest)
        lines.append(
            f"| {len(rest)} other op types | {s:.3f} | {100 * s / total:.0f} % | "
            f"{sum(r[2] for r in rest)} |"
        )
    lines.append(
        f"| all kernels | {breakdown.kernel_seconds:.3f} | 100 % | "
        f"wall {breakdown.wall_seconds:.3f} s / call |"
    )
    return "\n".join(lines)
