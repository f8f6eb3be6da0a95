"""MNIST, Table 1: test error, parameters, training memory and time, NFE.

Protocol of the authors' `odenet_mnist` code: SGD with momentum 0.9, batch 128,
learning rate 0.1 divided by 10 after epochs 60, 100 and 140 of 160, random 28x28
crops of the 4-pixel zero-padded images, all 60,000 training images, error on the
10,000 test images. Each model trains through `common.training_loop` (resumable
after kill -9); batches come from a seeded permutation per epoch, so a resumed run
sees the same batches as an uninterrupted one.

Besides the error, each model reports what Table 1 only gives asymptotically:
peak memory of one training step (TF's CPU allocator statistics), seconds per
epoch on this machine, and for the ODE-Net the forward and backward NFE per
training step (the curves behind Fig. 3c-d, kept in `nfe_log.json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import memory, results, seeding, training_loop
from common.data import mnist
from neural_ode import mnist_models
from neural_ode.odeint import SolverConfig

TRAIN_EXAMPLES = 60_000
NFE_LOG = "nfe_log.json"
# Fields a rerun may change without starting over.
RESUMABLE_FIELDS = (
    "epochs",
    "max_train_minutes",
    "log_every",
    "checkpoint_every",
    "models",
    "eval_batch_size",
    "reader",
)


@dataclasses.dataclass(frozen=True)
class MNISTConfig:
    """Table 1 protocol; defaults are the paper's (GPU-scale) budget.

    Attributes:
        experiment: "mnist".
        seed: Seed of batches, augmentation and initialisation.
        models: Which of "mlp", "resnet", "rknet", "odenet" to train, in order.
        epochs: Training epochs per model (160 in the authors' code).
        batch_size: Training batch size.
        learning_rate: SGD learning rate before decay.
        momentum: SGD momentum.
        decay_epochs: Epochs after which the learning rate is divided by 10.
        augment: Random 28x28 crops of the 4-pixel zero-padded images.
        rtol: ODE-Net relative tolerance (training and test).
        atol: ODE-Net absolute tolerance.
        rk_steps: RK4 steps of the RK-Net over t = 0..1.
        max_train_minutes: Optional per-model cap on training minutes in one
            session (the model is then reported "cut short").
        data_dir: Folder with the four canonical MNIST files.
        prepared_dir: Where tensorflow-datasets keeps its prepared copy.
        reader: "auto" (tensorflow-datasets), "tfds" or "idx" (read the idx files
            directly, e.g. for files whose checksums tfds does not know).
        log_every: Steps between progress lines.
        checkpoint_every: Steps between checkpoints.
        eval_batch_size: Batch size of the test evaluation.
    """

    experiment: str = "mnist"
    seed: int = 0
    models: tuple[str, ...] = mnist_models.MODELS
    epochs: float = 160.0
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    decay_epochs: tuple[int, ...] = (60, 100, 140)
    augment: bool = True
    rtol: float = 1e-3
    atol: float = 1e-3
    rk_steps: int = 5
    max_train_minutes: float | None = None
    data_dir: str = "../shared/data/mnist"
    prepared_dir: str = "runs/cache/tfds"
    reader: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 200
    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in mnist_models.MODELS]
        if unknown or not self.models:
            raise ValueError(
                f"models must be among {mnist_models.MODELS}, got {self.models}"
            )
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        for name in (
            "batch_size",
            "rk_steps",
            "log_every",
            "checkpoint_every",
            "eval_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be a positive integer, got {getattr(self, name)}"
                )
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(
                f"rtol and atol must be positive, got {self.rtol}, {self.atol}"
            )

    def steps_per_epoch(self, num_train: int = TRAIN_EXAMPLES) -> int:
        return max(1, num_train // self.batch_size)

    def total_steps(self, num_train: int = TRAIN_EXAMPLES) -> int:
        return max(1, round(self.epochs * self.steps_per_epoch(num_train)))

    def solver(self) -> SolverConfig:
        return SolverConfig(rtol=self.rtol, atol=self.atol)


def random_crops(images: tf.Tensor, seed: tf.Tensor, pad: int = 4) -> tf.Tensor:
    """Per-example random 28x28 crops of the zero-padded images (stateless)."""
    size = images.shape[1]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed, 0, 2 * pad + 1, dtype=tf.int32
    )
    rows = offsets[:, :1] + tf.range(size)[None]
    cols = offsets[:, 1:] + tf.range(size)[None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def batch_indices(
    seed: int, step: int, batch_size: int, num_examples: int = TRAIN_EXAMPLES
) -> np.ndarray:
    """Training indices of `step`: a seeded permutation per epoch, in order."""
    per_epoch = max(1, num_examples // batch_size)
    epoch, position = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return perm[position * batch_size : (position + 1) * batch_size]


def make_optimizer(
    config: MNISTConfig, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    boundaries = [e * steps_per_epoch for e in config.decay_epochs]
    values = [config.learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def test_error(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> tuple[float, int]:
    """Test error in % and the number of errors."""
    predict = tf.function(lambda x: tf.argmax(model(x), axis=-1))
    wrong = 0
    for start in range(0, len(images), batch_size):
        pred = predict(images[start : start + batch_size]).numpy()
        wrong += int(np.sum(pred != labels[start : start + batch_size]))
    return 100.0 * wrong / len(images), wrong


def binomial_ci95(errors: int, n: int) -> float:
    """95% half-width (normal approximation) of an error rate in %."""
    p = errors / n
    return 100.0 * 1.96 * math.sqrt(max(p * (1 - p), 1.0 / n**2) / n)


def params_cell(row: str, params: int) -> dict:
    """The "# Params" cell; an exact count is compared at the paper's precision."""
    entry = results.cell(
        "neural_ode",
        "Table 1",
        row,
        "# Params",
        results.Estimate(params / 1e6, 0.0, 1),
        budget={"exact count, no training": True},
    )
    published = entry["published"]["value"]
    if round(params / 1e6, 2) == published:
        entry["verdict"] = "equal at the published precision (2 decimals)"
    else:
        entry["verdict"] = (
            f"differs: {params / 1e6:.3f}M vs {published}M "
            f"({100 * (params / 1e6 - published) / published:+.0f}%)"
        )
    return entry


def _train_model(
    name: str,
    config: MNISTConfig,
    run_dir: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
) -> tuple[keras.Model, training_loop.LoopResult, dict]:
    keras.utils.set_random_seed(config.seed)
    model = mnist_models.build_model(name, config.solver(), config.rk_steps)
    num_train = len(train_x)
    optimizer = make_optimizer(config, config.steps_per_epoch(num_train))
    # Build the slots now: an unbuilt Keras optimizer silently skips its momentum
    # when a checkpoint is restored, and a resumed run would lose it.
    optimizer.build(model.trainable_variables)
    block = mnist_models.ode_block_of(model)

    @tf.function
    def train_step(images, labels, step):
        if config.augment:
            images = random_crops(
                images, tf.stack([tf.constant(config.seed, tf.int64), step])
            )
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        accuracy = tf.reduce_mean(tf.cast(tf.argmax(logits, -1) == labels, tf.float32))
        return loss, accuracy

    # Memory is measured on the second step of the session (the first traces).
    # Where the allocator keeps no statistics the cell says so (common.memory).
    stats = {"peak_step_memory_mb": None, "memory_unmeasured": None, "steps_run": 0}
    probe = memory.PeakMemory("CPU:0")
    nfe_path = os.path.join(run_dir, name, NFE_LOG)
    nfe_log = []
    if os.path.exists(nfe_path):
        with open(nfe_path) as f:
            nfe_log = json.load(f)

    def step_fn(step: int) -> dict:
        idx = batch_indices(config.seed, step, config.batch_size, num_train)
        stats["steps_run"] += 1
        measure = stats["steps_run"] == 2
        if measure:
            probe.start()
        loss, accuracy = train_step(
            train_x[idx], train_y[idx], tf.constant(step, tf.int64)
        )
        metrics = {"loss": loss, "accuracy": accuracy}
        if measure:
            peak = probe.peak_bytes()
            if peak is None:
                stats["memory_unmeasured"] = probe.reason
            else:
                stats["peak_step_memory_mb"] = peak / 2**20
        if block is not None:
            metrics["forward_nfe"] = int(block.forward_nfe.numpy())
            if block.solver.adaptive:
                metrics["backward_nfe"] = int(block.backward_nfe.numpy())
                nfe_log.append(
                    [step + 1, metrics["forward_nfe"], metrics["backward_nfe"]]
                )
                if (step + 1) % config.log_every == 0:
                    os.makedirs(os.path.dirname(nfe_path), exist_ok=True)
                    with open(nfe_path + ".tmp", "w") as f:
                        json.dump(nfe_log, f)
                    os.replace(nfe_path + ".tmp", nfe_path)
        return metrics

    trackables = {"model": model, "optimizer": optimizer}
    max_seconds = (
        None if config.max_train_minutes is None else 60 * config.max_train_minutes
    )
    loop = training_loop.run_training(
        name,
        step_fn,
        config.total_steps(num_train),
        run_dir,
        trackables,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        max_seconds=max_seconds,
    )
    if os.path.exists(os.path.dirname(nfe_path)) or nfe_log:
        os.makedirs(os.path.dirname(nfe_path), exist_ok=True)
        with open(nfe_path, "w") as f:
            json.dump(nfe_log, f)
    return model, loop, stats


def check_inputs(config: MNISTConfig) -> None:
    """Raises `DatasetError` (before anything is written) if MNIST is missing."""
    mnist.check_files(config.data_dir)


def run(config: MNISTConfig, output_dir: str) -> dict:
    """Trains and evaluates `config.models`; writes results.json and report.md."""
    check_inputs(config)
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    train_x, train_y = mnist.load_mnist_arrays(
        config.data_dir, config.prepared_dir, "train", reader=config.reader
    )
    test_x, test_y = mnist.load_mnist_arrays(
        config.data_dir, config.prepared_dir, "test", reader=config.reader
    )
    cells, rows, statuses, total_seconds = [], [], [], 0.0
    deviations = []
    if config.epochs < 160:
        deviations.append(
            f"{config.epochs:g} training epochs per model instead of the paper's ~160 "
            "(CPU budget)"
        )
    for name in config.models:
        model, loop, stats = _train_model(name, config, output_dir, train_x, train_y)
        t = time.perf_counter()
        error, wrong = test_error(model, test_x, test_y, config.eval_batch_size)
        eval_seconds = time.perf_counter() - t
        statuses.append(loop.status)
        total_seconds += loop.train_seconds
        epochs_done = loop.steps / config.steps_per_epoch(len(train_x))
        seconds_per_epoch = (loop.train_seconds / epochs_done) if epochs_done else None
        budget = {
            **loop.budget(),
            "epochs": round(epochs_done, 2),
            "status": loop.status,
        }
        row = mnist_models.TABLE1_ROWS[name]
        cell_dev = [] if epochs_done >= 160 else [f"{epochs_done:.2f} of 160 epochs"]
        if loop.status != "complete":
            cell_dev.append(f"run {loop.status}")
        block = mnist_models.ode_block_of(model)
        details = {}
        if block is not None and block.solver.adaptive:
            details = {
                "forward NFE (last step)": int(block.forward_nfe.numpy()),
                "backward NFE (last step)": int(block.backward_nfe.numpy()),
            }
        if stats["memory_unmeasured"]:
            details["peak step memory"] = "not measured: " + stats["memory_unmeasured"]
        cells.append(
            results.cell(
                "neural_ode",
                "Table 1",
                row,
                "Test Error",
                results.Estimate(error, binomial_ci95(wrong, len(test_y)), len(test_y)),
                deviations=cell_dev,
                budget=budget,
                details=details,
            )
        )
        params = trainable_parameters(model)
        cells.append(params_cell(row, params))
        rows.append(
            [
                row,
                f"{params:,}",
                "not measured"
                if stats["peak_step_memory_mb"] is None
                else f"{stats['peak_step_memory_mb']:.0f}",
                "-" if seconds_per_epoch is None else f"{seconds_per_epoch / 60:.1f}",
                details.get("forward NFE (last step)", "-"),
                details.get("backward NFE (last step)", "-"),
                f"{epochs_done:.2f}",
                loop.status,
                f"{eval_seconds:.0f}",
            ]
        )
    status = (
        "complete"
        if all(s == "complete" for s in statuses)
        else ("diverged" if "diverged" in statuses else "cut short")
    )
    return results.write_results(
        output_dir,
        paper="neural_ode",
        experiment=config.experiment,
        status=status,
        budget={
            "train_seconds": round(total_seconds, 1),
            "machine": results.machine_description(),
        },
        config=config_lib.to_dict(config),
        cells=cells,
        deviations=deviations,
        extra={
            "tables": [
                {
                    "title": "Measured costs (Table 1 gives only O(1) / O(L) / O(L~))",
                    "header": [
                        "model",
                        "trainable parameters",
                        "peak memory of a training step (MiB)",
                        "minutes per epoch",
                        "forward NFE",
                        "backward NFE",
                        "epochs trained",
                        "status",
                        "test evaluation (s)",
                    ],
                    "rows": rows,
                }
            ]
        },
    )
