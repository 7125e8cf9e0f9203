#!/usr/bin/env python3
"""Find import circles in a Python package, counting every import: module level, inside functions and
classes, and under ``if TYPE_CHECKING:``.

Usage: ``python .ci/import_graph.py [PACKAGE_DIR] [--layers]`` (PACKAGE_DIR defaults to ``gpuconv``).

Edges:
- ``import a.b.c`` / ``from a.b import c``: an edge to the named module (``a.b.c`` when ``c`` is a submodule,
  else ``a.b``), plus an edge to every package ``__init__`` on its dotted path that is not an ancestor package of
  the importing module (importing ``gpuconv.x.y`` from outside ``gpuconv.x`` runs ``gpuconv/x/__init__.py``;
  an ancestor's ``__init__`` is already running).
- Importing the top package itself from inside it (``import gpuconv``, ``from gpuconv import get_runtime``,
  ``from .. import name_defined_in_init``) is an edge to its ``__init__``.
- ``importlib.import_module("literal")`` with a constant string naming a module of the package counts as an
  import too, so string imports cannot hide edges; a non-constant argument is reported as unresolvable.

Exit 0 with a one-line summary when there is no circle; otherwise print every strongly connected component
(Tarjan) with each edge inside it and the file:line of the import, and exit 1. ``--layers`` prints the modules
in dependency order, as levels: a module's level is one more than the highest level it imports.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int


@dataclass
class Graph:
    package: str
    modules: dict[str, Path]  # dotted name -> file ("pkg" for pkg/__init__.py)
    packages: set[str]  # dotted names that are packages
    edges: dict[str, dict[str, Edge]] = field(default_factory=dict)  # source -> target -> first edge
    unresolved: list[str] = field(default_factory=list)


def discover(root: Path) -> Graph:
    """Every ``.py`` under ``root`` (a package directory), subpackages included."""
    package = root.name
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        modules[".".join(parts)] = path
    return Graph(package, modules, packages)


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports(tree: ast.AST) -> Iterator[tuple[ast.AST, int, str | None, list[str]]]:
    """(node, level, module, names) for each import anywhere in the tree; ``import a.b`` is (0, "a.b", [])."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, 0, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield node, node.level, node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    level = len(first.value) - len(first.value.lstrip("."))
                    yield node, level, first.value[level:] or None, []
                else:
                    yield node, -1, None, []


def build(root: Path) -> Graph:
    graph = discover(root)
    for importer, path in graph.modules.items():
        graph.edges.setdefault(importer, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = importer in graph.packages
        ancestors = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 1)}
        if is_package:
            ancestors.add(importer)
        for node, level, module, names in _imports(tree):
            line = getattr(node, "lineno", 0)
            if level < 0:
                graph.unresolved.append(f"{path}:{line}: import with a computed module name")
                continue
            base = _resolve_relative(importer, is_package, level, module) if level else (module or "")
            if base != graph.package and not base.startswith(graph.package + "."):
                continue
            targets = []
            if names:
                for name in names:
                    sub = f"{base}.{name}"
                    targets.append(sub if sub in graph.modules else base)
            else:
                targets.append(base)
            for target in targets:
                if target not in graph.modules:
                    graph.unresolved.append(f"{path}:{line}: {target} is not a module of {graph.package}")
                    continue
                # The named module itself is always a dependency (a name read from an ancestor's __init__ needs
                # that __init__ to have run that far); the packages on the way to it run their __init__ too,
                # unless they are ancestors of the importer, whose __init__ is already running.
                parts = target.split(".")
                passed = [".".join(parts[:i]) for i in range(1, len(parts))]
                for step in [p for p in passed if p in graph.packages and p not in ancestors] + [target]:
                    if step != importer:
                        graph.edges[importer].setdefault(step, Edge(importer, step, path, line))
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components with more than one module or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph.edges):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.edges.get(child, {})))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.edges.get(node, {}):
                    components.append(sorted(component))
    return components


def levels(graph: Graph) -> dict[str, int]:
    """Level 0 imports nothing of the package; otherwise one more than its highest import (acyclic graphs)."""
    level: dict[str, int] = {}

    def visit(node: str) -> int:
        if node not in level:
            level[node] = 1 + max((visit(target) for target in graph.edges.get(node, {})), default=-1)
        return level[node]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph.modules) + 100))
    for module in graph.modules:
        visit(module)
    return level


def _display(module: str, graph: Graph) -> str:
    return f"{module}.__init__" if module in graph.packages else module


def report(graph: Graph, components: list[list[str]], root: Path) -> str:
    lines = []
    for number, component in enumerate(components, 1):
        members = set(component)
        lines.append(f"circle {number}: {len(component)} modules: {', '.join(_display(m, graph) for m in component)}")
        for source in component:
            for target, edge in sorted(graph.edges[source].items()):
                if target in members:
                    where = edge.path.relative_to(root.parent) if edge.path.is_relative_to(root.parent) else edge.path
                    lines.append(f"  {_display(source, graph)} -> {_display(target, graph)}  ({where}:{edge.line})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("package", nargs="?", default="gpuconv", type=Path, help="package directory (default gpuconv)")
    parser.add_argument("--layers", action="store_true", help="print the modules in dependency order, by level")
    args = parser.parse_args(argv)
    root: Path = args.package.resolve()
    if not (root / "__init__.py").is_file():
        parser.error(f"{args.package} is not a package directory (no __init__.py)")
    graph = build(root)
    components = strongly_connected(graph)
    for problem in graph.unresolved:
        print(f"warning: {problem}", file=sys.stderr)
    edge_count = sum(len(targets) for targets in graph.edges.values())
    if components:
        print(report(graph, components, root))
        print(f"{len(components)} import circle(s) among {len(graph.modules)} modules of {graph.package} "
              f"({edge_count} imports)")
        return 1
    if args.layers:
        by_level: dict[int, list[str]] = {}
        for module, level in levels(graph).items():
            by_level.setdefault(level, []).append(module)
        for level in sorted(by_level):
            print(f"{level}: {' '.join(_display(m, graph) for m in sorted(by_level[level]))}")
    print(f"no import circles: {len(graph.modules)} modules of {graph.package}, {edge_count} imports "
          f"(module level, in functions and under TYPE_CHECKING)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
