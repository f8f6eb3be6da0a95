"""Table 2 and Fig. 8 of the Neural ODE paper: extrapolating irregular spirals.

Protocol (the paper leaves noise level, split and training length open; the
choices below are stated in every report):

- Data: `num_spirals` 2-D spirals (`neural_ode.spirals.generate_spirals`), 100
  equally spaced times, half clockwise, Gaussian noise of std `noise_std` (0.3, the
  value of the paper's reference code `torchdiffeq/examples/latent_ode.py`), split
  at random into train and test (`test_fraction`, 800 / 200 by default).
- For each `n` in `num_observed` (30, 50, 100), every spiral keeps `n` of its 100
  points, drawn without replacement independently per spiral
  (`per_sequence_times`); train and test spirals are subsampled alike.
- Models, each trained full batch on the training spirals:
  `latent_ode` (`neural_ode.latent_ode.LatentODE`: backwards RNN of 25 units,
  latent dimension 4, dynamics MLP 4-20-4, decoder 4-20-2, ELBO with a Gaussian
  likelihood of fixed std `likelihood_std`, default = `noise_std`, and KL to
  N(0, I); dopri5 with the adjoint method); `rnn` (`neural_ode.rnn_baseline`:
  tanh RNN, 25 units, one-step-ahead mean squared error); `rnn_time_gaps` (the same
  RNN fed the time gap to the next point).
- Metric: on every test spiral the models see its `n` noisy observations and
  predict the 100 points after the observed window (times `100 dt .. 199 dt`);
  the RMSE (per coordinate) against the noise-free spiral there. The table
  reports the mean over test spirals of the per-spiral RMSE with a 95% CI
  (`common.results.mean_ci95`); the RMSE pooled over all test points is in the
  extra table.

The RNNs see standardized coordinates (training mean per coordinate, one scale);
the latent ODE standardizes internally (`obs_mean`, `obs_scale`), so its
likelihood std is in the data's units.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import checkpoint, results, seeding, training_loop
from common import config as config_lib
from neural_ode import latent_ode, rnn_baseline, spirals
from neural_ode.odeint import METHODS, SolverConfig

MODELS = ("latent_ode", "rnn", "rnn_time_gaps")
TABLE2_ROWS = {"latent_ode": "Latent ODE", "rnn": "RNN"}
MODEL_LABELS = {"latent_ode": "Latent ODE", "rnn": "RNN",
                "rnn_time_gaps": "RNN with time gaps"}
RESUMABLE_FIELDS = ("log_every", "checkpoint_every", "num_plot")
FIGURE = "fig8_spirals.png"
TOTAL_POINTS = 100
PLOT_COLORS = {"latent_ode": "tab:blue", "rnn": "tab:orange",
               "rnn_time_gaps": "tab:green"}


@dataclasses.dataclass(frozen=True)
class SpiralConfig:
    """The Table 2 protocol; the defaults are the full protocol.

    Attributes:
        experiment: "spirals".
        seed: Seed of the data, subsampling, initialisation and noise.
        num_spirals: Spirals generated (train + test).
        noise_std: Observation noise std (the paper does not state it).
        test_fraction: Fraction of the spirals held out for testing.
        num_observed: Observed points per spiral, out of 100, one setting each.
        per_sequence_times: Draw the observed times independently per spiral
            (False: one set of times shared by all spirals).
        models: Which of "latent_ode", "rnn", "rnn_time_gaps" to train.
        latent_iterations: Full-batch Adam steps of the latent ODE.
        rnn_iterations: Full-batch Adam steps of each RNN.
        learning_rate: Adam learning rate of the latent ODE.
        rnn_learning_rate: Adam learning rate of the RNNs.
        likelihood_std: Fixed std of the latent ODE's Gaussian likelihood, in
            data units; None uses `noise_std`.
        latent_dim: Latent dimension.
        encoder_units: Units of the recognition RNN.
        dynamics_units: Hidden units of the dynamics MLP (one layer).
        decoder_units: Hidden units of the decoder MLP (one layer).
        rnn_units: Units of the RNN baselines.
        encoder_time_input: Feed observation times to the recognition RNN.
        solver_method: ODE method of the latent ODE (training and test).
        rtol: Relative tolerance (adaptive methods).
        atol: Absolute tolerance (adaptive methods).
        gradient: "adjoint", "tfp_adjoint" or "backprop" (fixed-grid methods).
        jit_compile: Compile the latent ODE's training step with XLA (twice as
            fast; the RNN steps always run without XLA, which is measured to be
            four times faster for them).
        log_every: Steps between progress lines.
        checkpoint_every: Steps between checkpoints.
        num_plot: Test spirals drawn in the Fig. 8-style figure.
    """

    experiment: str = "spirals"
    seed: int = 0
    num_spirals: int = 1000
    noise_std: float = 0.3
    test_fraction: float = 0.2
    num_observed: tuple[int, ...] = (30, 50, 100)
    per_sequence_times: bool = True
    models: tuple[str, ...] = MODELS
    latent_iterations: int = 2000
    rnn_iterations: int = 2000
    learning_rate: float = 0.01
    rnn_learning_rate: float = 0.01
    likelihood_std: float | None = None
    latent_dim: int = 4
    encoder_units: int = 25
    dynamics_units: int = 20
    decoder_units: int = 20
    rnn_units: int = 25
    encoder_time_input: bool = True
    solver_method: str = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-5
    gradient: str = "adjoint"
    jit_compile: bool = True
    log_every: int = 100
    checkpoint_every: int = 500
    num_plot: int = 4

    def __post_init__(self) -> None:
        if self.experiment != "spirals":
            raise ValueError(f"experiment must be 'spirals', got {self.experiment!r}")
        if not self.models or any(m not in MODELS for m in self.models):
            raise ValueError(f"models must be among {MODELS}, got {self.models}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must not repeat, got {self.models}")
        if not self.num_observed or any(
                not 2 <= n <= TOTAL_POINTS for n in self.num_observed):
            raise ValueError(f"num_observed must be in [2, {TOTAL_POINTS}], got "
                             f"{self.num_observed}")
        if len(set(self.num_observed)) != len(self.num_observed):
            raise ValueError(f"num_observed must not repeat, got {self.num_observed}")
        if self.num_spirals < 2:
            raise ValueError(f"num_spirals must be at least 2, got {self.num_spirals}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got "
                             f"{self.test_fraction}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be non-negative, got {self.noise_std}")
        for name in ("latent_iterations", "rnn_iterations", "latent_dim",
                     "encoder_units", "dynamics_units", "decoder_units", "rnn_units",
                     "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got "
                                 f"{getattr(self, name)}")
        if self.num_plot < 0:
            raise ValueError(f"num_plot must be non-negative, got {self.num_plot}")
        for name in ("learning_rate", "rnn_learning_rate", "rtol", "atol"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.effective_likelihood_std > 0:
            raise ValueError(f"likelihood_std must be positive, got "
                             f"{self.effective_likelihood_std} (noise_std 0 needs an "
                             "explicit likelihood_std)")
        if self.solver_method not in METHODS:
            raise ValueError(f"solver_method must be one of {METHODS}, got "
                             f"{self.solver_method!r}")
        self.solver()  # raises on an invalid method / gradient combination

    @property
    def effective_likelihood_std(self) -> float:
        """The likelihood std used: `likelihood_std`, or `noise_std` if None."""
        return self.noise_std if self.likelihood_std is None else self.likelihood_std

    def solver(self) -> SolverConfig:
        """The latent ODE's solver configuration."""
        try:
            return SolverConfig(method=self.solver_method, rtol=self.rtol,
                                atol=self.atol, gradient=self.gradient)
        except ValueError as e:
            raise ValueError(f"invalid solver settings: {e}") from None


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """A fixed affine map of the coordinates: `(x - mean) / scale`.

    Attributes:
        mean: Per-coordinate mean of the training observations.
        scale: One standard deviation over all training coordinates.
    """

    mean: tuple[float, ...]
    scale: float

    @classmethod
    def fit(cls, observations: np.ndarray) -> Standardizer:
        """From observations `[..., dims]`."""
        observations = np.asarray(observations, np.float64)
        mean = observations.reshape(-1, observations.shape[-1]).mean(0)
        return cls(tuple(float(m) for m in mean), float(observations.std()))

    def apply(self, x: Any) -> np.ndarray:
        return ((np.asarray(x, np.float32) - np.float32(self.mean))
                / np.float32(self.scale))

    def invert(self, x: Any) -> np.ndarray:
        return np.asarray(x, np.float32) * np.float32(self.scale) + np.float32(
            self.mean)


