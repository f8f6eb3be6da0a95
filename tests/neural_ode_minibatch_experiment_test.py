"""Tests of the minibatching-cost experiment."""

from __future__ import annotations

import pytest

from neural_ode.experiments import minibatch_experiment


def test_a_batched_solve_needs_at_least_the_hardest_examples_steps():
    # One system's error norm over the whole batch: the batched solve cannot take
    # fewer evaluations than the easiest example alone (all share the steps).
    cfg = minibatch_experiment.MinibatchConfig(batch_sizes=(4,))
    r = minibatch_experiment.measure(cfg, 4)
    assert r["batched_nfe"] >= r["per_example_nfe_min"]
    assert (
        r["per_example_nfe_min"]
        <= r["per_example_nfe_mean"]
        <= r["per_example_nfe_max"]
    )


def test_run_writes_claim_and_table(tmp_path):
    cfg = minibatch_experiment.MinibatchConfig(batch_sizes=(2, 3))
    record = minibatch_experiment.run(cfg, str(tmp_path / "run"))
    tables = record["extra"]["tables"]
    assert tables[0]["rows"][0][2] in ("supported", "not supported")
    assert [row[0] for row in tables[1]["rows"]] == [2, 3]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_sizes": (0,)},
        {"min_scale": 0.0},
        {"min_scale": 5.0, "max_scale": 1.0},
        {"t1": 0.0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        minibatch_experiment.MinibatchConfig(**kwargs)
