"""The compiled training steps of the flow experiment: one `Trainer` per architecture.

Density matching fits a planar CNF (`dm_cnf_trainer`) or NF (`dm_nf_trainer`) to a
target energy by the reverse KL; maximum likelihood (`ml_cnf_trainer`,
`ml_nf_trainer`) fits samples. Models of one architecture share a trainer: its
step is compiled once, and before each model trains its weights are re-drawn from
a seed fixed by the model's name (`model_seed`) and the optimizer state zeroed.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import files, training_loop
from neural_ode import cnf, planar_flow
from neural_ode.data import densities
from neural_ode.experiments.cnf_config import CNFConfig

NFE_FILE = "train_nfe.json"
"""Mean forward and backward NFE of the last logged training steps, per model."""


def model_seed(seed: int, name: str) -> int:
    """The initial-weight seed of model `name` (fixed by the run seed and name)."""
    return int(np.random.default_rng([seed, zlib.crc32(name.encode())]).integers(2**31))


def step_rng(seed: int, name: str, step: int) -> np.random.Generator:
    """The generator of one training step: reproducible across resumes."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), step])


def reset_optimizer(optimizer: keras.optimizers.Optimizer) -> None:
    """Zeroes an optimizer's state (its learning rate kept)."""
    for variable in optimizer.variables:
        if not variable.path.endswith("learning_rate"):
            variable.assign(tf.zeros(variable.shape, variable.dtype))


class Trainer:
    """One model, its optimizer and a compiled step `objective(batch, index)`.

    The objective returns `(loss, metrics)`; `index` selects the target energy.
    """

    def __init__(
        self,
        model: keras.layers.Layer,
        optimizer: keras.optimizers.Optimizer,
        objective: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, dict]],
        backward_nfe: tf.Variable | None = None,
        jit_compile: bool = False,
    ):
        self.model = model
        self.optimizer = optimizer
        optimizer.build(model.trainable_variables)
        self.backward_nfe = backward_nfe
        self._functions: dict[str, Callable] = {}
        variables = model.trainable_variables

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
            jit_compile=jit_compile,
        )
        def step(batch, index):
            with tf.GradientTape() as tape:
                loss, metrics = objective(batch, index)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return {"loss": loss, **metrics}

        self._step = step

    def function(self, key: str, fn: Callable[[tf.Tensor], Any]) -> Callable:
        """`fn(points [N, 2])` compiled once per trainer and key."""
        if key not in self._functions:
            self._functions[key] = tf.function(
                fn, input_signature=[tf.TensorSpec([None, 2], tf.float32)]
            )
        return self._functions[key]

    def reset(self, seed: int) -> None:
        self.model.initialize(seed)
        reset_optimizer(self.optimizer)

    def train(
        self,
        name: str,
        total_steps: int,
        make_batch: Callable[[int], np.ndarray],
        index: int,
        config: CNFConfig,
        run_dir: str,
    ) -> training_loop.LoopResult:
        """Trains a fresh (or restored) model `name` for `total_steps`."""
        self.reset(model_seed(config.seed, name))
        index_t = tf.constant(index, tf.int32)
        window: list[tuple[float, float]] = []
        nfe_path = os.path.join(run_dir, "checkpoints", name, NFE_FILE)

        def step_fn(step: int) -> dict[str, Any]:
            batch = tf.constant(make_batch(step), tf.float32)
            try:
                out = self._step(batch, index_t)
            except tf.errors.InvalidArgumentError as err:  # solver gave up
                print(
                    f"[{name}] step {step} failed: {str(err).splitlines()[0]}",
                    flush=True,
                )
                return {"loss": float("nan")}
            if self.backward_nfe is not None:
                out["nfe_backward"] = self.backward_nfe.read_value()
                window.append((float(out["nfe"]), float(out["nfe_backward"])))
                if (step + 1) % config.log_every == 0 or step + 1 == total_steps:
                    files.atomic_write_json(
                        nfe_path,
                        {
                            "steps": step + 1,
                            "window": len(window),
                            "forward": float(np.mean([f for f, _ in window])),
                            "backward": float(np.mean([b for _, b in window])),
                        },
                    )
                    window.clear()
            return out

        return training_loop.run_training(
            name,
            step_fn,
            total_steps,
            run_dir=run_dir,
            trackables={"model": self.model, "optimizer": self.optimizer},
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )


def energy_switch(
    targets: Sequence[str],
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    energies = [densities.ENERGIES[t] for t in targets]

    def energy(x, index):
        # All targets are evaluated and one is picked (cheap, and unlike
        # `tf.switch_case` it compiles with XLA for a runtime index).
        return tf.gather(tf.stack([e(x) for e in energies]), index)

    return energy


def dm_cnf_trainer(config: CNFConfig, width: int) -> Trainer:
    model = cnf.PlanarCNF(
        width,
        hyper_units=config.hyper_units,
        end_time=config.end_time,
        solver=config.train_solver(),
        name=f"cnf_m{width}",
    )
    energy = energy_switch(config.targets)
    sink = tf.Variable(0, dtype=tf.int32, trainable=False)

    def objective(z0, index):
        x, log_q, nfe = model.sample_and_log_prob(z0, backward_nfe_sink=sink)
        return tf.reduce_mean(log_q + energy(x, index)), {"nfe": nfe}

    return Trainer(
        model, keras.optimizers.Adam(config.cnf_learning_rate), objective, sink
    )


def dm_nf_trainer(config: CNFConfig, layers: int) -> Trainer:
    model = planar_flow.PlanarFlow(
        layers, init_scale=config.nf_init_scale, name=f"nf_k{layers}"
    )
    energy = energy_switch(config.targets)

    def objective(z0, index):
        x, log_det = model.forward(z0)
        log_q = cnf.standard_normal_log_prob(z0) - log_det
        return tf.reduce_mean(log_q + energy(x, index)), {}

    return Trainer(
        model,
        keras.optimizers.RMSprop(config.nf_learning_rate),
        objective,
        jit_compile=config.nf_jit_compile,
    )


def ml_cnf_trainer(config: CNFConfig) -> Trainer:
    model = cnf.PlanarCNF(
        config.ml_width,
        hyper_units=config.hyper_units,
        end_time=config.end_time,
        solver=config.train_solver(),
        name=f"cnf_ml_m{config.ml_width}",
    )
    sink = tf.Variable(0, dtype=tf.int32, trainable=False)

    def objective(x, index):
        del index
        log_q, nfe = model.log_prob(x, backward_nfe_sink=sink)
        return -tf.reduce_mean(log_q), {"nfe": nfe}

    return Trainer(
        model, keras.optimizers.Adam(config.cnf_learning_rate), objective, sink
    )


def nf_data_log_prob(model: planar_flow.PlanarFlow, x: tf.Tensor) -> tf.Tensor:
    z, log_det = model.forward(x)
    return cnf.standard_normal_log_prob(z) + log_det


def ml_nf_trainer(config: CNFConfig) -> Trainer:
    model = planar_flow.PlanarFlow(
        config.ml_width,
        init_scale=config.nf_init_scale,
        name=f"nf_ml_k{config.ml_width}",
    )

    def objective(x, index):
        del index
        return -tf.reduce_mean(nf_data_log_prob(model, x)), {}

    return Trainer(
        model,
        keras.optimizers.RMSprop(config.nf_learning_rate),
        objective,
        jit_compile=config.nf_jit_compile,
    )
