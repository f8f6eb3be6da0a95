"""The BUILD file is true to the code, and the code's import graph has no cycles.

Bazel runs each test in a sandbox holding only the files of its target's
transitive `deps`; a module a test imports but its target does not list works
under pytest and fails under `bazel test` (CI saw this twice). This test finds such
gaps without Bazel: it evaluates BUILD with stand-ins for the rules (Starlark's
syntax here is a subset of Python's), reads every project import of every file
(including the scripts and `-m` modules tests hand to child processes), and checks that
each imported project file is in the importing target's transitive sources.
"""

from __future__ import annotations

import ast
import glob as glob_lib
import os
import re
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("common", "maml", "neural_ode", "magnet", "benchmarks", "tests")
_SKIP_DIRS = {".venv", "runs", "resume_state", "results", ".git", "tools"}

# `from pkg.mod import a, b` / `from pkg import (a, b)` / `import pkg.mod`, found in
# code and in strings alike.
_PKG = "|".join(PACKAGES)
_FROM = re.compile(
    rf"^\s*from\s+((?:{_PKG})(?:\.\w+)*)\s+import\s+(\([^)]*\)|[^\n#]*)", re.M
)
_IMPORT = re.compile(rf"^\s*import\s+((?:{_PKG})(?:\.\w+)+)", re.M)
# Modules run as child processes: `[sys.executable, "-m", "pkg.main", ...]`.
_RUN_MODULE = re.compile(rf"""["']-m["'],\s*["']((?:{_PKG})(?:\.\w+)+)["']""")
# Tests only: a string that is a whole dotted module name (a main in a list
# of mains, a docstring-example module list) is a module the test loads.
_MODULE_STRING = re.compile(rf"""["']((?:{_PKG})(?:\.\w+)+)["']""")


def _load_build() -> dict[str, dict]:
    """Evaluates BUILD; returns {target name: {"srcs": [...], "deps": [...]}}."""
    targets: dict[str, dict] = {}

    def rule(**kw):
        targets[kw["name"]] = {
            "srcs": list(kw.get("srcs", [])),
            "deps": [d.lstrip(":") for d in kw.get("deps", [])],
        }

    def glob(patterns):
        return sorted(
            {
                os.path.relpath(f, REPO)
                for p in patterns
                for f in glob_lib.glob(os.path.join(REPO, p), recursive=True)
            }
        )

    scope = {
        "package": lambda **_: None,
        "py_library": rule,
        "py_binary": rule,
        "py_test": rule,
        "glob": glob,
    }
    with open(os.path.join(REPO, "BUILD")) as f:
        exec(compile(f.read(), "BUILD", "exec"), scope)  # noqa: S102 (our own file)
    return targets


def _project_files() -> Iterator[str]:
    for root, dirs, files in os.walk(REPO):
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not d.startswith((".", "bazel-"))
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(root, name), REPO)


def _module_file(module: str) -> str | None:
    path = module.replace(".", "/")
    for candidate in (path + ".py", path + "/__init__.py"):
        if os.path.exists(os.path.join(REPO, candidate)):
            return candidate
    return None


def imported_files(src: str) -> set[str]:
    """The project files `src` imports (its own package `__init__`s included)."""
    with open(os.path.join(REPO, src)) as f:
        text = f.read()
    found: set[str] = set()
    for module, names in _FROM.findall(text):
        base = _module_file(module)
        if base:
            found.add(base)
        for name in re.findall(r"\w+", re.sub(r"\s+as\s+\w+", "", names)):
            sub = _module_file(f"{module}.{name}")
            if sub:
                found.add(sub)
    modules = _IMPORT.findall(text) + _RUN_MODULE.findall(text)
    if src.startswith("tests/"):
        modules += [m for m in _MODULE_STRING.findall(text) if _module_file(m)]
    for module in modules:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            f = _module_file(".".join(parts[:i]))
            if f:
                found.add(f)
    found.discard(src)
    return found


def _transitive_srcs(
    targets: dict[str, dict], name: str, memo: dict[str, set[str]]
) -> set[str]:
    if name not in memo:
        memo[name] = set()  # guards against dependency cycles in BUILD itself
        srcs = set(targets[name]["srcs"])
        for dep in targets[name]["deps"]:
            assert dep in targets, f"{name} depends on unknown target :{dep}"
            srcs |= _transitive_srcs(targets, dep, memo)
        memo[name] = srcs
    return memo[name]


TARGETS = _load_build()


def test_every_python_file_has_a_target():
    owned = {s for t in TARGETS.values() for s in t["srcs"]}
    missing = [
        f for f in _project_files() if f not in owned and f.split("/")[0] in PACKAGES
    ]
    assert not missing, f"files in no BUILD target: {missing}"


def test_every_listed_source_exists():
    absent = sorted(
        {
            s
            for t in TARGETS.values()
            for s in t["srcs"]
            if not os.path.exists(os.path.join(REPO, s))
        }
    )
    assert not absent, f"BUILD lists files that do not exist: {absent}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_deps_cover_its_imports(name):
    memo: dict[str, set[str]] = {}
    available = _transitive_srcs(TARGETS, name, memo)
    needed = set()
    for src in TARGETS[name]["srcs"]:
        needed |= imported_files(src)
    missing = sorted(needed - available)
    assert not missing, (
        f":{name} imports {missing}, which are in none of its "
        "transitive deps (add the owning targets to its deps)"
    )


def _import_graph() -> dict[str, set[str]]:
    """Module-level imports of library code (function-level imports included)."""
    graph: dict[str, set[str]] = {}
    for src in _project_files():
        if src.split("/")[0] not in ("common", "maml", "neural_ode", "magnet"):
            continue
        with open(os.path.join(REPO, src)) as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                base = _module_file(node.module)
                subs = [_module_file(f"{node.module}.{a.name}") for a in node.names]
                deps |= {s for s in subs if s} or ({base} if base else set())
            elif isinstance(node, ast.Import):
                for a in node.names:
                    f = _module_file(a.name)
                    if f:
                        deps.add(f)
        deps.discard(src)
        graph[src] = deps
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_library_import_graph_has_no_cycles():
    cycle = _find_cycle(_import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = _find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def is_harness(src: str) -> bool:
    """Reproduction harness, not library: `*/experiments/` and command-line scripts."""
    if "/experiments/" in src:
        return True
    with open(os.path.join(REPO, src)) as f:
        return 'if __name__ == "__main__":' in f.read()


@pytest.mark.parametrize("package", ["common", "maml", "neural_ode", "magnet"])
def test_library_modules_never_import_the_harness(package):
    offenders = sorted(
        f"{src} imports {dep}"
        for src, deps in _import_graph().items()
        if src.startswith(package + "/") and not is_harness(src)
        for dep in deps
        if is_harness(dep)
    )
    assert not offenders, (
        "library modules import reproduction harness modules "
        f"(move the shared code into the library): {offenders}"
    )
