"""The published-number registry: integrity and protocol facts of the papers."""

import collections

import pytest

from common import published


def test_keys_are_unique_and_sources_complete():
    keys = [(e.paper, e.table, e.row, e.column) for e in published.REGISTRY]
    duplicates = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert not duplicates
    for e in published.REGISTRY:
        assert e.paper in published.PAPERS
        assert e.table and e.row and e.column and e.unit
        assert e.ci95 is None or e.ci95 > 0
        assert e.source.startswith(e.paper)


def test_maml_table1_covers_every_maml_cell_with_a_ci():
    columns = {e.column for e in published.table("maml", "Table 1") if e.row == "MAML"}
    assert columns == {
        "Omniglot 5-way 1-shot",
        "Omniglot 5-way 5-shot",
        "Omniglot 20-way 1-shot",
        "Omniglot 20-way 5-shot",
        "MiniImagenet 5-way 1-shot",
        "MiniImagenet 5-way 5-shot",
    }
    assert all(
        e.ci95 is not None
        for e in published.table("maml", "Table 1")
        if e.row == "MAML"
    )
    assert all(0 < e.value <= 100 for e in published.table("maml", "Table 1"))


def test_sinusoid_table_has_maml_and_pretrained_rows_at_1_5_10_steps():
    rows = collections.defaultdict(set)
    for e in published.table("maml", "Appendix C Table 2"):
        rows[e.row].add(e.column)
        assert e.unit == "MSE" and not e.higher_is_better
    for row in ("MAML (ours)", "pretrain on all tasks"):
        assert rows[row] == {"1 step", "5 steps", "10 steps"}
    # MAML improves with more steps, and beats the pretrained baseline: the
    # paper's qualitative claim, which the registry must not contradict.
    maml = [
        published.lookup("maml", "Appendix C Table 2", "MAML (ours)", c).value
        for c in ("1 step", "5 steps", "10 steps")
    ]
    pre = [
        published.lookup("maml", "Appendix C Table 2", "pretrain on all tasks", c).value
        for c in ("1 step", "5 steps", "10 steps")
    ]
    assert maml == sorted(maml, reverse=True)
    assert all(m < p for m, p in zip(maml, pre, strict=True))


def test_neural_ode_tables_present():
    assert {e.row for e in published.table("neural_ode", "Table 1")} >= {
        "ResNet",
        "RK-Net",
        "ODE-Net",
    }
    assert {e.row for e in published.table("neural_ode", "Table 2")} == {
        "RNN",
        "Latent ODE",
    }


def test_lookup_names_the_missing_cell():
    with pytest.raises(KeyError, match="Table 1"):
        published.lookup("maml", "Table 1", "nonexistent", "x")


def test_claims_are_registered_with_a_source_and_an_ordered_range():
    keys = [(c.paper, c.key) for c in published.CLAIMS]
    assert len(keys) == len(set(keys))
    for c in published.CLAIMS:
        assert c.paper in published.PAPERS and c.source and c.statement
        assert c.low is None or c.high is None or c.low <= c.high
    with pytest.raises(KeyError, match="no registered claim"):
        published.claim("magnet", "nonsense")
