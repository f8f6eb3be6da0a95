"""Pooling spirals runs over seeds: mean and 95% CI against NumPy, per noise level."""

from __future__ import annotations

import os

import numpy as np
import pytest

from common import results
from neural_ode.experiments import spiral_seeds


def _scores(value: float) -> dict:
    entry = {
        "raw": value,
        "standardized": value / 4.0,
        "ci95_raw": 0.0,
        "per_spiral_mean": value,
        "per_spiral_ci95": 0.0,
    }
    return {
        "window_clean": entry,
        "window_noisy": dict(entry, raw=value + 1),
        "extrapolation": dict(entry, raw=10 * value),
    }


def _fake_run(
    directory: str, seed: int, noise: float, values: dict, status: str = "complete"
) -> str:
    metrics = [
        {
            "model": model,
            "num_observed": n,
            "status": status,
            "iterations": 7,
            **_scores(v),
        }
        for (model, n), v in values.items()
    ]
    results.write_results(
        directory,
        paper="neural_ode",
        experiment="spirals",
        status=status,
        budget={"train_seconds": 1.0},
        config={"seed": seed, "noise_std": noise, "cell_target": "clean"},
        cells=[],
        deviations=[f"observation noise std {noise:g}"],
        extra={"metrics": metrics},
    )
    return directory


def test_cells_are_seed_means_with_numpy_ci(tmp_path):
    lat = [0.2, 0.3, 0.7]
    runs = [
        _fake_run(
            str(tmp_path / f"s{i}"),
            i,
            0.3,
            {("latent_ode", 30): lat[i], ("rnn", 30): 1.0, ("rnn_time_gaps", 30): 2.0},
        )
        for i in range(3)
    ]
    runs.append(
        _fake_run(
            str(tmp_path / "low"),
            0,
            0.1,
            {("latent_ode", 30): 0.05},
            status="cut short",
        )
    )
    out = str(tmp_path / "pooled")
    record = spiral_seeds.run(spiral_seeds.SpiralSeedsConfig(run_dirs=tuple(runs)), out)
    raw = [
        c
        for c in record["cells"]
        if c["row"] == "Latent ODE"
        and "raw units" in c["deviations"]
        and "noise std 0.3" in c["deviations"]
    ]
    assert len(raw) == 1
    assert raw[0]["ours"]["mean"] == pytest.approx(np.mean(lat))
    assert raw[0]["ours"]["ci95"] == pytest.approx(1.96 * np.std(lat) / np.sqrt(3))
    std = [
        c
        for c in record["cells"]
        if c["row"] == "Latent ODE"
        and "standardized units" in c["deviations"]
        and "noise std 0.3" in c["deviations"]
    ]
    assert std[0]["ours"]["mean"] == pytest.approx(np.mean(lat) / 4)
    # The time-gap RNN has no published row: only in the extra tables.
    assert {c["row"] for c in record["cells"]} == {"Latent ODE", "RNN"}
    rows = record["extra"]["tables"][0]["rows"]
    assert any(r[1] == "RNN with time gaps" for r in rows)
    low = [c for c in record["cells"] if "noise std 0.1" in c["deviations"]]
    assert low and all("seeds not complete: 0" in c["deviations"] for c in low)
    assert record["status"] == "cut short"
    assert os.path.exists(os.path.join(out, "report.md"))


def test_missing_run_is_an_error_before_writing(tmp_path):
    out = str(tmp_path / "pooled")
    with pytest.raises(ValueError, match="no results.json"):
        spiral_seeds.run(
            spiral_seeds.SpiralSeedsConfig(run_dirs=(str(tmp_path / "nothing"),)), out
        )
    assert not os.path.exists(out)