@dataclasses.dataclass(frozen=True)
class SpiralData:
    """Everything one run trains and tests on.

    Attributes:
        train: Training spirals.
        test: Test spirals.
        standardizer: Fitted on the training observations.
        train_subsamples: `{n: spirals.Subsample}` of the training spirals (raw
            units).
        test_subsamples: `{n: spirals.Subsample}` of the test spirals.
    """

    train: spirals.Spirals
    test: spirals.Spirals
    standardizer: Standardizer
    train_subsamples: dict[int, spirals.Subsample]
    test_subsamples: dict[int, spirals.Subsample]


def _derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def make_data(config: SpiralConfig) -> SpiralData:
    """Generates, splits and subsamples the spirals of `config` (deterministic)."""
    data = spirals.generate_spirals(config.num_spirals, TOTAL_POINTS, TOTAL_POINTS,
                                    noise_std=config.noise_std, seed=config.seed)
    train, test = spirals.train_test_split(data, config.test_fraction,
                                           seed=_derived_seed(config.seed, 1))
    train_subs, test_subs = {}, {}
    for n in config.num_observed:
        train_subs[n] = spirals.subsample(
            train.observations, train.times, n, _derived_seed(config.seed, 2, n),
            config.per_sequence_times)
        test_subs[n] = spirals.subsample(
            test.observations, test.times, n, _derived_seed(config.seed, 3, n),
            config.per_sequence_times)
    return SpiralData(train, test, Standardizer.fit(train.observations),
                      train_subs, test_subs)


