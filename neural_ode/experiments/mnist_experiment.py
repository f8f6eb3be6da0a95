"""MNIST, Table 1: test error, parameters, training memory and time, NFE.

Protocol of the authors' `odenet_mnist` code (torchdiffeq
`examples/odenet_mnist.py`): SGD with momentum 0.9, batch 128, learning rate 0.1
divided by 10 after epochs 60, 100 and 140 of 160, random 28x28 crops of the
4-pixel zero-padded images, all 60,000 training images, error on the 10,000 test
images, dopri5 at rtol = atol = 1e-3. Each model trains through
`common.training_loop` (resumable after kill -9); batches come from a seeded
permutation per epoch, so a resumed run sees the same batches as an uninterrupted
one.

Compressed schedules keep the decay points at the same fractions of the budget,
37.5 / 62.5 / 87.5 % (60 / 100 / 140 of 160; `MNISTConfig.decay_boundaries`), so a
short run anneals like the full one. The rows, as this project trains them:

* 1-Layer MLP: a stand-in. The table's 1.60 % is LeCun et al. (1998)'s number
  (marked in the paper): a 784-300-10 network trained with a squared error on
  deskewed images; the paper did not train it. Ours is 784-300 (ReLU)-10 with
  softmax cross-entropy on the crops above, under the same schedule.
* ResNet: six pre-activation residual blocks.
* ODE-Net: one ODE block, dopri5 with adjoint gradients whose backward error
  control covers the whole augmented state (`adjoint_norm="full"`), as the
  paper's adjoint did; the seminorm (Kidger et al. 2021) came later.
* RK-Net: the same block integrated by RK4 and differentiated by backpropagating
  through the steps (memory O(L~)). The paper backpropagates "directly through a
  Runge-Kutta integrator" with L~ its number of evaluations; with `rk_steps=None`
  the step count is matched to the ODE-Net's: `mean forward NFE / 4`, rounded, over
  the ODE-Net's training in the same run (RK4 takes 4 evaluations a step), so the
  ODE-Net trains first and the chosen count is stored (`rknet/rk_steps.json`).

Besides the error, each model reports what Table 1 only gives asymptotically:
peak memory of one training step (TF's CPU allocator statistics, kept in
`step_memory.json`; a model trained by a process that kept no record is measured
on two throwaway steps whose updates are undone), seconds per epoch on this
machine, and for the ODE-Net the forward and backward NFE per training step (the
curves behind Fig. 3c-d, kept in `nfe_log.json`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import (
    distribute,
    files,
    memory,
    seeding,
    training_loop,
    validation,
)
from common.data import mnist
from neural_ode import mnist_models
from neural_ode.data import mnist_input
from neural_ode.experiments import mnist_table1
from neural_ode.solver import ADJOINT_NORMS, SolverConfig

TRAIN_EXAMPLES = mnist_input.TRAIN_EXAMPLES
NFE_LOG = "nfe_log.json"
RK_STEPS_FILE = "rk_steps.json"
# Per model, beside its NFE log: the peak memory of its last measured training
# step (its last evaluation is `mnist_table1.EVALUATION_FILE`).
STEP_MEMORY_FILE = "step_memory.json"
# The authors' decay epochs 60 / 100 / 140 as fractions of their 160 epochs.
DECAY_FRACTIONS = (0.375, 0.625, 0.875)
RK4_EVALUATIONS_PER_STEP = 4
# Fields a rerun may change without starting over.
RESUMABLE_FIELDS = (
    "epochs",
    "max_train_minutes",
    "log_every",
    "checkpoint_every",
    "models",
    "eval_batch_size",
    "reader",
    "intra_op_threads",
    "inter_op_threads",
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
        decay_epochs: Epochs after which the learning rate is divided by 10;
            None (default) places them at `decay_fractions` of `epochs`.
        decay_fractions: Fractions of the budget at which the learning rate is
            divided by 10 when `decay_epochs` is None (the authors' 60 / 100 /
            140 of 160 epochs).
        augment: Random 28x28 crops of the 4-pixel zero-padded images.
        rtol: ODE-Net relative tolerance (training and test).
        atol: ODE-Net absolute tolerance.
        adjoint_norm: Error control of the ODE-Net's backward solve: "full" (the
            paper's adjoint) or "seminorm" (Kidger et al. 2021).
        rk_steps: RK4 steps of the RK-Net over t = 0..1; None matches them to the
            ODE-Net's mean forward NFE in this run (see the module docstring).
        max_train_minutes: Optional per-model cap on training minutes in one
            session (the model is then reported "cut short").
        data_dir: Folder with the four canonical MNIST files.
        prepared_dir: Where tensorflow-datasets keeps its prepared copy.
        reader: "auto" (tensorflow-datasets), "tfds" or "idx" (read the idx files
            directly, e.g. for files whose checksums tfds does not know).
        log_every: Steps between progress lines.
        checkpoint_every: Steps between checkpoints.
        eval_batch_size: Batch size of the test evaluation.
        intra_op_threads: TensorFlow's intra-op pool (0: its default, one thread
            per core; `common.threads`). Speed only, not the maths.
        inter_op_threads: TensorFlow's inter-op pool (0: its default). Measured
            alone here on the ODE-Net block (`results/maml_table1_benchmark/
            threads.md`): 1 and 2 make its forward+backward 0.418 -> 0.331 s.
    """

    experiment: str = "mnist"
    seed: int = 0
    models: tuple[str, ...] = mnist_models.MODELS
    epochs: float = 160.0
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    decay_epochs: tuple[float, ...] | None = None
    decay_fractions: tuple[float, ...] = DECAY_FRACTIONS
    augment: bool = True
    rtol: float = 1e-3
    atol: float = 1e-3
    adjoint_norm: str = "full"
    rk_steps: int | None = None
    max_train_minutes: float | None = None
    data_dir: str = "../shared/data/mnist"
    prepared_dir: str = "runs/cache/tfds"
    reader: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 200
    eval_batch_size: int = 500
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in mnist_models.MODELS]
        if unknown or not self.models:
            raise ValueError(
                f"models must be among {mnist_models.MODELS}, got {self.models}"
            )
        validation.require_positive("epochs", self.epochs)
        validation.require_one_of("adjoint_norm", self.adjoint_norm, ADJOINT_NORMS)
        if self.rk_steps is not None:
            validation.require_positive("rk_steps", self.rk_steps)
        for fraction in self.decay_fractions:
            validation.require_fraction(
                "decay_fractions", fraction, open_low=True, open_high=True
            )
        for name in (
            "batch_size",
            "log_every",
            "checkpoint_every",
            "eval_batch_size",
            "rtol",
            "atol",
        ):
            validation.require_positive(name, getattr(self, name))

    def steps_per_epoch(self, num_train: int = TRAIN_EXAMPLES) -> int:
        return max(1, num_train // self.batch_size)

    def total_steps(self, num_train: int = TRAIN_EXAMPLES) -> int:
        return max(1, round(self.epochs * self.steps_per_epoch(num_train)))

    def decay_boundaries(self) -> tuple[float, ...]:
        """Epochs after which the learning rate is divided by 10."""
        if self.decay_epochs is not None:
            return tuple(self.decay_epochs)
        return tuple(f * self.epochs for f in self.decay_fractions)

    def solver(self) -> SolverConfig:
        return SolverConfig(
            rtol=self.rtol, atol=self.atol, adjoint_norm=self.adjoint_norm
        )


def make_optimizer(
    config: MNISTConfig, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    boundaries = [round(e * steps_per_epoch) for e in config.decay_boundaries()]
    values = [config.learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def matched_rk_steps(run_dir: str, odenet_steps: int) -> dict:
    """RK4 steps whose evaluations match the ODE-Net's mean forward NFE.

    Args:
        run_dir: The run directory holding `odenet/nfe_log.json`.
        odenet_steps: Training steps the ODE-Net must have logged (its budget).

    Returns:
        `{"rk_steps", "odenet_mean_forward_nfe", "odenet_steps"}` with
        `rk_steps = max(1, floor(mean forward NFE / 4 + 1/2))` (halves round up).

    Raises:
        ValueError: no ODE-Net log, or one that does not cover its budget.
    """
    path = os.path.join(run_dir, "odenet", NFE_LOG)
    log = []
    if os.path.exists(path):
        with open(path) as f:
            log = json.load(f)
    steps = {row[0] for row in log}
    if len(steps) < odenet_steps:
        raise ValueError(
            f"rk_steps=None matches the RK-Net to the ODE-Net's NFE, but {path} "
            f"logs {len(steps)} of the ODE-Net's {odenet_steps} steps: train "
            "'odenet' to completion in this run first, or set rk_steps"
        )
    last = {row[0]: row[1] for row in log}  # a resumed step counts once
    mean = float(np.mean(list(last.values())))
    return {
        "rk_steps": max(1, math.floor(mean / RK4_EVALUATIONS_PER_STEP + 0.5)),
        "odenet_mean_forward_nfe": mean,
        "odenet_steps": len(steps),
    }


def resolve_rk_steps(config: MNISTConfig, run_dir: str, num_train: int) -> dict:
    """The RK-Net's step count: the config's, or the stored / new NFE match."""
    if config.rk_steps is not None:
        return {"rk_steps": config.rk_steps}
    path = os.path.join(run_dir, "rknet", RK_STEPS_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    match = matched_rk_steps(run_dir, config.total_steps(num_train))
    files.atomic_write_json(path, match, indent=None)
    return match


def training_order(config: MNISTConfig) -> tuple[str, ...]:
    """`config.models`, with the ODE-Net before an NFE-matched RK-Net."""
    models = list(config.models)
    if config.rk_steps is None and "rknet" in models and "odenet" in models:
        models.remove("odenet")
        models.insert(models.index("rknet"), "odenet")
    return tuple(models)


def restore_model(run_dir: str, name: str = "odenet") -> keras.Model:
    """A trained model of an `mnist` run, from its config and latest checkpoint.

    Raises:
        FileNotFoundError: no checkpoint of that model in the run.
    """
    config = config_lib.load_config(MNISTConfig, run_dir)
    rk_steps = 5
    if name == "rknet":
        rk_steps = resolve_rk_steps(config, run_dir, TRAIN_EXAMPLES)["rk_steps"]
    model = mnist_models.build_model(name, config.solver(), rk_steps)
    directory = os.path.join(run_dir, "checkpoints", name)
    latest = tf.train.latest_checkpoint(directory)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model


def make_train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    config: MNISTConfig,
    strategy: tf.distribute.Strategy | None = None,
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """One SGD step on a global batch: `step(images, labels, step) -> (loss, acc)`.

    The crops are drawn for the whole batch (keyed by seed and step), then with a
    `strategy` replica r trains on rows [r * B / R, (r + 1) * B / R) of it: each
    replica's loss is its share of the global batch mean, and the optimizer sums
    the replicas' gradients, so the update is the single-device one (for the
    ODE-Net up to the adaptive solver, which picks each replica's steps for its
    own rows).
    """
    replicas, share = distribute.replica_share(strategy, config.batch_size)

    def replica_step(images, labels):
        if replicas > 1:
            rank = tf.distribute.get_replica_context().replica_id_in_sync_group
            images = images[rank * share : (rank + 1) * share]
            labels = labels[rank * share : (rank + 1) * share]
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss_sum = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
            loss = loss_sum / config.batch_size
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        correct = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == labels, tf.float32))
        return loss_sum, correct

    @tf.function
    def train_step(images, labels, step):
        if config.augment:
            images = mnist_input.random_crops(
                images, tf.stack([tf.constant(config.seed, tf.int64), step])
            )
        if strategy is None:
            loss_sum, correct = replica_step(images, labels)
        else:
            loss_sum, correct = (
                strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for value in strategy.run(replica_step, args=(images, labels))
            )
        return loss_sum / config.batch_size, correct / config.batch_size

    return train_step


def _train_model(
    name: str,
    config: MNISTConfig,
    run_dir: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, training_loop.LoopResult, dict]:
    keras.utils.set_random_seed(config.seed)
    num_train = len(train_x)
    rk = resolve_rk_steps(config, run_dir, num_train) if name == "rknet" else {}
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = mnist_models.build_model(name, config.solver(), rk.get("rk_steps", 5))
        optimizer = make_optimizer(config, config.steps_per_epoch(num_train))
        # Build the slots now: an unbuilt Keras optimizer silently skips its
        # momentum when a checkpoint is restored, and a resumed run would lose it.
        optimizer.build(model.trainable_variables)
    block = mnist_models.ode_block_of(model)
    train_step = make_train_step(model, optimizer, config, strategy)

    # Memory is measured on the second step of the session (the first traces).
    # Where the allocator keeps no statistics the cell says so (common.memory).
    stats = {
        "peak_step_memory_mb": None,
        "memory_unmeasured": None,
        "steps_run": 0,
        "rk": rk,
    }
    probe = memory.PeakMemory("CPU:0")
    nfe_path = os.path.join(run_dir, name, NFE_LOG)
    nfe_log = []
    if os.path.exists(nfe_path):
        with open(nfe_path) as f:
            nfe_log = json.load(f)

    def step_fn(step: int) -> dict:
        idx = mnist_input.batch_indices(config.seed, step, config.batch_size, num_train)
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
                    files.atomic_write_json(nfe_path, nfe_log, indent=None)
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
        files.atomic_write_json(nfe_path, nfe_log, indent=None)
    stats["last_nfe"] = nfe_log[-1][1:] if nfe_log else None
    memory_path = os.path.join(run_dir, name, STEP_MEMORY_FILE)
    if stats["steps_run"] < 2 and os.path.exists(memory_path):
        with open(memory_path) as f:
            stored = json.load(f)
        stats["peak_step_memory_mb"] = stored["peak_step_memory_mb"]
        stats["memory_unmeasured"] = stored["memory_unmeasured"]
        return model, loop, stats
    if stats["steps_run"] < 2:
        # Trained by an earlier process that kept no record (or not trained):
        # measure two throwaway steps, then put every variable back.
        peak, reason = probe_step_memory(
            train_step,
            model.variables + optimizer.variables,
            lambda step: mnist_input.batch_indices(
                config.seed, step, config.batch_size, num_train
            ),
            train_x,
            train_y,
            max(loop.steps - 2, 0),
        )
        stats["peak_step_memory_mb"] = None if peak is None else peak / 2**20
        stats["memory_unmeasured"] = reason
    os.makedirs(os.path.dirname(memory_path), exist_ok=True)
    files.atomic_write_json(
        memory_path,
        {
            "peak_step_memory_mb": stats["peak_step_memory_mb"],
            "memory_unmeasured": stats["memory_unmeasured"],
            "after_step": loop.steps,
        },
    )
    return model, loop, stats


def probe_step_memory(
    train_step: Callable,
    variables: list,
    indices_of: Callable[[int], np.ndarray],
    train_x: np.ndarray,
    train_y: np.ndarray,
    step: int,
) -> tuple[int | None, str | None]:
    """Peak bytes of one training step, leaving `variables` as they were.

    Runs steps `step` and `step + 1` (the first traces the function), measures
    the second with `common.memory.PeakMemory`, then assigns every variable (model
    weights, batch statistics, optimizer slots and iteration count) its value
    from before, so a finished model is measured without being trained further.

    Returns:
        (peak bytes, None), or (None, why) where the allocator keeps no
        statistics.
    """
    saved = [v.numpy() for v in variables]
    probe = memory.PeakMemory("CPU:0")
    peak = None
    try:
        for k in range(2):
            idx = indices_of(step + k)
            if k == 1:
                probe.start()
            train_step(train_x[idx], train_y[idx], tf.constant(step + k, tf.int64))
            if k == 1:
                peak = probe.peak_bytes()
    finally:
        for v, value in zip(variables, saved, strict=True):
            v.assign(value)
    return peak, (None if peak is not None else probe.reason)


def check_inputs(config: MNISTConfig) -> None:
    """Raises `DatasetError` (before anything is written) if MNIST is missing."""
    mnist.check_files(config.data_dir)


def run(
    config: MNISTConfig,
    output_dir: str,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Trains and evaluates `config.models`; writes results.json and report.md.

    Each evaluated model's cells and cost row are stored in its directory
    (`mnist_table1.EVALUATION_FILE`), so the report covers every model the run
    has evaluated, including those trained by earlier invocations for other
    `models` (the queue trains one model per invocation); the deviations name
    them.

    Args:
        config: The protocol.
        output_dir: The run directory (resumed if it holds this run).
        strategy: Optional `tf.distribute` strategy (`common.distribute`): every
            batch is split evenly across its replicas (`make_train_step`).
    """
    check_inputs(config)
    replicas, _ = distribute.replica_share(strategy, config.batch_size)
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    train_x, train_y = mnist.load_mnist_arrays(
        config.data_dir, config.prepared_dir, "train", reader=config.reader
    )
    test_x, test_y = mnist.load_mnist_arrays(
        config.data_dir, config.prepared_dir, "test", reader=config.reader
    )
    deviations = []
    if config.epochs < 160:
        deviations.append(
            f"{config.epochs:g} training epochs per model instead of the paper's ~160 "
            "(CPU budget)"
        )
    boundaries = "/".join(f"{e:g}" for e in config.decay_boundaries())
    deviations.append(
        f"learning rate {config.learning_rate:g} divided by 10 after epochs "
        f"{boundaries} of {config.epochs:g}"
        + (
            " (37.5/62.5/87.5% of the budget, the fractions of the authors' "
            "60/100/140 of 160)"
            if config.decay_epochs is None
            else ""
        )
    )
    if replicas > 1:
        deviations.append(
            f"each batch of {config.batch_size} split across {replicas} replicas "
            f"({type(strategy).__name__}); the ODE-Net's solver picks its steps per "
            "replica"
        )
    for name in training_order(config):
        evaluation_path = os.path.join(output_dir, name, mnist_table1.EVALUATION_FILE)
        if os.path.exists(evaluation_path):
            os.remove(evaluation_path)  # stale once training resumes
        model, loop, stats = _train_model(
            name, config, output_dir, train_x, train_y, strategy
        )
        record = mnist_table1.evaluate_model(
            name,
            model,
            loop,
            stats,
            test_x,
            test_y,
            config.steps_per_epoch(len(train_x)),
            config.eval_batch_size,
        )
        files.atomic_write_json(evaluation_path, record)
    return mnist_table1.write_results(
        output_dir,
        config_lib.to_dict(config),
        deviations,
        listed=config.models,
        solver_deviation=(
            f"ODE-Net: dopri5, rtol {config.rtol:g}, atol {config.atol:g}, adjoint "
            f"with the {config.adjoint_norm} norm in the backward error control"
        ),
    )
