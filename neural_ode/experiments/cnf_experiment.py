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
of a finished run only rewrites the report and figures. The protocol is
`cnf_config.CNFConfig`, the compiled steps `cnf_trainers`, the verdicts, tables
and figures `cnf_report`.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import files, results, seeding
from neural_ode import cnf
from neural_ode.data import densities
from neural_ode.experiments import cnf_report, cnf_trainers
from neural_ode.experiments.cnf_config import (
    ML_GEOMETRY,
    CNFConfig,
)
from neural_ode.experiments.cnf_report import ML_BOX

RESUMABLE_FIELDS = ("log_every", "checkpoint_every")


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    est = results.mean_ci95(values)
    return est.mean, est.ci95


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


def _save_cache(path: str, record: dict, arrays: dict[str, np.ndarray]) -> None:
    with files.atomic_open(path + ".npz", binary=True) as f:
        np.savez_compressed(f, **arrays)
    files.atomic_write_json(path + ".json", record)


def _solve_or_nan(fn: Callable[[], Any]) -> Any | None:
    try:
        return fn()
    except tf.errors.InvalidArgumentError as err:
        print(f"evaluation failed: {str(err).splitlines()[0]}", flush=True)
        return None


def _evaluate_dm(
    trainer: cnf_trainers.Trainer, kind: str, target: str, config: CNFConfig, name: str
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
    trainer: cnf_trainers.Trainer, kind: str, dataset: str, config: CNFConfig, name: str
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
        log_prob = trainer.function(
            "log_prob", lambda x: cnf_trainers.nf_data_log_prob(model, x)
        )
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
    path = os.path.join(run_dir, "checkpoints", name, cnf_trainers.NFE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _train_and_evaluate(
    trainer: cnf_trainers.Trainer,
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
            ("nf", cnf_trainers.dm_nf_trainer, config.dm_nf_iterations),
            ("cnf", cnf_trainers.dm_cnf_trainer, config.dm_cnf_iterations),
        ):
            trainer = build(config, width)
            letter = "k" if kind == "nf" else "m"
            for index, target in enumerate(config.targets):
                name = f"dm_{target}_{kind}_{letter}{width}"

                def make_batch(step, name=name):
                    rng = cnf_trainers.step_rng(config.seed, name, step)
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
        ("nf", cnf_trainers.ml_nf_trainer, config.ml_nf_iterations),
        ("cnf", cnf_trainers.ml_cnf_trainer, config.ml_cnf_iterations),
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
                rng = cnf_trainers.step_rng(config.seed, name, step)
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
        status=results.overall_status(r["status"] for r in records.values()),
        budget=budget,
        config=config_lib.to_dict(config),
        cells=[],
        deviations=config.deviations(),
        figures=[os.path.relpath(f, output_dir) for f in figures],
        extra={"tables": tables, "models": records},
    )
