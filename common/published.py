"""The published-number registry: the only place a paper's number may appear.

Every entry names its source precisely (paper, table or figure, row, column), so a
report can print where each published value comes from. Reports and mains look
values up here; nothing else in the code base hard-codes a paper's number.
"""

from __future__ import annotations

import dataclasses

PAPERS = {
    "maml": "Finn, Abbeel, Levine 2017, Model-Agnostic Meta-Learning for Fast "
    "Adaptation of Deep Networks, ICML 2017, arXiv:1703.03400v3",
    "neural_ode": "Chen, Rubanova, Bettencourt, Duvenaud 2018, Neural Ordinary "
    "Differential Equations, NeurIPS 2018, arXiv:1806.07366",
    "magnet": "Rippel, Paluri, Dollar, Bourdev 2016, Metric Learning with Adaptive "
    "Density Discrimination, ICLR 2016, arXiv:1511.05939",
}


@dataclasses.dataclass(frozen=True)
class Published:
    """One number printed in a paper.

    Attributes:
        paper: Key into `PAPERS` ("maml", "neural_ode", "magnet").
        table: The table or figure, as the paper names it ("Table 1",
            "Appendix C Table 2").
        row: The row label as printed (method name, dataset).
        column: The column label as printed (setting, metric).
        value: The number as printed, in the paper's unit.
        ci95: Half-width of the printed 95% confidence interval, or None when the
            paper prints none.
        unit: What `value` measures ("accuracy %", "MSE", "test error %", ...).
        higher_is_better: Direction of improvement, used for verdicts.
        note: Anything a reader must know to interpret the value.
    """

    paper: str
    table: str
    row: str
    column: str
    value: float
    ci95: float | None
    unit: str
    higher_is_better: bool
    note: str = ""

    @property
    def source(self) -> str:
        """Human-readable citation of where the number is printed."""
        return f"{self.paper} {self.table}, row '{self.row}', column '{self.column}'"


def _entries(paper, table, unit, higher_is_better, rows, note=""):
    """Expands {row: {column: value or (value, ci95)}} into `Published` entries."""
    out = []
    for row, columns in rows.items():
        for column, cell in columns.items():
            value, ci95 = cell if isinstance(cell, tuple) else (cell, None)
            out.append(
                Published(
                    paper,
                    table,
                    row,
                    column,
                    float(value),
                    None if ci95 is None else float(ci95),
                    unit,
                    higher_is_better,
                    note,
                )
            )
    return out


# --- MAML Table 1: few-shot classification accuracy ------------------------------
# Row labels drop the "(ours)" tags and the citations printed after baseline names
# (e.g. "matching nets (Vinyals et al., 2016)" -> "matching nets"). A "-" cell in the
# paper is simply absent here.
_MAML_TABLE1_NOTE = (
    "Few-shot classification accuracy on held-out Omniglot characters and the "
    "MiniImagenet test set; +/- is the 95% confidence interval over tasks, printed "
    "only for some rows. Omniglot results of prior work may not be strictly "
    "comparable (train/test splits unavailable); MiniImagenet baselines and matching "
    "nets are from Ravi & Larochelle (2017)."
)

_MAML_TABLE1 = _entries(
    "maml",
    "Table 1",
    "accuracy %",
    True,
    {
        "MANN, no conv": {"Omniglot 5-way 1-shot": 82.8, "Omniglot 5-way 5-shot": 94.9},
        "MAML, no conv": {
            "Omniglot 5-way 1-shot": (89.7, 1.1),
            "Omniglot 5-way 5-shot": (97.5, 0.6),
        },
        "Siamese nets": {
            "Omniglot 5-way 1-shot": 97.3,
            "Omniglot 5-way 5-shot": 98.4,
            "Omniglot 20-way 1-shot": 88.2,
            "Omniglot 20-way 5-shot": 97.0,
        },
        "matching nets": {
            "Omniglot 5-way 1-shot": 98.1,
            "Omniglot 5-way 5-shot": 98.9,
            "Omniglot 20-way 1-shot": 93.8,
            "Omniglot 20-way 5-shot": 98.5,
            "MiniImagenet 5-way 1-shot": (43.56, 0.84),
            "MiniImagenet 5-way 5-shot": (55.31, 0.73),
        },
        "neural statistician": {
            "Omniglot 5-way 1-shot": 98.1,
            "Omniglot 5-way 5-shot": 99.5,
            "Omniglot 20-way 1-shot": 93.2,
            "Omniglot 20-way 5-shot": 98.1,
        },
        "memory mod.": {
            "Omniglot 5-way 1-shot": 98.4,
            "Omniglot 5-way 5-shot": 99.6,
            "Omniglot 20-way 1-shot": 95.0,
            "Omniglot 20-way 5-shot": 98.6,
        },
        "MAML": {
            "Omniglot 5-way 1-shot": (98.7, 0.4),
            "Omniglot 5-way 5-shot": (99.9, 0.1),
            "Omniglot 20-way 1-shot": (95.8, 0.3),
            "Omniglot 20-way 5-shot": (98.9, 0.2),
            "MiniImagenet 5-way 1-shot": (48.70, 1.84),
            "MiniImagenet 5-way 5-shot": (63.11, 0.92),
        },
        "fine-tuning baseline": {
            "MiniImagenet 5-way 1-shot": (28.86, 0.54),
            "MiniImagenet 5-way 5-shot": (49.79, 0.79),
        },
        "nearest neighbor baseline": {
            "MiniImagenet 5-way 1-shot": (41.08, 0.70),
            "MiniImagenet 5-way 5-shot": (51.04, 0.65),
        },
        "meta-learner LSTM": {
            "MiniImagenet 5-way 1-shot": (43.44, 0.77),
            "MiniImagenet 5-way 5-shot": (60.60, 0.71),
        },
        "MAML, first order approx.": {
            "MiniImagenet 5-way 1-shot": (48.07, 1.75),
            "MiniImagenet 5-way 5-shot": (63.15, 0.91),
        },
    },
    note=_MAML_TABLE1_NOTE,
)

