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
