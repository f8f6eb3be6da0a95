"""The `--distribute` option of the mains: which `tf.distribute` strategy to use.

* "none": no strategy (the default; TensorFlow uses every local core anyway).
* "mirrored": `MirroredStrategy` over the local devices (several GPUs; on a CPU
  machine, several logical CPUs if they were configured before TF started).
* "multi_worker": `MultiWorkerMirroredStrategy` over the cluster described by the
  `TF_CONFIG` environment variable, one process per worker, each started with
  the same command; see docs/development.md ("Beyond one machine").

Example:
    >>> strategy_from_name("none") is None
    True
    >>> strategy_from_name("bogus")
    Traceback (most recent call last):
    ...
    ValueError: --distribute must be one of none, mirrored, multi_worker, got 'bogus'
"""

from __future__ import annotations

from typing import Any

STRATEGIES = ("none", "mirrored", "multi_worker")


def strategy_from_name(name: str) -> Any:
    """The `tf.distribute.Strategy` named `name`, or None for "none".

    Raises:
        ValueError: an unknown name.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"--distribute must be one of {', '.join(STRATEGIES)}, got {name!r}"
        )
    if name == "none":
        return None
    import tensorflow as tf  # noqa: PLC0415 (the mains set TF's env first)

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def replica_share(strategy: Any, batch_size: int) -> tuple[int, int]:
    """`(replicas, rows per replica)` of a batch split evenly across `strategy`.

    No strategy is one replica holding the whole batch.

    Raises:
        ValueError: the batch does not split evenly across the replicas.

    Example:
        >>> replica_share(None, 48)
        (1, 48)
    """
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"the batch of {batch_size} must divide evenly by the {replicas} "
            "replicas of --distribute"
        )
    return replicas, batch_size // replicas
