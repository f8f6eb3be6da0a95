"""MultiWorkerMirroredStrategy: two worker processes on localhost, one result.

Two workers are started with `TF_CONFIG` (the way a cluster launches them, see
docs/development.md, "Beyond one machine"); each meta-trains the same MLP for a few
iterations with its share of every meta-batch, the shares' meta-gradients being
all-reduced over gRPC. A third, single process trains without a strategy. All
three must end with the same parameters (float64, so the all-reduce's summation
order is the only difference).
"""

from __future__ import annotations

import textwrap

import numpy as np

from tests.worker_cluster import run_two_workers_and_one_process

SCRIPT = textwrap.dedent("""
    import functools, os, sys
    import numpy as np
    import tensorflow as tf
    from maml import meta_learner, meta_trainer, networks, tasks

    strategy = (tf.distribute.MultiWorkerMirroredStrategy()
                if os.environ.get("TF_CONFIG") else None)
    if strategy is not None:
        assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    net = networks.MLP((1, 8, 8, 1), init_stddev=0.5)
    sample = functools.partial(tasks.sample_sinusoid_tasks, num_tasks=4,
                               num_support=5, num_query=5, dtype=tf.float64)
    trainer = meta_trainer.MetaTrainer(
        net, net.init_params(0, tf.float64), sample, meta_learner.mse_per_task,
        0.05, 2, 1e-2, seed=7, jit_compile=False, strategy=strategy)
    trainer.train(6)
    np.savez(sys.argv[1], **{k: v.numpy() for k, v in trainer.params.items()})
""")


def test_two_workers_on_localhost_equal_one_process(tmp_path):
    single, *workers = run_two_workers_and_one_process(SCRIPT, str(tmp_path))
    reference = np.load(single + ".npz")
    for i in range(2):
        got = np.load(workers[i] + ".npz")
        assert set(got) == set(reference)
        for k in reference:
            np.testing.assert_allclose(got[k], reference[k], rtol=1e-9, atol=1e-12)
    # The run must have moved the parameters (a no-op would also be "equal").
    from maml import networks  # noqa: PLC0415

    init = networks.MLP((1, 8, 8, 1), init_stddev=0.5).init_params(0)
    assert any(not np.allclose(reference[k], init[k]) for k in reference)