def build_latent_ode(config: SpiralConfig, standardizer: Standardizer,
                     ) -> latent_ode.LatentODE:
    """The latent ODE of `config` (fresh weights from the Keras seed)."""
    return latent_ode.LatentODE(
        latent_dim=config.latent_dim, obs_dim=2, encoder_units=config.encoder_units,
        dynamics_units=(config.dynamics_units,),
        decoder_units=(config.decoder_units,),
        likelihood_std=config.effective_likelihood_std,
        encoder_time_input=config.encoder_time_input, t0=0.0,
        obs_mean=standardizer.mean, obs_scale=standardizer.scale,
        solver=config.solver(), name="latent_ode")


def loop_name(model: str, n: int) -> str:
    """Name of the training loop (checkpoint directory) of `model` at `n` points."""
    return f"{model}_n{n}"


def _rnn_step_fn(model: rnn_baseline.RNNBaseline, optimizer: keras.optimizers.Optimizer,
                 inputs: np.ndarray, targets: np.ndarray):
    """Full-batch one-step-ahead MSE training step of an RNN baseline."""
    inputs = tf.constant(inputs, tf.float32)
    targets = tf.constant(targets, tf.float32)
    variables = model.trainable_variables

    @tf.function(jit_compile=False)
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(inputs, training=True) - targets))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {"loss": loss}

    return lambda step: train()


