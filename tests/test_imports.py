"""The package's import graph: one direction of data flow, no private names across modules.

Walks every module of ``ase_cg`` and ``lammps_interface`` with :mod:`ast` (imports inside
functions included) and asserts that the graph of internal imports has no cycle and that no
module uses another module's private name (``from x import _name`` or ``x._name``); private
*modules* (``ase_cg._keys``, ...) are shared within the package on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ase_cg", "lammps_interface")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def internal(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES


def import_graph():
    """module → imported internal modules, and the private names each module uses."""
    mods = modules()
    graph, private = {name: set() for name in mods}, []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = {}  # local name → internal module it refers to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and internal(node.module):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in mods:  # a module imported from its package
                        graph[name].add(target)
                        aliases[alias.asname or alias.name] = target
                    else:
                        graph[name].add(node.module)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            private.append(f"{name}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if internal(alias.name):
                        graph[name].add(alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                private.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    # a package's __init__ is not an edge back to its own modules' importers
    for name in graph:
        graph[name] = {m for m in graph[name] if m in mods and m != name}
    return graph, private


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return groups


def test_the_import_graph_has_no_cycle():
    graph, _ = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert cycles(graph) == []


def test_no_private_name_crosses_modules():
    _, private = import_graph()
    assert private == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
