"""Table 1 / Fig. 3 protocol fixes: scaled decay, NFE-matched RK-Net, norms, labels."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from common import results
from neural_ode import mnist_models
from neural_ode.experiments import (
    memory_experiment,
    mnist_experiment,
    precision_experiment,
)
from tests.neural_ode_fixtures import write_tiny_mnist

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy


def test_decay_points_scale_with_the_budget_at_the_authors_fractions():
    # torchdiffeq examples/odenet_mnist.py: boundaries 60, 100, 140 of 160 epochs.
    full = mnist_experiment.MNISTConfig(epochs=160)
    assert full.decay_boundaries() == (60, 100, 140)
    assert mnist_experiment.MNISTConfig(epochs=8).decay_boundaries() == (3, 5, 7)
    assert mnist_experiment.MNISTConfig(epochs=16).decay_boundaries() == (6, 10, 14)
    explicit = mnist_experiment.MNISTConfig(epochs=8, decay_epochs=(1, 2))
    assert explicit.decay_boundaries() == (1, 2)


def test_an_eight_epoch_schedule_anneals_three_times():
    cfg = mnist_experiment.MNISTConfig(epochs=8, learning_rate=0.1)
    opt = mnist_experiment.make_optimizer(cfg, steps_per_epoch=10)
    schedule = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    steps = (0, 30, 31, 50, 51, 70, 71, 79)
    expected = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6)


def test_paper_adjoint_norm_is_the_default_and_reaches_the_solver():
    cfg = mnist_experiment.MNISTConfig()
    assert cfg.adjoint_norm == "full" and cfg.solver().adjoint_norm == "full"
    model = mnist_models.build_model("odenet", cfg.solver())
    assert mnist_models.ode_block_of(model).solver.adjoint_norm == "full"
    with pytest.raises(ValueError):
        mnist_experiment.MNISTConfig(adjoint_norm="l2")


def _write_log(run_dir, rows):
    os.makedirs(os.path.join(run_dir, "odenet"), exist_ok=True)
    with open(os.path.join(run_dir, "odenet", mnist_experiment.NFE_LOG), "w") as f:
        json.dump(rows, f)


def test_rk_steps_match_the_odenet_mean_forward_nfe(tmp_path):
    run = str(tmp_path)
    # Steps 1-4, step 2 logged twice (a resume): its last entry counts once.
    _write_log(run, [[1, 20, 10], [2, 99, 50], [2, 26, 13], [3, 20, 10], [4, 22, 11]])
    match = mnist_experiment.matched_rk_steps(run, odenet_steps=4)
    assert match["odenet_mean_forward_nfe"] == pytest.approx(22.0)
    assert match["rk_steps"] == 6  # 22 / 4 = 5.5, rounded up: 24 evaluations
    with pytest.raises(ValueError, match="logs 4 of the ODE-Net's 5 steps"):
        mnist_experiment.matched_rk_steps(run, odenet_steps=5)


def test_odenet_trains_before_an_nfe_matched_rknet():
    cfg = mnist_experiment.MNISTConfig(models=("resnet", "rknet", "odenet"))
    assert mnist_experiment.training_order(cfg) == ("resnet", "odenet", "rknet")
    fixed = mnist_experiment.MNISTConfig(models=("rknet", "odenet"), rk_steps=5)
    assert mnist_experiment.training_order(fixed) == ("rknet", "odenet")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Table 1 at 2 epochs of 3 steps (48 images, batch 16); 16 test images."""
    root = tmp_path_factory.mktemp("mnist")
    data = write_tiny_mnist(str(root / "mnist"), train=48, test=16)
    out = str(root / "run")
    cfg = mnist_experiment.MNISTConfig(
        models=("mlp", "rknet", "odenet"),
        epochs=2,
        batch_size=16,
        data_dir=data,
        reader="idx",
        log_every=1,
        checkpoint_every=2,
        eval_batch_size=8,
        rtol=1e-2,
        atol=1e-2,
    )
    return out, mnist_experiment.run(cfg, out), cfg


