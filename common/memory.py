"""Peak device memory of a piece of TensorFlow work, where the allocator can tell.

TensorFlow 2.21's default CPU allocator does not always keep statistics: on some
machines `tf.config.experimental.reset_memory_stats("CPU:0")` raises and
`get_memory_info("CPU:0")` raises "Allocator stats not available" (or reads all
zeros), unless the process chose the BFC allocator with
`TF_CPU_ALLOCATOR_USE_BFC=true` before TensorFlow created its CPU device. So:

* mains (and the test suite) call `request_allocator_stats()` before TensorFlow
  runs its first op, which sets that variable unless the user already set it;
* code that measures memory uses `PeakMemory`, which never raises for a missing
  allocator: it returns `None` and says why, so a training run reports "not
  measured" instead of crashing.

This module imports TensorFlow only when a measurement is made, so a main can call
`request_allocator_stats()` before importing anything that imports TensorFlow.

Example:
    >>> from common import memory
    >>> memory.request_allocator_stats()
    >>> probe = memory.PeakMemory()
    >>> probe.start()  # doctest: +SKIP
    >>> ...  # the work to measure
    >>> probe.peak_extra_bytes()  # None (with probe.reason) if unmeasurable
"""

from __future__ import annotations

import os

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"
HOW_TO_ENABLE = (
    f"start the process with {ALLOCATOR_ENV}=true in its environment "
    "(the mains set it themselves unless it is already set)"
)


def request_allocator_stats() -> None:
    """Asks TensorFlow for a CPU allocator that keeps statistics.

    Sets `TF_CPU_ALLOCATOR_USE_BFC=true` unless the variable is already set (a
    user's explicit choice wins). TensorFlow reads it when it creates its CPU
    device, i.e. at the first op, so call this before any TensorFlow work.
    """
    os.environ.setdefault(ALLOCATOR_ENV, "true")


class PeakMemory:
    """Measures the peak memory of the work done between `start()` and a read.

    Attributes:
        device: The device whose allocator is read, e.g. "CPU:0".
        reason: Why the last measurement is unavailable, or None if it worked.
    """

    def __init__(self, device: str = "CPU:0") -> None:
        """Makes a probe for `device` ("CPU:0" by default)."""
        self.device = device
        self.reason: str | None = None
        self._before: int | None = None

    def _info(self) -> dict | None:
        import tensorflow as tf  # noqa: PLC0415

        try:
            return tf.config.experimental.get_memory_info(self.device)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            self.reason = (
                f"the {self.device} allocator keeps no statistics ({e}); "
                + HOW_TO_ENABLE
            )
            return None

    def start(self) -> bool:
        """Resets the allocator's peak counter; returns whether memory is measurable."""
        import tensorflow as tf  # noqa: PLC0415

        self.reason, self._before = None, None
        try:
            tf.config.experimental.reset_memory_stats(self.device)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            self.reason = (
                f"cannot reset the {self.device} allocator statistics ({e}); "
                + HOW_TO_ENABLE
            )
            return False
        info = self._info()
        if info is None:
            return False
        self._before = int(info["current"])
        return True

    def peak_bytes(self) -> int | None:
        """Peak bytes in use since `start()`, or None (see `reason`)."""
        if self._before is None:
            self.reason = self.reason or "start() was not called or failed"
            return None
        info = self._info()
        if info is None:
            return None
        if int(info["peak"]) == 0:
            # An allocator that counts nothing reads zeros after real work.
            self.reason = (
                f"the {self.device} allocator reports zero peak memory after work "
                "(it keeps no statistics); " + HOW_TO_ENABLE
            )
            return None
        return int(info["peak"])

    def peak_extra_bytes(self) -> int | None:
        """Peak bytes since `start()` minus the bytes in use at `start()`."""
        peak = self.peak_bytes()
        return None if peak is None else peak - self._before
