"""Named MAML experiment configurations: one frozen dataclass per table.

A config holds every setting of a run. Its defaults are the paper's protocol; the
main overrides fields from flags, and `__post_init__` rejects bad values with a
one-line message naming the flag to fix, before anything is written.
"""

from __future__ import annotations

import dataclasses

from common import validation
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
# The seed of every held-out evaluation task set, fixed across runs and configs
# so that all runs are scored on the same tasks.
EVAL_SEED = 20_170_309
# Candidate fine-tuning step sizes of the sinusoid baselines (pretrained and
# multi-task regressors), tuned on validation tasks: the paper says only that
# the step size was "automatically tuned".
FINE_TUNING_STEP_SIZES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


def _check_ints(
    config,
    positive: tuple[str, ...],
    nonnegative: tuple[str, ...],
    flags: dict[str, str] | None = None,
) -> None:
    """Rejects non-integer, non-positive / negative fields, naming the flag to fix.

    Args:
        config: The dataclass being validated.
        positive: Fields that must be integers > 0.
        nonnegative: Fields that must be integers >= 0.
        flags: Field -> flag name where they differ (e.g. shots -> num_shots).
    """
    flags = flags or {}
    for field in positive + nonnegative:
        value = getattr(config, field)
        low = 1 if field in positive else 0
        if not isinstance(value, int) or value < low:
            flag = flags.get(field, field)
            name = "K (num_shots)" if flag == "num_shots" else field
            bound = "a positive integer" if low else "an integer >= 0"
            raise ValueError(f"{name} must be {bound}, got {value}: fix --{flag}")


def _checked(check, name: str, flag: str | None, value) -> None:
    """Runs a `common.validation` check; its message also names the flag to fix."""
    try:
        check(name, value)
    except ValueError as e:
        raise ValueError(f"{e}: fix --{flag}" if flag else str(e)) from None


def _positive(name: str, flag: str, value: float) -> None:
    _checked(validation.require_positive, name, flag, value)


