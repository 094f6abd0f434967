"""The package's import graph: one direction of data flow, no private names across modules.

Walks every module of ``ase_cg`` and ``lammps_interface`` with :mod:`ast` (imports inside
functions included) and asserts that the graph of internal imports has no cycle and that no
module uses another module's private name (``from x import _name`` or ``x._name``); private
*modules* (``ase_cg._keys``, ...) are shared within the package on purpose.

Imports sit at the top of a module, where they show its dependencies. Inside a function there
may only be imports of heavy or optional third-party libraries, each under a comment that says
why; the ``ase-cg`` subcommands (``ase_cg/commands``) also import the library there, to keep
``ase-cg --help`` fast, and the ``lammps_interface`` package loads ``export`` lazily.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from _paths import REPO_ROOT

ROOT = REPO_ROOT
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


#: Where a function may import the package's own modules (see the module docstring).
LAZY_INTERNAL = ("ase_cg/commands/", "lammps_interface/__init__.py")


def function_level_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, has a comment saying why) of each import inside a function.

    The comment is on the import's own line or on the line above its block of imports.
    """
    lines = path.read_text().splitlines()
    found = []
    for function in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            above = node.lineno - 2
            while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
                above -= 1
            explained = "#" in lines[node.lineno - 1] or (
                above >= 0 and lines[above].strip().startswith("#")
            )
            found.append((node.lineno, module, explained))
    return found


def misplaced_imports() -> list[str]:
    """Imports inside functions that belong at the top of their module."""
    wrong = []
    for path in modules().values():
        where = path.relative_to(ROOT).as_posix()
        for line, module, explained in function_level_imports(path):
            top = module.split(".")[0]
            if module.startswith(".") or internal(module):
                if not where.startswith(LAZY_INTERNAL):
                    wrong.append(f"{where}:{line}: {module} (internal)")
            elif top in sys.stdlib_module_names:
                wrong.append(f"{where}:{line}: {module} (standard library)")
            elif not explained and not where.startswith(LAZY_INTERNAL):
                wrong.append(f"{where}:{line}: {module} (no comment says why it is lazy)")
    return wrong


def test_imports_are_at_module_top():
    assert misplaced_imports() == []


def test_function_level_imports_are_found(tmp_path):
    path = tmp_path / "example.py"
    path.write_text(
        "import os\n\n\ndef f():\n    # heavy: torch\n    import torch\n"
        "    from torch import nn\n    n = 1\n    import json\n    from ase_cg import md  # why\n"
    )
    assert function_level_imports(path) == [
        (6, "torch", True),
        (7, "torch", True),
        (9, "json", False),
        (10, "ase_cg", True),
    ]
