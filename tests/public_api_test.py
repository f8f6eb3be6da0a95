"""Each paper package's public names import, and its docstring examples run."""

from __future__ import annotations

import doctest
import importlib

import pytest

PACKAGES = ("maml", "magnet", "neural_ode")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None, (package, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", ("maml", "magnet", "neural_ode"))
def test_package_docstring_example_runs(package):
    module = importlib.import_module(package)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)[:2]
    assert tried > 0 and failures == 0


def test_neural_ode_exports_the_solver_and_the_block():
    from neural_ode import ODEBlock, SolverConfig, odeint  # noqa: PLC0415
    from neural_ode.ode_block import ODEBlock as block_class  # noqa: PLC0415
    from neural_ode.solver import odeint as solver_function  # noqa: PLC0415

    assert odeint is solver_function and callable(odeint)
    assert ODEBlock is block_class
    assert SolverConfig().method == "dopri5"


def test_maml_exports_the_library_nouns():
    from maml import (  # noqa: PLC0415
        MAML,
        MLP,
        MetaTrainer,
        keras_maml,
        meta_gradient,
        meta_learner,
        meta_trainer,
        networks,
    )

    assert MAML is keras_maml.MAML and MLP is networks.MLP
    assert MetaTrainer is meta_trainer.MetaTrainer
    assert meta_gradient is meta_learner.meta_gradient
    package = importlib.import_module("maml")
    assert set(package.__all__) <= set(dir(package))


def test_maml_public_names_load_lazily_and_skip_the_harness():
    """`import maml` loads no submodule; no public name lives in the harness."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys, maml; print(sorted(m for m in sys.modules "
        "if m.startswith('maml.')))"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=repo,
    ).stdout
    assert out.strip() == "[]"
    maml = importlib.import_module("maml")
    assert not [
        n
        for n in maml.__all__
        if getattr(maml, n).__module__.startswith("maml.experiments.")
    ]
