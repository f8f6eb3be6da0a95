"""The command-line convention the three mains share.

* Every field of every experiment config is a flag of the same name
  (`--epochs=2`, `--losses=magnet,triplet`, `--first_order`), generated from the
  frozen config dataclasses and listed by `--helpfull` with the description from
  the class's `Attributes:` docstring section, its type and its default.
* Values are parsed by `parse_value` from the field's annotation: no `eval`.
* Shared flags (`--output_dir`, `--seed`, `--data_dir`, `--cache_dir`,
  `--export_dir`, `--distribute`, `--num_iterations`) are defined once in
  `common.flags`; `--num_iterations`, the training length, is mapped by each
  main to its experiment's own field (`set_training_length`).
* `run_experiment` is the one main skeleton: it claims the run directory (or
  resumes it), runs, prints where the report is, and exports on request; a bad
  flag value or a missing dataset ends the process with a one-line error and exit
  status 2 instead of a traceback.

Library code never imports this module; only the mains do.

Example:
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Demo:
    ...     '''A demo config.
    ...
    ...     Attributes:
    ...         steps: Training steps.
    ...         sizes: Hidden sizes.
    ...     '''
    ...     steps: int = 10
    ...     sizes: tuple[int, ...] = (8,)
    >>> parse_value("3,4", tuple[int, ...])
    (3, 4)
    >>> config_from_overrides(Demo, {"steps": "5", "sizes": "16,16"})
    Demo(steps=5, sizes=(16, 16))
    >>> field_descriptions(Demo)["steps"]
    'Training steps.'
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from absl import flags

from common import threads


def parse_value(text: str, annotation: Any) -> Any:
    """Parses a flag's text into a value of the type `annotation` declares.

    Handles `int`, `float`, `str`, `bool` (true/false/1/0/yes/no), `X | None`
    ("none"), `tuple[X, ...]` (comma-separated; empty text gives `()`) and
    `typing.Literal[...]`.

    Raises:
        ValueError: `text` is not a value of that type.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise ValueError(f"cannot parse a value of type {annotation}")
        return parse_value(text, inner[0])
    if origin is tuple:
        item = args[0] if args else str
        if len(args) == 2 and args[1] is Ellipsis or len(args) <= 1:
            return tuple(
                parse_value(v.strip(), item) for v in text.split(",") if v.strip()
            )
        parts = [v.strip() for v in text.split(",")]
        if len(parts) != len(args):
            raise ValueError(
                f"expected {len(args)} comma-separated values, got {text!r}"
            )
        return tuple(parse_value(p, a) for p, a in zip(parts, args, strict=True))
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, args))}, got {text!r}")
    if annotation is bool:
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"expected true or false, got {text!r}")
        return low in ("true", "1", "yes")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)  # accepts 1e5
        except ValueError:
            value = math.nan
        if not value.is_integer():
            raise ValueError(f"expected an integer, got {text!r}")
        return int(value)
    if annotation is float:
        return float(text)
    if annotation is str or annotation is Any:
        return text
    raise ValueError(f"cannot parse a value of type {annotation}")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config dataclass's fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_descriptions(cls: type) -> dict[str, str]:
    """Field descriptions from the `Attributes:` sections of `cls` and its bases.

    A subclass's description of a field wins over its base class's.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object and klass.__doc__:
            out.update(_attributes_section(inspect.cleandoc(klass.__doc__)))
    return out


def _attributes_section(doc: str) -> dict[str, str]:
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    current = None
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if indent is None:
            indent = width
        if width < indent:
            break
        m = re.match(r"\s*(\w+)(?: \([^)]*\))?: ?(.*)$", line)
        if width == indent and m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is not None:  # tuple[int, ...], int | None
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation)


def define_config_flags(
    configs: Mapping[str, type],
    *,
    skip: Iterable[str] = ("experiment",),
    flag_values: flags.FlagValues = flags.FLAGS,
) -> dict[str, flags.FlagHolder]:
    """Defines a flag for every field of the given config classes.

    A field that several configs share becomes one flag. Boolean fields are absl
    boolean flags (`--first_order`, `--nofirst_order`); all others are string
    flags parsed later with `parse_value` against the chosen config's annotation.
    Every flag defaults to None: unset flags leave the experiment's own default.
    Fields named like an already defined flag (`seed`, `data_dir`, ...) are
    skipped: the main maps those itself.

    Args:
        configs: Experiment name (or group label) -> config dataclass.
        skip: Field names that get no flag.
        flag_values: The registry (tests pass a fresh `flags.FlagValues()`).

    Returns:
        Field name -> flag holder.
    """
    skip = set(skip)
    by_field: dict[str, list[tuple[str, type, Any]]] = {}
    for label, cls in configs.items():
        types_ = field_types(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip or f.name.startswith("_"):
                continue
            by_field.setdefault(f.name, []).append((label, cls, types_[f.name]))
    holders: dict[str, flags.FlagHolder] = {}
    for name, uses in sorted(by_field.items()):
        if name in flag_values:
            continue
        labels = [label for label, _, _ in uses]
        cls = uses[0][1]
        desc = field_descriptions(cls).get(name, "")
        field = next(f for f in dataclasses.fields(cls) if f.name == name)
        default = (
            field.default if field.default is not dataclasses.MISSING else "required"
        )
        scope = "all experiments" if len(labels) == len(configs) else ", ".join(labels)
        help_text = (
            f"{desc} [config field; type {_type_name(uses[0][2])}; "
            f"default {default!r} unless the experiment sets its own; "
            f"applies to {scope}]"
        ).strip()
        if all(t is bool for _, _, t in uses):
            holders[name] = flags.DEFINE_boolean(
                name, None, help_text, flag_values=flag_values
            )
        else:
            holders[name] = flags.DEFINE_string(
                name, None, help_text, flag_values=flag_values
            )
    return holders


def flag_value(holder: flags.FlagHolder) -> Any:
    """The flag's value, or None before absl has parsed the command line."""
    try:
        return holder.value
    except flags.UnparsedFlagAccessError:
        return None


