"""The three mains share one command-line convention (issue 13).

Each main is loaded in its own process (their flags share absl's global registry,
`tests/main_cases.py`), reports its flags and its config classes' fields, and runs
the command lines of the tests below.
"""

from __future__ import annotations

import pytest

from tests import main_cases
from tests.bare_env import REPO

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

# Per main, the command lines the tests below run, all in one child per main
# (tests/main_cases.py): label -> (argv, config field to report or None). OUT is
# replaced by a fresh output directory.
# --num_iterations=936 as each experiment's own training length (the field is
# the one its "length ..." case in CASES reports).
LENGTHS = [
    ("maml.main", "sinusoid", 936),
    ("neural_ode.main", "spirals", 936),
    # 60,000 images in batches of 128: 468 steps per epoch.
    ("neural_ode.main", "mnist", 2.0),
    ("magnet.main", "classification", 936),
]


def _length(experiment: str, *extra: str) -> list[str]:
    return [f"--experiment={experiment}", "--num_iterations=936", *extra]


CASES: dict[str, dict[str, tuple[list[str], str | None]]] = {
    "maml.main": {
        "length sinusoid": (_length("sinusoid"), "num_iterations"),
        "distribute": (
            ["--experiment=sinusoid", "--distribute=mirrored", "--output_dir=OUT"],
            None,
        ),
    },
    "neural_ode.main": {
        "length spirals": (_length("spirals"), "latent_iterations"),
        "length mnist": (_length("mnist"), "epochs"),
        "distribute": (
            ["--experiment=spirals", "--distribute=mirrored", "--output_dir=OUT"],
            None,
        ),
        "cnf length": (
            ["--experiment=cnf", "--num_iterations=5", "--output_dir=OUT"],
            None,
        ),
    },
    "magnet.main": {
        # magnet's steps must be a multiple of these.
        "length classification": (
            _length("classification", "--checkpoint_every=4", "--eval_every=936"),
            "steps",
        ),
    },
}


@pytest.fixture(scope="module")
def children(tmp_path_factory):
    """main -> (its `main_cases.MainRun`, label -> outcome, label -> output dir)."""
    out = {}
    for main, cases in CASES.items():
        dirs = {label: tmp_path_factory.mktemp("out") / "run" for label in cases}
        argvs = [
            [a.replace("OUT", str(dirs[label])) for a in argv]
            for label, (argv, _) in cases.items()
        ]
        fields = [field for _, field in cases.values()]
        run = main_cases.run_cases(main, argvs, fields)
        out[main] = (run, dict(zip(cases, run.cases, strict=True)), dirs)
    return out


@pytest.fixture(scope="module")
def probes(children):
    return {
        main: {"flags": run.flags, "fields": run.fields}
        for main, (run, _, _) in children.items()
    }


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


@pytest.mark.parametrize("main", ["neural_ode.main", "maml.main"])
def test_distribute_on_an_experiment_without_it_is_a_one_line_error(children, main):
    _, outcomes, dirs = children[main]
    proc = outcomes["distribute"]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--distribute applies to" in proc.stderr
    assert not dirs["distribute"].exists()


@pytest.mark.parametrize("main,experiment,expected", LENGTHS)
def test_num_iterations_sets_each_experiments_training_length(
    children, main, experiment, expected
):
    proc = children[main][1][f"length {experiment}"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.value == expected


def test_num_iterations_where_no_single_length_is_a_one_line_error(children):
    _, outcomes, dirs = children["neural_ode.main"]
    proc = outcomes["cnf length"]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--num_iterations does not apply to cnf" in proc.stderr
    assert not dirs["cnf length"].exists()
