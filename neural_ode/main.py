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

Any config field can be set with `--set field=value` (repeatable; tuples as
comma-separated values), e.g. `--set epochs=1 --set models=odenet`. Writes into
`--output_dir` (default `runs/neural_ode_<experiment>`): `config.json`,
checkpoints, TensorBoard logs, `results.json`, `report.md`, figures. Rerunning the
same command resumes.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import memory  # noqa: E402  (imports no TensorFlow)

# Peak-memory cells need an allocator that keeps statistics; TensorFlow reads this
# when it creates its CPU device, so it is set before anything imports TensorFlow.
memory.request_allocator_stats()

import dataclasses  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402

from absl import app, flags, logging  # noqa: E402

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
# Config fields naming a dataset folder, relative to --data_dir.
DATA_FIELDS = {"data_dir": "mnist"}

EXPERIMENT = flags.DEFINE_enum(
    "experiment", "spirals", list(EXPERIMENTS), "Which experiment to run."
)
SET = flags.DEFINE_multi_string(
    "set", [], "Config override field=value (repeatable), e.g. --set epochs=2."
)


def _convert(value: str, annotation: typing.Any) -> typing.Any:
    """Parses a flag string into the type a dataclass field declares."""
    hint = (
        annotation
        if not isinstance(annotation, str)
        else eval(  # noqa: S307
            annotation,
            {
                "float": float,
                "int": int,
                "str": str,
                "bool": bool,
                "tuple": tuple,
                "None": None,
            },
        )
    )
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value.lower() == "none" and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        item = args[0] if args else str
        return tuple(_convert(v.strip(), item) for v in value.split(",") if v.strip())
    if hint is bool:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true/false, got {value!r}")
        return value.lower() in ("true", "1")
    return hint(value)


def config_from_flags(name: str, overrides: list[str], data_dir: str, seed: int):
    """The experiment's config with `field=value` overrides applied.

    Raises:
        ValueError: an unknown field or a value of the wrong type, naming the flag.
    """
    cls, _ = EXPERIMENTS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, typing.Any] = {"seed": seed} if "seed" in fields else {}
    for field_name, sub in DATA_FIELDS.items():
        if field_name in fields:
            kwargs[field_name] = os.path.join(data_dir, sub)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields or key == "experiment":
            raise ValueError(
                f"--set {item!r}: expected field=value with field one of "
                f"{', '.join(f for f in fields if f != 'experiment')}"
            )
        try:
            kwargs[key] = _convert(value, hints[key])
        except (ValueError, StopIteration) as e:
            raise ValueError(f"--set {item!r}: {e}") from None
    return cls(**kwargs)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    name = EXPERIMENT.value
    try:
        cfg = config_from_flags(
            name, SET.value, common_flags.DATA_DIR.value, common_flags.SEED.value
        )
        module = sys.modules[EXPERIMENTS[name][1].__module__]
        if hasattr(module, "check_inputs"):
            module.check_inputs(cfg)
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join(
            "runs", f"neural_ode_{name}"
        )
        resumed = config_lib.claim_output_dir(
            run_dir, cfg, getattr(module, "RESUMABLE_FIELDS", ())
        )
    except ValueError as e:  # includes OutputDirError and DatasetError
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(
        f"[{name}] run directory {run_dir}" + (" (resuming)" if resumed else ""),
        flush=True,
    )
    try:
        record = EXPERIMENTS[name][1](cfg, run_dir)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(
        f"[{name}] {record['status']}; report: {os.path.join(run_dir, 'report.md')}",
        flush=True,
    )
    if common_flags.EXPORT_DIR.value:
        path = run_export.export_run(name, run_dir, common_flags.EXPORT_DIR.value)
        print(f"[{name}] exported SavedModel to {path}", flush=True)


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
