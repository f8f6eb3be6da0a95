"""`python -m maml.main --experiment=navigation_2d|halfcheetah_dir` end to end on a
tiny budget: outputs, resume, export with `act`, bad input."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from common import results

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--rl_set=hidden=8",
    "--rl_set=num_traj=2",
    "--meta_batch_size=2",
    "--eval_tasks=3",
    "--rl_set=eval_traj=2",
    "--rl_set=context_dim=0",
    "--rl_set=oracle_iterations=0",
    "--rl_set=random_baseline=false",
    "--log_every=1",
    "--checkpoint_every=1",
]


def _run(args, timeout=600):
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
def nav_run():
    d = tempfile.mkdtemp()
    run_dir = os.path.join(d, "run")
    args = [
        "--experiment=navigation_2d",
        f"--output_dir={run_dir}",
        "--rl_set=horizon=6",
        "--num_iterations=1",
        "--pretrain_iterations=1",
        *TINY,
    ]
    proc = _run([*args, f"--export_dir={d}/export"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d, run_dir, args, proc


def test_navigation_smoke_run_writes_every_output(nav_run):
    d, run_dir, _, proc = nav_run
    for name in (
        "config.json",
        "results.json",
        "report.md",
        "fig4_adaptation.png",
        "learning_curves.png",
        "history_maml.json",
    ):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "tensorboard", "maml"))
    record = results.load_results(run_dir)
    assert record["status"] == "complete"
    maml_cells = [c for c in record["cells"] if c["row"] == "MAML (ours)"]
    assert [c["column"] for c in maml_cells] == [
        "0 steps",
        "1 step",
        "2 steps",
        "3 steps",
    ]
    assert all(c["ours"]["n"] == 3 for c in maml_cells)
    assert all(c["table"] == "Appendix C Table 4" for c in record["cells"])
    assert re.search(r"(it/s|s/it) ETA", proc.stdout)
    assert set(record["extra"]["evaluation"]) == {"maml", "pretrained"}


def test_exported_policy_acts_like_the_best_checkpoint(nav_run):
    from maml.experiments import rl_export
    from maml.rl import policy as rl_policy

    d, run_dir, _, _ = nav_run
    loaded = tf.saved_model.load(os.path.join(d, "export", "maml_navigation_2d", "1"))
    obs = np.array([[0.1, -0.2], [0.3, 0.4]], np.float32)
    out = loaded.act(tf.constant(obs))
    _, policy = rl_export.restore_best_policy(run_dir)
    mean, log_std = rl_policy.distribution(
        rl_policy.tile(policy.params(), 1), tf.constant(obs[None]), policy.num_layers
    )
    np.testing.assert_allclose(out["mean"].numpy(), mean.numpy()[0], rtol=1e-6)
    np.testing.assert_allclose(
        out["std"].numpy()[0], np.exp(log_std.numpy()[0, 0]), rtol=1e-6
    )


@pytest.mark.parametrize(
    "observations, rule",
    [
        (np.zeros([2, 3], np.float32), "observations must have shape [batch, 2]"),
        (np.zeros([0, 2], np.float32), "observations must have 1 to 1000 rows"),
        (np.zeros([1001, 2], np.float32), "observations must have 1 to 1000 rows"),
        (np.array([[0.0, np.nan]], np.float32), "observations must be finite"),
    ],
)
def test_exported_policy_rejects_bad_requests_naming_the_input(
    nav_run, observations, rule
):
    d, _, _, _ = nav_run
    loaded = tf.saved_model.load(os.path.join(d, "export", "maml_navigation_2d", "1"))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        loaded.signatures["act"](observations=tf.constant(observations))
    assert rule in str(error.value)


def test_rerun_with_more_iterations_resumes(nav_run):
    _, run_dir, args, _ = nav_run
    args = [a if a != "--num_iterations=1" else "--num_iterations=2" for a in args]
    proc = _run(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(resuming)" in proc.stdout
    assert "[navigation_2d/maml] 2/2" in proc.stdout
    assert "pretrained] 1/1 iterations" in proc.stdout  # not retrained
    record = results.load_results(run_dir)
    assert record["budget"]["maml_iterations"] == "2/2"


def test_bad_input_gives_a_one_line_error():
    proc = _run(
        [
            "--experiment=navigation_2d",
            "--rl_set=nonsense=1",
            f"--output_dir={tempfile.mkdtemp()}/x",
        ]
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: --nonsense does not apply")
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None, reason="MuJoCo not installed"
)
def test_halfcheetah_smoke_run():
    run_dir = os.path.join(tempfile.mkdtemp(), "run")
    proc = _run(
        [
            "--experiment=halfcheetah_dir",
            f"--output_dir={run_dir}",
            "--rl_set=horizon=4",
            "--num_iterations=1",
            *TINY,
            "--rl_set=context_dim=2",  # Table 5's second row (after TINY's 0).
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = results.load_results(run_dir)
    assert all(c["table"] == "Appendix C Table 5" for c in record["cells"])
    rows = {c["row"] for c in record["cells"] if c["ours"] is not None}
    assert rows == {"MAML (ours)", "context vector"}
    assert record["status"] == "complete"


def test_seed_pool_of_a_real_run_reads_its_cells_and_curves(nav_run, tmp_path):
    from maml.experiments import rl_seed_summary

    _, run_dir, _, _ = nav_run
    pooled = rl_seed_summary.pool(str(tmp_path / "pool"), [run_dir, run_dir])
    record = results.load_results(run_dir)
    for mine, one in zip(pooled["cells"], record["cells"], strict=True):
        if one["ours"] is None:
            assert mine["ours"] is None
            continue
        assert mine["ours"]["mean"] == pytest.approx(one["ours"]["mean"])
        assert mine["ours"]["ci95"] == pytest.approx(0.0)  # two identical seeds
    assert (tmp_path / "pool" / rl_seed_summary.POOLED_FIGURE).exists()
