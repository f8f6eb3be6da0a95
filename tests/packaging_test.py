"""Packaging: pyproject.toml, the requirement files and the constraints agree."""

from __future__ import annotations

import os
import re
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requirements(name: str) -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO, name)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            pkg, _, version = line.partition("==")
            pins[re.sub(r"\[.*\]", "", pkg).lower().replace("_", "-")] = version
    return pins


def _pyproject() -> dict:
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_pyproject_dependencies_equal_the_runtime_requirements():
    deps = {}
    for spec in _pyproject()["project"]["dependencies"]:
        pkg, _, version = spec.partition("==")
        deps[re.sub(r"\[.*\]", "", pkg).lower().replace("_", "-")] = version
    assert deps == _requirements("requirements-runtime.txt")


def test_every_requirement_is_pinned_to_the_constraints_version():
    constraints = _requirements("constraints.txt")
    for name in ("requirements-runtime.txt", "requirements.txt"):
        for pkg, version in _requirements(name).items():
            assert version, f"{name}: {pkg} is not pinned"
            assert constraints.get(pkg) == version, (name, pkg, version)


def test_console_scripts_point_at_functions():
    # Parsed, not imported: the three mains define flags of the same names, so
    # they cannot share one process.
    import ast  # noqa: PLC0415

    for target in _pyproject()["project"]["scripts"].values():
        module, _, attr = target.partition(":")
        path = os.path.join(REPO, *module.split(".")) + ".py"
        with open(path) as f:
            tree = ast.parse(f.read())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert attr in names, target