# --- MAML, Appendix C Table 2: sinusoid regression, 5-shot MSE -------------------
_MAML_APPC_TABLE2 = _entries(
    "maml",
    "Appendix C Table 2",
    "MSE",
    False,
    {
        "multi-task, no reg": {"1 step": 4.19, "5 steps": 3.85, "10 steps": 3.69},
        "multi-task, l2 reg": {"1 step": 7.18, "5 steps": 5.69, "10 steps": 5.60},
        "multi-task, reg to mean θ": {
            "1 step": 2.91,
            "5 steps": 2.72,
            "10 steps": 2.71,
        },
        "pretrain on all tasks": {"1 step": 2.41, "5 steps": 2.23, "10 steps": 2.19},
        "MAML (ours)": {"1 step": 0.67, "5 steps": 0.38, "10 steps": 0.35},
    },
    note="5-shot sinusoid regression, mean squared error after the given number "
    "of gradient steps (printed header: 'num. grad steps 1 5 10'). The multi-task "
    "rows average the parameters of 500 regressors trained separately (no "
    "regularization, l2 weight decay, or l2 regularization to the running mean "
    "parameter vector) and fine-tune that average on 5 datapoints.",
)

# --- MAML, Appendix C Tables 3-5: context-vector adaptation (Rei, 2015) ----------
_MAML_APPC_TABLE3 = _entries(
    "maml",
    "Appendix C Table 3",
    "accuracy %",
    True,
    {
        "context vector": {"1-shot": (94.9, 0.9), "5-shot": (97.7, 0.3)},
        "MAML": {"1-shot": (98.7, 0.4), "5-shot": (99.9, 0.1)},
    },
    note="5-way Omniglot classification. 'context vector' adapts only free "
    "parameters z concatenated channel-wise to the input image, not the network "
    "weights; +/- is the 95% confidence interval as in Table 1.",
)

_MAML_APPC_TABLE4 = _entries(
    "maml",
    "Appendix C Table 4",
    "average return",
    True,
    {
        "context vector": {
            "0 steps": -42.42,
            "1 step": -13.90,
            "2 steps": -5.17,
            "3 steps": -3.18,
        },
        "MAML (ours)": {
            "0 steps": -40.41,
            "1 step": -11.68,
            "2 steps": -3.33,
            "3 steps": -3.23,
        },
    },
    note="2D pointmass navigation, average return after the given number of "
    "policy-gradient steps (printed header: 'num. grad steps 0 1 2 3').",
)

_MAML_APPC_TABLE5 = _entries(
    "maml",
    "Appendix C Table 5",
    "average return",
    True,
    {
        "context vector": {
            "0 steps": -40.49,
            "1 step": -44.08,
            "2 steps": -38.27,
            "3 steps": -42.50,
        },
        "MAML (ours)": {
            "0 steps": -50.69,
            "1 step": 293.19,
            "2 steps": 313.48,
            "3 steps": 315.65,
        },
    },
    note="Half-cheetah forward/backward, average return after the given number "
    "of policy-gradient steps (printed header: 'num. grad steps 0 1 2 3').",
)

# --- Neural ODE Table 1: MNIST --------------------------------------------------
_NODE_TABLE1_NOTE = (
    "Performance on MNIST. The 1-Layer MLP row is marked as taken from LeCun et "
    "al. (1998). Memory / Time columns are printed only as asymptotic costs: "
    "1-Layer MLP '-'; ResNet O(L) / O(L); RK-Net O(L~) / O(L~); ODE-Net O(1) / "
    "O(L~), with L the ResNet depth and L~ the number of function evaluations the "
    "ODE solver requests in one forward pass."
)

