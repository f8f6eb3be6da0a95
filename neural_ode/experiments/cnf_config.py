"""The protocol of the continuous vs discrete normalizing-flow experiment.

`CNFConfig` holds every choice of `neural_ode.experiments.cnf_experiment` (targets,
capacities, iterations, learning rates, tolerances, sample counts) with its
source and the deviations its values imply; the paper's own budgets are the
`PAPER_*` constants.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from common import validation
from neural_ode.data import densities
from neural_ode.solver import SolverConfig

PAPER_CNF_ITERATIONS = 10_000
PAPER_NF_ITERATIONS = 500_000
PAPER_TOLERANCE = 1e-5
ML_GEOMETRY = {
    "two_circles": {"radius": 3.0, "factor": 0.5},
    "two_moons": {"scale": 2.0},
}
"""Size of each maximum-likelihood dataset (the noise is `CNFConfig.ml_noise`)."""


def _positive_int(name: str, value: Any) -> None:
    validation.require_int(name, value)
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
