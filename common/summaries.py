"""TensorBoard summaries."""

from __future__ import annotations

import os
from collections.abc import Mapping

import tensorflow as tf


class Summaries:
    """Writes scalar summaries under `<log_dir>/<name>` for TensorBoard.

    Args:
        log_dir: The TensorBoard log directory of the run.
        name: Sub-directory, one per curve family (e.g. "maml", "pretrain").
    """

    def __init__(self, log_dir: str, name: str):
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, name))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        with self.writer.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(key, value)
        self.writer.flush()
