"""Command flow of the RL experiments, called by `maml.main` with parsed values.

Takes plain values (no flags): builds the config, claims the run directory, runs
or resumes, optionally exports, and turns bad input into a one-line error.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from common import config as config_lib
from maml.experiments import rl_configs


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["key=value", ...]` into typed `RLConfig` field values.

    Raises:
        ValueError: unknown field or unparsable value.
    """
    hints = typing.get_type_hints(rl_configs.RLConfig)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in hints:
            raise ValueError(f"--rl_set {item!r}: expected key=value with key one of "
                             f"{', '.join(hints)}")
        hint = str(hints[key])
        try:
            if "tuple" in hint:
                kind = float if "float" in hint else int
                out[key] = tuple(kind(v) for v in text.split(",") if v)
            elif hint.endswith("bool") or hints[key] is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1")
            elif hints[key] is int:
                out[key] = int(text)
            elif hints[key] is float:
                out[key] = float(text)
            else:
                out[key] = text
        except ValueError as e:
            raise ValueError(f"--rl_set {item!r}: bad value for {key} ({hint})") from e
    return out


def run(name: str, overrides: Mapping[str, Any], rl_set: Sequence[str], seed: int,
        output_dir: str | None, export_dir: str | None) -> int:
    """Runs one RL experiment; returns the process exit code."""
    fields = {f.name for f in dataclasses.fields(rl_configs.RLConfig)}
    try:
        kwargs = {k: v for k, v in overrides.items() if k in fields and v is not None}
        kwargs.update(parse_overrides(rl_set))
        kwargs["seed"] = seed
        cfg = rl_configs.make_rl_config(name, **kwargs)
        from maml.experiments import rl_experiment  # noqa: PLC0415 - imports TensorFlow

        rl_experiment.check_environment(cfg)
        run_dir = output_dir or os.path.join("runs", cfg.experiment)
        resumed = config_lib.claim_output_dir(run_dir, cfg,
                                              rl_configs.RESUMABLE_FIELDS)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[{cfg.experiment}] run directory {run_dir}"
          + (" (resuming)" if resumed else ""), flush=True)
    record = rl_experiment.run(cfg, run_dir)
    print(f"[{cfg.experiment}] {record['status']}; report: "
          f"{os.path.join(run_dir, 'report.md')}", flush=True)
    if export_dir:
        from maml.experiments import rl_export  # noqa: PLC0415

        path = rl_export.export_run(run_dir, export_dir)
        print(f"[{cfg.experiment}] exported SavedModel to {path}", flush=True)
    return 0
