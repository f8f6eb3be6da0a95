"""What the generated tables of README.md and docs/ hold (`common.docs` renders them).

`SUMMARY` is the README's results table, one `Line` (cells of one or more runs'
`results.json`, values joined with " / ") or `ClaimLine` (a run's claims table) per
reproduced table or figure; `PLANS` are the per-paper tables of `plan` blocks, with
"queued" where no run has reported a cell yet. A `Cell` names a published cell of
`common.published` and the results directory that holds ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Cell:
    """One published table cell and the run directory whose results hold ours.

    Attributes:
        paper, table, row, column: The cell's key in `common.published`.
        run: Results directory (relative to the repository root).
        match: Strings that must all occur in the cell's `details` or
            `deviations` (to pick one of several cells with the same key, e.g.
            one inner step size or one noise level).
        label: Short name of the cell in a table (default: row, column).
    """

    paper: str
    table: str
    row: str
    column: str
    run: str
    match: tuple[str, ...] = ()
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Line:
    """A summary line made of published cells (values joined with " / ").

    Attributes:
        what: What the line reproduces (paper, table, cells).
        cells: The cells, in the order of the joined values.
        page: Link to the docs page that explains the line.
        missing: What to say for a cell no run has reported.
    """

    what: str
    cells: tuple[Cell, ...]
    page: str
    missing: str = "queued"


@dataclasses.dataclass(frozen=True)
class ClaimLine:
    """A summary line made of a run's claims table (its first extra table).

    The claims table has the claim in its first column and our value and the
    verdict in its last two (`magnet` and the Neural ODE figure runs).

    Attributes:
        what: What the line reproduces.
        runs: Results directories (their claims are counted together).
        page: Link to the docs page.
        claim_column: Column of the claim's statement in the table.
    """

    what: str
    runs: tuple[str, ...]
    page: str
    claim_column: int = 0


def _cells(
    paper: str,
    table: str,
    rows: Sequence[str],
    columns: Sequence[str],
    run: str,
    match: tuple[str, ...] = (),
) -> tuple[Cell, ...]:
    return tuple(Cell(paper, table, r, c, run, match) for r in rows for c in columns)


_STEPS = ("1 step", "5 steps", "10 steps")
SINUSOID_SEEDS = "results/maml_sinusoid_seeds"
_T1 = "results/maml_table1"
_RL_STEPS = ("0 steps", "1 step", "2 steps", "3 steps")
_SPIRALS = ("30/100", "50/100", "100/100")
_MAML_PAGE = "docs/maml.md"
_NODE_PAGE = "docs/neural_ode.md"
_MAGNET_PAGE = "docs/magnet.md"


def _omniglot(row: str, table: str, experiment: str, column: str) -> Cell:
    return Cell("maml", table, row, column, f"{_T1}/{experiment}")


SUMMARY: tuple[Line | ClaimLine, ...] = (
    Line(
        "MAML App. C Table 2, sinusoid 5-shot MSE after 1 / 5 / 10 steps, "
        "official code's α = 0.001 (median seed)",
        _cells(
            "maml",
            "Appendix C Table 2",
            ["MAML (ours)"],
            _STEPS,
            SINUSOID_SEEDS,
            ("official code's α",),
        ),
        f"{_MAML_PAGE}#sinusoid-regression",
    ),
    Line(
        "the same, paper's α = 0.01",
        _cells(
            "maml",
            "Appendix C Table 2",
            ["MAML (ours)"],
            _STEPS,
            SINUSOID_SEEDS,
            ("paper's α",),
        ),
        f"{_MAML_PAGE}#sinusoid-regression",
    ),
    Line(
        "the same, pretrain on all tasks",
        _cells(
            "maml",
            "Appendix C Table 2",
            ["pretrain on all tasks"],
            _STEPS,
            SINUSOID_SEEDS,
        ),
        f"{_MAML_PAGE}#sinusoid-regression",
    ),
    *(
        Line(
            f"the same, {row}{label}",
            _cells(
                "maml", "Appendix C Table 2", [row], _STEPS, SINUSOID_SEEDS, (match,)
            ),
            f"{_MAML_PAGE}#sinusoid-regression",
        )
        for row, label, match in (
            ("multi-task, no reg", "", "stops once"),
            ("multi-task, l2 reg", "", "stops once"),
            ("multi-task, reg to mean θ", "", "stops once"),
            (
                "multi-task, reg to mean θ",
                ", long training",
                "at least regressor_min_steps",
            ),
        )
    ),
    Line(
        "MAML Table 1, Omniglot 5-way 1-shot / 5-shot, no conv, accuracy %",
        (
            _omniglot(
                "MAML, no conv",
                "Table 1",
                "omniglot_nonconv_5w1s",
                "Omniglot 5-way 1-shot",
            ),
            _omniglot(
                "MAML, no conv",
                "Table 1",
                "omniglot_nonconv_5w5s",
                "Omniglot 5-way 5-shot",
            ),
        ),
        f"{_MAML_PAGE}#omniglot-table-1",
    ),
    Line(
        "MAML Table 1, Omniglot 5-way 1 / 5-shot, 20-way 1 / 5-shot, conv",
        tuple(
            _omniglot("MAML", "Table 1", f"omniglot_{e}", c)
            for e, c in (
                ("5w1s", "Omniglot 5-way 1-shot"),
                ("5w5s", "Omniglot 5-way 5-shot"),
                ("20w1s", "Omniglot 20-way 1-shot"),
                ("20w5s", "Omniglot 20-way 5-shot"),
            )
        ),
        f"{_MAML_PAGE}#omniglot-table-1",
    ),
    Line(
        "MAML App. C Table 3, context vector, Omniglot 5-way 1 / 5-shot",
        (
            _omniglot(
                "context vector",
                "Appendix C Table 3",
                "omniglot_context_5w1s",
                "1-shot",
            ),
            _omniglot(
                "context vector",
                "Appendix C Table 3",
                "omniglot_context_5w5s",
                "5-shot",
            ),
        ),
        f"{_MAML_PAGE}#omniglot-table-1",
    ),
    Line(
        "MAML Table 1, MiniImagenet 5-way 1 / 5-shot",
        _cells(
            "maml",
            "Table 1",
            ["MAML"],
            ["MiniImagenet 5-way 1-shot", "MiniImagenet 5-way 5-shot"],
            f"{_T1}/miniimagenet",
        ),
        f"{_MAML_PAGE}#miniimagenet",
        missing="not measured (no images here)",
    ),
    Line(
        "MAML App. C Table 4, 2D navigation return after 0-3 steps "
        "(mean over seeds 0-2)",
        _cells(
            "maml",
            "Appendix C Table 4",
            ["MAML (ours)"],
            _RL_STEPS,
            "results/maml_rl_nav2d",
        ),
        f"{_MAML_PAGE}#reinforcement-learning",
    ),
    Line(
        "MAML App. C Table 5, half-cheetah direction return after 0-3 steps",
        _cells(
            "maml",
            "Appendix C Table 5",
            ["MAML (ours)"],
            _RL_STEPS,
            "results/maml_rl_cheetah",
        ),
        f"{_MAML_PAGE}#reinforcement-learning",
    ),
    Line(
        "Neural ODE Table 1, MNIST test error %: MLP (stand-in, 160 epochs)",
        _cells(
            "neural_ode",
            "Table 1",
            ["1-Layer MLP"],
            ["Test Error"],
            "results/neural_ode_mnist_mlp160",
        ),
        f"{_NODE_PAGE}#table-1-mnist",
    ),
    Line(
        "the same, ResNet / RK-Net / ODE-Net (annealed 8 epochs)",
        _cells(
            "neural_ode",
            "Table 1",
            ["ResNet", "RK-Net", "ODE-Net"],
            ["Test Error"],
            "results/neural_ode_mnist_annealed",
        ),
        f"{_NODE_PAGE}#table-1-mnist",
    ),
    Line(
        "Neural ODE Table 2, spirals RMSE, latent ODE, 30 / 50 / 100 points "
        "(noise 0.3, 3 seeds)",
        _cells(
            "neural_ode",
            "Table 2",
            ["Latent ODE"],
            _SPIRALS,
            "results/neural_ode_spiral_seeds",
            ("noise std 0.3", "raw units"),
        ),
        f"{_NODE_PAGE}#table-2-spirals",
    ),
    Line(
        "the same, RNN",
        _cells(
            "neural_ode",
            "Table 2",
            ["RNN"],
            _SPIRALS,
            "results/neural_ode_spiral_seeds",
            ("noise std 0.3", "raw units"),
        ),
        f"{_NODE_PAGE}#table-2-spirals",
    ),
    ClaimLine(
        "Neural ODE Fig. 3, adjustable precision (annealed 8-epoch ODE-Net)",
        ("results/neural_ode_precision_annealed",),
        f"{_NODE_PAGE}#fig-3-and-memory-on-the-annealed-ode-net",
    ),
    ClaimLine(
        "Neural ODE Table 1 memory column, adjoint vs backprop (annealed ODE-Net)",
        ("results/neural_ode_memory_annealed",),
        f"{_NODE_PAGE}#fig-3-and-memory-on-the-annealed-ode-net",
    ),
    ClaimLine(
        "Neural ODE §6, minibatching cost",
        ("results/neural_ode_minibatch",),
        f"{_NODE_PAGE}#earlier-runs",
    ),
    ClaimLine(
        "Neural ODE Fig. 4, CNF vs NF density matching (9 targets × sizes)",
        ("results/neural_ode_cnf",),
        f"{_NODE_PAGE}#earlier-runs",
        claim_column=5,
    ),
    ClaimLine(
        "Magnet loss, the abstract's claims (CIFAR-10, Fashion-MNIST; "
        "hierarchy on CIFAR-10, Omniglot)",
        tuple(
            f"results/magnet_{name}"
            for name in (
                "classification_cifar10",
                "classification_fashion_mnist",
                "hierarchy_cifar10",
                "hierarchy_omniglot_alphabets",
            )
        ),
        f"{_MAGNET_PAGE}#the-study-at-convergence",
    ),
)

# Tables of the docs pages made of planned cells (`plan NAME`).
PLANS: dict[str, tuple[Cell, ...]] = {
    "maml-table1": tuple(
        dataclasses.replace(
            _omniglot(row, table, experiment, column), label=f"{row}, {column}"
        )
        for row, table, experiment, column in (
            (
                "MAML, no conv",
                "Table 1",
                "omniglot_nonconv_5w1s",
                "Omniglot 5-way 1-shot",
            ),
            (
                "MAML, no conv",
                "Table 1",
                "omniglot_nonconv_5w5s",
                "Omniglot 5-way 5-shot",
            ),
            ("MAML", "Table 1", "omniglot_5w1s", "Omniglot 5-way 1-shot"),
            ("MAML", "Table 1", "omniglot_5w5s", "Omniglot 5-way 5-shot"),
            ("MAML", "Table 1", "omniglot_20w1s", "Omniglot 20-way 1-shot"),
            ("MAML", "Table 1", "omniglot_20w5s", "Omniglot 20-way 5-shot"),
            ("context vector", "Appendix C Table 3", "omniglot_context_5w1s", "1-shot"),
            ("context vector", "Appendix C Table 3", "omniglot_context_5w5s", "5-shot"),
        )
    ),
    "neural-ode-table1": (
        Cell(
            "neural_ode",
            "Table 1",
            "1-Layer MLP",
            "Test Error",
            "results/neural_ode_mnist_mlp160",
            label="1-Layer MLP (stand-in, full 160 epochs)",
        ),
        *_cells(
            "neural_ode",
            "Table 1",
            ["ResNet", "RK-Net", "ODE-Net"],
            ["Test Error"],
            "results/neural_ode_mnist_annealed",
        ),
    ),
    "neural-ode-table2": tuple(
        dataclasses.replace(c, label=f"{c.row}, {c.column}, noise {noise}")
        for noise in ("0.3", "0.1")
        for c in _cells(
            "neural_ode",
            "Table 2",
            ["Latent ODE", "RNN"],
            _SPIRALS,
            "results/neural_ode_spiral_seeds",
            (f"noise std {noise}", "raw units"),
        )
    ),
    "maml-rl": (
        *(
            dataclasses.replace(
                c, label=f"2D navigation (mean over seeds), {c.row}, {c.column}"
            )
            for c in _cells(
                "maml",
                "Appendix C Table 4",
                ["MAML (ours)", "context vector"],
                _RL_STEPS,
                "results/maml_rl_nav2d",
            )
        ),
        *(
            dataclasses.replace(
                c,
                label=f"2D navigation, official code's step sizes (seed 0), "
                f"{c.row}, {c.column}",
            )
            for c in _cells(
                "maml",
                "Appendix C Table 4",
                ["MAML (ours)", "context vector"],
                _RL_STEPS,
                "results/maml_rl_nav2d_official_seed0",
            )
        ),
        *(
            dataclasses.replace(c, label=f"half-cheetah, {c.row}, {c.column}")
            for c in _cells(
                "maml",
                "Appendix C Table 5",
                ["MAML (ours)", "context vector"],
                _RL_STEPS,
                "results/maml_rl_cheetah",
            )
        ),
    ),
}
