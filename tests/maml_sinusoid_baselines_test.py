"""The Table 2 baselines config (App. C.1 facts) and a tiny end-to-end run."""

import os

import numpy as np
import pytest

from common import published, results
from maml.experiments import configs, seed_statistics, sinusoid_baselines_experiment


def test_defaults_are_the_papers_protocol():
    cfg = configs.SinusoidBaselinesConfig()
    assert cfg.num_regressors == 500 and cfg.target_mse == 0.02  # App. C.1
    assert cfg.oracle_iterations == 70_000  # cbfinn/maml: pretrain += metatrain
    assert (cfg.meta_batch_size, cfg.num_shots) == (25, 10)
    assert cfg.network().layer_sizes == (1, 40, 40, 1)
    assert cfg.oracle_network().layer_sizes == (3, 40, 40, 1)
    assert cfg.deviations("multitask") == [] and cfg.deviations("oracle") == []
    assert (cfg.eval_seed, cfg.eval_tasks) == (
        configs.SinusoidConfig().eval_seed,
        600,
    )  # the MAML runs' test tasks
    small = configs.SinusoidBaselinesConfig(num_regressors=50, oracle_iterations=100)
    assert small.deviations("multitask") == [
        "50 of the paper's 500 regressors per multi-task variant"
    ]
    assert "100 of the official 70,000" in small.deviations("oracle")[0]
    with pytest.raises(ValueError, match="num_regressors"):
        configs.SinusoidBaselinesConfig(num_regressors=0)
    with pytest.raises(ValueError):
        configs.SinusoidBaselinesConfig(weight_candidates=(0.1, -1.0))


def test_tiny_run_writes_every_row_and_resumes(tmp_path):
    cfg = configs.SinusoidBaselinesConfig(
        num_regressors=2,
        pilot_tasks=2,
        weight_candidates=(0.01,),
        jit_compile=False,
        regressor_max_steps=100,
        check_every=100,
        oracle_iterations=20,
        checkpoint_every=10,
        log_every=10,
        eval_tasks=8,
        eval_shots=(5,),
        baseline_step_sizes=(0.01,),
    )
    run_dir = str(tmp_path / "run")
    record = sinusoid_baselines_experiment.run(cfg, run_dir)
    rows = {(c["row"], c["column"]) for c in record["cells"]}
    want = {
        (e.row, e.column)
        for e in published.table("maml", "Appendix C Table 2")
        if e.row.startswith("multi-task")
    }
    assert rows == want
    arrays = seed_statistics.load_per_task(os.path.join(run_dir, "per_task_mse.npz"))
    for key in (
        "multitask_none_k5",
        "multitask_l2_k5",
        "multitask_mean_k5",
        "oracle_k5",
    ):
        assert arrays[key].shape == (8, 11)
    assert arrays["multitask_mean_regressor_errors"].shape == (2,)
    cell = [c for c in record["cells"] if c["row"] == "multi-task, no reg"][0]
    assert cell["ours"]["mean"] == pytest.approx(
        results.mean_ci95(arrays["multitask_none_k5"][:, 1]).mean
    )
    again = sinusoid_baselines_experiment.run(cfg, run_dir)  # reads everything back
    assert [c["ours"] for c in again["cells"]] == [c["ours"] for c in record["cells"]]
    np.testing.assert_array_equal(
        seed_statistics.load_per_task(os.path.join(run_dir, "per_task_mse.npz"))[
            "oracle_k5"
        ],
        arrays["oracle_k5"],
    )