def overrides_from_flags(
    holders: Mapping[str, flags.FlagHolder], set_items: Sequence[str] = ()
) -> dict[str, Any]:
    """Field -> raw value of every config flag given, plus `--set field=value`."""
    raw: dict[str, Any] = {}
    for name, holder in holders.items():
        try:
            value = holder.value
        except flags.UnparsedFlagAccessError:  # called before absl parsed argv
            continue
        if value is not None:
            raw[name] = value
    for item in set_items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected field=value")
        raw[key.strip()] = value
    return raw


def config_from_overrides(
    cls: type,
    raw: Mapping[str, Any],
    base: Mapping[str, Any] | None = None,
    factory: Callable[..., Any] | None = None,
) -> Any:
    """Builds `cls` (or `factory(**kwargs)`) from `base` plus parsed `raw` values.

    Args:
        cls: The config dataclass; its annotations type the values.
        raw: Field -> flag text (or an already typed value, e.g. a boolean flag).
        base: Keyword arguments applied first (seed, data folder, ...).
        factory: Builds the config (default `cls`), e.g. a named-experiment
            factory that fills the experiment's own defaults.

    Raises:
        ValueError: a field `cls` does not have, or a value of the wrong type;
            the message names the flag.
    """
    types_ = field_types(cls)
    kwargs = dict(base or {})
    for key, value in raw.items():
        if key not in types_ or key == "experiment":
            valid = ", ".join(sorted(k for k in types_ if k != "experiment"))
            raise ValueError(
                f"--{key} does not apply to this experiment; its fields are: {valid}"
            )
        if isinstance(value, str):
            try:
                value = parse_value(value, types_[key])
            except ValueError as e:
                raise ValueError(f"--{key}={value}: {e}") from None
        kwargs[key] = value
    return (factory or cls)(**kwargs)


