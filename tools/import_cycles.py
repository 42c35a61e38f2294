"""List import cycles among naviewer modules (issue 16).

``python tools/import_cycles.py`` parses every ``naviewer/**/*.py`` file (no import is executed) and
builds the graph "module A imports module B" from every ``import`` statement in the file: top level,
inside functions and methods, under ``if TYPE_CHECKING:`` and inside ``try:`` alike. Relative imports
are resolved; ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``.
Importing ``a.b.c`` counts as an edge to ``a.b.c`` only (not to the packages ``a`` and ``a.b`` that
Python also initialises), so a sibling import through a package ``__init__`` is not a cycle unless
the code names the package itself.

Output: one block per strongly connected component of that graph (every module in it reaches every
other), with the shortest cycle through each member; an edge made only by imports inside functions
is written ``~>``, one with a top-level import ``->``. Exit status 1 when there is any cycle.
``--quiet`` prints only the count; ``--json`` prints ``[[module, ...], ...]`` (the components).
``find_cycles()`` is what tests/test_architecture.py calls.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "naviewer"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under ``root/naviewer``."""
    modules: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve_relative(current: str, level: int, module: str | None, modules: dict[str, Path]) -> str:
    base = current.split(".")
    if not _is_package(current, modules):
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    name = ".".join(base)
    return f"{name}.{module}" if module else name


def _top_level_nodes(tree: ast.Module) -> set[int]:
    """ids of import nodes that run when the module is imported (not inside a def or lambda)."""
    top: set[int] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                top.add(id(child))
            visit(child)

    visit(tree)
    return top


def import_graph(root: Path = ROOT) -> dict[str, dict[str, bool]]:
    """``{importer: {imported: top_level}}`` among naviewer modules; ``top_level`` is True when at
    least one of the imports making that edge runs at module import time."""
    modules = module_files(root)
    graph: dict[str, dict[str, bool]] = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top = _top_level_nodes(tree)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (
                    _resolve_relative(name, node.level, node.module, modules)
                    if node.level
                    else (node.module or "")
                )
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.append(candidate if candidate in modules else base)
            else:
                continue
            for target in targets:
                # "import a.b.c" where a.b.c is not a module of ours (an attribute): nearest module.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if not target or target == name:
                    continue
                graph[name][target] = graph[name].get(target, False) or id(node) in top
    return graph


def strongly_connected(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Tarjan's components with more than one module, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def shortest_cycle(graph: dict[str, dict[str, bool]], start: str, within: set[str]) -> list[str]:
    """Shortest path start -> ... -> start inside one component (breadth first)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v]):
            if w not in within:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if v != start else [start, start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return []


def find_cycles(root: Path = ROOT) -> list[list[str]]:
    """The components (each a sorted module list) that hold at least one import cycle."""
    return strongly_connected(import_graph(root))


def format_cycle(graph: dict[str, dict[str, bool]], cycle: list[str]) -> str:
    out = cycle[0]
    for a, b in zip(cycle, cycle[1:]):
        out += (" -> " if graph[a][b] else " ~> ") + b
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds naviewer/)")
    parser.add_argument("--quiet", action="store_true", help="print only the number of components")
    parser.add_argument("--json", action="store_true", help="print the components as JSON")
    args = parser.parse_args(argv)
    graph = import_graph(args.root)
    components = strongly_connected(graph)
    if args.json:
        print(json.dumps(components, indent=1))
    elif not args.quiet:
        for number, component in enumerate(components, 1):
            print(f"component {number}: {len(component)} modules")
            seen: set[tuple[str, ...]] = set()
            for module in component:
                cycle = shortest_cycle(graph, module, set(component))
                # the same cycle found from another member: print it once
                key = tuple(sorted(cycle[:-1]))
                if key in seen:
                    continue
                seen.add(key)
                print("  " + format_cycle(graph, cycle))
    if not args.json:
        print(f"{len(components)} import cycle component(s) among {len(graph)} naviewer modules")
    return 1 if components else 0


if __name__ == "__main__":
    raise SystemExit(main())