def _build(model_name: str, config: SpiralConfig, data: SpiralData, n: int,
           ) -> tuple[keras.Model, keras.optimizers.Optimizer, Any, int]:
    """Model, optimizer, step function and step budget of one training loop."""
    keras.utils.set_random_seed(_derived_seed(config.seed, 4, n,
                                              MODELS.index(model_name)))
    sub = data.train_subsamples[n]
    if model_name == "latent_ode":
        model = build_latent_ode(config, data.standardizer)
        optimizer = keras.optimizers.Adam(config.learning_rate)
        # Slots exist before the checkpoint restore, so a resumed run gets back
        # its Adam moments (an unbuilt optimizer silently skips them).
        optimizer.build(model.trainable_variables)
        step_fn = latent_ode.make_train_step(
            model, optimizer, sub.observations, sub.times,
            seed=_derived_seed(config.seed, 5, n), jit_compile=config.jit_compile)
        return model, optimizer, step_fn, config.latent_iterations
    time_gaps = model_name == "rnn_time_gaps"
    model = rnn_baseline.RNNBaseline(config.rnn_units, 2, time_gaps, name=model_name)
    optimizer = keras.optimizers.Adam(config.rnn_learning_rate)
    optimizer.build(model.trainable_variables)
    inputs, targets = rnn_baseline.one_step_data(
        data.standardizer.apply(sub.observations), sub.times, time_gaps)
    step_fn = _rnn_step_fn(model, optimizer, inputs, targets)
    return model, optimizer, step_fn, config.rnn_iterations


def restore_model(run_dir: str, model_name: str = "latent_ode",
                  num_observed: int | None = None) -> keras.Model:
    """A trained model of a run, rebuilt from its config and latest checkpoint.

    Args:
        run_dir: The run directory (holds `config.json` and `checkpoints/`).
        model_name: One of `MODELS`.
        num_observed: Which setting's model; default the largest trained.

    Returns:
        The model with its trained weights (the latent ODE takes and returns data
        units; the RNNs standardized ones, see `Standardizer`).

    Raises:
        FileNotFoundError: no config or no checkpoint of that model.
        ValueError: a model or setting the run does not train.
    """
    config = config_lib.load_config(SpiralConfig, run_dir)
    n = max(config.num_observed) if num_observed is None else num_observed
    if model_name not in config.models or n not in config.num_observed:
        raise ValueError(f"{run_dir} trains no {model_name} on {n} points")
    model, optimizer, _, _ = _build(model_name, config, make_data(config), n)
    directory = os.path.join(run_dir, "checkpoints", loop_name(model_name, n))
    restored = checkpoint.Checkpointer(
        directory, step=tf.Variable(0, dtype=tf.int64), model=model,
        optimizer=optimizer).restore_latest()
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    return model


def predict(model_name: str, model: keras.Model, standardizer: Standardizer,
            observations: np.ndarray, times: np.ndarray, query_times: np.ndarray,
            ) -> np.ndarray:
    """Predictions `[batch, q, 2]` (data units) at `query_times` after the data."""
    if model_name == "latent_ode":
        out = model.extrapolate(observations, times, query_times)
        return np.asarray(out)
    out = model.extrapolate(standardizer.apply(observations), times, query_times)
    return standardizer.invert(keras.ops.convert_to_numpy(out))


