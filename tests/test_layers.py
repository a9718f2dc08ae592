"""The import-layer contract: two storeys, no cycles.

The library (everything under ``lossgeometry`` except ``lossgeometry.app``) must never import
the application (``lossgeometry.app``), directly or through a chain; and no group of modules
may import each other in a loop. The package root ``lossgeometry/__init__.py`` is the public
face of both storeys (it re-exports ``lg.sweep``), so it is the one module allowed to import
from ``app`` and is left out of the cycle check as an importer of its own sub-packages.

The graph is built by grimp (the engine of import-linter) from the source, so imports inside
functions count too.
"""

from __future__ import annotations

import grimp
import pytest

ROOT = "lossgeometry"
APP = "lossgeometry.app"
ENTRY = "lossgeometry.__main__"  # `python -m lossgeometry`: the CLI's entry, an app module


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ROOT, include_external_packages=False)


def _is_app(module: str) -> bool:
    return module in (APP, ENTRY) or module.startswith(APP + ".")


def test_library_never_imports_the_application(graph: grimp.ImportGraph) -> None:
    bad = []
    for module in sorted(graph.modules):
        if module == ROOT or _is_app(module):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if _is_app(imported):
                bad.append(f"{module} -> {imported}")
    assert not bad, "library modules import the application:\n" + "\n".join(bad)


def test_no_chain_from_library_to_application(graph: grimp.ImportGraph) -> None:
    library_tops = {m for m in graph.find_children(ROOT) if not _is_app(m)}
    bad = [m for m in sorted(library_tops) if graph.chain_exists(m, APP, as_packages=True)]
    assert not bad, f"an import chain runs from {bad} up to {APP}"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m != ROOT)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i != ROOT)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in modules:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_can_fail() -> None:
    g = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y"):
        g.add_module(m)
    g.add_import(importer="a.x", imported="a.y")
    g.add_import(importer="a.y", imported="a.x")
    global ROOT
    saved, ROOT = ROOT, "a"
    try:
        assert _cycles(g) == [["a.x", "a.y"]]
    finally:
        ROOT = saved


# What each part of the library may import (docs/design.md, "Two storeys: layout and
# layers"). A part is a top-level module or package of lossgeometry; the application is one
# part here (its inside is covered by the cycle test). Keep this table and the docs together.
_BASE = {
    "_checks",
    "_collectives",
    "_compat",
    "_plotting",
    "_progress",
    "_version",
    "results",
    "options",
}
_PROBLEM = {
    "problem",
    "_problem_api",
    "_problem_data",
    "_problem_inputs",
    "_problem_setup",
    "_problem_views",
    "_problem_parallel",
    "_precision",
    "_attention",
}
ALLOWED: dict[str, set[str]] = {
    **{m: _BASE | _PROBLEM for m in _PROBLEM},
    **{m: _BASE for m in _BASE},
    "data": _BASE,
    "models": _BASE,
    "operators": _BASE | _PROBLEM,
    "recording": _BASE | _PROBLEM,
    "optim": _BASE,
    "linalg": _BASE | {"operators"},
    "train": _BASE | _PROBLEM | {"optim", "recording"},
    "monitor": _BASE | _PROBLEM | {"recording", "monitor_measures"},
    "monitor_measures": _BASE | _PROBLEM | {"operators", "linalg", "kernel", "curvature"},
    "integrations": _BASE | _PROBLEM | {"monitor", "monitor_measures", "recording"},
    **{m: _BASE | _PROBLEM | {"operators", "linalg"} for m in ("kernel", "curvature", "manifold")},
    "conditions": _BASE
    | _PROBLEM
    | {"operators", "linalg", "kernel", "curvature", "optim", "recording", "train"},
    "examples": _BASE | {"conditions"},
    "surfaces": _BASE | _PROBLEM | {"operators", "linalg", "curvature"},
    "distributed": _BASE | _PROBLEM,
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_each_library_part_imports_only_what_the_design_allows(graph) -> None:
    bad = []
    for module in sorted(graph.modules):
        part = _part(module)
        if module == ROOT or _is_app(module):
            continue
        assert part in ALLOWED, f"{module}: add its part {part!r} to ALLOWED and to the docs"
        for imported in graph.find_modules_directly_imported_by(module):
            other = _part(imported)
            if imported != ROOT and other != part and other not in ALLOWED[part]:
                bad.append(f"{module} -> {imported}")
    assert not bad, "imports the layer table does not allow:\n" + "\n".join(bad)
