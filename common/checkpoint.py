"""Checkpoint and resume helpers over `tf.train.CheckpointManager`."""

from __future__ import annotations

import tensorflow as tf


class Checkpointer:
    """Saves and restores a set of trackables in one directory.

    `tf.train.CheckpointManager` writes the checkpoint files first and updates its
    index file last, so a process killed mid-save leaves the previous checkpoint as
    the latest: a rerun always restores a complete state.

    Args:
        directory: Where checkpoints live.
        max_to_keep: How many recent checkpoints to keep.
        **trackables: What to save (variables, `tf.Module`s, ...).
    """

    def __init__(self, directory: str, max_to_keep: int = 2, **trackables):
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep
        )

    def restore_latest(self) -> str | None:
        """Restores the latest checkpoint if there is one; returns its path."""
        path = self.manager.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> str:
        """Writes a checkpoint tagged with `step`; returns its path."""
        return self.manager.save(checkpoint_number=step)
