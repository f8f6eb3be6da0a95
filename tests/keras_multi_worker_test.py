"""MultiWorkerMirroredStrategy for the MNIST ODE-Net family's custom loop.

Two worker processes on localhost (`TF_CONFIG`, as a cluster launches them) each
draw the same batch and train on their replica's rows
(`neural_ode.experiments.mnist_experiment.make_train_step`), the gradients being
all-reduced over gRPC; a third process trains on one device from the same
weights. All three must end with the same losses and weights (float32, so the
all-reduce's summation order is the only difference).

The magnet experiment trains through `keras.Model.fit`, which fails under this
strategy in Keras 3.15 (even a Dense model with a mean-squared error); its
`--distribute=multi_worker` is rejected with that reason, checked at the end.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.worker_cluster import REPO, run_two_workers_and_one_process, worker_env

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

SCRIPT = textwrap.dedent("""
    import contextlib, os, sys
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = (tf.distribute.MultiWorkerMirroredStrategy()
                if os.environ.get("TF_CONFIG") else None)
    if strategy is not None:
        assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    from neural_ode import mnist_models
    from neural_ode.experiments import mnist_experiment as mx

    config = mx.MNISTConfig(models=("resnet",), batch_size=8, learning_rate=0.05,
                            epochs=1.0)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 1, (3, 8, 28, 28, 1)), tf.float32)
    labels = tf.constant(rng.integers(0, 10, (3, 8)), tf.int64)
    keras.utils.set_random_seed(0)
    start = mnist_models.build_model("resnet", config.solver(), 2)
    start(images[0])
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = mnist_models.build_model("resnet", config.solver(), 2)
        model(images[0])
        model.set_weights(start.get_weights())
        optimizer = mx.make_optimizer(config, 100)
        optimizer.build(model.trainable_variables)
    step = mx.make_train_step(model, optimizer, config, strategy)
    losses = [float(step(images[i], labels[i], tf.constant(i, tf.int64))[0])
              for i in range(3)]
    moved = max(float(np.abs(a - b).max())
                for a, b in zip(model.get_weights(), start.get_weights()))
    np.savez(sys.argv[1], losses=np.array(losses), moved=moved,
             **{f"w{i}": w for i, w in enumerate(model.get_weights())})
""")


def test_two_workers_train_the_mnist_resnet_like_one_process(tmp_path):
    single, *workers = run_two_workers_and_one_process(SCRIPT, str(tmp_path))
    reference = np.load(single + ".npz")
    assert float(reference["moved"]) > 1e-3  # A no-op would also be "equal".
    for i in range(2):
        got = np.load(workers[i] + ".npz")
        assert set(got) == set(reference)
        np.testing.assert_allclose(got["losses"], reference["losses"], rtol=1e-5)
        for k in reference:
            np.testing.assert_allclose(got[k], reference[k], rtol=1e-4, atol=1e-6)


def test_magnet_rejects_multi_worker_with_the_reason(tmp_path):
    pytest.importorskip("keras")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "magnet.main",
            "--distribute=multi_worker",
            f"--output_dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        env=worker_env(None),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "keras.Model.fit" in proc.stderr and "mirrored" in proc.stderr
    assert not (tmp_path / "run").exists()
