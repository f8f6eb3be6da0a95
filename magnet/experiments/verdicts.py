"""Verdicts on the paper's claims, from our errors: one run or paired seeds.

The abstract's claims (`common.published.CLAIMS`) are ranges of relative error
reduction (magnet vs triplet, vs softmax, on fine labels after coarse training)
and a speed-up in iterations. `relative_gain_verdict` decides a claimed range on
one run's test errors (two independent binomial proportions),
`seed_gain_verdict` on per-seed errors (paired by seed, Student-t interval over
seeds), and `speed_verdict` reads the iterations-to-triplet's-best-error ratio
off two evaluation curves. A difference within its 95% interval is
"inconclusive".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from common import published
from common.stats import mean_t_ci


def seed_gain_verdict(
    magnet: Sequence[float], baseline: Sequence[float], low: float, high: float | None
) -> tuple[str, str]:
    """A claimed relative error reduction, decided on paired per-seed errors.

    The difference baseline - magnet is paired by seed (same initialisation);
    its 95% t-interval decides whether magnet differs at all, and the relative
    reduction (mean difference / mean baseline error) is compared with the
    claimed range `[low, high]` (`high` None: "matches or beats").

    Returns:
        `(ours, verdict)` as text.
    """
    pairs = [
        (m, b)
        for m, b in zip(magnet, baseline, strict=False)
        if math.isfinite(m) and math.isfinite(b)
    ]
    if len(pairs) < 2:
        return "-", f"not measured ({len(pairs)} paired seeds; 2 or more needed)"
    m = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    diff, half = mean_t_ci(b - m)
    rel = diff / b.mean() if b.mean() > 0 else float("nan")
    ours = (
        f"{100 * m.mean():.2f}% vs {100 * b.mean():.2f}% over {len(pairs)} "
        f"seeds (difference {100 * diff:+.2f} ± {100 * half:.2f} pts, "
        f"relative {100 * rel:+.0f}%)"
    )
    return ours, _gain_verdict(diff, half, rel, low, high, "95% CI over seeds")


def relative_gain_verdict(
    magnet: float | None, baseline: float | None, n: int, low: float, high: float | None
) -> tuple[str, str]:
    """Our relative error reduction of magnet vs a baseline, and its verdict.

    Args:
        magnet: Magnet's error (fraction), or None if not measured.
        baseline: The baseline's error.
        n: Test examples behind each error.
        low: Lower end of the claimed relative reduction (e.g. 0.3).
        high: Upper end, or None for "matches or beats" (low = 0).

    Returns:
        `(ours, verdict)` as text.
    """
    if magnet is None or baseline is None:
        return "-", "not measured (loss not trained)"
    if not (math.isfinite(magnet) and math.isfinite(baseline)):
        return "-", "not measured (diverged)"
    diff = baseline - magnet
    half = 1.96 * math.sqrt(magnet * (1 - magnet) / n + baseline * (1 - baseline) / n)
    rel = diff / baseline if baseline > 0 else float("nan")
    ours = (
        f"{100 * magnet:.2f}% vs {100 * baseline:.2f}% "
        f"(difference {100 * diff:+.2f} ± {100 * half:.2f} pts"
        + (f", relative {100 * rel:+.0f}%)" if math.isfinite(rel) else ")")
    )
    return ours, _gain_verdict(diff, half, rel, low, high, "95% CI")


def _gain_verdict(
    diff: float, half: float, rel: float, low: float, high: float | None, ci: str
) -> str:
    """The verdict on a claimed relative reduction `[low, high]` of the error.

    Args:
        diff: Baseline error minus magnet error (positive: magnet is better).
        half: Half-width of the 95% interval of `diff`.
        rel: `diff` relative to the baseline's error.
        low: Lower end of the claimed relative reduction.
        high: Upper end, or None for "matches or beats".
        ci: How the interval was formed, for the verdict text.
    """
    if high is None:
        if abs(diff) <= half:
            return f"supported (matches within the {ci})"
        return "supported (beats)" if diff > 0 else "not supported (magnet is worse)"
    if abs(diff) <= half:
        return f"inconclusive (difference within its {ci})"
    if diff < 0:
        return "not supported (magnet is worse)"
    if rel >= low:
        if rel <= high:
            return "supported (in the stated range)"
        return "supported (gain above the stated range)"
    return "partly supported (magnet better, gain below the stated range)"


def first_step_reaching(
    curve: list[dict[str, float]], key: str, target: float
) -> dict[str, float] | None:
    """The first evaluation with `curve[key] <= target`, or None."""
    for entry in curve:
        value = entry.get(key)
        if value is not None and math.isfinite(value) and value <= target:
            return entry
    return None


def speed_verdict(
    magnet_curve: list[dict[str, float]] | None,
    triplet_curve: list[dict[str, float]] | None,
    eval_every: int,
) -> tuple[str, str, dict[str, Any]]:
    """Claim 2: iterations magnet needs to reach triplet's best error.

    The target is triplet's lowest error (own rule: kNN) over its curve;
    triplet's iterations are its first evaluation at that error, magnet's its
    first evaluation at or below it (own rule: magnet rule). Both are known to
    the resolution `eval_every`.

    Returns:
        `(ours, verdict, details)`.
    """
    if not magnet_curve or not triplet_curve:
        return "-", "not measured (loss not trained)", {}
    errors = [e["error"] for e in triplet_curve if math.isfinite(e["error"])]
    if not errors:
        return "-", "not measured (triplet diverged)", {}
    target = min(errors)
    t_entry = first_step_reaching(triplet_curve, "error", target)
    m_entry = first_step_reaching(magnet_curve, "error", target)
    details = {
        "target_error": target,
        "triplet_step": t_entry["step"],
        "triplet_seconds": t_entry["train_seconds"],
        "magnet_step": None if m_entry is None else m_entry["step"],
        "magnet_seconds": None if m_entry is None else m_entry["train_seconds"],
    }
    if t_entry["step"] == 0:
        return (
            f"triplet's best error {100 * target:.2f}% is at step 0",
            "inconclusive (triplet never improved on its initial error)",
            details,
        )
    if m_entry is None:
        last = magnet_curve[-1]["step"]
        return (
            f"magnet never reached triplet's best {100 * target:.2f}% in "
            f"{last} iterations (triplet: {t_entry['step']})",
            "not supported",
            details,
        )
    if m_entry["step"] == 0:
        return (
            f"magnet is at {100 * target:.2f}% or below from step 0 (its "
            f"initialisation); triplet needs {t_entry['step']} iterations",
            "inconclusive (the initialisation already reaches triplet's best)",
            details,
        )
    ratio = t_entry["step"] / m_entry["step"]
    details["speedup"] = ratio
    ours = (
        f"triplet's best {100 * target:.2f}%: triplet {t_entry['step']} it, "
        f"magnet {m_entry['step']} it ({ratio:.1f}x; evaluations every "
        f"{eval_every} it)"
    )
    stated = published.claim("magnet", "speed")
    if ratio >= stated.low:
        return (
            ours,
            (
                "supported (in the stated range)"
                if ratio <= stated.high
                else "supported (above the stated range)"
            ),
            details,
        )
    if ratio > 1:
        return ours, f"partly supported (faster, but below {stated.low:g}x)", details
    return ours, "not supported (magnet not faster)", details
