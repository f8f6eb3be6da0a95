"""The main end to end on a tiny budget: outputs, bad input, kill -9 and resume."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from common import results
from tests import main_cases

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--eval_tasks=50", "--log_every=100", "--checkpoint_every=200"]


def _run(args, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "maml.main", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tiny_run():
    d = tempfile.mkdtemp()
    run_dir = os.path.join(d, "run")
    proc = _run(
        [
            f"--output_dir={run_dir}",
            "--num_iterations=400",
            "--pretrain_iterations=400",
            f"--export_dir={d}/export",
            *TINY,
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d, run_dir, proc


def test_smoke_run_writes_every_output(tiny_run):
    d, run_dir, proc = tiny_run
    for name in (
        "config.json",
        "results.json",
        "report.md",
        "fig2_adapted_curves.png",
        "fig3_learning_curves.png",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "tensorboard", "maml"))
    assert os.path.exists(
        os.path.join(d, "export", "maml_sinusoid", "1", "saved_model.pb")
    )
    record = results.load_results(run_dir)
    assert record["status"] == "complete"
    assert record["budget"]["iterations"] == 400
    cells = {(c["row"], c["column"]) for c in record["cells"]}
    assert cells == {
        (r, c)
        for r in ("MAML (ours)", "pretrain on all tasks")
        for c in ("1 step", "5 steps", "10 steps")
    }
    assert all(c["ours"]["n"] == 50 for c in record["cells"])
    assert any("400 of the paper's 70,000" in dev for dev in record["deviations"])
    assert re.search(r"(it/s|s/it) ETA", proc.stdout)
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["num_iterations"] == 400


def test_rerun_of_finished_run_resumes_and_reproduces(tiny_run):
    _, run_dir, _ = tiny_run
    before = results.load_results(run_dir)
    proc = _run(
        [
            f"--output_dir={run_dir}",
            "--num_iterations=400",
            "--pretrain_iterations=400",
            *TINY,
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = results.load_results(run_dir)
    assert [c["ours"] for c in after["cells"]] == [c["ours"] for c in before["cells"]]


BAD_INPUT = [
    (["--experiment=omniglot_typo"], "unknown experiment 'omniglot_typo'"),
    (["--num_shots=0"], "--num_shots"),
    (["--alpha=-0.1"], "--alpha"),
    (["--alpha=0"], "--alpha"),
    (
        ["--experiment=miniimagenet_5w1s", "--data_dir=/nonexistent"],
        "MiniImagenet not found under /nonexistent/miniimagenet",
    ),
    (["--experiment=omniglot_5w1s", "--data_dir=/nonexistent"], "Omniglot not found"),
    (["--experiment=omniglot_5w1s", "--num_shots=0"], "--num_shots"),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Every BAD_INPUT command line, run in one child (tests/main_cases.py)."""
    root = tmp_path_factory.mktemp("bad_input")
    run_dirs = [str(root / f"case{i}" / "run") for i in range(len(BAD_INPUT))]
    cases = [
        [f"--output_dir={d}", *args]
        for d, (args, _) in zip(run_dirs, BAD_INPUT, strict=True)
    ]
    return run_dirs, main_cases.run_cases("maml.main", cases).cases


@pytest.mark.parametrize(
    "case", range(len(BAD_INPUT)), ids=[" ".join(a) for a, _ in BAD_INPUT]
)
def test_bad_input_is_one_line_and_writes_nothing(bad_input_runs, case):
    run_dirs, outcomes = bad_input_runs
    proc, message = outcomes[case], BAD_INPUT[case][1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not os.path.exists(run_dirs[case])


def test_output_dir_of_another_experiment_is_refused(tiny_run):
    _, run_dir, _ = tiny_run
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    with tempfile.TemporaryDirectory() as d:
        cfg["experiment"] = "omniglot_5w1s"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        proc = _run([f"--output_dir={d}"], timeout=120)
        assert proc.returncode == 2
        assert "holds a run of experiment 'omniglot_5w1s'" in proc.stderr
        assert os.listdir(d) == ["config.json"]


def test_kill_9_then_rerun_equals_uninterrupted_run(tiny_run):
    _, reference_dir, _ = tiny_run
    with tempfile.TemporaryDirectory() as d:
        run_dir = os.path.join(d, "run")
        args = [
            f"--output_dir={run_dir}",
            "--num_iterations=400",
            "--pretrain_iterations=400",
            *TINY,
        ]
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.Popen(
            [sys.executable, "-m", "maml.main", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        killed_at = None
        for line in proc.stdout:  # kill as soon as a checkpoint exists mid-run
            if line.startswith("[maml] 300/400"):
                proc.send_signal(signal.SIGKILL)
                killed_at = line
                break
        proc.wait(timeout=120)
        assert killed_at is not None, "the run ended before it could be killed"
        assert not os.path.exists(os.path.join(run_dir, "results.json"))
        time.sleep(0.1)
        again = _run(args)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "resuming from checkpoint at iteration 200" in again.stdout
        resumed = results.load_results(run_dir)
        reference = results.load_results(reference_dir)
        assert [c["ours"] for c in resumed["cells"]] == [
            c["ours"] for c in reference["cells"]
        ]
        assert resumed["budget"]["sessions"] == 2


DATA_DIR = os.environ.get("REPRO_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))


@pytest.mark.skipif(
    not os.path.exists(os.path.join(DATA_DIR, "omniglot", "images_background.zip")),
    reason="real Omniglot not available (set REPRO_DATA_DIR)",
)
def test_omniglot_smoke_run_writes_the_table1_cell():
    with tempfile.TemporaryDirectory() as d:
        run_dir = os.path.join(d, "run")
        args = [
            f"--output_dir={run_dir}",
            "--experiment=omniglot_5w1s",
            f"--data_dir={DATA_DIR}",
            # The run's shared cache (tests/conftest.py): built once per run.
            f"--cache_dir={os.environ.get('REPRO_CACHE_DIR') or d + '/cache'}",
            "--num_iterations=20",
            "--meta_batch_size=4",
            "--eval_tasks=20",
            "--val_tasks=10",
            "--eval_every=10",
            "--checkpoint_every=10",
            "--log_every=10",
        ]
        proc = _run(args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        record = results.load_results(run_dir)
        cell, table3 = record["cells"]  # App. C Table 3 repeats the 5-way cell
        assert (cell["table"], cell["row"], cell["column"]) == (
            "Table 1",
            "MAML",
            "Omniglot 5-way 1-shot",
        )
        assert (table3["table"], table3["row"], table3["column"]) == (
            "Appendix C Table 3",
            "MAML",
            "1-shot",
        )
        assert cell["details"]["checkpoint"] == "final (iteration 20)"
        assert cell["ours"]["n"] == 20 and 0 <= cell["ours"]["mean"] <= 100
        assert [h["iteration"] for h in record["extra"]["history"]] == [10, 20]
        with open(os.path.join(run_dir, "report.md")) as f:
            report = f.read()
        assert "after 0..10 inner steps" in report
        assert "at each budget checkpoint" in report
        assert os.path.exists(os.path.join(run_dir, "checkpoints", "best"))
        again = _run(args + ["--evaluate_only"])
        assert again.returncode == 0, again.stderr[-3000:]
        assert results.load_results(run_dir)["cells"][0]["ours"] == cell["ours"]
