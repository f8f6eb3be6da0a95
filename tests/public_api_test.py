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


@pytest.mark.parametrize("package", ("magnet", "neural_ode"))
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
