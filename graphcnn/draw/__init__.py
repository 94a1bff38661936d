"""Pictures of a network and its cost: the dataflow graph as SVG or PNG, roofline and bar charts.

``graphcnn draw`` and ``graphcnn analyze --plot`` use this package; it reads graphs, profiles
(``graphcnn.cost``) and analyses (``graphcnn.analysis``) and never imports torch. Its modules:
``diagram`` (what a picture shows: boxes per node or scope, their cost), ``colors`` (the colour
scales), ``layout`` (box positions, with grandalf's Sugiyama layout), ``svg`` and ``png`` (the
two renderers) and ``charts`` (matplotlib: the roofline and per-block bars).

    import graphcnn
    from graphcnn.draw import draw
    pic = draw(graphcnn.compile("resnet152"), "resnet152.svg", depth=1, color="macs")
    pic.svg                                  # the SVG text; pic.diagram.boxes: the boxes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphcnn.analysis.devices import DeviceProfile
from graphcnn.draw.diagram import COLORS, Box, Diagram, DrawError, diagram, save
from graphcnn.draw.layout import Layout, box_size, layout
from graphcnn.ir import Graph


@dataclass
class Picture:
    """A drawn graph: what it shows, where each box is, and its SVG text."""

    diagram: Diagram
    layout: Layout
    svg: str

    def png(self) -> bytes:
        """The same picture as PNG (needs matplotlib)."""
        from graphcnn.draw import png

        return png.render(self.diagram, self.layout)


def draw(
    graph: Graph,
    path: str | Path | None = None,
    depth: int | None = None,
    color: str = "macs",
    device: DeviceProfile | str = "cpu",
    dtype: str = "float32",
    batch: int | None = None,
) -> Picture:
    """Draw ``graph`` top to bottom, a box per node (or per scope at ``depth``), coloured by
    ``color`` (:data:`COLORS`); write it to ``path`` if given (``.png``: PNG, else SVG), atomically.
    """
    from graphcnn.draw import svg

    d = diagram(graph, depth, color, device, dtype, batch)
    sizes = {b.name: box_size(svg.box_lines(b, color, depth)) for b in d.boxes}
    pic = Picture(d, layout(d, sizes), "")
    pic.svg = svg.render(d, pic.layout)
    if path is not None:
        out = Path(path)
        save(out, pic.png() if out.suffix.lower() == ".png" else pic.svg)
    return pic


__all__ = [
    "COLORS",
    "Box",
    "Diagram",
    "DrawError",
    "Layout",
    "Picture",
    "diagram",
    "draw",
    "save",
]
