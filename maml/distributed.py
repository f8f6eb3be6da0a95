"""The meta-batch split across replicas with `tf.distribute`.

Every replica (a device under `MirroredStrategy`, or a device of one worker under
`MultiWorkerMirroredStrategy`) takes an equal, contiguous share of the meta-batch's
tasks, computes the meta-gradient of its share, and the shares are averaged with an
all-reduce. Because the meta-objective is a mean over tasks, the result equals the
single-device meta-gradient of the whole meta-batch. Task sampling is a pure
function of `(seed, iteration)`, so every worker draws the identical meta-batch and
keeps its own share: no data needs to be sent between workers.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from maml import meta_learner, networks


def replica_share(
    batch: meta_learner.TaskBatch, replica_id: int | tf.Tensor, num_replicas: int
) -> meta_learner.TaskSlice:
    """The contiguous share of the tasks that one replica computes.

    Raises:
        ValueError: the number of tasks is not a multiple of the replicas.
    """
    num_tasks = batch.support_x.shape[0]
    if num_tasks % num_replicas:
        raise ValueError(
            f"meta-batch of {num_tasks} tasks cannot be split evenly "
            f"over {num_replicas} replicas: fix --meta_batch_size"
        )
    per = num_tasks // num_replicas
    start = replica_id * per
    return meta_learner.TaskSlice(
        *(
            a[start : start + per]
            for a in (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        )
    )


def distributed_meta_gradient(
    strategy: tf.distribute.Strategy,
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: meta_learner.TaskBatch,
    loss_fn: meta_learner.LossFn,
    alpha: float,
    num_steps: int,
    first_order: bool = False,
    objective: str = "maml",
    query_net: networks.FunctionalNetwork | None = None,
) -> tuple[meta_learner.Objective, dict[str, tf.Tensor]]:
    """`meta_gradient` with the tasks of `batch` split across `strategy`'s replicas.

    Args:
        strategy: A `tf.distribute` strategy (Mirrored, MultiWorkerMirrored, ...).
        net, meta_params, batch, loss_fn, alpha, num_steps, first_order, objective:
            As `meta_learner.meta_gradient`.
        query_net: If given, replicas use `meta_learner.meta_gradient_split`.

    Returns:
        `(objective, gradients)` averaged over all tasks, as on one device.
    """
    num_replicas = strategy.num_replicas_in_sync
    params = dict(meta_params)

    def share_fn(ctx: tf.distribute.InputReplicaContext):
        return replica_share(batch, ctx.replica_id_in_sync_group, num_replicas)

    shares = strategy.experimental_distribute_values_from_function(share_fn)

    def replica_fn(share):
        if query_net is not None and objective == "maml":
            obj, grads = meta_learner.meta_gradient_split(
                net, query_net, params, share, loss_fn, alpha, num_steps, first_order
            )
        else:
            obj, grads = meta_learner.meta_gradient(
                net, params, share, loss_fn, alpha, num_steps, first_order, objective
            )
        return tf.stack(list(obj)), grads

    obj, grads = strategy.run(replica_fn, args=(shares,))
    mean = tf.distribute.ReduceOp.MEAN
    grads = {k: strategy.reduce(mean, g, axis=None) for k, g in grads.items()}
    obj = meta_learner.Objective(*tf.unstack(strategy.reduce(mean, obj, axis=None)))
    return obj, grads
