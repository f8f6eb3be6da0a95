"""The three mains share one command-line convention (issue 13).

Each main is loaded in its own process (their flags share absl's global registry)
and reports its flags and its config classes' fields.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bare_env import REPO, bare_env

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

MAINS = ["maml.main", "neural_ode.main", "magnet.main"]
SHARED = {
    "output_dir",
    "seed",
    "data_dir",
    "export_dir",
    "cache_dir",
    "set",
    "distribute",
    "num_iterations",
}

_PROBE = """
import dataclasses, importlib, json, sys
from absl import flags
main = importlib.import_module(sys.argv[1])
fields = {label: [f.name for f in dataclasses.fields(cls)]
          for label, cls in main.CONFIG_CLASSES.items()}
print(json.dumps({"flags": sorted(flags.FLAGS), "fields": fields}))
"""


def _python(*args: str) -> subprocess.CompletedProcess:
    """`python *args` in the repository with a fresh machine's environment."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def probes():
    out = {}
    for main in MAINS:
        proc = _python("-c", _PROBE, main)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[main] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("main", MAINS)
def test_every_config_field_is_a_flag(probes, main):
    flags_ = set(probes[main]["flags"])
    missing = {
        f"{label}.{name}"
        for label, names in probes[main]["fields"].items()
        for name in names
        if name != "experiment" and name not in flags_
    }
    assert not missing, f"{main}: config fields without a flag: {sorted(missing)}"


def test_the_mains_share_the_flag_names_for_shared_things(probes):
    for main in MAINS:
        absent = SHARED - set(probes[main]["flags"])
        assert not absent, f"{main} lacks {sorted(absent)}"


def test_no_main_parses_values_with_eval():
    for main in MAINS:
        path = f"{REPO}/{main.replace('.', '/')}.py"
        with open(path) as f:
            assert "eval(" not in f.read(), path


@pytest.mark.parametrize(
    "argv",
    [
        ["neural_ode.main", "--experiment=spirals"],
        ["maml.main", "--experiment=sinusoid"],
    ],
)
def test_distribute_on_an_experiment_without_it_is_a_one_line_error(argv, tmp_path):
    main, *rest = argv
    proc = _python(
        "-m", main, *rest, "--distribute=mirrored", f"--output_dir={tmp_path / 'run'}"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--distribute applies to" in proc.stderr
    assert not (tmp_path / "run").exists()


_LENGTH_PROBE = """
import importlib, json, sys
from absl import flags
main = importlib.import_module(sys.argv[1])
flags.FLAGS(["prog", *sys.argv[3:]])
name = flags.FLAGS.experiment
if sys.argv[1] == "maml.main":
    cfg = main.config_from_flags()
else:
    cfg = main.config_from_flags(name, [], "/d", 0)
print(json.dumps(getattr(cfg, sys.argv[2])))
"""


@pytest.mark.parametrize(
    "main,experiment,field,expected",
    [
        ("maml.main", "sinusoid", "num_iterations", 936),
        ("neural_ode.main", "spirals", "latent_iterations", 936),
        # 60,000 images in batches of 128: 468 steps per epoch.
        ("neural_ode.main", "mnist", "epochs", 2.0),
        ("magnet.main", "classification", "steps", 936),
    ],
)
def test_num_iterations_sets_each_experiments_training_length(
    main, experiment, field, expected
):
    argv = [f"--experiment={experiment}", "--num_iterations=936"]
    if main == "magnet.main":  # steps must be a multiple of these
        argv += ["--checkpoint_every=4", "--eval_every=936"]
    proc = _python("-c", _LENGTH_PROBE, main, field, *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def test_num_iterations_where_no_single_length_is_a_one_line_error(tmp_path):
    proc = _python(
        "-m",
        "neural_ode.main",
        "--experiment=cnf",
        "--num_iterations=5",
        f"--output_dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--num_iterations does not apply to cnf" in proc.stderr
