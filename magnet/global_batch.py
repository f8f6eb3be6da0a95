"""The whole mini-batch inside one replica of a `tf.distribute` strategy.

Magnet and triplet losses couple the examples of a batch: a cluster's mean, the
variance sigma^2 and a triplet's negatives all come from the whole batch. When a
strategy splits each batch across replicas (`--distribute`), every replica first
gathers the embeddings and labels of all replicas, in replica order, so that each
computes the single-device loss of the whole batch. `all_gather`'s gradient sums
the replicas' upstream gradients and hands each replica the rows it owns; with
Keras' division of each replica's loss by the number of replicas and the
optimizer's sum over replicas, the update equals the single-device one.

Example (outside a strategy nothing changes):
    >>> import tensorflow as tf
    >>> x, y = gather_global_batch(tf.zeros([4, 2]), tf.zeros([4]))
    >>> x.shape, y.shape
    (TensorShape([4, 2]), TensorShape([4]))
"""

from __future__ import annotations

import tensorflow as tf


def gather_global_batch(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each tensor concatenated over all replicas along axis 0 (in replica order).

    Args:
        *tensors: Per-replica rows of the batch (embeddings, labels, ...).

    Returns:
        The tensors unchanged outside a replica context or with one replica;
        otherwise the global batch of each.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tuple(tensors)
    return tuple(context.all_gather(t, axis=0) for t in tensors)
