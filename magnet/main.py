"""Runs a magnet-loss experiment: `python -m magnet.main --experiment=classification`.

Experiments (both `magnet.experiments.experiment.MagnetConfig` +
`magnet.experiments.experiment.run`):

* `classification`: magnet vs softmax vs triplet test error (claim 1) and
  iterations to reach triplet's error (claim 2);
* `hierarchy`: training on coarse labels, kNN error on fine labels (claim 3).

Every config field is a flag of the same name (`common.cli`; tuples as
comma-separated values, `none` for optional fields), e.g.
`--dataset=cifar10 --steps=1500 --losses=magnet,triplet`; `--helpfull` lists them
with their descriptions and defaults. `--set field=value` (repeatable) is the same.
`--data_dir` is the data root (`cifar10/`, `fashion_mnist/`, `omniglot/`) and
`--seed` the seed. Writes into `--output_dir` (default `runs/magnet_<experiment>`):
config.json, checkpoints, TensorBoard logs, results.json, report.md, figures.
Rerunning the same command resumes. `--export_dir` also exports the trained
magnet model for TF Serving (`magnet.serving`: signatures `embed`, `classify`).

Bad input (unknown field, wrong value, invalid config, missing dataset, an output
directory holding another run) prints one `error: ...` line on stderr and exits
with status 2 before anything is written.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402  (imports no TensorFlow)

# A magnet fit step is 2.5x faster (226 -> 91 ms) and a refresh's embedding 2x
# faster on TensorFlow's oneDNN kernels where TensorFlow leaves them off
# (AVX2-only CPUs; results/machine/onednn_magnet.md).
machine.request_onednn()

from absl import app, flags, logging  # noqa: E402

from common import cli, distribute  # noqa: E402
from common import config as config_lib  # noqa: E402
from common import flags as common_flags  # noqa: E402
from common.data.errors import DatasetError  # noqa: E402
from magnet import serving, trainer  # noqa: E402
from magnet.experiments import experiment  # noqa: E402

EXPERIMENT = flags.DEFINE_enum(
    "experiment", "classification", list(experiment.EXPERIMENTS), "Which experiment."
)
CONFIG_CLASSES = {"magnet": experiment.MagnetConfig}
CONFIG_FLAGS = cli.define_config_flags(CONFIG_CLASSES)
SET = flags.DEFINE_multi_string(
    "set",
    [],
    "Config override field=value (repeatable), e.g. --set steps=1500; "
    "the same as --steps=1500.",
)


def config_from_flags(
    name: str, overrides: list[str], data_dir: str, seed: int
) -> experiment.MagnetConfig:
    """The experiment's config from the config-field flags and `--set` items.

    Raises:
        ValueError: an unknown field, a value of the wrong type or an invalid
            config, naming the offending flag.
    """
    raw = cli.overrides_from_flags(CONFIG_FLAGS, overrides)
    cfg = cli.config_from_overrides(
        experiment.MagnetConfig,
        raw,
        base={"experiment": name, "seed": seed, "data_dir": data_dir},
    )
    return cli.set_training_length(
        cfg, cli.flag_value(common_flags.NUM_ITERATIONS), "steps", explicit=raw
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    name = EXPERIMENT.value
    export_dir = common_flags.EXPORT_DIR.value

    def build():
        if common_flags.DISTRIBUTE.value == "multi_worker":
            raise ValueError(trainer.MULTI_WORKER_UNSUPPORTED)
        cfg = config_from_flags(
            name, SET.value, common_flags.DATA_DIR.value, common_flags.SEED.value
        )
        if export_dir and "magnet" not in cfg.losses:
            raise ValueError(
                "--export_dir exports the magnet model, but losses "
                f"{cfg.losses} do not include magnet"
            )
        experiment.check_inputs(cfg)
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join(
            "runs", f"magnet_{name}"
        )
        return cfg, run_dir, experiment.RESUMABLE_FIELDS

    def run_config(cfg, run_dir):
        strategy = distribute.strategy_from_name(common_flags.DISTRIBUTE.value)
        return experiment.run(cfg, run_dir, strategy=strategy)

    cli.run_experiment(
        name,
        build,
        run_config,
        claim=config_lib.claim_output_dir,
        export=(lambda run_dir: serving.export_run(run_dir, export_dir))
        if export_dir
        else None,
        expected_errors=(DatasetError,),
    )


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
