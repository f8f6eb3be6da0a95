"""A progress line for long runs: iterations, rate, ETA and the latest losses.

Example (a slow run shows seconds per iteration rather than "0 it/s"):
    >>> format_rate(1843.2), format_rate(4.26), format_rate(0.4)
    ('1843 it/s', '4.3 it/s', '2.5 s/it')
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """Formats seconds as H:MM:SS."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def format_rate(per_second: float) -> str:
    """Iterations per second, or seconds per iteration below one per second."""
    if per_second >= 10:
        return f"{per_second:.0f} it/s"
    if per_second >= 1:
        return f"{per_second:.1f} it/s"
    if per_second > 0:
        return f"{1.0 / per_second:.1f} s/it"
    return "0 it/s"


class Progress:
    """Prints `[name] 12000/70000 (17%) 1843 it/s ETA 0:00:31 loss=0.52` lines.

    Args:
        name: Label of the phase.
        total: Target number of iterations.
        start: Iterations already done (a resumed run).
        stream: Where lines go.
    """

    def __init__(
        self, name: str, total: int, start: int = 0, stream: TextIO | None = None
    ):
        self.name = name
        self.total = total
        self._start = start
        self._t0 = time.perf_counter()
        self._last = (start, self._t0)
        self._stream = stream or sys.stdout

    @property
    def elapsed(self) -> float:
        """Seconds since creation, minus excluded pauses."""
        return time.perf_counter() - self._t0

    def exclude(self, seconds: float) -> None:
        """Removes a pause (e.g. an evaluation) from the elapsed time and rate."""
        self._t0 += seconds
        last_done, last_t = self._last
        self._last = (last_done, last_t + seconds)

    def rate(self, done: int) -> float:
        """Iterations per second since this object was created."""
        return (done - self._start) / max(self.elapsed, 1e-9)

    def update(self, done: int, **values: float) -> str:
        """Prints a line; the rate is measured since the previous line."""
        now = time.perf_counter()
        last_done, last_t = self._last
        rate = (done - last_done) / max(now - last_t, 1e-9)
        self._last = (done, now)
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        pct = 100.0 * done / max(self.total, 1)
        extra = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        line = (
            f"[{self.name}] {done}/{self.total} ({pct:.0f}%) {format_rate(rate)} "
            f"ETA {format_duration(eta) if eta == eta else '?'} {extra}"
        ).rstrip()
        print(line, file=self._stream, flush=True)
        return line