def per_spiral_rmse(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RMSE per spiral over its points and coordinates, `[batch]`."""
    diff = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
    return np.sqrt(np.mean(np.square(diff), axis=(1, 2)))


def plot_indices(test: spirals.Spirals, count: int) -> np.ndarray:
    """The first test spirals of each direction, alternating (clockwise first)."""
    cw = np.flatnonzero(test.clockwise)
    ccw = np.flatnonzero(~test.clockwise)
    order = [i for pair in zip(cw, ccw, strict=False) for i in pair]
    order += [i for i in range(len(test)) if i not in order]
    return np.asarray(order[:count], np.int64)


def plot_spirals(path: str, test: spirals.Spirals,
                 subsamples: dict[int, spirals.Subsample], indices: np.ndarray,
                 paths: dict[tuple[str, int], np.ndarray]) -> str:
    """Fig. 8 style: observed points, truth and each model's prediction.

    Args:
        path: Output PNG.
        test: The test spirals.
        subsamples: `{n: Subsample}` of the test spirals.
        indices: Test spirals to draw (columns).
        paths: `{(model, n): [len(indices), q, 2]}`; the latent ODE's covers the
            observed window and the extrapolation window (200 points), the RNNs'
            only the extrapolation window (100 points).

    Returns:
        `path`.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = sorted(subsamples)
    fig, axes = plt.subplots(len(sizes), len(indices),
                             figsize=(3.2 * len(indices), 3.0 * len(sizes)),
                             squeeze=False)
    for r, n in enumerate(sizes):
        for c, i in enumerate(indices):
            ax = axes[r, c]
            ax.plot(*test.true_trajectories[i].T, color="0.6", lw=1,
                    label="truth (observed window)")
            ax.plot(*test.extrapolation_trajectories[i].T, color="black", lw=1,
                    ls="--", label="truth (extrapolation)")
            ax.scatter(*subsamples[n].observations[i].T, s=6, color="0.3",
                       label=f"{n} observations")
            for (model, size), pred in paths.items():
                if size == n:
                    ax.plot(*pred[c].T, color=PLOT_COLORS[model], lw=1.4,
                            label=MODEL_LABELS[model])
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_title(f"test spiral {i}, {n}/100 observed", fontsize=9)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _deviations(config: SpiralConfig, data: SpiralData) -> list[str]:
    """The run-wide protocol choices the paper leaves open, in words."""
    n_train, n_test = len(data.train), len(data.test)
    out = [
        f"observation noise std {config.noise_std:g} (not stated in the paper; the "
        "value of its reference code torchdiffeq/examples/latent_ode.py)",
        f"{config.num_spirals} spirals split at random into {n_train} training and "
        f"{n_test} test spirals (split not stated in the paper)",
        "observed times drawn "
        + ("independently per spiral" if config.per_sequence_times
           else "once for all spirals"),
        "RMSE per coordinate against the noise-free spiral at the 100 times after "
        "the observed window, averaged over test spirals (95% CI over spirals)",
        "spiral family of neural_ode/spirals.py: both directions Archimedean "
        "(r = 0.3 theta), clockwise ones centred at (-5, 0) running inwards",
    ]
    if "latent_ode" in config.models:
        out += [
            f"latent ODE: {config.latent_iterations} full-batch Adam iterations, "
            f"learning rate {config.learning_rate:g} (not stated in the paper)",
            f"latent ODE likelihood: Gaussian with fixed std "
            f"{config.effective_likelihood_std:g} (data units), one posterior "
            "sample per spiral and step; extrapolation from the posterior mean",
            "the recognition RNN reads "
            + ("(point, time) pairs" if config.encoder_time_input else "points")
            + " backwards",
            f"latent ODE solver {config.solver_method}, rtol {config.rtol:g}, atol "
            f"{config.atol:g}, gradient by {config.gradient}",
        ]
    if {"rnn", "rnn_time_gaps"} & set(config.models):
        out += [
            f"RNNs: {config.rnn_iterations} full-batch Adam iterations, learning "
            f"rate {config.rnn_learning_rate:g}, one-step-ahead squared error on "
            "standardized coordinates (not stated in the paper)",
            "Table 2's 'RNN' row is the plain RNN; the variant fed time gaps, "
            "which the paper also mentions, is reported in the extra table",
        ]
    return out


def run(config: SpiralConfig, output_dir: str) -> dict:
    """Trains and evaluates every (model, observed points); writes the results.

    Returns:
        The `results.json` record.
    """
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    data = make_data(config)
    query_times = data.test.extrapolation_times
    target = data.test.extrapolation_trajectories
    indices = plot_indices(data.test, config.num_plot)
    cells, statuses, loops = [], [], []
    extra_rows, plot_paths = [], {}
    total_seconds = 0.0
    for n in config.num_observed:
        test_sub = data.test_subsamples[n]
        for model_name in config.models:
            name = loop_name(model_name, n)
            model, optimizer, step_fn, total = _build(model_name, config, data, n)
            loop = training_loop.run_training(
                name, step_fn, total, run_dir=output_dir,
                trackables={"model": model, "optimizer": optimizer},
                log_every=config.log_every, checkpoint_every=config.checkpoint_every)
            statuses.append(loop.status)
            total_seconds += loop.train_seconds
            t = time.perf_counter()
            prediction = predict(model_name, model, data.standardizer,
                                 test_sub.observations, test_sub.times, query_times)
            eval_seconds = time.perf_counter() - t
            errors = per_spiral_rmse(prediction, target)
            estimate = results.mean_ci95(errors)
            pooled = rnn_baseline.rmse(prediction, target)
            seconds_per_step = (loop.train_seconds / loop.steps if loop.steps
                                else float("nan"))
            budget = {"iterations": loop.steps, "target_iterations": total,
                      "wall_time_s": round(loop.train_seconds, 1),
                      **loop.budget(), "status": loop.status}
            loops.append({"name": name, **loop.budget(), "status": loop.status,
                          "seconds_per_iteration": seconds_per_step,
                          "last_metrics": loop.last_metrics})
            cell_dev = []
            if loop.steps < total:
                cell_dev.append(f"trained {loop.steps} of {total} iterations")
            if loop.status != "complete":
                cell_dev.append(f"run {loop.status}")
            details = {"pooled RMSE": f"{pooled:.4f}"}
            if model_name == "latent_ode":
                details["forward NFE (last step)"] = int(model.ode.forward_nfe.numpy())
                if config.solver().adaptive:
                    details["backward NFE (last step)"] = int(
                        model.ode.backward_nfe.numpy())
            column = f"{n}/100"
            if model_name in TABLE2_ROWS and column in ("30/100", "50/100", "100/100"):
                cells.append(results.cell(
                    "neural_ode", "Table 2", TABLE2_ROWS[model_name], column,
                    estimate, deviations=cell_dev, budget=budget, details=details))
            extra_rows.append([
                MODEL_LABELS[model_name], column, f"{estimate.mean:.4f}",
                f"{estimate.ci95:.4f}", f"{pooled:.4f}", f"{loop.steps}/{total}",
                f"{seconds_per_step:.3f}", f"{eval_seconds:.1f}", loop.status])
            if len(indices):
                if model_name == "latent_ode":
                    whole = np.concatenate([data.test.times, query_times])
                    plot_paths[(model_name, n)] = predict(
                        model_name, model, data.standardizer,
                        test_sub.observations[indices], test_sub.times[indices],
                        whole)
                else:
                    plot_paths[(model_name, n)] = prediction[indices]
    figures = []
    if len(indices):
        plot_spirals(os.path.join(output_dir, FIGURE), data.test,
                     data.test_subsamples, indices, plot_paths)
        figures.append(FIGURE)
    status = ("complete" if all(s == "complete" for s in statuses)
              else ("diverged" if "diverged" in statuses else "cut short"))
    return results.write_results(
        output_dir, paper="neural_ode", experiment=config.experiment, status=status,
        budget={"train_seconds": round(total_seconds, 1),
                "wall_time_s": round(total_seconds, 1),
                "machine": results.machine_description()},
        config=config_lib.to_dict(config), cells=cells,
        deviations=_deviations(config, data), figures=figures,
        extra={
            "tables": [{
                "title": "All models (mean and 95% CI of per-spiral extrapolation "
                         "RMSE; the time-gap RNN has no published row)",
                "header": ["model", "observed", "RMSE mean", "95% CI",
                           "pooled RMSE", "iterations",
                           "s / iteration (tracing included)",
                           "test prediction (s)", "status"],
                "rows": extra_rows}],
            "loops": loops,
            "standardizer": dataclasses.asdict(data.standardizer),
            "plot_test_indices": [int(i) for i in indices],
        })
