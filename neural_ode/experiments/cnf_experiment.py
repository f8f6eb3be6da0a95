"""Continuous vs discrete normalizing flows (Chen et al. 2018, sec. 4.1, Figs. 4-5).

Density matching (Fig. 4). For each 2-D target `p ∝ exp(-U)`
(`neural_ode.data.densities`) and each capacity n in `widths`, a planar CNF
with M = n units and a planar NF with K = n layers are fitted by minimising the
reverse KL, `loss = E_q[log q(x) + U(x)] = KL(q || p) - log Z`, with x pushed
forward from N(0, I). We report KL = loss + log Z (log Z by quadrature), so 0 is a
perfect fit.

Maximum likelihood (Fig. 5). On Two Circles (radii 3 and 1.5) and Two Moons
(radius 2), both with Gaussian noise of standard deviation `ml_noise` and fresh
samples every step, a CNF with M = 64 units and an NF of 64 one-unit planar layers
maximise E_data[log q(x)]. The CNF evaluates log q(x) by integrating x back to
time 0; the NF runs in the data-to-noise direction
(log q(x) = log N(f(x)) + log |det df/dx|) and samples through its bisection
inverse. We report the NLL of held-out samples next to the NLL of the true data
density (the floor).

Verdicts compare the two means with the 95% CI of their difference (see
`cnf_report.compare`, which also draws the figures and builds the tables). Every
reported number is computed at `eval_tolerance` from `eval_samples` fresh
samples; the CNF NFE columns give the mean forward and adjoint (backward) NFE of
the last logged training steps and the forward NFE of the evaluation solve.

Every model trains through `common.training_loop.run_training` (resumable). Models
of the same architecture share one compiled training step: before each model
trains, its weights are re-drawn from a seed fixed by the model's name and the
optimizer state is zeroed, then its checkpoint (if any) is restored. NF steps are
compiled with XLA (`nf_jit_compile`). Evaluations are cached per model, so a rerun
of a finished run only rewrites the report and figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import files, results, seeding, training_loop, validation
from neural_ode import cnf, planar_flow
from neural_ode.data import densities
from neural_ode.experiments import cnf_report
from neural_ode.experiments.cnf_report import ML_BOX
from neural_ode.solver import SolverConfig

PAPER_CNF_ITERATIONS = 10_000
PAPER_NF_ITERATIONS = 500_000
PAPER_TOLERANCE = 1e-5
ML_GEOMETRY = {
    "two_circles": {"radius": 3.0, "factor": 0.5},
    "two_moons": {"scale": 2.0},
}
"""Size of each maximum-likelihood dataset (the noise is `CNFConfig.ml_noise`)."""
RESUMABLE_FIELDS = ("log_every", "checkpoint_every")
NFE_FILE = "train_nfe.json"


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    validation.require_positive(name, value)


@dataclasses.dataclass(frozen=True)
class CNFConfig:
    """The protocol of the CNF experiment; the defaults are the full run.

    Attributes:
        experiment: Experiment name (the run directory's identity).
        seed: Seeds the initial weights, base samples and data.
        targets: Density-matching targets (keys of `densities.ENERGIES`).
        widths: Capacities compared: CNF units M and NF layers K.
        dm_cnf_iterations: Adam steps of each density-matching CNF.
        dm_nf_iterations: RMSprop steps of each density-matching NF.
        dm_batch_size: Base samples per density-matching step.
        ml_datasets: Maximum-likelihood datasets (keys of `densities.DATASETS`).
        ml_width: CNF units and NF layers of the maximum-likelihood models.
        ml_cnf_iterations: Adam steps of each maximum-likelihood CNF.
        ml_nf_iterations: RMSprop steps of each maximum-likelihood NF.
        ml_batch_size: Fresh data samples per maximum-likelihood step.
        ml_noise: Noise standard deviation of both datasets.
        hyper_units: Hidden width of the CNF's time hypernetwork.
        end_time: Integration time T of the CNF.
        cnf_learning_rate: Adam learning rate of the CNFs.
        nf_learning_rate: RMSprop learning rate of the NFs.
        nf_init_scale: Standard deviation of the NF's initial u and w.
        nf_jit_compile: Compile the NF training steps with XLA (one long
            compilation, then several times faster steps on CPU).
        method: Adaptive solver of the CNF ("dopri5" or "bdf").
        train_tolerance: rtol = atol of the CNF solves while training.
        eval_tolerance: rtol = atol of the CNF solves for every reported number.
        eval_samples: Samples behind each reported loss / NLL.
        grid_points: Grid points per axis of the density plots.
        log_every: Steps between progress lines.
        checkpoint_every: Steps between checkpoints.
    """

    experiment: str = "cnf"
    seed: int = 0
    targets: tuple[str, ...] = ("ring", "wave", "split_wave")
    widths: tuple[int, ...] = (2, 8, 32)
    dm_cnf_iterations: int = 1000
    dm_nf_iterations: int = 10_000
    dm_batch_size: int = 512
    ml_datasets: tuple[str, ...] = ("two_circles", "two_moons")
    ml_width: int = 64
    ml_cnf_iterations: int = 1000
    ml_nf_iterations: int = 10_000
    ml_batch_size: int = 512
    ml_noise: float = 0.2
    hyper_units: int = 32
    end_time: float = 1.0
    cnf_learning_rate: float = 5e-3
    nf_learning_rate: float = 1e-3
    nf_init_scale: float = 0.5
    nf_jit_compile: bool = True
    method: str = "dopri5"
    train_tolerance: float = 1e-3
    eval_tolerance: float = 1e-5
    eval_samples: int = 10_000
    grid_points: int = 100
    log_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name, value, known in (
            ("targets", self.targets, densities.ENERGIES),
            ("ml_datasets", self.ml_datasets, densities.DATASETS),
        ):
            if not isinstance(value, tuple) or len(set(value)) != len(value):
                raise ValueError(
                    f"{name} must be a tuple without repeats, got {value!r}"
                )
            unknown = [v for v in value if v not in known]
            if unknown:
                raise ValueError(
                    f"unknown {name} {unknown}; choose from {tuple(known)}"
                )
        if not self.targets and not self.ml_datasets:
            raise ValueError("targets and ml_datasets are both empty: nothing to run")
        if (
            not isinstance(self.widths, tuple)
            or not self.widths
            or len(set(self.widths)) != len(self.widths)
        ):
            raise ValueError(
                f"widths must be a non-empty tuple without repeats, got {self.widths!r}"
            )
        for width in self.widths:
            _positive_int("every width", width)
        for name in (
            "dm_cnf_iterations",
            "dm_nf_iterations",
            "dm_batch_size",
            "ml_width",
            "ml_cnf_iterations",
            "ml_nf_iterations",
            "ml_batch_size",
            "hyper_units",
            "eval_samples",
            "log_every",
            "checkpoint_every",
        ):
            _positive_int(name, getattr(self, name))
        if (
            isinstance(self.grid_points, bool)
            or not isinstance(self.grid_points, int)
            or self.grid_points < 10
        ):
            raise ValueError(
                f"grid_points must be an integer >= 10, got {self.grid_points!r}"
            )
        for name in (
            "ml_noise",
            "end_time",
            "cnf_learning_rate",
            "nf_learning_rate",
            "nf_init_scale",
            "train_tolerance",
            "eval_tolerance",
        ):
            validation.require_positive(name, getattr(self, name))
        if not isinstance(self.nf_jit_compile, bool):
            raise ValueError(
                f"nf_jit_compile must be a bool, got {self.nf_jit_compile!r}"
            )
        if self.method not in ("dopri5", "bdf"):
            raise ValueError(
                f"method must be 'dopri5' or 'bdf' (adaptive, adjoint "
                f"gradients), got {self.method!r}"
            )

    def train_solver(self) -> SolverConfig:
        """The CNF solver while training (adjoint gradients, seminorm)."""
        return SolverConfig(
            method=self.method, rtol=self.train_tolerance, atol=self.train_tolerance
        )

    def eval_solver(self) -> SolverConfig:
        """The CNF solver of every reported number."""
        return SolverConfig(
            method=self.method, rtol=self.eval_tolerance, atol=self.eval_tolerance
        )

    def deviations(self) -> list[str]:
        """How this protocol departs from the paper's (sec. 4.1)."""
        out = []
        if self.targets:
            if self.dm_cnf_iterations < PAPER_CNF_ITERATIONS:
                out.append(
                    f"density-matching CNFs trained {self.dm_cnf_iterations:,} "
                    f"Adam iterations (paper: {PAPER_CNF_ITERATIONS:,})"
                )
            if self.dm_nf_iterations < PAPER_NF_ITERATIONS:
                out.append(
                    f"density-matching NFs trained {self.dm_nf_iterations:,} "
                    f"RMSprop iterations at learning rate "
                    f"{self.nf_learning_rate:g} (paper: {PAPER_NF_ITERATIONS:,}"
                    ", following Rezende & Mohamed)"
                )
            out.append(
                f"targets {', '.join(self.targets)} are Rezende & Mohamed's "
                "test energies (the paper's Fig. 4 does not name its three); "
                "U2-U4 get a wall beyond |z1| = 4 so that exp(-U) is "
                "normalisable"
            )
        if self.ml_datasets:
            out.append(
                f"maximum likelihood: CNF {self.ml_cnf_iterations:,} and NF "
                f"{self.ml_nf_iterations:,} iterations on fresh samples (noise "
                f"{self.ml_noise:g}) each step; the paper gives no budget, "
                "sizes or noise"
            )
        if self.train_tolerance > PAPER_TOLERANCE:
            out.append(
                f"CNFs trained with rtol = atol = {self.train_tolerance:g} "
                f"(paper: {PAPER_TOLERANCE:g} for density estimation); every "
                f"reported number is evaluated at {self.eval_tolerance:g}"
            )
        out.append(
            f"time dependence of the CNF: a tanh hypernetwork of t "
            f"({self.hyper_units} units, as torchdiffeq's cnf example) with a "
            f"sigmoid gate per unit, units averaged (u_m / M), T = "
            f"{self.end_time:g} (the paper gives no details)"
        )
        return out


def _model_seed(seed: int, name: str) -> int:
    return int(np.random.default_rng([seed, zlib.crc32(name.encode())]).integers(2**31))


def _step_rng(seed: int, name: str, step: int) -> np.random.Generator:
    """The generator of one training step: reproducible across resumes."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), step])


def _reset_optimizer(optimizer: keras.optimizers.Optimizer) -> None:
    for variable in optimizer.variables:
        if not variable.path.endswith("learning_rate"):
            variable.assign(tf.zeros(variable.shape, variable.dtype))


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    est = results.mean_ci95(values)
    return est.mean, est.ci95


class _Trainer:
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
        _reset_optimizer(self.optimizer)

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
        self.reset(_model_seed(config.seed, name))
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
                    _write_json(
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


def _energy_switch(
    targets: Sequence[str],
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    energies = [densities.ENERGIES[t] for t in targets]

    def energy(x, index):
        # All targets are evaluated and one is picked (cheap, and unlike
        # `tf.switch_case` it compiles with XLA for a runtime index).
        return tf.gather(tf.stack([e(x) for e in energies]), index)

    return energy


def _dm_cnf_trainer(config: CNFConfig, width: int) -> _Trainer:
    model = cnf.PlanarCNF(
        width,
        hyper_units=config.hyper_units,
        end_time=config.end_time,
        solver=config.train_solver(),
        name=f"cnf_m{width}",
    )
    energy = _energy_switch(config.targets)
    sink = tf.Variable(0, dtype=tf.int32, trainable=False)

    def objective(z0, index):
        x, log_q, nfe = model.sample_and_log_prob(z0, backward_nfe_sink=sink)
        return tf.reduce_mean(log_q + energy(x, index)), {"nfe": nfe}

    return _Trainer(
        model, keras.optimizers.Adam(config.cnf_learning_rate), objective, sink
    )


def _dm_nf_trainer(config: CNFConfig, layers: int) -> _Trainer:
    model = planar_flow.PlanarFlow(
        layers, init_scale=config.nf_init_scale, name=f"nf_k{layers}"
    )
    energy = _energy_switch(config.targets)

    def objective(z0, index):
        x, log_det = model.forward(z0)
        log_q = cnf.standard_normal_log_prob(z0) - log_det
        return tf.reduce_mean(log_q + energy(x, index)), {}

    return _Trainer(
        model,
        keras.optimizers.RMSprop(config.nf_learning_rate),
        objective,
        jit_compile=config.nf_jit_compile,
    )


def _ml_cnf_trainer(config: CNFConfig) -> _Trainer:
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

    return _Trainer(
        model, keras.optimizers.Adam(config.cnf_learning_rate), objective, sink
    )


def _nf_data_log_prob(model: planar_flow.PlanarFlow, x: tf.Tensor) -> tf.Tensor:
    z, log_det = model.forward(x)
    return cnf.standard_normal_log_prob(z) + log_det


def _ml_nf_trainer(config: CNFConfig) -> _Trainer:
    model = planar_flow.PlanarFlow(
        config.ml_width,
        init_scale=config.nf_init_scale,
        name=f"nf_ml_k{config.ml_width}",
    )

    def objective(x, index):
        del index
        return -tf.reduce_mean(_nf_data_log_prob(model, x)), {}

    return _Trainer(
        model,
        keras.optimizers.RMSprop(config.nf_learning_rate),
        objective,
        jit_compile=config.nf_jit_compile,
    )


def _dataset_kwargs(config: CNFConfig, dataset: str) -> dict[str, float]:
    return {**ML_GEOMETRY[dataset], "noise": config.ml_noise}


def _num_params(model: keras.layers.Layer) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


# --- evaluation -----------------------------------------------------------------


def _load_cache(path: str, steps: int) -> tuple[dict, dict] | None:
    if not (os.path.exists(path + ".json") and os.path.exists(path + ".npz")):
        return None
    with open(path + ".json") as f:
        record = json.load(f)
    if record.get("steps") != steps:
        return None
    with np.load(path + ".npz") as arrays:
        return record, dict(arrays)


def _write_json(path: str, data: dict) -> None:
    files.atomic_write_json(path, data)


def _save_cache(path: str, record: dict, arrays: dict[str, np.ndarray]) -> None:
    with files.atomic_open(path + ".npz", binary=True) as f:
        np.savez_compressed(f, **arrays)
    _write_json(path + ".json", record)


def _solve_or_nan(fn: Callable[[], Any]) -> Any | None:
    try:
        return fn()
    except tf.errors.InvalidArgumentError as err:
        print(f"evaluation failed: {str(err).splitlines()[0]}", flush=True)
        return None


def _evaluate_dm(
    trainer: _Trainer, kind: str, target: str, config: CNFConfig, name: str
) -> tuple[dict, dict]:
    rng = np.random.default_rng([config.seed, zlib.crc32(name.encode()), 2**31])
    z0 = tf.constant(rng.standard_normal((config.eval_samples, 2)), tf.float32)
    model = trainer.model
    energy = densities.ENERGIES[target]
    record: dict[str, Any] = {}
    if kind == "cnf":
        sample = trainer.function(
            "sample",
            lambda z: model.sample_and_log_prob(z, solver=config.eval_solver()),
        )
        out = _solve_or_nan(lambda: sample(z0))
        if out is not None:
            record["eval_nfe"] = int(out[2])
    else:

        def sample(z):
            x, log_det = model.forward(z)
            return x, cnf.standard_normal_log_prob(z) - log_det

        out = trainer.function("sample", sample)(z0)
    if out is None:
        x = np.full((config.eval_samples, 2), np.nan, np.float32)
        per_sample = np.full(config.eval_samples, np.nan)
    else:
        x = out[0].numpy()
        per_sample = (out[1] + energy(out[0])).numpy().astype(np.float64)
    log_z = densities.log_normalizer(target)
    record["loss"], record["loss_ci95"] = _mean_ci(per_sample)
    record["kl"] = record["loss"] + log_z
    record["kl_ci95"] = record["loss_ci95"]
    record["log_z"] = log_z
    return record, {"samples": x.astype(np.float32)}


def _evaluate_ml(
    trainer: _Trainer, kind: str, dataset: str, config: CNFConfig, name: str
) -> tuple[dict, dict]:
    rng = np.random.default_rng([config.seed, zlib.crc32(dataset.encode()), 2**31])
    kwargs = _dataset_kwargs(config, dataset)
    test, _ = densities.DATASETS[dataset](config.eval_samples, rng, **kwargs)
    model = trainer.model
    points, _ = densities.grid(ML_BOX, config.grid_points)
    points = tf.constant(points, tf.float32)
    num_vis = min(config.eval_samples, 5000)
    z0 = tf.constant(rng.standard_normal((num_vis, 2)), tf.float32)
    record: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    if kind == "cnf":
        solver = config.eval_solver()
        log_prob = trainer.function(
            "log_prob", lambda x: model.log_prob(x, solver=solver)
        )
        out = _solve_or_nan(lambda: log_prob(tf.constant(test)))
        grid_out = _solve_or_nan(lambda: log_prob(points))
        fractions = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
        times = tf.constant(fractions * config.end_time, tf.float32)
        flow = trainer.function(
            "path", lambda z: model.integrate(z, times, solver=solver).states[..., :2]
        )
        path = _solve_or_nan(lambda: flow(z0))
        log_q = None if out is None else out[0].numpy()
        if out is not None:
            record["eval_nfe"] = int(out[1])
        grid_log_q = None if grid_out is None else grid_out[0].numpy()
        stages = [f"t = {f * config.end_time:g}" for f in fractions]
    else:
        log_prob = trainer.function("log_prob", lambda x: _nf_data_log_prob(model, x))
        log_q = log_prob(tf.constant(test)).numpy()
        grid_log_q = log_prob(points).numpy()
        inverse = trainer.function(
            "inverse", lambda z: model.inverse(z, return_path=True)[1]
        )
        full_path = inverse(z0)
        k = config.ml_width
        # The sampling direction runs layer K (noise) down to layer 0 (data).
        layers = [round(f * k) for f in (1.0, 0.9, 0.75, 0.5, 0.25, 0.0)]
        path = tf.gather(full_path, layers)
        stages = [f"{k - i} of {k} layers" for i in layers]
    floor = densities.DATA_LOG_PROBS[dataset](test, **kwargs)
    record["nll"], record["nll_ci95"] = _mean_ci(
        -np.asarray(log_q, np.float64)
        if log_q is not None
        else np.full(len(test), np.nan)
    )
    record["floor_nll"], record["floor_nll_ci95"] = _mean_ci(-floor)
    record["stages"] = stages
    n = config.grid_points
    arrays["grid_log_q"] = (
        np.full(n * n, np.nan) if grid_log_q is None else grid_log_q
    ).astype(np.float32)
    arrays["path"] = (
        np.full((len(stages), num_vis, 2), np.nan) if path is None else np.asarray(path)
    ).astype(np.float32)
    arrays["test"] = test[:num_vis]
    return record, arrays


def _train_nfe(run_dir: str, name: str) -> dict[str, float]:
    """Mean forward / backward NFE of the last logged training steps (CNFs)."""
    path = os.path.join(run_dir, "checkpoints", name, NFE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _train_and_evaluate(
    trainer: _Trainer,
    name: str,
    kind: str,
    total: int,
    make_batch: Callable[[int], np.ndarray],
    index: int,
    evaluate: Callable[[], tuple[dict, dict]],
    config: CNFConfig,
    run_dir: str,
) -> tuple[dict, dict]:
    loop = trainer.train(name, total, make_batch, index, config, run_dir)
    cache = os.path.join(run_dir, "evaluations", name)
    cached = _load_cache(cache, loop.steps) if loop.status == "complete" else None
    if cached is not None:
        record, arrays = cached
    else:
        t0 = time.perf_counter()
        record, arrays = evaluate()
        record["eval_seconds"] = round(time.perf_counter() - t0, 1)
        if kind == "cnf":
            record["train_nfe"] = _train_nfe(run_dir, name)
        if loop.status == "complete":
            _save_cache(cache, {**record, "steps": loop.steps}, arrays)
    record.update(
        name=name,
        kind=kind,
        status=loop.status,
        params=_num_params(trainer.model),
        budget=loop.budget(),
    )
    print(
        f"[{name}] {loop.status}: "
        + ", ".join(
            f"{k}={v:.4g}"
            for k, v in record.items()
            if isinstance(v, float) and not k.endswith("ci95")
        ),
        flush=True,
    )
    return record, arrays


def _overall_status(records: dict[str, dict]) -> str:
    statuses = {r["status"] for r in records.values()}
    if "diverged" in statuses:
        return "diverged"
    if "cut short" in statuses:
        return "cut short"
    return "complete"


def run(config: CNFConfig, output_dir: str) -> dict[str, Any]:
    """Trains and evaluates every model of the protocol; writes the report.

    Args:
        config: The protocol.
        output_dir: Run directory (fresh, or holding a run of the same config).

    Returns:
        The `results.json` record.
    """
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    start = time.perf_counter()
    records: dict[str, dict] = {}
    arrays: dict[str, dict] = {}

    def keep(name: str, result: tuple[dict, dict]) -> None:
        records[name], arrays[name] = result

    for width in config.widths if config.targets else ():
        for kind, build, total in (
            ("nf", _dm_nf_trainer, config.dm_nf_iterations),
            ("cnf", _dm_cnf_trainer, config.dm_cnf_iterations),
        ):
            trainer = build(config, width)
            letter = "k" if kind == "nf" else "m"
            for index, target in enumerate(config.targets):
                name = f"dm_{target}_{kind}_{letter}{width}"

                def make_batch(step, name=name):
                    rng = _step_rng(config.seed, name, step)
                    return rng.standard_normal((config.dm_batch_size, 2))

                keep(
                    name,
                    _train_and_evaluate(
                        trainer,
                        name,
                        kind,
                        total,
                        make_batch,
                        index,
                        lambda t=trainer, k=kind, g=target, n=name: _evaluate_dm(
                            t, k, g, config, n
                        ),
                        config,
                        output_dir,
                    ),
                )
    for kind, build, total in (
        ("nf", _ml_nf_trainer, config.ml_nf_iterations),
        ("cnf", _ml_cnf_trainer, config.ml_cnf_iterations),
    ):
        if not config.ml_datasets:
            break
        trainer = build(config)
        letter = "k" if kind == "nf" else "m"
        for dataset in config.ml_datasets:
            name = f"ml_{dataset}_{kind}_{letter}{config.ml_width}"
            sampler = densities.DATASETS[dataset]
            kwargs = _dataset_kwargs(config, dataset)

            def make_batch(step, name=name, sampler=sampler, kwargs=kwargs):
                rng = _step_rng(config.seed, name, step)
                return sampler(config.ml_batch_size, rng, **kwargs)[0]

            keep(
                name,
                _train_and_evaluate(
                    trainer,
                    name,
                    kind,
                    total,
                    make_batch,
                    0,
                    lambda t=trainer, k=kind, d=dataset, n=name: _evaluate_ml(
                        t, k, d, config, n
                    ),
                    config,
                    output_dir,
                ),
            )

    fig_dir = os.path.join(output_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    figures, tables = [], []
    if config.targets:
        tables.append(cnf_report.dm_table(config, records))
        figures.append(
            cnf_report.plot_dm_samples(
                os.path.join(fig_dir, "fig4_samples.png"), config, records, arrays
            )
        )
        figures.append(
            cnf_report.plot_dm_loss(
                os.path.join(fig_dir, "fig4d_kl_vs_width.png"), config, records
            )
        )
    if config.ml_datasets:
        tables.append(cnf_report.ml_table(config, records))
        figures.append(
            cnf_report.plot_ml(
                os.path.join(fig_dir, "fig5_maximum_likelihood.png"),
                config,
                records,
                arrays,
            )
        )
    tables.append(cnf_report.budget_table(records))
    train_seconds = sum(r["budget"]["train_seconds"] for r in records.values())
    budget = {
        "train_seconds": round(train_seconds, 1),
        "session_wall_time_s": round(time.perf_counter() - start, 1),
        "dm_cnf_iterations": config.dm_cnf_iterations,
        "dm_nf_iterations": config.dm_nf_iterations,
        "ml_cnf_iterations": config.ml_cnf_iterations,
        "ml_nf_iterations": config.ml_nf_iterations,
        "models": len(records),
        "machine": results.machine_description(),
    }
    return results.write_results(
        output_dir,
        paper="neural_ode",
        experiment=config.experiment,
        status=_overall_status(records),
        budget=budget,
        config=config_lib.to_dict(config),
        cells=[],
        deviations=config.deviations(),
        figures=[os.path.relpath(f, output_dir) for f in figures],
        extra={"tables": tables, "models": records},
    )
