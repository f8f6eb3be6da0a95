"""Runs many command lines of one main in one fresh interpreter (a test helper).

A bad command line ends before any TensorFlow work, but a child process still
pays for importing TensorFlow (5-9 s on the CI machine); with one child per case
the mains' bad-input tests spent most of their time importing. `run_cases`
starts one child with a fresh machine's environment (`tests.bare_env`), imports
the main once and runs each command line through `absl.app.run(main.main)`, as
`python -m <main>` does, after resetting every flag to its default
(`FLAGS.unparse_flags()`). Each case gets the exit status and what the main
printed to stdout and stderr while it ran.

A case may instead ask for the config the command line resolves to
(`config_field`): the flags are parsed and the main's `config_from_flags` is
called, without running anything.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence

from tests.bare_env import REPO, bare_env

_DRIVER = r"""
import contextlib, dataclasses, importlib, inspect, io, json, sys
from absl import app, flags

main = importlib.import_module(sys.argv[1])
FLAGS = flags.FLAGS


def config(argv):
    FLAGS(["prog", *argv])
    if not inspect.signature(main.config_from_flags).parameters:  # MAML's
        return main.config_from_flags()
    return main.config_from_flags(
        FLAGS.experiment, FLAGS.set, FLAGS.data_dir, FLAGS.seed)


results = []
for case in json.load(sys.stdin):
    FLAGS.unparse_flags()
    out, err = io.StringIO(), io.StringIO()
    code, value = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if case.get("config_field"):
                value = getattr(config(case["argv"]), case["config_field"])
            else:
                app.run(main.main, argv=[main.__file__, *case["argv"]])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    results.append({"returncode": code, "stdout": out.getvalue(),
                    "stderr": err.getvalue(), "value": value})
fields = {label: [f.name for f in dataclasses.fields(cls)]
          for label, cls in getattr(main, "CONFIG_CLASSES", {}).items()}
print("\n" + json.dumps({"cases": results, "flags": sorted(FLAGS),
                         "fields": fields}))
"""


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """One command line's outcome, shaped like `subprocess.CompletedProcess`."""

    returncode: int
    stdout: str
    stderr: str
    value: object = None  # The config field asked for, if any.


@dataclasses.dataclass(frozen=True)
class MainRun:
    """All cases of one child, plus the main's flag names and config fields."""

    cases: list[CaseResult]
    flags: list[str]
    fields: dict[str, list[str]]


def run_cases(
    main: str,
    cases: Sequence[Sequence[str]],
    config_fields: Sequence[str | None] | None = None,
    timeout: float = 600,
) -> MainRun:
    """Runs `python -m main ARGV` for each ARGV in `cases` in one child process.

    Args:
        main: The main's module (`<package>.main`).
        cases: Command lines (without the program name).
        config_fields: Per case, None to run the main, or a config field name to
            return that field of the config the command line resolves to.
        timeout: Seconds for the whole child.

    Returns:
        The outcomes in the order of `cases`.
    """
    fields = list(config_fields or [None] * len(cases))
    payload = [
        {"argv": list(argv), "config_field": field}
        for argv, field in zip(cases, fields, strict=True)
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, main],
        input=json.dumps(payload),
        cwd=REPO,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    return MainRun(
        cases=[CaseResult(**c) for c in record["cases"]],
        flags=record["flags"],
        fields=record["fields"],
    )
