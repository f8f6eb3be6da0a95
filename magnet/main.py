"""Runs a magnet-loss experiment: `python -m magnet.main --experiment=classification`.

Experiments (both `magnet.experiments.experiment.MagnetConfig` +
`magnet.experiments.experiment.run`):

* `classification`: magnet vs softmax vs triplet test error (claim 1) and
  iterations to reach triplet's error (claim 2);
* `hierarchy`: training on coarse labels, kNN error on fine labels (claim 3).

Any config field can be set with `--set field=value` (repeatable; tuples as
comma-separated values, `none` for optional fields), e.g.
`--set dataset=cifar10 --set steps=1500 --set losses=magnet,triplet`.
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

import dataclasses  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from common import config as config_lib  # noqa: E402
from common import flags as common_flags  # noqa: E402
from common.data.errors import DatasetError  # noqa: E402
from magnet import serving  # noqa: E402
from magnet.experiments import experiment  # noqa: E402

EXPERIMENT = flags.DEFINE_enum("experiment", "classification",
                               list(experiment.EXPERIMENTS), "Which experiment.")
SET = flags.DEFINE_multi_string(
    "set", [], "Config override field=value (repeatable), e.g. --set steps=1500.")


def parse_value(text: str, annotation: typing.Any) -> typing.Any:
    """Parses `text` into the type of a config field's annotation.

    Handles int, float, str, bool, `X | None` ("none") and `tuple[X, ...]`
    (comma-separated).

    Raises:
        ValueError: the text is not a value of that type.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(text, inner[0])
    if origin is tuple:
        item = args[0] if args else str
        return tuple(parse_value(v.strip(), item) for v in text.split(",")
                     if v.strip())
    if annotation is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    return str(text)


def config_from_flags(name: str, overrides: list[str], data_dir: str,
                      seed: int) -> experiment.MagnetConfig:
    """The experiment's config with `field=value` overrides applied.

    Raises:
        ValueError: an unknown field, a value of the wrong type or an invalid
            config, naming the offending flag.
    """
    cls = experiment.MagnetConfig
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "experiment"]
    kwargs: dict[str, typing.Any] = {"experiment": name, "seed": seed,
                                     "data_dir": data_dir}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set {item!r}: expected field=value with field one "
                             f"of {', '.join(fields)}")
        try:
            kwargs[key] = parse_value(value, hints[key])
        except ValueError as e:
            raise ValueError(f"--set {item!r}: {e}") from None
    return cls(**kwargs)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    name = EXPERIMENT.value
    export_dir = common_flags.EXPORT_DIR.value
    try:
        cfg = config_from_flags(name, SET.value, common_flags.DATA_DIR.value,
                                common_flags.SEED.value)
        if export_dir and "magnet" not in cfg.losses:
            raise ValueError("--export_dir exports the magnet model, but losses "
                             f"{cfg.losses} do not include magnet")
        experiment.check_inputs(cfg)
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join("runs",
                                                                f"magnet_{name}")
        resumed = config_lib.claim_output_dir(run_dir, cfg,
                                              experiment.RESUMABLE_FIELDS)
    except ValueError as e:  # includes OutputDirError and DatasetError
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"[{name}] run directory {run_dir}" + (" (resuming)" if resumed else ""),
          flush=True)
    try:
        record = experiment.run(cfg, run_dir)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"[{name}] {record['status']}; report: "
          f"{os.path.join(run_dir, 'report.md')}", flush=True)
    if export_dir:
        path = serving.export_run(run_dir, export_dir)
        print(f"[{name}] exported SavedModel to {path}", flush=True)


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
