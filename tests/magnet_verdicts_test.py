"""Verdicts on the paper's claims: one run's errors, paired seeds, iterations."""

import pytest

from magnet.experiments import verdicts


@pytest.mark.parametrize(
    "magnet,baseline,high,expected",
    [
        ([0.20, 0.21, 0.19], [0.30, 0.31, 0.29], 0.4, "supported (in the stated"),
        ([0.10, 0.11, 0.09], [0.30, 0.31, 0.29], 0.4, "above the stated range"),
        ([0.28, 0.29, 0.27], [0.30, 0.31, 0.29], 0.4, "partly supported"),
        ([0.32, 0.33, 0.31], [0.30, 0.31, 0.29], 0.4, "not supported"),
        ([0.30, 0.25, 0.33], [0.30, 0.31, 0.29], 0.4, "inconclusive"),
        ([0.30, 0.25, 0.33], [0.30, 0.31, 0.29], None, "matches"),
    ],
)
def test_seed_gain_verdict_rules(magnet, baseline, high, expected):
    _, verdict = verdicts.seed_gain_verdict(magnet, baseline, 0.3, high)
    assert expected in verdict


def test_one_seed_is_not_enough_for_a_verdict():
    _, verdict = verdicts.seed_gain_verdict([0.1], [0.2], 0.3, 0.4)
    assert verdict.startswith("not measured")


@pytest.mark.parametrize(
    "magnet,baseline,low,high,verdict",
    [
        (0.26, 0.40, 0.3, 0.4, "supported (in the stated range)"),
        (0.10, 0.40, 0.3, 0.4, "supported (gain above the stated range)"),
        (0.35, 0.40, 0.3, 0.4, "partly supported"),
        (0.45, 0.40, 0.3, 0.4, "not supported"),
        (0.40, 0.405, 0.3, 0.4, "inconclusive"),
        (0.20, 0.205, 0.0, None, "supported (matches within the 95% CI)"),
        (0.20, 0.30, 0.0, None, "supported (beats)"),
        (0.30, 0.20, 0.0, None, "not supported (magnet is worse)"),
        (None, 0.20, 0.0, None, "not measured"),
    ],
)
def test_relative_gain_verdicts(magnet, baseline, low, high, verdict):
    _, got = verdicts.relative_gain_verdict(magnet, baseline, 10_000, low, high)
    assert got.startswith(verdict)


def _curve(errors, every=100):
    return [
        {"step": i * every, "error": e, "train_seconds": float(i)}
        for i, e in enumerate(errors)
    ]


@pytest.mark.parametrize(
    "magnet,triplet,verdict,speedup",
    [
        ([0.5, 0.2, 0.1], [0.5, 0.4, 0.3, 0.3, 0.3, 0.25, 0.22, 0.2], "supported", 7.0),
        ([0.5, 0.3, 0.2], [0.5, 0.4, 0.3, 0.2], "partly supported", 1.5),
        ([0.5, 0.5, 0.5], [0.5, 0.4, 0.3], "not supported", None),
        ([0.2, 0.1], [0.5, 0.3], "inconclusive (the initialisation", None),
        ([0.5, 0.1], [0.2, 0.3], "inconclusive (triplet never improved", None),
    ],
)
def test_speed_verdicts(magnet, triplet, verdict, speedup):
    _, got, details = verdicts.speed_verdict(_curve(magnet), _curve(triplet), 100)
    assert got.startswith(verdict)
    assert details.get("speedup") == speedup
