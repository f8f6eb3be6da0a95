"""The magnet main as a subprocess: bad input fails cleanly, a tiny run exports."""

import os
import re
import signal
import subprocess
import sys

import pytest

from common import results
from tests import main_cases

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("REPRO_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))


def _run(args, timeout=240):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "magnet.main", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


BAD_INPUT = [
    (["--set", "stepz=3"], "--stepz does not apply"),
    (["--steps=many"], "--steps=many: expected an integer"),
    (["--set", "losses=magnet,contrastive"], "losses must be distinct names"),
    (["--set", "losses=softmax", "--export_dir=EXPORT"], "--export_dir exports"),
    (["--data_dir=NOWHERE"], "NOWHERE"),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Every BAD_INPUT command line, run in one child (tests/main_cases.py)."""
    roots = [tmp_path_factory.mktemp(f"bad{i}") for i in range(len(BAD_INPUT))]
    cases = [
        [
            f"--output_dir={root / 'run'}",
            f"--set=cache_dir={root / 'cache'}",
            *(
                a.replace("EXPORT", str(root / "export")).replace(
                    "NOWHERE", str(root / "nowhere")
                )
                for a in args
            ),
        ]
        for root, (args, _) in zip(roots, BAD_INPUT, strict=True)
    ]
    return roots, main_cases.run_cases("magnet.main", cases).cases


@pytest.mark.parametrize(
    "case", range(len(BAD_INPUT)), ids=[" ".join(a) for a, _ in BAD_INPUT]
)
def test_bad_input_is_one_error_line_exit_2_and_writes_nothing(bad_input_runs, case):
    roots, outcomes = bad_input_runs
    root, proc = roots[case], outcomes[case]
    message = BAD_INPUT[case][1].replace("NOWHERE", str(root / "nowhere"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert proc.stderr.rstrip().splitlines()[-1] == lines[0]
    assert not (root / "run").exists() and not (root / "export").exists()


@pytest.mark.skipif(
    not os.path.exists(os.path.join(DATA_DIR, "fashion_mnist")),
    reason="Fashion-MNIST not found under $REPRO_DATA_DIR",
)
def test_tiny_fashion_mnist_run_exports_and_refuses_other_settings(tmp_path):
    run_dir = tmp_path / "run"
    tiny = [
        "--set=losses=magnet",
        "--set=max_per_class=16",
        "--set=steps=2",
        "--set=eval_every=2",
        "--set=refresh_every=2",
        "--set=num_clusters=4",
        "--set=examples_per_cluster=2",
        "--set=clusters_per_class=2",
        "--set=embedding_dim=8",
        "--set=warm_start_epochs=0",
        f"--set=cache_dir={tmp_path / 'cache'}",
        f"--data_dir={DATA_DIR}",
    ]
    proc = _run(
        [f"--output_dir={run_dir}", f"--export_dir={tmp_path / 'export'}", *tiny]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[magnet] 2/2" in proc.stdout
    record = results.load_results(str(run_dir))
    assert record["status"] == "complete"
    assert record["config"]["dataset"] == "fashion_mnist"
    assert os.path.exists(tmp_path / "export" / "magnet" / "1" / "saved_model.pb")
    other = _run([f"--output_dir={run_dir}", *tiny, "--set=alpha=2.0"])
    assert other.returncode == 2
    assert "with other settings (alpha)" in other.stderr.splitlines()[-1]


@pytest.mark.skipif(
    not os.path.exists(os.path.join(DATA_DIR, "fashion_mnist")),
    reason="Fashion-MNIST not found under $REPRO_DATA_DIR",
)
def test_kill_9_then_rerun_completes_the_run(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        f"--output_dir={run_dir}",
        "--set=losses=magnet",
        "--set=max_per_class=16",
        "--set=steps=400",
        "--set=eval_every=100",
        "--set=refresh_every=100",
        "--set=log_every=50",
        "--set=num_clusters=4",
        "--set=examples_per_cluster=2",
        "--set=clusters_per_class=2",
        "--set=embedding_dim=8",
        "--set=warm_start_epochs=0",
        f"--set=cache_dir={tmp_path / 'cache'}",
        f"--data_dir={DATA_DIR}",
    ]
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "magnet.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    killed_at = None
    for line in proc.stdout:  # kill once a checkpoint (every eval_every) exists
        # Any progress line past the first checkpoint and before the end: which
        # steps print depends on the machine's speed.
        step = re.match(r"\[magnet\] (\d+)/400", line)
        if step and 100 < int(step.group(1)) < 400:
            proc.send_signal(signal.SIGKILL)
            killed_at = line
            break
    proc.wait()
    assert killed_at is not None, "the run ended before it could be killed"
    assert not os.path.exists(run_dir / results.RESULTS_FILE)
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[magnet] 400/400" in again.stdout
    record = results.load_results(str(run_dir))
    assert record["status"] == "complete"
