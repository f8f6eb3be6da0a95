"""Experiment configs: paper defaults, validation messages, deviation labels."""

import dataclasses

import pytest

from maml.experiments import configs


def test_sinusoid_defaults_are_the_paper_protocol():
    cfg = configs.SinusoidConfig()
    for field, value in configs.SINUSOID_PAPER_PROTOCOL.items():
        assert getattr(cfg, field) == value, field
    assert cfg.eval_shots == (5, 10, 20) and cfg.eval_tasks == 600
    assert cfg.eval_max_steps == 10
    assert cfg.deviations("maml") == [] and cfg.deviations("pretrain") == []
    assert cfg.network().layer_sizes == (1, 40, 40, 1)


@pytest.mark.parametrize(
    "field,value,flag",
    [
        ("num_shots", 0, "--num_shots"),
        ("num_shots", -3, "--num_shots"),
        ("alpha", 0.0, "--alpha"),
        ("alpha", -1.0, "--alpha"),
        ("alpha", float("nan"), "--alpha"),
        ("meta_batch_size", 0, "--meta_batch_size"),
        ("num_iterations", -1, "--num_iterations"),
    ],
)
def test_bad_values_name_the_flag(field, value, flag):
    with pytest.raises(ValueError, match=flag):
        configs.SinusoidConfig(**{field: value})


def test_deviations_are_labelled_per_row():
    cfg = configs.SinusoidConfig(num_iterations=1000, alpha=0.001, first_order=True)
    maml = cfg.deviations("maml")
    assert any("1,000 of the paper's 70,000 meta-iterations" in d for d in maml)
    assert any("official code's default" in d for d in maml)
    assert any("first-order" in d for d in maml)
    pre = cfg.deviations("pretrain")
    assert not any("meta-iterations" in d or "first-order" in d for d in pre)
    assert any("alpha" in d for d in pre)


def test_named_sinusoid_configs_paper_and_official_code():
    # Paper section 5.1: alpha = 0.01. Official code (cbfinn/maml main.py): the
    # sinusoid command leaves --update_lr at its default, 1e-3.
    paper = configs.make_config("sinusoid")
    official = configs.make_config("sinusoid_official")
    assert paper.alpha == 0.01 and official.alpha == 0.001
    assert official.experiment == "sinusoid_official"
    differing = [
        f.name
        for f in dataclasses.fields(paper)
        if getattr(paper, f.name) != getattr(official, f.name)
    ]
    assert differing == ["experiment", "alpha"]
    assert {"sinusoid", "sinusoid_official"} <= set(configs.all_experiments())
    assert official.deviations("maml") == [
        "alpha = 0.001 (the official code's default); paper: 0.01"
    ]
    assert configs.make_config("sinusoid_official", seed=3).alpha == 0.001
