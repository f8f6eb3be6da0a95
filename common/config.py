"""The config convention: a frozen dataclass, saved as JSON beside the results.

Mains parse flags into a frozen dataclass and pass it down; library code never reads
flags. The resolved config is written to `<output_dir>/config.json` when a run
starts and is re-read by later commands on the same directory (resume, export,
report regeneration), as pytorch-maml does with its `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from typing import Any, TypeVar

from common import files

CONFIG_FILE = "config.json"

T = TypeVar("T")


class OutputDirError(ValueError):
    """The output directory holds a run that this command must not touch."""


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuilds a config dataclass from `to_dict` output, restoring tuples."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        if isinstance(value, list) and "tuple" in str(hints.get(field.name, "")):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def save_config(config: Any, directory: str) -> str:
    """Writes `config.json` into `directory` atomically; returns its path."""
    path = os.path.join(directory, CONFIG_FILE)
    files.atomic_write_json(path, to_dict(config), sort_keys=True)
    return path


def _read_config_file(directory: str) -> dict[str, Any]:
    """The saved config of a run directory, as written by `save_config`."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {directory} a run directory?")
    with open(path) as f:
        return json.load(f)


def load_config(cls: type[T], directory: str) -> T:
    """Reads `config.json` from a run directory into `cls`."""
    return from_dict(cls, _read_config_file(directory))


def saved_experiment(directory: str) -> str:
    """The `experiment` field of a run directory's `config.json`."""
    return _read_config_file(directory)["experiment"]


def claim_output_dir(
    directory: str, config: Any, resumable_fields: tuple[str, ...] = ()
) -> bool:
    """Makes `directory` the home of a run of `config`, or refuses.

    A fresh (missing or empty) directory is created and the config saved. A
    directory holding a run of the same config is accepted for resuming. Anything
    else raises before a single file is written.

    Args:
        directory: The output directory.
        config: The run's config dataclass; must have an `experiment` field.
        resumable_fields: Fields that may differ from the saved config when
            resuming (e.g. logging intervals); the new values are saved.

    Returns:
        True when an earlier run of this config was found (resume).

    Raises:
        OutputDirError: the directory holds another experiment's run, a run with
            different settings, or unrelated files.
    """
    path = os.path.join(directory, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        new = to_dict(config)
        if saved.get("experiment") != new.get("experiment"):
            raise OutputDirError(
                f"{directory} holds a run of experiment {saved.get('experiment')!r}, "
                f"not {new.get('experiment')!r}: pass another --output_dir"
            )
        differing = sorted(
            k
            for k in set(saved) | set(new)
            if saved.get(k) != new.get(k) and k not in resumable_fields
        )
        if differing:
            raise OutputDirError(
                f"{directory} holds a run of {new.get('experiment')!r} with other "
                f"settings ({', '.join(differing)}): pass another --output_dir"
            )
        save_config(config, directory)
        return True
    if os.path.isdir(directory) and os.listdir(directory):
        raise OutputDirError(
            f"{directory} is not empty and holds no {CONFIG_FILE}: pass an empty or "
            "new --output_dir"
        )
    save_config(config, directory)
    return False