def test_tiny_run_writes_table1_cells_and_resumes_without_retraining(tiny_run):
    out, record, cfg = tiny_run
    assert record["status"] == "complete"
    cells = {(c["row"], c["column"]): c for c in record["cells"]}
    assert set(cells) == {
        (r, col)
        for r in ("1-Layer MLP", "RK-Net", "ODE-Net")
        for col in ("Test Error", "# Params")
    }
    assert cells[("ODE-Net", "Test Error")]["budget"]["steps"] == 6  # 2 epochs x 3
    assert cells[("ODE-Net", "Test Error")]["ours"]["n"] == 16
    assert os.path.exists(os.path.join(out, "tensorboard", "odenet"))
    with open(os.path.join(out, "odenet", mnist_experiment.NFE_LOG)) as f:
        log = json.load(f)
    assert [row[0] for row in log] == list(range(1, 7))
    assert all(fwd > 0 and bwd > 0 for _, fwd, bwd in log)
    # The NFE of the last training step comes from the log (the block's
    # counters hold the evaluation's last solve).
    details = cells[("ODE-Net", "Test Error")]["details"]
    assert details["forward NFE (last step)"] == log[-1][1]
    assert details["backward NFE (last step)"] == log[-1][2]
    assert "2 of 160 epochs" in " ".join(
        cells[("ODE-Net", "Test Error")]["deviations"]
    ).replace(".00", "")
    # A rerun restores the finished checkpoints: no extra training session.
    again = mnist_experiment.run(cfg, out)
    budget = {
        c["row"]: c["budget"] for c in again["cells"] if c["column"] == "Test Error"
    }
    assert budget["ODE-Net"]["sessions"] == 1 and budget["ODE-Net"]["steps"] == 6
    assert results.load_results(out)["status"] == "complete"


def test_an_invocation_for_one_model_still_reports_every_evaluated_model(tiny_run):
    out, record, cfg = tiny_run
    first = {(c["row"], c["column"]): c["ours"] for c in record["cells"]}
    again = mnist_experiment.run(dataclasses.replace(cfg, models=("mlp",)), out)
    # The RK-Net and ODE-Net rows come from their stored evaluations, unchanged.
    assert {(c["row"], c["column"]): c["ours"] for c in again["cells"]} == first
    costs = again["extra"]["tables"][0]["rows"]
    assert [row[0] for row in costs] == ["1-Layer MLP", "RK-Net", "ODE-Net"]
    assert any(
        "earlier invocation" in d and "RK-Net, ODE-Net" in d
        for d in again["deviations"]
    )
    assert any("ODE-Net: dopri5" in d for d in again["deviations"])
    # The report on disk is the same complete table.
    assert len(results.load_results(out)["cells"]) == 6


def test_a_model_trained_without_a_memory_record_is_probed_and_left_unchanged(
    tiny_run,
):
    out, first, cfg = tiny_run
    memory_path = os.path.join(out, "mlp", mnist_experiment.STEP_MEMORY_FILE)
    with open(memory_path) as f:
        assert json.load(f)["after_step"] == 6  # measured while training
    os.remove(memory_path)
    record = mnist_experiment.run(dataclasses.replace(cfg, models=("mlp",)), out)
    with open(memory_path) as f:
        probed = json.load(f)
    # Either a measurement or the allocator's reason, never neither.
    assert (probed["peak_step_memory_mb"] is None) != (
        probed["memory_unmeasured"] is None
    )
    if probed["peak_step_memory_mb"] is not None:
        assert probed["peak_step_memory_mb"] > 0

    # The probe's two steps are undone before the evaluation that follows it:
    # the same test error and budget as when the model was trained.
    def mlp_error(rec):
        (cell,) = [
            c
            for c in rec["cells"]
            if (c["row"], c["column"]) == ("1-Layer MLP", "Test Error")
        ]
        return cell["ours"], cell["budget"]["steps"]

    assert mlp_error(record) == mlp_error(first)


