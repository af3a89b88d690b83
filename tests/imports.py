"""The import graph of the ``handler`` package, read with ``ast`` (nothing is imported).

Every import counts, function-level ones included: a cycle hidden in a function is a cycle all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "handler"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``handler.comfyui.client``; a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, known: dict[str, Path]) -> Iterator[str]:
    """The handler modules one import statement names: a module, or a module a name is imported from."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        # `from handler.x import y` imports handler.x, and handler.x.y too when y is a submodule.
        names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    else:
        return
    for name in names:
        if name in known:
            yield name


def imports(module: str, known: dict[str, Path], *, top_level_only: bool = False) -> set[str]:
    """The handler modules one module imports directly."""
    tree = ast.parse(known[module].read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    return {name for node in nodes for name in _imported(node, known) if name != module}


def graph(*, top_level_only: bool = False) -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, known, top_level_only=top_level_only) for name in known}


def loaded_by(module: str) -> set[str]:
    """What ``python -m module`` loads from the package: its module-level imports, transitively, with the
    packages that hold them (Python runs each ``__init__`` on the way)."""
    edges = graph(top_level_only=True)
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += edges.get(name, set())
    return seen


def _pop_group(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    """Tarjan's step: the stack down to ``root`` is one strongly connected group."""
    group = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        group.append(member)
        if member == root:
            return group


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = _pop_group(stack, on_stack, node)
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)
