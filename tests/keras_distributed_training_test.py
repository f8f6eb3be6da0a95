"""--distribute for the Keras-trained models: a split batch trains like one device.

The MNIST ODE-Net family (custom loop, `mnist_experiment.make_train_step`) and the
three magnet-experiment losses (`model.fit`, `magnet.trainer.train`) run under a
`MirroredStrategy` over two logical CPUs and are compared with the same training
on one device: the reference is the single-device run itself, the property is
that splitting a batch across replicas does not change the update (the magnet and
triplet losses gather the whole batch, `magnet.global_batch`).

The checks run in a fresh interpreter, because logical devices must be configured
before TensorFlow initialises its runtime (other tests in this process may
already have done so).
"""

import os
import subprocess
import sys
import textwrap

import pytest

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
"""

MNIST_SCRIPT = """
from neural_ode import mnist_models
from neural_ode.experiments import mnist_experiment as mx

# Loose ODE-Net tolerances: fewer solver steps in its one step (the check is
# that it runs on replicas, not how accurately).
config = mx.MNISTConfig(models=("rknet",), batch_size=8, learning_rate=0.05,
                        epochs=1.0, rtol=1e-2, atol=1e-2)
rng = np.random.default_rng(0)
images = tf.constant(rng.uniform(0, 1, (3, 8, 28, 28, 1)), tf.float32)
labels = tf.constant(rng.integers(0, 10, (3, 8)), tf.int64)

def train(name, strategy, weights=None, steps=3):
    keras.utils.set_random_seed(0)
    scope = strategy.scope() if strategy else tf.name_scope("single")
    with scope:
        model = mnist_models.build_model(name, config.solver(), 2)
        model(images[0])
        if weights is not None:
            model.set_weights(weights)
        start = model.get_weights()
        optimizer = mx.make_optimizer(config, 100)
        optimizer.build(model.trainable_variables)
    step = mx.make_train_step(model, optimizer, config, strategy)
    losses = [
        step(images[i], labels[i], tf.constant(i, tf.int64)) for i in range(steps)
    ]
    return start, model, [(float(a), float(b)) for a, b in losses]

# The RK-Net (the ODE block at fixed steps). The ResNet takes the same train
# step; keras_multi_worker_test runs it across workers.
start, one, one_losses = train("rknet", None)
_, two, two_losses = train("rknet", strategy, start)
np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4, atol=1e-6)
for a, b in zip(two.get_weights(), one.get_weights(), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)

# The adaptive ODE-Net: each replica solves its own rows; a step runs and the
# NFE counters (first replica's) are written. (Its result is not compared with
# one device: the replicas' adaptive step sizes differ by design.)
_, two, two_losses = train("odenet", strategy, steps=1)
block = mnist_models.ode_block_of(two)
assert int(block.forward_nfe.numpy()) > 0 and int(block.backward_nfe.numpy()) > 0
assert all(np.isfinite(two_losses).ravel())

try:
    mx.make_train_step(two, None, mx.MNISTConfig(batch_size=7), strategy)
except ValueError as e:
    assert "divide evenly" in str(e), e
else:
    raise AssertionError("an odd batch was accepted")
print("MNIST OK")
"""

MAGNET_SCRIPT = """
import io, tempfile
from magnet import trainer
from tests.magnet_fixtures import synthetic_dataset

settings = trainer.TrainSettings(
    steps=6, num_clusters=4, examples_per_cluster=3, clusters_per_class=2,
    num_neighbours=4, learning_rate=3e-3, refresh_every=2, eval_every=3, knn_k=3,
    embedding_dim=8, log_every=3)
ds = synthetic_dataset(num_classes=4, train_per_class=12, test_per_class=4)
data = trainer.TrainData(
    train_images=ds.train_images, train_labels=ds.train_labels,
    test_images=ds.test_images, test_labels=ds.test_labels,
    class_names=ds.class_names)

for loss in trainer.LOSSES:
    results, recorded = [], []
    for strat in (None, strategy):
        with tempfile.TemporaryDirectory() as run_dir:
            results.append(trainer.train(loss, data, settings, run_dir,
                                         stream=io.StringIO(), strategy=strat))
            if loss == "magnet":  # The per-example losses the sampler recorded.
                reader = tf.train.load_checkpoint(f"{run_dir}/checkpoints/magnet")
                keys = [k for k in reader.get_variable_to_shape_map()
                        if k.startswith("example_losses/")]
                recorded.append(reader.get_tensor(keys[0]))
    one, two = results
    if recorded:
        np.testing.assert_allclose(recorded[1], recorded[0], rtol=1e-4)
    assert two.loop.steps == one.loop.steps == 6, loss
    # Adam scales each step by 1 / sqrt(v), so a weight whose exact gradient is
    # 0 moves by amplified round-off in either run: the conv biases before
    # group norm, and for magnet the last bias (the loss is translation
    # invariant). Those vectors get a loose bound (six steps of lr = 3e-3 move
    # a live weight by up to 2e-2); the kernels must agree closely.
    for a, b in zip(two.embedder.get_weights(), one.embedder.get_weights(),
                    strict=True):
        atol = 1e-5 if a.ndim > 1 else 1e-3
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=atol, err_msg=loss)
    for key in ("knn_error", "error"):
        assert [e[key] for e in two.curve] == [e[key] for e in one.curve], loss
print("MAGNET OK")
"""


def _run(script: str) -> str:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE + script)],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


@pytest.mark.parametrize(
    "script,done", [(MNIST_SCRIPT, "MNIST OK"), (MAGNET_SCRIPT, "MAGNET OK")]
)
def test_split_batches_train_like_one_device(script, done):
    assert done in _run(script)
