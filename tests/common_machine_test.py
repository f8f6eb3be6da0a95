"""Tests of `common.machine`: the oneDNN request and the machine record."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common import machine, results
from tests.bare_env import REPO, bare_env


@pytest.fixture
def no_onednn_env(monkeypatch):
    monkeypatch.delenv(machine.ONEDNN_ENV, raising=False)
    return monkeypatch


def test_request_turns_onednn_on_for_x86_64(no_onednn_env):
    no_onednn_env.setattr(machine.platform, "machine", lambda: "x86_64")
    machine.request_onednn()
    assert machine.os.environ[machine.ONEDNN_ENV] == "1"


def test_a_users_explicit_choice_wins(no_onednn_env):
    no_onednn_env.setattr(machine.platform, "machine", lambda: "x86_64")
    no_onednn_env.setenv(machine.ONEDNN_ENV, "0")
    machine.request_onednn()
    assert machine.os.environ[machine.ONEDNN_ENV] == "0"


def test_other_architectures_are_left_alone(no_onednn_env):
    no_onednn_env.setattr(machine.platform, "machine", lambda: "aarch64")
    machine.request_onednn()
    assert machine.ONEDNN_ENV not in machine.os.environ


def test_cpu_model_reads_the_model_name_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
    )
    assert machine.cpu_model(str(info)) == "AMD EPYC 7B13"


def test_description_names_the_kernels_and_cores():
    text = machine.description()
    assert "CPU cores" in text and "oneDNN" in text and text.endswith("no GPU")


def test_spread_of_one_machine_is_its_description():
    shares = {"A": {"train_seconds": 120.0, "steps": 50}}
    assert machine.spread(shares, 120.0, 50) == "A"


def test_spread_lists_each_machine_and_the_unrecorded_rest():
    # 3,000 steps in 70 min in all; the record covers 1,000 + 500 steps in
    # 20 + 15 min, so 1,500 steps in 35 min predate it.
    shares = {
        "A": {"train_seconds": 1200.0, "steps": 1000},
        "B": {"train_seconds": 900.0, "steps": 500},
    }
    text = machine.spread(shares, 4200.0, 3000, unit="iteration")
    assert text == (
        "machine not recorded: 1,500 iterations in 35.0 min; "
        "A: 1,000 iterations in 20.0 min; B: 500 iterations in 15.0 min"
    )


def _onednn_after_import(imports: str) -> list[str]:
    """In a plain-environment child: after `imports`, whether TensorFlow runs
    oneDNN kernels and the value of TF_ENABLE_ONEDNN_OPTS, as printed words."""
    code = (
        imports + "from common import machine\n"
        "import os\n"
        "print(machine.onednn_enabled(), os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=bare_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split()


@pytest.mark.skipif(
    machine.platform.machine().lower() not in ("x86_64", "amd64"),
    reason="oneDNN's TensorFlow kernels are built for x86-64 only",
)
@pytest.mark.parametrize(
    "experiment, expected",
    [("omniglot_5w1s", "True"), ("sinusoid", "default")],
)
def test_maml_main_asks_for_onednn_before_tensorflow_starts(experiment, expected):
    # In a plain environment: the classification main's kernels are oneDNN's
    # (the request came before TensorFlow read it); the sinusoid main leaves
    # TensorFlow's own choice for this CPU.
    out = _onednn_after_import(
        f"import sys; sys.argv = ['maml.main', '--experiment', {experiment!r}]\n"
        "import maml.main\n"
    )
    if expected == "True":
        assert out == ["True", "1"]
    else:
        assert out[1] == "None"  # not requested: TensorFlow's default for the CPU


def test_short_name_gives_the_models_of_descriptions_and_spreads():
    new = "x86_64 AMD EPYC, 2 CPU cores, Linux 6, Python 3.11.7, oneDNN on, no GPU"
    old = "x86_64, 2 CPU cores, Linux 6, Python 3.11.7, no GPU"  # before models
    assert machine.short_name(new) == "AMD EPYC"
    assert machine.short_name(old) == ""
    spread = machine.spread(
        {new: {"train_seconds": 60.0, "steps": 10}}, 120.0, 30, unit="iteration"
    )
    assert machine.short_name(spread) == "earlier machine + AMD EPYC"


def test_budget_cells_name_the_cpu_where_it_was_recorded():
    base = {"iterations": 150, "target_iterations": 60_000, "wall_time_s": 600.0}
    new = "x86_64 AMD EPYC, 2 CPU cores, Linux 6, Python 3.11.7, oneDNN on, no GPU"
    assert results.format_budget({**base, "machine": new}) == (
        "150 it of 60,000, 10.0 min, AMD EPYC"
    )
    old = "x86_64, 2 CPU cores, Linux 6, Python 3.11.7, no GPU"
    assert (
        results.format_budget({**base, "machine": old}) == "150 it of 60,000, 10.0 min"
    )


def test_records_that_differ_only_in_the_kernel_release_are_one_machine():
    # Older descriptions named the kernel release; the same CPU after a kernel
    # update is the same compute, so its sittings add up (20 + 10 steps).
    a = "x86_64 AMD EPYC, 2 CPU cores, Linux 6.1.0-18-amd64, Python 3.11.7, oneDNN on"
    b = "x86_64 AMD EPYC, 2 CPU cores, Linux 6.1.0-21-amd64, Python 3.11.7, oneDNN on"
    text = machine.spread(
        {
            a: {"train_seconds": 40.0, "steps": 20},
            b: {"train_seconds": 20.0, "steps": 10},
        },
        60.0,
        30,
    )
    assert text == "x86_64 AMD EPYC, 2 CPU cores, Linux, Python 3.11.7, oneDNN on"
    assert "Linux," in machine.description()


@pytest.mark.skipif(
    machine.platform.machine().lower() not in ("x86_64", "amd64"),
    reason="oneDNN's TensorFlow kernels are built for x86-64 only",
)
@pytest.mark.parametrize("main", ["magnet.main", "magnet.study_main"])
def test_magnet_mains_ask_for_onednn_before_tensorflow_starts(main):
    assert _onednn_after_import(f"import {main}\n") == ["True", "1"]
