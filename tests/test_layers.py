"""The library's layers import downwards only, never in a circle, and never from tests/.

The stack, lowest first (README, "Layout")::

    core -> networks, data -> formulations, algorithms -> analysis -> papers -> notebooks

A module may import its own layer and the layers below it; a paper imports
no other paper. Every import counts, also one inside a function: it runs just
the same when the function does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evgrid.core.paths import repo_path

PACKAGE = repo_path("lib", "evgrid")

#: Rank of each layer: a module may import modules of its rank or below.
LAYERS = {
    "core": 0,
    "networks": 1,
    "data": 1,
    "formulations": 2,
    "algorithms": 2,
    "analysis": 3,
    "papers": 4,
}
#: Top-level names no library module may import.
FORBIDDEN = {"tests", "conftest"}

MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    """``lib/evgrid/a/b.py`` -> ``evgrid.a.b``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(module: str) -> bool:
    return (PACKAGE.parent.joinpath(*module.split(".")) / "__init__.py").exists()


def imported_modules(module: str, source: str) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``source``, at any depth.

    Relative imports are resolved against ``module``; ``from package import
    name`` counts as an import of ``package.name`` where that is a module.
    """
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                is_module = PACKAGE.parent.joinpath(*full.split(".")).with_suffix(".py").exists()
                found.append((full if is_module or _is_package(full) else base, node.lineno))
    return found


def layer_of(module: str) -> str | None:
    """The layer of an ``evgrid`` module (None for the root package ``evgrid``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(module: str, source: str) -> list[str]:
    """Every import of ``module`` (source ``source``) that breaks the layering."""
    own = layer_of(module)
    problems = []
    for imported, line in imported_modules(module, source):
        top = imported.split(".")[0]
        if top in FORBIDDEN:
            problems.append(f"{module}:{line} imports {imported} (library code must not use tests)")
            continue
        if top != "evgrid" or own is None:
            continue
        target = layer_of(imported)
        if target is None or target not in LAYERS:
            problems.append(f"{module}:{line} imports {imported}, which belongs to no layer")
        elif own == "core" and target != "core":
            problems.append(f"{module}:{line} (core) imports {imported}: core imports only core")
        elif LAYERS[target] > LAYERS[own]:
            problems.append(f"{module}:{line} ({own}) imports {imported} ({target}), a higher layer")
        elif own == target == "papers" and imported.split(".")[:3] != module.split(".")[:3]:
            problems.append(f"{module}:{line} imports another paper, {imported}")
    return problems


def test_every_module_lies_in_a_layer():
    outside = [
        module_name(p)
        for p in MODULES
        if module_name(p) != "evgrid" and layer_of(module_name(p)) not in LAYERS
    ]
    assert not outside, f"modules outside the layers {sorted(LAYERS)}: {outside}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_go_down_the_layers(path):
    assert not violations(module_name(path), path.read_text())


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of a module -> imported modules graph, each as a closed path."""
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_two_modules_import_each_other_even_indirectly():
    graph = {module_name(p): set() for p in MODULES}
    for p in MODULES:
        for imported, _ in imported_modules(module_name(p), p.read_text()):
            if imported in graph and imported != module_name(p):
                graph[module_name(p)].add(imported)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("evgrid.core.config", "from evgrid.networks import LOADERS", "core imports only core"),
        ("evgrid.core.run", "def f():\n    import evgrid.papers.eva2025\n", "core imports only core"),
        ("evgrid.networks.ieee13", "from evgrid.formulations import fleet", "a higher layer"),
        ("evgrid.data.market", "from evgrid.analysis.powerflow import run_ac_power_flow",
         "a higher layer"),
        ("evgrid.formulations.distflow", "from evgrid.analysis import powerflow", "a higher layer"),
        ("evgrid.algorithms.benders", "from evgrid.papers.kerama2025 import model",
         "a higher layer"),
        ("evgrid.analysis.acverify", "from ..papers.kerama2025.case import N_PERIODS",
         "a higher layer"),
        ("evgrid.papers.eva2025.model", "from evgrid.papers.kerama2025.case import DT_H",
         "another paper"),
        ("evgrid.networks.ieee13", "from tests.reference import x", "must not use tests"),
        ("evgrid.papers.kerama2025.model", "def f():\n    from conftest import make_small_kerama\n",
         "must not use tests"),
        ("evgrid.formulations.fleet", "import evgrid.parallel_helpers", "belongs to no layer"),
    ],
)
def test_the_layer_check_catches_what_it_should(module, source, expected):
    found = violations(module, source)
    assert found and expected in found[0], found


def test_imports_downwards_and_within_a_paper_pass_the_check():
    assert not violations("evgrid.papers.kerama2025.model",
                          "from evgrid.core.solvers import solve\n"
                          "from evgrid.formulations.network import declare_network\n"
                          "from . import case\n")
    assert not violations("evgrid.analysis.powerflow", "from evgrid.networks import opendss")
