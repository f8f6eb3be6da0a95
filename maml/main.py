"""Runs a MAML reproduction: `python -m maml.main [--experiment=sinusoid]`.

Writes into `--output_dir` (default `runs/<experiment>`): `config.json`,
checkpoints, TensorBoard logs, `results.json`, `report.md` and figures. Rerunning
the same command resumes from the last checkpoint.

Every field of the experiment configs (`maml.experiments.configs.SinusoidConfig`,
`ClassificationConfig`, `maml.experiments.rl_configs.RLConfig`) is a flag of the
same name (`common.cli`), e.g. `--num_iterations=2000 --alpha=0.001
--first_order`; `--helpfull` lists them with descriptions and defaults. A flag
that does not apply to the chosen experiment is an error. `--set field=value`
(and, for RL experiments, the older `--rl_set`) does the same. `--num_shots` is
also accepted for the classification configs' `shots`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402  (imports no TensorFlow)

# Image classification's conv nets run 1.1-2.2x faster on TensorFlow's oneDNN
# kernels where TensorFlow leaves them off (AVX2-only CPUs such as AMD EPYC;
# results/machine/onednn.md); the XLA-compiled sinusoid is unchanged and the
# RL experiments were not timed, so they keep TensorFlow's default. TensorFlow
# reads the choice when it is imported, so the experiment is read from argv here.
_CLASSIFICATION_PREFIXES = ("omniglot_", "miniimagenet_")


def _experiment_in_argv(argv: list[str], default: str = "sinusoid") -> str:
    """The value of --experiment in `argv` (the last one given), else `default`."""
    value = default
    for i, arg in enumerate(argv[1:], start=1):
        if arg.startswith("--experiment="):
            value = arg.split("=", 1)[1]
        elif arg == "--experiment" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


if _experiment_in_argv(sys.argv).startswith(_CLASSIFICATION_PREFIXES):
    machine.request_onednn()

from absl import app, flags, logging  # noqa: E402

from common import cli, distribute  # noqa: E402
from common import config as config_lib  # noqa: E402
from common import flags as common_flags  # noqa: E402
from common.data.errors import DatasetError  # noqa: E402
from maml.experiments import (  # noqa: E402
    classification_experiment,
    configs,
    export,
    rl_configs,
    sinusoid_experiment,
)

ALL_EXPERIMENTS = [*configs.all_experiments(), *rl_configs.RL_EXPERIMENTS]
EXPERIMENT = flags.DEFINE_string(
    "experiment",
    "sinusoid",
    f"Which experiment to run: one of {', '.join(ALL_EXPERIMENTS)}.",
)
CONFIG_CLASSES = {
    "sinusoid": configs.SinusoidConfig,
    "classification": configs.ClassificationConfig,
    "RL": rl_configs.RLConfig,
}
CONFIG_FLAGS = cli.define_config_flags(CONFIG_CLASSES, skip=("experiment", "seed"))
SET = flags.DEFINE_multi_string(
    "set", [], "Config override field=value (repeatable); the same as --field=value."
)
RL_SET = flags.DEFINE_multi_string(
    "rl_set", [], "Older spelling of --set for the RL experiments (repeatable)."
)
EVALUATE_ONLY = flags.DEFINE_boolean(
    "evaluate_only",
    False,
    "Classification: do not train; evaluate the run's latest checkpoint and rewrite "
    "results.json and report.md.",
)
CACHE_DIR = flags.DEFINE_string(
    "cache_dir", "runs/cache", "Where preprocessed datasets are cached."
)


def _config_class(name: str) -> type:
    if name in rl_configs.RL_EXPERIMENTS:
        return rl_configs.RLConfig
    if name in configs.SINUSOID_EXPERIMENTS:
        return configs.SinusoidConfig
    if name in configs.all_experiments():
        return configs.ClassificationConfig
    raise ValueError(
        f"unknown experiment {name!r}: pass --experiment= one of "
        f"{', '.join(ALL_EXPERIMENTS)}"
    )


def config_from_flags():
    """The experiment's config with the config-field flags that were given applied.

    Raises:
        ValueError: unknown experiment, a flag that does not apply to it, or a bad
            value, naming the flag to fix.
    """
    name = EXPERIMENT.value
    cls = _config_class(name)
    raw = cli.overrides_from_flags(CONFIG_FLAGS, [*RL_SET.value, *SET.value])
    iterations = cli.flag_value(common_flags.NUM_ITERATIONS)
    if iterations is not None:
        # The shared training-length flag is this config's own field.
        if "num_iterations" in raw:
            raise ValueError("--num_iterations is given twice (also by --set)")
        raw["num_iterations"] = iterations
    if cls is configs.ClassificationConfig and "num_shots" in raw:
        raw["shots"] = raw.pop("num_shots")
    factory = (
        rl_configs.make_rl_config if cls is rl_configs.RLConfig else configs.make_config
    )
    try:
        return cli.config_from_overrides(
            cls,
            raw,
            base={"seed": common_flags.SEED.value},
            factory=lambda **kw: factory(name, **kw),
        )
    except ValueError as e:
        if cls is configs.ClassificationConfig and "--shots" in str(e):
            raise ValueError(f"{e} (--num_shots)") from None
        raise


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    data_dir = common_flags.DATA_DIR.value
    export_dir = common_flags.EXPORT_DIR.value

    def build():
        cfg = config_from_flags()
        if common_flags.DISTRIBUTE.value != "none" and not isinstance(
            cfg, configs.ClassificationConfig
        ):
            raise ValueError(
                "--distribute applies to the classification experiments only, "
                f"not {cfg.experiment}"
            )
        if isinstance(cfg, rl_configs.RLConfig):
            from maml.experiments import rl_experiment  # noqa: PLC0415

            rl_experiment.check_environment(cfg)
            resumable = rl_configs.RESUMABLE_FIELDS
        else:
            if isinstance(cfg, configs.ClassificationConfig):
                classification_experiment.check_data(cfg, data_dir)
            resumable = configs.RESUMABLE_FIELDS
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join("runs", cfg.experiment)
        return cfg, run_dir, resumable

    def run_config(cfg, run_dir):
        if isinstance(cfg, rl_configs.RLConfig):
            from maml.experiments import rl_experiment  # noqa: PLC0415

            return rl_experiment.run(cfg, run_dir)
        if isinstance(cfg, configs.SinusoidConfig):
            return sinusoid_experiment.run(cfg, run_dir)
        return classification_experiment.run(
            cfg,
            run_dir,
            data_dir,
            CACHE_DIR.value,
            distribute.strategy_from_name(common_flags.DISTRIBUTE.value),
            EVALUATE_ONLY.value,
        )

    def export_run(run_dir):
        if EXPERIMENT.value in rl_configs.RL_EXPERIMENTS:
            from maml.experiments import rl_export  # noqa: PLC0415

            return rl_export.export_run(run_dir, export_dir)
        return export.export_run(run_dir, export_dir)

    cli.run_experiment(
        EXPERIMENT.value,
        build,
        run_config,
        claim=config_lib.claim_output_dir,
        export=export_run if export_dir else None,
        expected_errors=(DatasetError,),
    )


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
