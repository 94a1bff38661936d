"""Place the boxes of a :class:`~graphcnn.draw.diagram.Diagram` top to bottom, with grandalf.

grandalf (``pip install grandalf``, pure Python) lays out each connected component with its
Sugiyama layered layout: ranks by longest path from the inputs, long edges broken by dummy
vertices, crossings reduced by median ordering sweeps, then coordinates by Brandes-Koepf
alignment. Edges are polylines through their dummy vertices. Components sit side by side.

Box sizes come from their text (a monospace font of known advance width), so the layout needs
no font metrics. Coordinates are pixels with y growing downwards, as in SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphcnn.draw.diagram import Diagram, DrawError

FONT_SIZE = 11.0
CHAR_WIDTH = FONT_SIZE * 0.62
"""Advance width of a monospace font (DejaVu Sans Mono, Menlo, Consolas: 0.6 em)."""
LINE_HEIGHT = FONT_SIZE * 1.3
PAD_X, PAD_Y = 10.0, 5.0
GAP_X, GAP_Y = 24.0, 28.0
MARGIN = 16.0
INSTALL_HINT = "pip install grandalf (or pip install 'graphcnn[draw]')"


@dataclass(slots=True)
class Placed:
    """A box's centre and size in pixels."""

    x: float
    y: float
    w: float
    h: float


@dataclass
class Layout:
    """Box positions by name, edge polylines (from the source's bottom to the target's top)."""

    boxes: dict[str, Placed]
    edges: list[tuple[str, str, list[tuple[float, float]]]]
    width: float
    height: float


def box_size(lines: list[str]) -> tuple[float, float]:
    """Width and height of a box holding ``lines`` of text."""
    w = max(len(s) for s in lines) * CHAR_WIDTH + 2 * PAD_X
    return w, len(lines) * LINE_HEIGHT + 2 * PAD_Y


def grandalf_api() -> Any:
    try:
        from grandalf import graphs, layouts  # type: ignore[import-untyped]
    except ImportError:
        raise DrawError("drawing a graph needs the layout library grandalf", INSTALL_HINT) from None
    return graphs, layouts


class _View:
    """What grandalf reads (``w``, ``h``) and writes (``xy``) on a vertex."""

    __slots__ = ("h", "w", "xy")

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    """Receives an edge's route (``setpath``) from grandalf."""

    __slots__ = ("path",)

    def __init__(self) -> None:
        self.path: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.path = [(float(x), float(y)) for x, y in pts]


def layout(d: Diagram, sizes: dict[str, tuple[float, float]]) -> Layout:
    """Lay out ``d``'s boxes, each of its ``sizes`` (width, height), top to bottom."""
    graphs, layouts = grandalf_api()
    vertices = {}
    for box in d.boxes:
        v = graphs.Vertex(box.name)
        v.view = _View(*sizes[box.name])
        vertices[box.name] = v
    edge_views: list[tuple[str, str, _EdgeView]] = []
    edges = []
    for src, dst in d.edges:
        e = graphs.Edge(vertices[src], vertices[dst])
        view = _EdgeView()
        e.view = view
        edges.append(e)
        edge_views.append((src, dst, view))
    g = graphs.Graph(list(vertices.values()), edges)

    placed: dict[str, Placed] = {}
    offset_x, height = MARGIN, 0.0
    for comp in g.C:
        sug = layouts.SugiyamaLayout(comp)
        sug.xspace, sug.yspace = GAP_X, GAP_Y
        roots = [v for v in comp.sV if not v.e_in()]
        sug.init_all(roots=roots)
        sug.draw(1.5)  # one down-up ordering sweep and a final one-way sweep
        xs = [(v.view.xy[0] - v.view.w / 2, v.view.xy[0] + v.view.w / 2) for v in comp.sV]
        ys = [(v.view.xy[1] - v.view.h / 2, v.view.xy[1] + v.view.h / 2) for v in comp.sV]
        left, right = min(a for a, _ in xs), max(b for _, b in xs)
        top, bottom = min(a for a, _ in ys), max(b for _, b in ys)
        dx, dy = offset_x - left, MARGIN - top
        for v in comp.sV:
            x, y = v.view.xy
            placed[v.data] = Placed(x + dx, y + dy, v.view.w, v.view.h)
        for e in comp.sE:
            e.view.path = [(x + dx, y + dy) for x, y in e.view.path]
        offset_x += right - left + 2 * GAP_X
        height = max(height, bottom - top)

    routes = []
    for src, dst, view in edge_views:
        a, b = placed[src], placed[dst]
        pts = view.path or [(a.x, a.y), (b.x, b.y)]
        pts = [(a.x, a.y + a.h / 2), *pts[1:-1], (b.x, b.y - b.h / 2)]
        if b.y < a.y:  # an edge grandalf had to invert (a cycle between scopes): leave upwards
            pts = [(a.x, a.y - a.h / 2), *pts[1:-1], (b.x, b.y + b.h / 2)]
        routes.append((src, dst, pts))
    width = max(offset_x - 2 * GAP_X + MARGIN, 2 * MARGIN)
    return Layout(placed, routes, width, height + 2 * MARGIN)
