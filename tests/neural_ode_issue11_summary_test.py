"""The issue-11 summary: published values beside ours, pending inputs named."""

from __future__ import annotations

from common import results
from neural_ode.experiments import issue11_summary


def test_summary_lists_cells_claims_and_pending_inputs():
    cell = results.cell(
        "neural_ode",
        "Table 2",
        "Latent ODE",
        "30/100",
        results.Estimate(0.5, 0.1, 3),
        deviations=["noise std 0.3"],
        budget={"iterations": 2000},
    )
    table2 = {
        "status": "complete",
        "cells": [cell],
        "extra": {
            "tables": [
                {
                    "title": "In the window",
                    "header": ["model", "RMSE"],
                    "rows": [["RNN with time gaps", "0.7 ± 0.1"]],
                }
            ]
        },
    }
    precision = {
        "status": "complete",
        "cells": [],
        "extra": {
            "tables": [
                {
                    "header": ["paper", "ours", "verdict"],
                    "rows": [["backward about half", "0.52", "supported"]],
                }
            ]
        },
    }
    text = issue11_summary.summary({"table2": table2, "precision": precision})
    assert "| Latent ODE | 30/100 | 0.1642 | 0.5 ± 0.1 | 2,000 it |" in text
    assert "| backward about half | 0.52 | supported |" in text
    assert "| RNN with time gaps | 0.7 ± 0.1 |" in text  # no published row
    assert "pending: no results in neural_ode_mnist_annealed" in text
    assert "pending: no results in neural_ode_memory_annealed" in text
