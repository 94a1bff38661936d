#!/usr/bin/env python3
"""The import graph of graphcnn: every import between its modules, lazy ones included.

Reads the source (no module is imported): ``import`` and ``from ... import`` statements anywhere
in a module (top level, inside functions, under ``if TYPE_CHECKING``) between modules of
graphcnn/, passes/ (graphcnn.passes) and backends/ (graphcnn.backends). Importing
``a.b.c`` also imports the package ``a.b`` (Python runs its ``__init__`` first), unless the
importer is itself inside ``a.b``. Each module belongs to a
stage (:data:`STAGES`, in processing order); a module may import its own stage or an earlier
one, never a later one, and the graph must have no cycle at all.

    tools/import_graph.py            # stages, cross-stage edges, violations; exit 1 on any
    tools/import_graph.py --json     # {"modules": {name: [imports]}, "cycles", "violations"}
    tools/import_graph.py --dot      # Graphviz source of the stage graph
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    ("graphcnn", "graphcnn"),
    ("passes", "graphcnn.passes"),
    ("backends", "graphcnn.backends"),
)

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "graphcnn.version",
            "graphcnn.ops",
            "graphcnn.types",
            "graphcnn.errors",
            "graphcnn.util",
            "graphcnn.units",
        ),
    ),
    ("shapes", ("graphcnn.shapes",)),
    ("ir", ("graphcnn.ir",)),
    ("data", ("graphcnn.weights", "graphcnn.datasets", "graphcnn.zoo", "graphcnn.data")),
    ("lang", ("graphcnn.lang",)),
    ("cost", ("graphcnn.cost",)),
    ("analysis", ("graphcnn.analysis",)),
    ("passes", ("graphcnn.passes",)),
    ("backends", ("graphcnn.backends",)),
    ("train", ("graphcnn.train",)),
    ("draw", ("graphcnn.draw",)),
    ("bench", ("graphcnn.bench",)),
    ("search", ("graphcnn.search",)),
    ("api", ("graphcnn.api", "graphcnn")),
    ("cli", ("graphcnn.cli",)),
)
"""Stages in processing order; a module belongs to the stage of its longest listed prefix."""


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the three packages by its installed name."""
    out: dict[str, Path] = {}
    for folder, package in PACKAGES:
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def stage_of(module: str) -> int:
    """Index in :data:`STAGES` of the stage ``module`` belongs to."""
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(STAGES):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    if rank < 0:
        raise KeyError(f"{module} belongs to no stage: add it to STAGES in {__file__}")
    return rank


def _targets(node: ast.AST, known: dict[str, Path], here: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom) and node.module:
        if node.level:  # relative: resolve against this module's package
            base = here.split(".")
            if not known[here].name == "__init__.py":
                base = base[:-1]
            base = base[: len(base) - node.level + 1]
            module = ".".join([*base, node.module])
        else:
            module = node.module
        for alias in node.names:
            full = f"{module}.{alias.name}"
            yield full if full in known else module


def _parents(target: str, importer: str, known: dict[str, Path]) -> Iterator[str]:
    """The packages Python initialises before ``target``, except the importer's own packages
    (a module of a package may use the package while it is being initialised)."""
    parts = target.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        if package in known and not (importer == package or importer.startswith(package + ".")):
            yield package


def imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its source)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            for target in _targets(node, known, name):
                if target in known and target != name:
                    deps.add(target)
                    deps.update(_parents(target, name, known))
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a later stage."""
    out = []
    for a, deps in sorted(graph.items()):
        for b in sorted(deps):
            if stage_of(b) > stage_of(a):
                out.append(f"{a} ({STAGES[stage_of(a)][0]}) imports {b} ({STAGES[stage_of(b)][0]})")
    return out


def stage_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Stage -> the earlier stages its modules import."""
    out: dict[str, set[str]] = {name: set() for name, _ in STAGES}
    for a, deps in graph.items():
        for b in deps:
            sa, sb = STAGES[stage_of(a)][0], STAGES[stage_of(b)][0]
            if sa != sb:
                out[sa].add(sb)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dot", action="store_true", help="print the stage graph as Graphviz")
    args = parser.parse_args(argv)
    graph = imports()
    cyc, bad = cycles(graph), violations(graph)
    if args.json:
        print(
            json.dumps(
                {
                    "modules": {k: sorted(v) for k, v in graph.items()},
                    "cycles": cyc,
                    "violations": bad,
                }
            )
        )
    elif args.dot:
        print("digraph stages {\n  rankdir=LR;")
        for a, deps in stage_edges(graph).items():
            for b in sorted(deps):
                print(f'  "{a}" -> "{b}";')
        print("}")
    else:
        print(
            f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, "
            f"{len(cyc)} cycles, {len(bad)} later-stage imports"
        )
        for name, deps in stage_edges(graph).items():
            members = sum(1 for m in graph if STAGES[stage_of(m)][0] == name)
            order = [s for s, _ in STAGES]
            used = ", ".join(sorted(deps, key=order.index)) or "-"
            print(f"  {name:10s} {members:3d} modules  imports: {used}")
        for c in cyc:
            print("cycle: " + " -> ".join(c))
        for v in bad:
            print("later stage: " + v)
    return 1 if cyc or bad else 0


if __name__ == "__main__":
    sys.exit(main())
