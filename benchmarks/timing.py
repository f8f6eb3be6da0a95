"""Timing a meta-trainer: first call (tracing) and best seconds per iteration."""

from __future__ import annotations

import time

from maml import meta_trainer


def time_trainer(
    trainer: meta_trainer.MetaTrainer, iterations: int, repeats: int
) -> tuple[float, float]:
    """Returns (first-call seconds, best seconds per iteration over `repeats`)."""
    t = time.perf_counter()
    trainer.train(1)
    first_call = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.train(iterations)
        best = min(best, (time.perf_counter() - t) / iterations)
    return first_call, best
