"""`python -m neural_ode.main` end to end: flags, bad input, kill -9 and resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from common import results
from neural_ode import main
from neural_ode.experiments import cnf_experiment, mnist_experiment, spiral_experiment
from tests import main_cases

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "neural_ode.main", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_set_overrides_parse_to_the_field_types():
    cfg = main.config_from_flags(
        "mnist",
        [
            "epochs=0.5",
            "models=odenet,rknet",
            "max_train_minutes=none",
            "augment=false",
        ],
        "/data",
        3,
    )
    assert isinstance(cfg, mnist_experiment.MNISTConfig)
    assert (cfg.epochs, cfg.models, cfg.max_train_minutes, cfg.augment, cfg.seed) == (
        0.5,
        ("odenet", "rknet"),
        None,
        False,
        3,
    )
    assert cfg.data_dir == os.path.join("/data", "mnist")
    spirals = main.config_from_flags("spirals", ["num_observed=30,50"], "/d", 0)
    assert isinstance(spirals, spiral_experiment.SpiralConfig)
    assert spirals.num_observed == (30, 50)
    cnf = main.config_from_flags("cnf", [], "/d", 0)
    assert isinstance(cnf, cnf_experiment.CNFConfig)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["nonsense=1"], "--nonsense does not apply"),
        (["epochs"], "expected field=value"),
        (["epochs=abc"], "epochs=abc"),
        (["augment=maybe"], "true or false"),
    ],
)
def test_bad_overrides_raise_naming_the_flag(overrides, message):
    with pytest.raises(ValueError, match=message):
        main.config_from_flags("mnist", overrides, "/d", 0)


BAD_INPUT = [
    (["--experiment=mnist", "--data_dir=/nonexistent"], "not found"),
    (["--experiment=mnist", "--set", "epochs=-1"], "epochs must be > 0"),
    (
        ["--experiment=precision", "--set", "source_dir=/nonexistent"],
        "no ODE-Net checkpoint",
    ),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Every BAD_INPUT command line, run in one child (tests/main_cases.py)."""
    outs = [tmp_path_factory.mktemp(f"bad{i}") / "run" for i in range(len(BAD_INPUT))]
    cases = [
        [f"--output_dir={out}", *args]
        for out, (args, _) in zip(outs, BAD_INPUT, strict=True)
    ]
    return outs, main_cases.run_cases("neural_ode.main", cases).cases


@pytest.mark.parametrize(
    "case", range(len(BAD_INPUT)), ids=[" ".join(a) for a, _ in BAD_INPUT]
)
def test_bad_input_is_one_line_on_stderr_exit_2_and_writes_nothing(
    bad_input_runs, case
):
    outs, outcomes = bad_input_runs
    proc, message = outcomes[case], BAD_INPUT[case][1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0]
    assert not outs[case].exists()


def test_kill_9_then_rerun_completes_the_run(tmp_path):
    out = str(tmp_path / "run")
    args = [
        f"--output_dir={out}",
        "--experiment=spirals",
        "--set",
        "num_spirals=20",
        "--set",
        "num_observed=30",
        "--set",
        "models=rnn",
        "--set",
        "rnn_iterations=400",
        "--set",
        "log_every=50",
        "--set",
        "checkpoint_every=100",
        "--set",
        "num_plot=1",
    ]
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "neural_ode.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    killed_at = None
    for line in proc.stdout:  # kill once a checkpoint exists mid-run
        if "/400" in line and ("200/400" in line or "250/400" in line):
            proc.send_signal(signal.SIGKILL)
            killed_at = line
            break
    proc.wait()
    assert killed_at is not None, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(out, results.RESULTS_FILE))
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(resuming)" in again.stdout
    assert re.search(r"(it/s|s/it) ETA", again.stdout)
    record = results.load_results(out)
    assert record["status"] == "complete"
    budget = [c["budget"] for c in record["cells"] if c.get("budget")]
    assert budget and all(b["sessions"] == 2 for b in budget)
    assert os.listdir(os.path.join(out, "tensorboard"))
