"""The shared command-line convention: config fields as flags, one value parser."""

from __future__ import annotations

import dataclasses

import pytest
from absl import flags

from common import cli


@dataclasses.dataclass(frozen=True)
class First:
    """First experiment.

    Attributes:
        experiment: Name.
        steps: Training steps
            (continued on a second line).
        sizes: Hidden sizes.
        rate: Learning rate, or none for the default.
        first_order: Use the approximation.
    """

    experiment: str = "first"
    steps: int = 10
    sizes: tuple[int, ...] = (8,)
    rate: float | None = None
    first_order: bool = False


@dataclasses.dataclass(frozen=True)
class Second:
    """Second experiment.

    Attributes:
        steps: Training steps.
        mode: A mode.
    """

    steps: int = 5
    mode: str = "a"


@pytest.mark.parametrize(
    "text, annotation, expected",
    [
        ("3", int, 3),
        ("1e5", int, 100000),
        ("0.5", float, 0.5),
        ("x", str, "x"),
        ("true", bool, True),
        ("0", bool, False),
        ("none", int | None, None),
        ("4", int | None, 4),
        ("1,2, 3", tuple[int, ...], (1, 2, 3)),
        ("", tuple[int, ...], ()),
        ("a,b", tuple[str, ...], ("a", "b")),
        ("1,x", tuple[int, str], (1, "x")),
    ],
)
def test_parse_value(text, annotation, expected):
    assert cli.parse_value(text, annotation) == expected


@pytest.mark.parametrize(
    "text, annotation",
    [
        ("1.5", int),
        ("maybe", bool),
        ("x", float),
        ("1,2,3", tuple[int, str]),
        ("__import__('os')", int),
    ],
)
def test_parse_value_rejects(text, annotation):
    with pytest.raises(ValueError):
        cli.parse_value(text, annotation)


def test_descriptions_come_from_the_attributes_section():
    desc = cli.field_descriptions(First)
    assert desc["steps"] == "Training steps (continued on a second line)."
    assert desc["first_order"] == "Use the approximation."
    assert set(desc) == {f.name for f in dataclasses.fields(First)}


def _flags():
    fv = flags.FlagValues()
    flags.DEFINE_integer("seed", 0, "already defined", flag_values=fv)
    holders = cli.define_config_flags(
        {"first": First, "second": Second}, flag_values=fv
    )
    return fv, holders


def test_every_field_becomes_one_flag_with_its_help():
    fv, holders = _flags()
    assert set(holders) == {"steps", "sizes", "rate", "first_order", "mode"}
    assert "Training steps" in fv["steps"].help
    assert "applies to all experiments" in fv["steps"].help
    assert "applies to second" in fv["mode"].help
    assert isinstance(fv["first_order"], flags.BooleanFlag)


def test_flags_build_the_config_and_unset_flags_keep_defaults():
    fv, holders = _flags()
    fv(["prog", "--steps=7", "--sizes=16,16", "--first_order", "--rate=none"])
    raw = cli.overrides_from_flags(holders, ["steps=9"])  # --set wins (given last)
    cfg = cli.config_from_overrides(First, raw)
    assert cfg == First(steps=9, sizes=(16, 16), rate=None, first_order=True)
    fv2, holders2 = _flags()
    fv2(["prog"])
    assert (
        cli.config_from_overrides(Second, cli.overrides_from_flags(holders2))
        == Second()
    )


def test_a_flag_of_another_experiment_or_a_bad_value_names_the_flag():
    fv, holders = _flags()
    fv(["prog", "--mode=b"])
    with pytest.raises(ValueError, match="--mode does not apply"):
        cli.config_from_overrides(First, cli.overrides_from_flags(holders))
    with pytest.raises(ValueError, match="--steps=many"):
        cli.config_from_overrides(First, {"steps": "many"})
    with pytest.raises(ValueError, match="field=value"):
        cli.overrides_from_flags({}, ["steps"])


def test_run_experiment_exits_2_on_bad_input_and_runs_otherwise(tmp_path, capsys):
    def bad_build():
        raise ValueError("--steps must be > 0")

    with pytest.raises(SystemExit) as e:
        cli.run_experiment("x", bad_build, lambda c, d: {}, claim=lambda *a: False)
    assert e.value.code == 2
    assert "error: --steps must be > 0" in capsys.readouterr().err

    def run(cfg, run_dir):
        return {"status": "complete", "cfg": cfg}

    record = cli.run_experiment(
        "x",
        lambda: (First(), str(tmp_path), ()),
        run,
        claim=lambda *a: True,
        export=lambda d: d + "/export",
    )
    assert record["status"] == "complete"
    out = capsys.readouterr().out
    assert "(resuming)" in out and "exported SavedModel" in out


@dataclasses.dataclass(frozen=True)
class Child(Second):
    """A config extending another.

    Attributes:
        extra: An extra field.
        mode: The child's own words.
    """

    extra: int = 1


def test_descriptions_of_inherited_fields_come_from_the_base_class():
    desc = cli.field_descriptions(Child)
    assert desc == {
        "steps": "Training steps.",
        "mode": "The child's own words.",
        "extra": "An extra field.",
    }


def test_unparsed_flags_count_as_not_given():
    fv, holders = _flags()  # argv never parsed, as when a test calls a main's helper
    assert cli.overrides_from_flags(holders, ["steps=2"]) == {"steps": "2"}


def test_set_training_length_maps_converts_and_rejects():
    @dataclasses.dataclass(frozen=True)
    class Run:
        experiment: str = "demo"
        epochs: float = 1.0

    per_epoch = 4
    got = cli.set_training_length(
        Run(), "10", "epochs", per_iteration=lambda cfg, n: n / per_epoch
    )
    assert got.epochs == 2.5
    assert cli.set_training_length(Run(), None, "epochs") == Run()
    for value, field, explicit, message in [
        ("10", None, (), "does not apply to demo"),
        ("0", "epochs", (), ">= 1"),
        ("ten", "epochs", (), "--num_iterations=ten"),
        ("10", "epochs", ("epochs",), "both set the training length"),
    ]:
        with pytest.raises(ValueError, match=message):
            cli.set_training_length(Run(), value, field, explicit=explicit)


def test_run_export_prints_the_path_or_exits_2_with_one_line(capsys):
    cli.run_export(lambda: "/models/m/3")
    assert capsys.readouterr().out == "/models/m/3\n"

    def missing():
        raise FileNotFoundError("no finished run in runs/x")

    with pytest.raises(SystemExit) as stop:
        cli.run_export(missing)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: no finished run in runs/x\n"