def set_training_length(
    cfg: Any,
    value: str | None,
    field: str | None,
    *,
    explicit: Iterable[str] = (),
    per_iteration: Callable[[Any, int], Any] | None = None,
) -> Any:
    """The config with its training length taken from `--num_iterations`.

    `--num_iterations` is the one name the three mains give the training
    length: optimizer steps (meta-iterations for MAML) of the experiment's main
    training. Each experiment maps it to its own field (`field`), in that
    field's unit (`per_iteration`, e.g. iterations -> epochs).

    Args:
        cfg: The experiment's config (a frozen dataclass).
        value: The flag's text, or None when it was not given.
        field: The config field it sets; None if the experiment has no single
            training length.
        explicit: Fields the command line also set (a clash is an error).
        per_iteration: Converts the iteration count to `field`'s value.

    Returns:
        `cfg`, or a copy with `field` replaced.

    Raises:
        ValueError: not a positive integer, no single training length, or the
            field also given by its own name.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Run:
        ...     steps: int = 10
        >>> set_training_length(Run(), "250", "steps")
        Run(steps=250)
    """
    if value is None:
        return cfg
    name = getattr(cfg, "experiment", type(cfg).__name__)
    if field is None:
        raise ValueError(
            f"--num_iterations does not apply to {name}, which has no single "
            "training length"
        )
    if field != "num_iterations" and field in set(explicit):
        raise ValueError(
            f"--num_iterations and --{field} both set the training length of "
            f"{name}; give one"
        )
    try:
        iterations = parse_value(value, int)
    except ValueError as e:
        raise ValueError(f"--num_iterations={value}: {e}") from None
    if iterations < 1:
        raise ValueError(f"--num_iterations must be >= 1, got {iterations}")
    new = iterations if per_iteration is None else per_iteration(cfg, iterations)
    return dataclasses.replace(cfg, **{field: new})


def fail(message: str) -> typing.NoReturn:
    """Ends a main with a one-line error on stderr and exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run_experiment(
    name: str,
    build: Callable[[], tuple[Any, str, Sequence[str]]],
    run: Callable[[Any, str], Mapping[str, Any]],
    *,
    claim: Callable[[str, Any, Sequence[str]], bool],
    export: Callable[[str], str] | None = None,
    expected_errors: tuple[type[BaseException], ...] = (),
) -> Mapping[str, Any]:
    """The shared main skeleton.

    Args:
        name: Experiment name (for progress lines).
        build: Returns `(config, run directory, resumable fields)`; raises
            `ValueError` for a bad flag value (the message names the flag).
        run: Trains and evaluates; returns the results record (with "status").
        claim: `common.config.claim_output_dir`-like: claims or resumes the run
            directory, returns True if resuming; raises `ValueError` on a
            mismatched config.
        export: If given, exports the finished run; returns the export path.
        expected_errors: Errors of `run` that mean bad input (e.g. a missing
            dataset): reported in one line with exit status 2.

    Returns:
        The results record.
    """
    try:
        cfg, run_dir, resumable = build()
        resumed = claim(run_dir, cfg, resumable)
        # Configs with thread-pool fields choose them; before the run's first op.
        pools = threads.configure(
            getattr(cfg, "intra_op_threads", 0), getattr(cfg, "inter_op_threads", 0)
        )
    except ValueError as e:
        fail(str(e))
    print(
        f"[{name}] run directory {run_dir}"
        + (" (resuming)" if resumed else "")
        + f"; {pools}",
        flush=True,
    )
    try:
        record = run(cfg, run_dir)
    except expected_errors as e:
        fail(str(e))
    print(
        f"[{name}] {record['status']}; report: {os.path.join(run_dir, 'report.md')}",
        flush=True,
    )
    if export is not None:
        path = export(run_dir)
        print(f"[{name}] exported SavedModel to {path}", flush=True)
    return record


def run_export(export: Callable[[], str]) -> None:
    """The shared body of the `export` mains: export, print the path, or fail.

    Args:
        export: Writes the SavedModel version and returns its path; raises
            `FileNotFoundError` (no finished run), `FileExistsError` (version
            taken) or `ValueError` (a bad limit or flag) for bad input.
    """
    try:
        path = export()
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        fail(str(e))
    print(path)
