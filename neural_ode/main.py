"""Runs a Neural ODE experiment: `python -m neural_ode.main --experiment=spirals`.

Experiments (each a module with a frozen config dataclass and `run`):

* `mnist`: Table 1 (test error, parameters, measured memory, time, NFE);
* `memory`: peak training-step memory, adjoint vs backprop, as solver steps grow;
* `precision`: Fig. 3 (NFE vs tolerance vs error, forward vs backward NFE, NFE over
  training) from a finished `mnist` run;
* `spirals`: latent ODE vs RNNs on spirals, Table 2 (one seed, one noise level);
* `spiral_seeds`: Table 2 pooled over finished `spirals` runs (seeds, noise levels);
* `cnf`: continuous vs planar normalizing flows, Figs. 4-5;
* `minibatch`: cost of one batched solve vs per-example solves.

Every config field is a flag of the same name (`common.cli`; tuples as
comma-separated values), e.g. `--epochs=1 --models=odenet`; `--helpfull` lists
them with descriptions and defaults, and a flag that does not apply to the chosen
experiment is an error. `--set field=value` (repeatable) does the same.
`--cache_dir` holds prepared datasets (the MNIST tfds build goes to
`<cache_dir>/tfds`). Writes into
`--output_dir` (default `runs/neural_ode_<experiment>`): `config.json`,
checkpoints, TensorBoard logs, `results.json`, `report.md`, figures. Rerunning the
same command resumes.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine, memory  # noqa: E402  (import no TensorFlow)

# Peak-memory cells need an allocator that keeps statistics; TensorFlow reads this
# when it creates its CPU device, so it is set before anything imports TensorFlow.
memory.request_allocator_stats()
# The ODE-Net block's forward+backward is 1.15x faster on TensorFlow's oneDNN
# kernels where TensorFlow leaves them off (AVX2-only CPUs; results/machine/onednn.md).
machine.request_onednn()

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from common import cli, distribute  # noqa: E402
from common import config as config_lib  # noqa: E402
from common import flags as common_flags  # noqa: E402
from common.data.errors import DatasetError  # noqa: E402
from neural_ode.experiments import (  # noqa: E402
    cnf_experiment,
    memory_experiment,
    minibatch_experiment,
    mnist_experiment,
    precision_experiment,
    run_export,
    spiral_experiment,
    spiral_seeds,
)

EXPERIMENTS = {
    "mnist": (mnist_experiment.MNISTConfig, mnist_experiment.run),
    "memory": (memory_experiment.MemoryConfig, memory_experiment.run),
    "precision": (precision_experiment.PrecisionConfig, precision_experiment.run),
    "spirals": (spiral_experiment.SpiralConfig, spiral_experiment.run),
    "spiral_seeds": (spiral_seeds.SpiralSeedsConfig, spiral_seeds.run),
    "cnf": (cnf_experiment.CNFConfig, cnf_experiment.run),
    "minibatch": (minibatch_experiment.MinibatchConfig, minibatch_experiment.run),
}
# --num_iterations (the mains' shared training length) -> the config field it sets
# and the conversion from iterations to that field's unit.
TRAINING_LENGTH = {
    "spirals": ("latent_iterations", None),
    "mnist": ("epochs", lambda cfg, n: n / cfg.steps_per_epoch()),
}
# Experiments whose training takes --distribute.
DISTRIBUTED = ("mnist",)
# Config fields naming a dataset folder, relative to --data_dir.
DATA_FIELDS = {"data_dir": "mnist"}

EXPERIMENT = flags.DEFINE_enum(
    "experiment", "spirals", list(EXPERIMENTS), "Which experiment to run."
)
CONFIG_CLASSES = {name: cls for name, (cls, _) in EXPERIMENTS.items()}
CONFIG_FLAGS = cli.define_config_flags(CONFIG_CLASSES)
SET = flags.DEFINE_multi_string(
    "set", [], "Config override field=value (repeatable); the same as --field=value."
)
CACHE_DIR = flags.DEFINE_string(
    "cache_dir",
    None,
    "Where prepared datasets are cached (default: each config's prepared_dir, "
    "runs/cache/tfds for MNIST); sets prepared_dir to <cache_dir>/tfds.",
)


def config_from_flags(
    name: str,
    overrides: list[str],
    data_dir: str,
    seed: int,
    cache_dir: str | None = None,
):
    """The experiment's config from the config-field flags and `--set` items.

    Raises:
        ValueError: a flag that does not apply to the experiment or a value of the
            wrong type, naming the flag.
    """
    cls, _ = EXPERIMENTS[name]
    fields = cli.field_types(cls)
    base: dict[str, object] = {"seed": seed} if "seed" in fields else {}
    for field_name, sub in DATA_FIELDS.items():
        if field_name in fields:
            base[field_name] = os.path.join(data_dir, sub)
    if cache_dir and "prepared_dir" in fields:
        base["prepared_dir"] = os.path.join(cache_dir, "tfds")
    raw = cli.overrides_from_flags(CONFIG_FLAGS, overrides)
    cfg = cli.config_from_overrides(cls, raw, base=base)
    field, per_iteration = TRAINING_LENGTH.get(name, (None, None))
    return cli.set_training_length(
        cfg,
        cli.flag_value(common_flags.NUM_ITERATIONS),
        field,
        explicit=raw,
        per_iteration=per_iteration,
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    name = EXPERIMENT.value
    export_dir = common_flags.EXPORT_DIR.value
    module = sys.modules[EXPERIMENTS[name][1].__module__]

    def build():
        if common_flags.DISTRIBUTE.value != "none" and name not in DISTRIBUTED:
            raise ValueError(
                f"--distribute applies to the {', '.join(DISTRIBUTED)} experiment "
                f"only, not {name}"
            )
        cfg = config_from_flags(
            name,
            SET.value,
            common_flags.DATA_DIR.value,
            common_flags.SEED.value,
            CACHE_DIR.value,
        )
        if hasattr(module, "check_inputs"):
            module.check_inputs(cfg)
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join(
            "runs", f"neural_ode_{name}"
        )
        return cfg, run_dir, getattr(module, "RESUMABLE_FIELDS", ())

    def run_config(cfg, run_dir):
        if name in DISTRIBUTED:
            strategy = distribute.strategy_from_name(common_flags.DISTRIBUTE.value)
            return EXPERIMENTS[name][1](cfg, run_dir, strategy=strategy)
        return EXPERIMENTS[name][1](cfg, run_dir)

    cli.run_experiment(
        name,
        build,
        run_config,
        claim=config_lib.claim_output_dir,
        export=(lambda run_dir: run_export.export_run(name, run_dir, export_dir))
        if export_dir
        else None,
        expected_errors=(DatasetError,),
    )


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