@dataclasses.dataclass(frozen=True)
class SinusoidConfig:
    """MAML sinusoid regression (section 5.1, Appendix C Table 2, Figs. 2-3).

    Attributes:
        experiment: Name of the configuration: "sinusoid" (the paper's) or
            "sinusoid_official" (the official code's alpha); see
            `SINUSOID_EXPERIMENTS`.
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
    eval_seed: int = EVAL_SEED
    baseline_step_sizes: tuple[float, ...] = FINE_TUNING_STEP_SIZES
    checkpoint_every: int = 5_000
    log_every: int = 2_000
    max_train_minutes: float = 0.0
    jit_compile: bool = True

    def __post_init__(self):
        _check_ints(
            self,
            (
                "num_shots",
                "meta_batch_size",
                "eval_tasks",
                "checkpoint_every",
                "log_every",
            ),
            (
                "num_iterations",
                "pretrain_iterations",
                "num_inner_steps",
                "eval_max_steps",
            ),
        )
        _positive("alpha (inner step size)", "alpha", self.alpha)
        _positive("meta_learning_rate", "meta_learning_rate", self.meta_learning_rate)
        _checked(
            validation.require_all_positive, "eval_shots", "eval_shots", self.eval_shots
        )
        _checked(
            validation.require_non_negative,
            "max_train_minutes",
            "max_train_minutes",
            self.max_train_minutes,
        )
        _checked(
            validation.require_all_positive,
            "baseline_step_sizes",
            None,
            self.baseline_step_sizes,
        )

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
            out.append(
                f"{self.num_iterations:,} of the paper's "
                f"{p['num_iterations']:,} meta-iterations"
            )
        if method == "pretrain" and self.pretrain_iterations != p["num_iterations"]:
            out.append(
                f"{self.pretrain_iterations:,} of the paper's "
                f"{p['num_iterations']:,} training iterations"
            )
        if self.alpha != p["alpha"]:
            note = (
                " (the official code's default)"
                if self.alpha == OFFICIAL_CODE_SINUSOID_ALPHA
                else ""
            )
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


def _sinusoid_configs() -> dict[str, SinusoidConfig]:
    """The two named sinusoid protocols, which differ only in the inner step size.

    - "sinusoid": the paper's protocol. Section 5.1 gives K = 10, one gradient
      step of size alpha = 0.01, meta-batch 25, Adam with beta = 1e-3, a 1-40-40-1
      ReLU network, and App. C Table 2 reports the 5-shot MSE after 1, 5 and 10
      steps.
    - "sinusoid_official": the official code (github.com/cbfinn/maml, main.py).
      Its sinusoid command (`--datasource=sinusoid --metatrain_iterations=70000
      --norm=None --update_batch_size=10`) does not set `--update_lr`, whose
      default is 1e-3, so the official run meta-trains and meta-tests with
      alpha = 0.001. Everything else matches the paper's protocol (meta_batch_size
      25, meta_lr 1e-3, num_updates 1, hidden layers 40-40).
    """
    return {
        "sinusoid": SinusoidConfig(),
        "sinusoid_official": SinusoidConfig(
            experiment="sinusoid_official", alpha=OFFICIAL_CODE_SINUSOID_ALPHA
        ),
    }


SINUSOID_EXPERIMENTS = _sinusoid_configs()


@dataclasses.dataclass(frozen=True)
class SinusoidBaselinesConfig:
    """The App. C Table 2 baselines MAML is compared with, and the oracle.

    Sources: App. C.1 ("multi-task" rows of Table 2): 500 regressors, one per task
    drawn from p(T), each initialised randomly, trained on a large amount of data
    from its task to an error below 0.02 on its sine wave, with no regulariser,
    l2 weight decay, or l2 towards the mean parameter vector of the regressors
    trained so far (weight "as high as possible without significantly deterring
    performance"); their average is fine-tuned on K = 5 points with a tuned step
    size. Section 5.1 and Fig. 3: the oracle receives the true amplitude and
    phase as input; the official code (cbfinn/maml main.py `--baseline=oracle`)
    appends them to x and trains it like the pretrained baseline for 70,000
    iterations (meta-batch 25, K = 10, Adam 1e-3).

    Choices the paper leaves open (named as such in the report): the regressors'
    optimiser (Adam, `regressor_learning_rate`), the fresh inputs per step
    (`regressor_batch_points`), the He-normal initialisation, the error grid (1,000
    even points on [-5, 5]), the weight search (`weight_candidates` on
    `pilot_tasks` separate tasks, see `maml.multitask_baseline.select_weight`) and
    the vectorised order of the "mean" variant (blocks 1, 1, 2, 4, ...).

    Attributes:
        experiment: "sinusoid_baselines".
        seed: Seed of the tasks, initialisations and input streams.
        num_regressors: Regressors per multi-task variant (paper: 500).
        target_mse: Each regressor trains until its grid MSE is below this (0.02).
        regressor_learning_rate: Adam step size of the regressors.
        regressor_batch_points: Fresh inputs per regressor and step.
        regressor_max_steps: Steps after which a regressor stops regardless.
        check_every: Steps between error checks.
        regressor_min_steps: A regressor stops only after this many steps (0: as
            soon as it is below the target); the "long training" variant.
        pilot_tasks: Tasks of the weight search (separate from the 500).
        weight_candidates: Regularisation weights tried, largest first.
        oracle_iterations: Training iterations of the oracle (official: 70,000).
        meta_batch_size: Tasks per oracle iteration (25).
        num_shots: K, points per task for the oracle's training (10).
        meta_learning_rate: Adam step size of the oracle (1e-3).
        hidden_sizes: Hidden widths (40, 40) of every regressor.
        eval_shots: K values evaluated at meta-test.
        eval_max_steps: Largest number of fine-tuning steps evaluated.
        eval_tasks: Held-out tasks per K (the same tasks as the MAML runs).
        eval_seed: Seed of the evaluation tasks (as `SinusoidConfig`).
        baseline_step_sizes: Candidate fine-tuning step sizes, tuned on
            validation tasks (as for the pretrained baseline).
        checkpoint_every: Oracle iterations between checkpoints.
        log_every: Oracle iterations between progress lines.
        max_train_minutes: Time limit of the oracle's training (0 = none).
        jit_compile: Compile the training loops with XLA.
    """

    experiment: str = "sinusoid_baselines"
    seed: int = 0
    num_regressors: int = 500
    target_mse: float = 0.02
    regressor_learning_rate: float = 3e-3
    regressor_batch_points: int = 50
    regressor_max_steps: int = 30_000
    check_every: int = 500
    regressor_min_steps: int = 0
    pilot_tasks: int = 20
    weight_candidates: tuple[float, ...] = (
        1.0,
        0.3,
        0.1,
        0.03,
        0.01,
        0.003,
        0.001,
        3e-4,
        1e-4,
        3e-5,
        1e-5,
    )
    oracle_iterations: int = 70_000
    meta_batch_size: int = 25
    num_shots: int = 10
    meta_learning_rate: float = 1e-3
    hidden_sizes: tuple[int, ...] = (40, 40)
    eval_shots: tuple[int, ...] = (5, 10, 20)
    eval_max_steps: int = 10
    eval_tasks: int = 600
    eval_seed: int = EVAL_SEED
    baseline_step_sizes: tuple[float, ...] = FINE_TUNING_STEP_SIZES
    checkpoint_every: int = 10_000
    log_every: int = 10_000
    max_train_minutes: float = 0.0
    jit_compile: bool = True

    def __post_init__(self):
        _check_ints(
            self,
            (
                "num_regressors",
                "regressor_batch_points",
                "regressor_max_steps",
                "check_every",
                "pilot_tasks",
                "meta_batch_size",
                "num_shots",
                "eval_tasks",
                "checkpoint_every",
                "log_every",
            ),
            ("oracle_iterations", "eval_max_steps", "regressor_min_steps"),
        )
        _positive("target_mse", "target_mse", self.target_mse)
        if self.regressor_min_steps > self.regressor_max_steps:
            raise ValueError(
                "regressor_min_steps must be <= regressor_max_steps: "
                "fix --regressor_min_steps"
            )
        _positive(
            "regressor_learning_rate",
            "regressor_learning_rate",
            self.regressor_learning_rate,
        )
        _positive("meta_learning_rate", "meta_learning_rate", self.meta_learning_rate)
        _checked(
            validation.require_all_positive,
            "weight_candidates",
            None,
            self.weight_candidates,
        )
        _checked(
            validation.require_all_positive,
            "baseline_step_sizes",
            None,
            self.baseline_step_sizes,
        )
        _checked(
            validation.require_non_negative,
            "max_train_minutes",
            "max_train_minutes",
            self.max_train_minutes,
        )

    def network(self) -> networks.MLP:
        """A regressor of the multi-task variants: 1 input, 40-40 ReLU, 1 output."""
        return networks.MLP((1, *self.hidden_sizes, 1))

    def oracle_network(self) -> networks.MLP:
        """The oracle: inputs (x, amplitude, phase), 40-40 ReLU, 1 output."""
        return networks.MLP((3, *self.hidden_sizes, 1))

    def deviations(self, part: str = "multitask") -> list[str]:
        """How this config departs from the paper's protocol, in words.

        Args:
            part: "multitask" or "oracle": whose deviations to list.
        """
        out = []
        if part == "multitask" and self.num_regressors != 500:
            out.append(
                f"{self.num_regressors} of the paper's 500 regressors per "
                "multi-task variant"
            )
        if part == "multitask" and self.target_mse != 0.02:
            out.append(f"regressors trained to MSE < {self.target_mse}; paper: 0.02")
        if (
            part == "oracle"
            and self.oracle_iterations != SINUSOID_PAPER_PROTOCOL["num_iterations"]
        ):
            out.append(
                f"oracle trained {self.oracle_iterations:,} of the official "
                f"{SINUSOID_PAPER_PROTOCOL['num_iterations']:,} iterations"
            )
        return out


# Protocol facts of Table 1 (Finn et al. 2017, section 5.2 and Appendix A.1).
CLASSIFICATION_PAPER_ITERATIONS = 60_000
# Query examples per class at meta-training on MiniImagenet (cbfinn/maml main.py:
# DataGenerator(update_batch_size + 15) "following Ravi & Larochelle"). Omniglot
# uses K (DataGenerator(update_batch_size * 2): K support + K query per class).
MINIIMAGENET_TRAIN_QUERIES = 15
TABLE1 = "Table 1"
# Configurations that follow the official code where it departs from the paper:
# name -> (the paper's configuration of the same cell, the official settings).
# The paper (section 5.2) meta-trains 5-shot MiniImagenet with 2 tasks per
# meta-batch; the official code's usage line for it (cbfinn/maml main.py,
# "5-way 5-shot mini imagenet") passes --meta_batch_size=4.
OFFICIAL_CODE_VARIANTS = {
    "miniimagenet_5w5s_official": ("miniimagenet_5w5s", {"meta_batch_size": 4}),
}
CONTEXT_TABLE = "Appendix C Table 3"


@dataclasses.dataclass(frozen=True)
class ClassificationConfig:
    """One cell of MAML's Table 1: N-way K-shot Omniglot or MiniImagenet.

    Attributes:
        experiment: Name, e.g. "omniglot_5w1s".
        dataset: "omniglot" or "miniimagenet".
        table_row: The row this configuration reproduces.
        table: "Table 1", or "Appendix C Table 3" (the context-vector baseline).
        ways: N.
        shots: K.
        train_queries: Query examples per class at meta-training; 0 = K, the
            official Omniglot protocol (cbfinn/maml main.py builds
            `DataGenerator(update_batch_size * 2)`: K support and K query
            examples per class); MiniImagenet uses 15 (main.py:
            `DataGenerator(update_batch_size + 15)`, "following Ravi &
            Larochelle").
        test_queries: Query examples per class at meta-test (0 = K, as the
            official code).
        num_inner_steps: Inner steps at meta-training.
        test_inner_steps: Inner steps of the reported Table 1 number.
        eval_max_steps: Accuracies are recorded after 0..eval_max_steps steps.
        alpha: Inner step size.
        meta_batch_size: Tasks per meta-iteration.
        meta_learning_rate: Adam step size.
        num_iterations: Meta-iterations (paper 60,000).
        grad_clip: Elementwise meta-gradient clip (MiniImagenet: 10), 0 = none.
        first_order: First-order approximation.
        model: "conv4", "mlp" (the non-convolutional 256-128-64-64 network with
            batch norm, maml.py `construct_fc_weights`) or "context_conv4" (conv4
            with a learned context input that alone is adapted, App. C.1).
        omniglot_pixels: "binary" (the official preprocessing: cbfinn/maml
            `data/omniglot_resized/resize_images.py` resizes the 1-bit PNGs, which
            Pillow does with nearest neighbour) or "antialiased" (grey levels).
        batch_norm: "transductive" (batch statistics of the batch being evaluated,
            also at meta-test: the official code) or "support" (at meta-test the
            query set is normalised with the support set's statistics).
        omniglot_split: "official" (1100/100/423 characters) or
            "background_evaluation".
        rotate: Rotation augmentation (Omniglot).
        seed: Initialisation and task-stream seed.
        eval_seed: Seed of the validation and test tasks.
        eval_tasks: Test tasks (600).
        val_tasks: Validation tasks per evaluation.
        eval_every: Iterations between validation (and test) evaluations (the
            budget checkpoints). The table cell is the final parameters, as the
            official code tests them; the best-on-validation ones are kept and
            reported beside it.
        checkpoint_every: Iterations between checkpoints.
        log_every: Iterations between progress lines.
        max_train_minutes: Stop training after this many minutes (0 = no limit).
        intra_op_threads: TensorFlow's intra-op pool (0: its default, one thread
            per core; `common.threads`). Speed only, not the maths.
        inter_op_threads: TensorFlow's inter-op pool (0: its default). Measured
            alone here (`results/maml_table1_benchmark/threads.md`): 1 and 2 make
            the second-order 5w1s iteration 0.182 -> 0.148 s, so `omniglot_5w1s`
            uses them; 20w1s is faster at the default (0.97 against 1.01 s).
    """

    experiment: str
    dataset: str
    table_row: str = "MAML"
    table: str = TABLE1
    ways: int = 5
    shots: int = 1
    train_queries: int = 0
    test_queries: int = 0
    num_inner_steps: int = 1
    test_inner_steps: int = 3
    eval_max_steps: int = 10
    alpha: float = 0.4
    meta_batch_size: int = 32
    meta_learning_rate: float = 1e-3
    num_iterations: int = CLASSIFICATION_PAPER_ITERATIONS
    grad_clip: float = 0.0
    first_order: bool = False
    model: str = "conv4"
    omniglot_pixels: str = "binary"
    batch_norm: str = "transductive"
    omniglot_split: str = "official"
    rotate: bool = True
    seed: int = 0
    eval_seed: int = EVAL_SEED
    eval_tasks: int = 600
    val_tasks: int = 200
    eval_every: int = 1000
    checkpoint_every: int = 500
    log_every: int = 50
    max_train_minutes: float = 0.0
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def __post_init__(self):
        _check_ints(
            self,
            (
                "ways",
                "shots",
                "meta_batch_size",
                "eval_tasks",
                "val_tasks",
                "eval_every",
                "checkpoint_every",
                "log_every",
            ),
            (
                "num_iterations",
                "num_inner_steps",
                "test_inner_steps",
                "eval_max_steps",
                "test_queries",
                "train_queries",
            ),
            {"shots": "num_shots"},
        )
        _positive("alpha (inner step size)", "alpha", self.alpha)
        _positive("meta_learning_rate", "meta_learning_rate", self.meta_learning_rate)
        if self.dataset not in ("omniglot", "miniimagenet"):
            raise ValueError(f"unknown dataset {self.dataset!r}")
        if self.model not in ("conv4", "mlp", "context_conv4"):
            raise ValueError(f"unknown model {self.model!r}")
        if self.omniglot_pixels not in ("binary", "antialiased"):
            raise ValueError(
                f"omniglot_pixels must be 'binary' or 'antialiased', "
                f"got {self.omniglot_pixels!r}: fix --omniglot_pixels"
            )
        if self.table not in (TABLE1, CONTEXT_TABLE):
            raise ValueError(f"unknown table {self.table!r}")
        if self.batch_norm not in ("transductive", "support"):
            raise ValueError(
                f"batch_norm must be 'transductive' or 'support', got "
                f"{self.batch_norm!r}: fix --batch_norm"
            )
        if self.test_inner_steps > self.eval_max_steps:
            raise ValueError("test_inner_steps must be <= eval_max_steps")
        _checked(
            validation.require_non_negative,
            "max_train_minutes",
            "max_train_minutes",
            self.max_train_minutes,
        )

    @property
    def queries_at_training(self) -> int:
        """Query examples per class of a meta-training task."""
        return self.train_queries or self.shots

    @property
    def queries_at_test(self) -> int:
        return self.test_queries or self.shots

    @property
    def table_column(self) -> str:
        if self.table == CONTEXT_TABLE:  # 5-way Omniglot only
            return f"{self.shots}-shot"
        name = "Omniglot" if self.dataset == "omniglot" else "MiniImagenet"
        return f"{name} {self.ways}-way {self.shots}-shot"

    def network(self, impl: str = "native") -> networks.FunctionalNetwork:
        """The paper's network for this cell (`impl`: Conv4's conv_impl)."""
        if self.model == "mlp":
            return networks.MLP((28 * 28, 256, 128, 64, 64, self.ways), batch_norm=True)
        if self.model == "context_conv4":
            return networks.ContextConv4(
                self.ways,
                1,
                image_size=28,
                channels=1,
                filters=64,
                downsample="stride",
                head="mean",
                head_init="normal",
                conv_impl=impl,
            )
        if self.dataset == "omniglot":
            return networks.Conv4(
                self.ways, 28, 1, 64, "stride", "mean", "normal", conv_impl=impl
            )
        return networks.Conv4(
            self.ways, 84, 3, 32, "maxpool", "flatten", "glorot", conv_impl=impl
        )

    def deviations(self, method: str = "maml") -> list[str]:
        """How this config departs from the paper's protocol, in words."""
        del method
        paper_name = OFFICIAL_CODE_VARIANTS.get(self.experiment, (self.experiment,))[0]
        ref = CLASSIFICATION_EXPERIMENTS.get(paper_name)
        out = []
        if paper_name != self.experiment:
            out.append(
                f"the official code's settings where they differ from {paper_name}"
            )
        if self.num_iterations != CLASSIFICATION_PAPER_ITERATIONS:
            out.append(
                f"{self.num_iterations:,} of the paper's "
                f"{CLASSIFICATION_PAPER_ITERATIONS:,} meta-iterations"
            )
        if ref is not None:
            for field in (
                "alpha",
                "num_inner_steps",
                "test_inner_steps",
                "meta_batch_size",
                "meta_learning_rate",
                "grad_clip",
                "first_order",
                "train_queries",
            ):
                if getattr(self, field) != getattr(ref, field):
                    out.append(
                        f"{field} = {getattr(self, field)}; paper: "
                        f"{getattr(ref, field)}"
                    )
        if self.dataset == "omniglot" and self.omniglot_split == "official":
            out.append(
                "split re-drawn as the official code's (1100/100/423 "
                "characters, fixed seed) but not the identical characters"
            )
        if self.dataset == "omniglot" and self.omniglot_pixels != "binary":
            out.append(
                "anti-aliased grey-level images (official code: binary, "
                "Pillow's nearest-neighbour resize of 1-bit PNGs)"
            )
        if self.batch_norm != "transductive":
            out.append(
                "non-transductive batch norm at meta-test (query normalised "
                "with support statistics)"
            )
        return out


def _classification_configs() -> dict[str, ClassificationConfig]:
    configs = {}
    for ways, shots in ((5, 1), (5, 5), (20, 1), (20, 5)):
        five = ways == 5
        common = dict(
            dataset="omniglot",
            ways=ways,
            shots=shots,
            alpha=0.4 if five else 0.1,
            num_inner_steps=1 if five else 5,
            test_inner_steps=3 if five else 5,
            meta_batch_size=32 if five else 16,
        )
        name = f"omniglot_{ways}w{shots}s"
        # Thread pools measured fastest for this workload (common.threads).
        threads = (
            dict(intra_op_threads=1, inter_op_threads=2)
            if (ways, shots) == (5, 1)
            else {}
        )
        configs[name] = ClassificationConfig(experiment=name, **common, **threads)
        if five:
            name = f"omniglot_nonconv_{ways}w{shots}s"
            configs[name] = ClassificationConfig(
                experiment=name, model="mlp", table_row="MAML, no conv", **common
            )
            # App. C.1: "following the same experimental protocol" as MAML.
            name = f"omniglot_context_{ways}w{shots}s"
            configs[name] = ClassificationConfig(
                experiment=name,
                model="context_conv4",
                table=CONTEXT_TABLE,
                table_row="context vector",
                **common,
            )
    for shots in (1, 5):
        common = dict(
            dataset="miniimagenet",
            ways=5,
            shots=shots,
            alpha=0.01,
            train_queries=MINIIMAGENET_TRAIN_QUERIES,
            num_inner_steps=5,
            test_inner_steps=10,
            meta_batch_size=4 if shots == 1 else 2,
            grad_clip=10.0,
            rotate=False,
        )
        name = f"miniimagenet_5w{shots}s"
        configs[name] = ClassificationConfig(experiment=name, **common)
        configs[name + "_fo"] = ClassificationConfig(
            experiment=name + "_fo",
            first_order=True,
            table_row="MAML, first order approx.",
            **common,
        )
    for name, (paper_name, official) in OFFICIAL_CODE_VARIANTS.items():
        configs[name] = dataclasses.replace(
            configs[paper_name], experiment=name, **official
        )
    return configs


CLASSIFICATION_EXPERIMENTS = _classification_configs()


def make_config(name: str, **overrides):
    """The named experiment's config with `overrides` applied (validated)."""
    if name in SINUSOID_EXPERIMENTS:
        return dataclasses.replace(SINUSOID_EXPERIMENTS[name], **overrides)
    if name in CLASSIFICATION_EXPERIMENTS:
        return dataclasses.replace(CLASSIFICATION_EXPERIMENTS[name], **overrides)
    raise ValueError(
        f"unknown experiment {name!r}: pass --experiment= one of "
        f"{', '.join(all_experiments())}"
    )


def all_experiments() -> list[str]:
    """Every experiment name."""
    return [*SINUSOID_EXPERIMENTS, *CLASSIFICATION_EXPERIMENTS]


# Fields that may change when resuming a run without invalidating it (a budget
# can be extended: training continues from the last checkpoint).
RESUMABLE_FIELDS = (
    "checkpoint_every",
    "log_every",
    "max_train_minutes",
    "num_iterations",
    "pretrain_iterations",
    "eval_every",
    "intra_op_threads",
    "inter_op_threads",
)
