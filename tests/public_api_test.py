"""Each paper package's public names import, and its docstring examples run."""

from __future__ import annotations

import doctest
import importlib

import pytest

# neural_ode gets its public names with the issue-13 layout: its module `odeint`
# shares the name of the function it would export.
PACKAGES = ("maml", "magnet")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None, (package, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", ("magnet",))
def test_package_docstring_example_runs(package):
    module = importlib.import_module(package)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)[:2]
    assert tried > 0 and failures == 0