def test_probe_step_memory_restores_every_variable():
    v = tf.Variable([1.0, 2.0])
    it = tf.Variable(7, dtype=tf.int64)

    def train_step(x, y, step):
        v.assign_add(tf.reduce_sum(x) * tf.ones(2))
        it.assign_add(1)

    peak, reason = mnist_experiment.probe_step_memory(
        train_step,
        [v, it],
        lambda step: np.array([step % 3]),
        np.ones((3, 2), np.float32),
        np.zeros(3, np.int64),
        step=4,
    )
    assert (peak is None) != (reason is None)
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    assert int(it.numpy()) == 7


def test_tiny_run_labels_the_mlp_and_matches_the_rknet(tiny_run):
    out, record, _ = tiny_run
    cells = {(c["row"], c["column"]): c for c in record["cells"]}
    mlp = cells[("1-Layer MLP", "Test Error")]
    assert "stand-in" in " ".join(mlp["deviations"]) and "stand-in" in mlp["verdict"]
    with open(os.path.join(out, "odenet", mnist_experiment.NFE_LOG)) as f:
        forward = [row[1] for row in json.load(f)]
    with open(os.path.join(out, "rknet", mnist_experiment.RK_STEPS_FILE)) as f:
        stored = json.load(f)
    assert stored["rk_steps"] == max(1, int(np.floor(np.mean(forward) / 4 + 0.5)))
    model = mnist_experiment.restore_model(out, "rknet")
    assert (
        mnist_models.ode_block_of(model).solver.steps_per_interval == stored["rk_steps"]
    )
    rk_dev = " ".join(cells[("RK-Net", "Test Error")]["deviations"])
    assert f"RK4 with {stored['rk_steps']} steps" in rk_dev
    assert any(
        # The authors' 60/100/140 of 160 epochs, as fractions of 2 epochs.
        "divided by 10 after epochs 0.75/1.25/1.75 of 2" in d
        for d in record["deviations"]
    )


def test_precision_measures_both_adjoint_norms(tiny_run, tmp_path):
    source, _, _ = tiny_run
    cfg = precision_experiment.PrecisionConfig(
        source_dir=source,
        tolerances=(1e-2,),
        test_examples=16,
        batch_size=16,
        norm_batches=1,
        norm_batch_size=8,
    )
    record = precision_experiment.run(cfg, str(tmp_path / "precision"))
    by_norm = record["extra"]["nfe_by_adjoint_norm"]
    assert set(by_norm) == {"full", "seminorm"}
    # The forward solve does not depend on the backward error control.
    assert by_norm["full"]["forward_nfe"] == by_norm["seminorm"]["forward_nfe"]
    for entry in by_norm.values():
        assert all(b > 0 for b in entry["backward_nfe"])
        assert entry["ratio"] == pytest.approx(
            sum(entry["backward_nfe"]) / sum(entry["forward_nfe"])
        )
    assert record["extra"]["training_adjoint_norm"] == "full"
    claims = record["extra"]["tables"][0]["rows"]
    assert any("training log, adjoint norm 'full'" in row[0] for row in claims)
    assert any("seminorm" in row[0] for row in claims)


def test_memory_on_the_trained_odenet(tiny_run, tmp_path):
    source, _, _ = tiny_run
    cfg = memory_experiment.MemoryConfig(
        batch_size=4,
        integration_lengths=(0.5,),
        rk_steps=(1,),
        source_dir=source,
        repeats=2,
    )
    record = memory_experiment.run(cfg, str(tmp_path / "memory"))
    assert record["status"] == "complete"
    assert any("trained ODE-Net" in d for d in record["deviations"])
    assert any("full norm" in d for d in record["deviations"])
    adjoint = [m for m in record["extra"]["measurements"] if m["kind"] == "adjoint"]
    assert all(m["forward_nfe"] > 0 and m["backward_nfe"] > 0 for m in adjoint)


def test_runs_from_before_the_norm_field_trained_with_the_seminorm(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "mnist"}))
    assert precision_experiment.training_adjoint_norm(str(tmp_path)) == "seminorm"
    (tmp_path / "config.json").write_text(json.dumps({"adjoint_norm": "full"}))
    assert precision_experiment.training_adjoint_norm(str(tmp_path)) == "full"
