"""The project's shape: stages in order, no import cycles, small modules, no banner comments.

``tools/import_graph.py`` reads every import between graphcnn's modules (function-level and
``TYPE_CHECKING`` ones included) and maps each module to its stage (docs/layout.md). A module may
import its own stage or an earlier one, never a later one, and there is no cycle at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers.tools import load_tool

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 500
"""A module past this is two ideas (docs/layout.md)."""

graph_tool = load_tool("import_graph")


def _sources() -> list[Path]:
    return sorted(p for d in ("graphcnn", "passes", "backends") for p in (REPO / d).rglob("*.py"))


def test_no_import_cycles() -> None:
    cycles = graph_tool.cycles(graph_tool.imports())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_a_later_stage() -> None:
    assert graph_tool.violations(graph_tool.imports()) == []


def test_every_module_has_a_stage() -> None:
    for module in graph_tool.modules():
        graph_tool.stage_of(module)  # KeyError names the module and where to add it


def test_the_tool_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    for folder in ("graphcnn", "passes", "backends"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "graphcnn" / "shapes.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from graphcnn.cost import x\n"
    )
    (tmp_path / "graphcnn" / "cost.py").write_text("def f():\n    import graphcnn.shapes\n")
    graph = graph_tool.imports(tmp_path)
    assert graph["graphcnn.shapes"] == {"graphcnn.cost"}
    assert graph["graphcnn.cost"] == {"graphcnn.shapes"}
    assert graph_tool.cycles(graph) == [["graphcnn.cost", "graphcnn.shapes"]]
    assert graph_tool.violations(graph) == ["graphcnn.shapes (shapes) imports graphcnn.cost (cost)"]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_module_is_small_and_says_what_it_holds(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{lines} lines: split it along its ideas"
    assert ast.get_docstring(ast.parse(text)), "no module docstring"
    banners = re.findall(r"^[ \t]*# ?[-=#*]{4,}.*$", text, re.MULTILINE)
    assert not banners, f"banner comments (a file boundary says it better): {banners[:2]}"
