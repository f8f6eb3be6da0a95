"""The shared helpers: atomic writes, confidence intervals, config validators."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from common import files, stats, validation


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = str(tmp_path / "results.json")
    files.atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        files.atomic_write_json(path, {"b": object()})  # not JSON-serialisable
    with open(path) as f:
        assert json.load(f) == {"a": 1}
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left


def test_atomic_writes_create_folders_and_use_ordinary_permissions(tmp_path):
    path = str(tmp_path / "new" / "dir" / "a.npz")
    files.atomic_write_npz(path, x=np.arange(3))
    with np.load(path) as f:
        np.testing.assert_array_equal(f["x"], np.arange(3))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 & ~umask
    files.atomic_write_text(str(tmp_path / "t.txt"), "hello\n")
    assert (tmp_path / "t.txt").read_text() == "hello\n"


def test_mean_ci95_is_196_population_std_over_sqrt_n():
    values = np.array([0.2, 0.5, 0.9, 1.4])
    est = stats.mean_ci95(values)
    mean = sum(values) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    assert est.mean == pytest.approx(mean)
    assert est.ci95 == pytest.approx(1.96 * std / 2)
    assert est.n == 4
    with pytest.raises(ValueError):
        stats.mean_ci95([])


def test_proportion_ci95_is_wald_with_a_floor_at_the_ends():
    assert stats.proportion_ci95(0.1, 400) == pytest.approx(1.96 * 0.3 / 20)
    assert stats.proportion_ci95(0.0, 100) == pytest.approx(1.96 * 0.01 / 10)
    assert stats.binomial_ci95(40, 400) == pytest.approx(100 * 1.96 * 0.3 / 20)
    with pytest.raises(ValueError):
        stats.proportion_ci95(0.5, 0)


@pytest.mark.parametrize(
    "check, good, bad",
    [
        (validation.require_positive, [1, 0.5], [0, -1, float("nan"), True, "1"]),
        (validation.require_non_negative, [0, 2.5], [-1e-9, float("inf")]),
        (validation.require_fraction, [0, 0.3, 1], [-0.1, 1.1]),
    ],
)
def test_validators_accept_and_reject_and_name_the_field(check, good, bad):
    for value in good:
        check("my_field", value)
    for value in bad:
        with pytest.raises(ValueError, match="my_field"):
            check("my_field", value)


def test_open_intervals_and_collections():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        validation.require_fraction("p", 1.0, open_low=True, open_high=True)
    validation.require_all_positive("steps", (1, 2, 3))
    for bad in ((), (1, 0), (1, float("nan"))):
        with pytest.raises(ValueError, match="steps"):
            validation.require_all_positive("steps", bad)
    validation.require_one_of("mode", "a", ("a", "b"))
    with pytest.raises(ValueError, match="mode must be one of a, b"):
        validation.require_one_of("mode", "c", ("a", "b"))