_NODE_TABLE1 = (
    _entries(
        "neural_ode",
        "Table 1",
        "test error %",
        False,
        {"1-Layer MLP": {"Test Error": 1.60}},
        note=_NODE_TABLE1_NOTE + " Not trained by the paper: the row is LeCun et al. "
        "(1998)'s 784-300-10 network, trained with a squared error on deskewed "
        "images (marked with a dagger in the paper).",
    )
    + _entries(
        "neural_ode",
        "Table 1",
        "test error %",
        False,
        {
            "ResNet": {"Test Error": 0.41},
            "RK-Net": {"Test Error": 0.47},
            "ODE-Net": {"Test Error": 0.42},
        },
        note=_NODE_TABLE1_NOTE,
    )
    + _entries(
        "neural_ode",
        "Table 1",
        "parameters (millions)",
        False,
        {
            "1-Layer MLP": {"# Params": 0.24},
            "ResNet": {"# Params": 0.60},
            "RK-Net": {"# Params": 0.22},
            "ODE-Net": {"# Params": 0.22},
        },
        note=_NODE_TABLE1_NOTE,
    )
)

# --- Neural ODE Table 2: bi-directional spirals ---------------------------------
_NODE_TABLE2 = _entries(
    "neural_ode",
    "Table 2",
    "RMSE",
    False,
    {
        "RNN": {"30/100": 0.3937, "50/100": 0.3202, "100/100": 0.1813},
        "Latent ODE": {"30/100": 0.1642, "50/100": 0.1502, "100/100": 0.1346},
    },
    note="Predictive RMSE on the test set of the bi-directional spiral dataset "
    "(1000 noisy 2-D spirals, 100 equally spaced timesteps). Columns are the "
    "printed '# Observations' header: n = 30, 50 or 100 irregular time points "
    "sampled without replacement out of 100; RMSE is on 100 time points "
    "extending beyond those used for training.",
)

# Magnet loss (arXiv:1511.05939): no table is registered, because no copy of the
# paper's result tables could be read to verify them.

REGISTRY: tuple[Published, ...] = tuple(
    _MAML_TABLE1
    + _MAML_APPC_TABLE2
    + _MAML_APPC_TABLE3
    + _MAML_APPC_TABLE4
    + _MAML_APPC_TABLE5
    + _NODE_TABLE1
    + _NODE_TABLE2
)


def lookup(paper: str, table: str, row: str, column: str) -> Published:
    """Returns the registered entry for one table cell.

    Raises:
        KeyError: naming the cell, when the registry does not hold it.
    """
    for entry in REGISTRY:
        if (entry.paper, entry.table, entry.row, entry.column) == (
            paper,
            table,
            row,
            column,
        ):
            return entry
    raise KeyError(
        f"no published number for {paper} {table} row={row!r} column={column!r}"
    )


def table(paper: str, table_name: str) -> list[Published]:
    """Returns every registered entry of one table, in registry order."""
    return [e for e in REGISTRY if e.paper == paper and e.table == table_name]


# --- Claims stated as ranges in the text (not table cells) ---------------------


@dataclasses.dataclass(frozen=True)
class Claim:
    """A quantitative claim a paper states in its text, as a range.

    Attributes:
        paper: Key of `PAPERS`.
        key: Short identifier used by the experiment code.
        statement: The claim in words, as the reports print it.
        low: Lower end of the stated range (None: unbounded).
        high: Upper end of the stated range (None: unbounded).
        unit: What low and high measure.
        source: Where the paper states it.
    """

    paper: str
    key: str
    statement: str
    low: float | None
    high: float | None
    unit: str
    source: str


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "magnet",
        "triplet_error",
        "magnet's error is 30-40% lower (relative) than triplet's",
        0.30,
        0.40,
        "relative error reduction",
        "abstract",
    ),
    Claim(
        "magnet",
        "softmax_error",
        "magnet matches or beats softmax",
        0.0,
        None,
        "relative error reduction",
        "abstract",
    ),
    Claim(
        "magnet",
        "speed",
        "magnet reaches triplet's error in 5-30x fewer iterations",
        5.0,
        30.0,
        "x fewer training iterations",
        "abstract",
    ),
    Claim(
        "magnet",
        "hierarchy_softmax",
        "10-25% relative gain over softmax (fine-label kNN)",
        0.10,
        0.25,
        "relative error reduction",
        "abstract (hierarchy recovery)",
    ),
    Claim(
        "magnet",
        "hierarchy_triplet",
        "25-50% relative gain over triplet (fine-label kNN)",
        0.25,
        0.50,
        "relative error reduction",
        "abstract (hierarchy recovery)",
    ),
    # "About half": the 0.4-0.6 band is this project's reading of "about".
    Claim(
        "neural_ode",
        "backward_half",
        "backward NFE about half the forward NFE (Fig. 3c)",
        0.4,
        0.6,
        "backward / forward NFE",
        "Section 3, Fig. 3c",
    ),
)


def claim(paper: str, key: str) -> Claim:
    """Returns a registered claim.

    Raises:
        KeyError: naming the claim, when the registry does not hold it.
    """
    for entry in CLAIMS:
        if (entry.paper, entry.key) == (paper, key):
            return entry
    raise KeyError(f"no registered claim {key!r} of {paper}")
