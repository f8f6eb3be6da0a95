"""tf.distribute: the meta-batch split over two logical CPUs gives the same result.

The check runs in a fresh interpreter, because logical devices must be configured
before TensorFlow initialises its runtime (other tests in this process may already
have done so).
"""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import functools
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from maml import distributed, meta_learner, meta_trainer, networks, tasks

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2

    # 1. Second-order meta-gradient of an MLP, float64: equal to one device.
    net = networks.MLP((1, 8, 8, 1), init_stddev=0.5)
    params = net.init_params(0, tf.float64)
    batch = tasks.sample_sinusoid_tasks(tf.constant([1, 2], tf.int64), 6, 5, 5,
                                        dtype=tf.float64)
    loss = meta_learner.mse_per_task
    one_obj, one = meta_learner.meta_gradient(net, params, batch, loss, 0.05, 2)
    two_obj, two = tf.function(lambda: distributed.distributed_meta_gradient(
        strategy, net, params, batch, loss, 0.05, 2))()
    for k in params:
        np.testing.assert_allclose(two[k].numpy(), one[k].numpy(), rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_allclose(float(two_obj.loss), float(one_obj.loss), rtol=1e-12)

    # 2. Conv4 with the split (per-task query) path, float32.
    conv = networks.Conv4(3, 28, 1, 8, conv_impl="patches")
    qnet = networks.Conv4(3, 28, 1, 8, conv_impl="native")
    images = tf.constant(np.random.default_rng(0).integers(0, 255, (10, 20, 28, 28)),
                         tf.uint8)
    ep = tasks.sample_episodes(tf.constant([3, 4], tf.int64), images, 4, 3, 1, 2)
    xent = meta_learner.softmax_cross_entropy_per_task(1)
    cparams = conv.init_params(0)
    _, one = meta_learner.meta_gradient(conv, cparams, ep, xent, 0.4, 1)
    _, two = tf.function(lambda: distributed.distributed_meta_gradient(
        strategy, conv, cparams, ep, xent, 0.4, 1, query_net=qnet))()
    for k in cparams:
        np.testing.assert_allclose(two[k].numpy(), one[k].numpy(), rtol=2e-3,
                                   atol=2e-5)

    # 3. The trainer with a strategy follows the single-device trajectory.
    sample = functools.partial(tasks.sample_sinusoid_tasks, num_tasks=4,
                               num_support=5, num_query=5)
    def trainer(strategy):
        return meta_trainer.MetaTrainer(net, net.init_params(0), sample, loss, 0.01,
                                        1, 1e-3, seed=3, jit_compile=False,
                                        strategy=strategy)
    a, b = trainer(None), trainer(strategy)
    a.train(5)
    b.train(5)
    for k in a.params:
        np.testing.assert_allclose(a.params[k].numpy(), b.params[k].numpy(),
                                   rtol=1e-5, atol=1e-7)
    print("DISTRIBUTED-OK")
""")


def test_two_replicas_equal_one_device():
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "DISTRIBUTED-OK" in proc.stdout, proc.stderr[-4000:]
