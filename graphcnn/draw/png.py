"""Draw a laid-out :class:`~graphcnn.draw.diagram.Diagram` as PNG with matplotlib.

The same boxes, colours and text as the SVG (``graphcnn.draw.svg``), drawn with matplotlib's
object API (``Figure`` + ``FigureCanvasAgg``, no pyplot state) in pixel coordinates; edges are
plain lines (the flow is top to bottom). A PNG has no tooltips; for large graphs the SVG is the
better picture. Agg draws at most 2^16 pixels a side, so a very tall graph is drawn at a lower
resolution to fit.
"""

from __future__ import annotations

import io
from typing import Any

from graphcnn.draw import colors
from graphcnn.draw.diagram import COLOR_LABELS, Diagram, DrawError
from graphcnn.draw.layout import CHAR_WIDTH, FONT_SIZE, LINE_HEIGHT, PAD_X, PAD_Y, Layout
from graphcnn.draw.svg import LEGEND_HEIGHT, box_lines, fills, fmt_value

MAX_PIXELS = 30000
"""Largest side of the image in pixels (Agg's limit is 65536; memory grows with the area)."""

INSTALL_HINT = "pip install matplotlib (or pip install 'graphcnn[draw]')"


def matplotlib_api() -> Any:
    """``(Figure, FigureCanvasAgg)``, or one :class:`DrawError` naming the install command."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DrawError("drawing PNG pictures and charts needs matplotlib", INSTALL_HINT) from None
    return Figure, FigureCanvasAgg


def render(d: Diagram, lay: Layout) -> bytes:
    """PNG bytes of ``d`` placed by ``lay``."""
    figure_cls, canvas_cls = matplotlib_api()
    from matplotlib.collections import LineCollection
    from matplotlib.patches import FancyBboxPatch

    width, height = max(lay.width, 700.0), lay.height + LEGEND_HEIGHT
    scale = min(1.0, MAX_PIXELS / max(width, height))
    dpi = 100.0
    fig = figure_cls(figsize=(width * scale / dpi, height * scale / dpi), dpi=dpi)
    canvas_cls(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    pt = 0.72 * scale  # one SVG pixel in points at this resolution
    fill = fills(d)
    training = {b.name for b in d.boxes if b.training_only}
    solid: list[list[tuple[float, float]]] = []
    dashed: list[list[tuple[float, float]]] = []
    for _src, dst, pts in lay.edges:
        (dashed if dst in training else solid).append([(x, y + LEGEND_HEIGHT) for x, y in pts])
    for lines, style in ((solid, "-"), (dashed, "--")):
        ax.add_collection(
            LineCollection(lines, colors="#777777", linewidths=1.2 * pt, linestyles=style)
        )
    for box in d.boxes:
        p = lay.boxes[box.name]
        left, top = p.x - p.w / 2, p.y - p.h / 2 + LEGEND_HEIGHT
        f = fill[box.name]
        ax.add_patch(
            FancyBboxPatch(
                (left, top),
                p.w,
                p.h,
                boxstyle="round,pad=0,rounding_size=4",
                facecolor=f,
                edgecolor="#333333",
                linewidth=pt,
                linestyle="--" if box.training_only else "-",
            )
        )
        for i, line in enumerate(box_lines(box, d.color, d.depth)):
            ax.text(
                left + PAD_X,
                top + PAD_Y + (i + 0.8) * LINE_HEIGHT,
                line,
                fontsize=FONT_SIZE * pt,
                family="monospace",
                weight="bold" if i == 0 else "normal",
                color=colors.text_color(f),
            )
    _legend(ax, d, pt)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _legend(ax: Any, d: Diagram, pt: float) -> None:
    """The SVG's legend, in matplotlib: title, colour scale (or bound swatches), 0, dashed."""
    from matplotlib.patches import Rectangle

    font = {"fontsize": FONT_SIZE * pt, "family": "monospace"}
    ax.text(16, 20, f"{d.model}: colour = {COLOR_LABELS[d.color]}", weight="bold", **font)
    swatches: list[tuple[str, str, bool]] = []
    x = 16.0
    if d.color == "bound":
        swatches = [(colors.BOUND_COLORS[b], f"{b}-bound", False) for b in ("compute", "memory")]
        swatches.append((colors.ZERO, "no time", False))
    else:
        scale = colors.LogScale.of([b.value(d.color) for b in d.boxes])
        if scale is not None:
            n = 64
            for i in range(n):
                cell = Rectangle(
                    (x + 260 * i / n, 32), 260 / n + 0.5, 12, color=colors.at(i / (n - 1))
                )
                ax.add_patch(cell)
            ax.text(x, 58, fmt_value(d.color, scale.lo), **font)
            ax.text(x + 260, 58, fmt_value(d.color, scale.hi), ha="right", **font)
            x += 300
        swatches.append((colors.ZERO, "0", False))
    swatches.append(("#ffffff", "training only", True))
    for fill, label, dashed in swatches:
        ax.add_patch(
            Rectangle(
                (x, 32),
                18,
                12,
                facecolor=fill,
                edgecolor="#444444",
                linestyle="--" if dashed else "-",
            )
        )
        ax.text(x + 24, 42, label, **font)
        x += 24 + len(label) * CHAR_WIDTH + 24
