"""Named MAML experiment configurations: one frozen dataclass per table.

A config holds every setting of a run. Its defaults are the paper's protocol; the
main overrides fields from flags, and `__post_init__` rejects bad values with a
one-line message naming the flag to fix, before anything is written.
"""

from __future__ import annotations

import dataclasses
import math

from maml import networks

# Protocol facts of the sinusoid experiment (Finn et al. 2017, section 5.1 and the
# official code), used to label deviations in reports. These are settings, not
# results; published results live in common/published.py.
SINUSOID_PAPER_PROTOCOL = {
    "num_iterations": 70_000,
    "meta_batch_size": 25,
    "num_shots": 10,
    "num_inner_steps": 1,
    "alpha": 0.01,
    "meta_learning_rate": 1e-3,
    "hidden_sizes": (40, 40),
    "first_order": False,
}
OFFICIAL_CODE_SINUSOID_ALPHA = 0.001


def _positive(name: str, flag: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value}: fix --{flag}")


@dataclasses.dataclass(frozen=True)
class SinusoidConfig:
    """MAML sinusoid regression (section 5.1, Appendix C Table 2, Figs. 2-3).

    Attributes:
        experiment: Name of the experiment ("sinusoid").
        seed: Seed of initialisation and of the training task stream.
        num_iterations: Meta-training iterations of MAML.
        pretrain_iterations: Training iterations of the pretrained baseline.
        meta_batch_size: Tasks per meta-iteration.
        num_shots: K, support (and query) points per task at meta-training.
        num_inner_steps: Inner SGD steps at meta-training.
        alpha: Inner step size (paper 0.01; the official code's default 0.001).
        meta_learning_rate: Adam step size beta.
        first_order: First-order approximation of the meta-gradient.
        hidden_sizes: Hidden widths of the ReLU MLP (paper: 40, 40).
        eval_shots: K values evaluated at meta-test.
        eval_max_steps: Largest number of inner steps evaluated.
        eval_tasks: Held-out tasks per K.
        eval_seed: Seed of the evaluation tasks (fixed across runs).
        baseline_step_sizes: Candidate fine-tuning step sizes of the pretrained
            baseline, tuned on validation tasks (the paper: "automatically tuned").
        checkpoint_every: Iterations between checkpoints.
        log_every: Iterations between progress lines and TensorBoard points.
        max_train_minutes: Stop training after this many minutes per phase and
            report the run as cut short (0 = no limit).
        jit_compile: Compile the training loop with XLA.
    """

    experiment: str = "sinusoid"
    seed: int = 0
    num_iterations: int = 70_000
    pretrain_iterations: int = 70_000
    meta_batch_size: int = 25
    num_shots: int = 10
    num_inner_steps: int = 1
    alpha: float = 0.01
    meta_learning_rate: float = 1e-3
    first_order: bool = False
    hidden_sizes: tuple[int, ...] = (40, 40)
    eval_shots: tuple[int, ...] = (5, 10, 20)
    eval_max_steps: int = 10
    eval_tasks: int = 600
    eval_seed: int = 20_170_309
    baseline_step_sizes: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                              0.1)
    checkpoint_every: int = 5_000
    log_every: int = 2_000
    max_train_minutes: float = 0.0
    jit_compile: bool = True

    def __post_init__(self):
        for name, flag in [("K (num_shots)", "num_shots"),
                           ("meta_batch_size", "meta_batch_size"),
                           ("eval_tasks", "eval_tasks"),
                           ("checkpoint_every", "checkpoint_every"),
                           ("log_every", "log_every")]:
            value = getattr(self, flag)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value}: "
                                 f"fix --{flag}")
        for flag in ("num_iterations", "pretrain_iterations", "num_inner_steps",
                     "eval_max_steps"):
            value = getattr(self, flag)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{flag} must be an integer >= 0, got {value}: "
                                 f"fix --{flag}")
        _positive("alpha (inner step size)", "alpha", self.alpha)
        _positive("meta_learning_rate", "meta_learning_rate", self.meta_learning_rate)
        if any(k <= 0 for k in self.eval_shots):
            raise ValueError(f"eval_shots must be positive, got {self.eval_shots}: "
                             "fix --eval_shots")
        if self.max_train_minutes < 0:
            raise ValueError("max_train_minutes must be >= 0: fix --max_train_minutes")
        if any(s <= 0 for s in self.baseline_step_sizes):
            raise ValueError("baseline_step_sizes must be > 0")

    def network(self) -> networks.MLP:
        """The regressor: 1 input, the hidden ReLU layers, 1 output."""
        return networks.MLP((1, *self.hidden_sizes, 1))

    def deviations(self, method: str = "maml") -> list[str]:
        """How this config departs from the paper's protocol, in words.

        Args:
            method: "maml" or "pretrain": which row's deviations to list.
        """
        p = SINUSOID_PAPER_PROTOCOL
        out = []
        if method == "maml" and self.num_iterations != p["num_iterations"]:
            out.append(f"{self.num_iterations:,} of the paper's "
                       f"{p['num_iterations']:,} meta-iterations")
        if method == "pretrain" and self.pretrain_iterations != p["num_iterations"]:
            out.append(f"{self.pretrain_iterations:,} of the paper's "
                       f"{p['num_iterations']:,} training iterations")
        if self.alpha != p["alpha"]:
            note = (" (the official code's default)"
                    if self.alpha == OFFICIAL_CODE_SINUSOID_ALPHA else "")
            out.append(f"alpha = {self.alpha}{note}; paper: {p['alpha']}")
        fields = ["meta_batch_size", "num_shots", "meta_learning_rate", "hidden_sizes"]
        if method == "maml":
            fields.append("num_inner_steps")
        for field in fields:
            if getattr(self, field) != p[field]:
                out.append(f"{field} = {getattr(self, field)}; paper: {p[field]}")
        if method == "maml" and self.first_order:
            out.append("first-order approximation (paper's Table 2: second order)")
        return out


EXPERIMENTS = {"sinusoid": SinusoidConfig}

# Fields that may change when resuming a run without invalidating it (a budget
# can be extended: training continues from the last checkpoint).
RESUMABLE_FIELDS = ("checkpoint_every", "log_every", "max_train_minutes",
                    "num_iterations", "pretrain_iterations")
