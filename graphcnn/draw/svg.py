"""Write a :class:`~graphcnn.draw.diagram.Diagram` as SVG: boxes, edges, a colour legend.

The SVG is plain XML text built here from the layout's coordinates (``graphcnn.draw.layout``),
every text escaped. Each box is a ``<g class="node">`` holding a ``<title>`` (the tooltip a
browser shows on hover: name, op, output, spec location, every cost) and ``data-name``,
``data-value`` and ``data-fill`` attributes, so scripts and tests can read the picture back.
Training-only boxes and the edges into them are dashed. The legend (``<g class="legend">``) sits
above the graph: the colour scale with labelled ticks, the colour of 0, the dashed style.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from graphcnn.draw import colors
from graphcnn.draw.diagram import COLOR_LABELS, Box, Diagram
from graphcnn.draw.layout import CHAR_WIDTH, FONT_SIZE, LINE_HEIGHT, PAD_X, PAD_Y, Layout
from graphcnn.units import fmt_time, shape, si

LEGEND_HEIGHT = 78.0
SCALE_WIDTH = 260.0
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def fmt_value(color: str, value: float) -> str:
    """A cost as the legend and the boxes print it."""
    if color == "time":
        return fmt_time(value)
    if color == "memory":
        return si(round(value), "B")
    return si(round(value))


def cost_line(box: Box, color: str) -> str:
    """The third line of a box: the cost its colour shows."""
    if color == "bound":
        if box.bound is None:
            return "training only" if box.training_only else "no time"
        return f"{box.bound}-bound {fmt_time(box.time_s or 0.0)}"
    if color == "time" and box.time_s is None:
        return "training only"
    label = {"macs": "MACs", "params": "params", "memory": "act", "time": "time"}[color]
    return f"{label} {fmt_value(color, box.value(color))}"


def box_lines(box: Box, color: str, depth: int | None) -> list[str]:
    """The text of a box: name, op and output shape, its cost (and its size in layers)."""
    second = f"{box.op}  {shape(box.output)}" if box.output else box.op
    third = cost_line(box, color)
    if depth is not None and box.layers > 1:
        third += f"  ({box.layers} layers)"
    return [box.name, second, third]


def tooltip(box: Box) -> str:
    """Everything known about a box, one fact per line."""
    lines = [box.name, f"op: {box.op}", f"output: {shape(box.output) or '-'}"]
    if box.loc:
        lines.append(f"spec: {box.loc}" + (" (first layer)" if box.layers > 1 else ""))
    lines += [
        f"params: {box.params:,}",
        f"MACs: {box.macs:,}",
        f"FLOPs: {box.flops:,}",
        f"activation memory: {si(box.activation_bytes, 'B')}",
        f"weights: {si(box.weight_bytes, 'B')}",
    ]
    if box.time_s is not None:
        lines.append(
            f"estimated time: {fmt_time(box.time_s)}"
            + (f", {box.bound}-bound" if box.bound else "")
        )
    if box.layers > 1:
        lines.append(f"layers: {box.layers}")
    if box.training_only:
        lines.append("training only (not in the inference graph)")
    return "\n".join(lines)


def fills(d: Diagram) -> dict[str, str]:
    """Each box's fill colour under ``d``'s colour."""
    if d.color == "bound":
        return {b.name: colors.BOUND_COLORS[b.bound] for b in d.boxes}
    scale = colors.LogScale.of([b.value(d.color) for b in d.boxes])
    if scale is None:
        return {b.name: colors.ZERO for b in d.boxes}
    return {b.name: scale.color(b.value(d.color)) for b in d.boxes}


def _legend(d: Diagram, out: list[str]) -> None:
    x, y = 16.0, 16.0
    title = f"{d.model}: colour = {COLOR_LABELS[d.color]}"
    if d.color in ("time", "bound"):
        title += f" on {d.device} ({d.dtype}, batch {d.batch})"
    if d.color != "bound":
        title += " (log scale)"
    out.append('<g class="legend">')
    out.append(f'<text x="{x}" y="{y + 4}" font-weight="bold">{escape(title)}</text>')
    y += 16
    swatches: list[tuple[str, str, bool]] = []
    if d.color == "bound":
        swatches = [
            (colors.BOUND_COLORS["compute"], "compute-bound", False),
            (colors.BOUND_COLORS["memory"], "memory-bound", False),
            (colors.ZERO, "no time (views, input, training only)", False),
        ]
    else:
        scale = colors.LogScale.of([b.value(d.color) for b in d.boxes])
        if scale is not None:
            out.append(
                f'<rect class="scale" x="{x}" y="{y}" width="{SCALE_WIDTH}" height="12" '
                'fill="url(#scale)" stroke="#888"/>'
            )
            for v in scale.ticks():
                pos = scale.position(v)
                tx = x + pos * SCALE_WIDTH
                anchor = "start" if pos <= 0.0 else "end" if pos >= 1.0 else "middle"
                out.append(
                    f'<line x1="{tx:.1f}" y1="{y + 12}" x2="{tx:.1f}" y2="{y + 16}" stroke="#444"/>'
                )
                out.append(
                    f'<text class="tick" x="{tx:.1f}" y="{y + 27}" text-anchor="{anchor}" '
                    f'data-value="{v!r}">{escape(fmt_value(d.color, v))}</text>'
                )
        swatches = [(colors.ZERO, "0", False)]
    swatches.append(("#ffffff", "training only", True))
    sx = x + (SCALE_WIDTH + 40 if d.color != "bound" else 0)
    for fill, label, dashed in swatches:
        dash = ' stroke-dasharray="4,3"' if dashed else ""
        out.append(
            f'<rect x="{sx}" y="{y}" width="18" height="12" fill="{fill}" stroke="#444"{dash}/>'
        )
        out.append(f'<text x="{sx + 24}" y="{y + 10}">{escape(label)}</text>')
        sx += 24 + len(label) * CHAR_WIDTH + 24
    out.append("</g>")


def render(d: Diagram, lay: Layout) -> str:
    """The SVG document of ``d`` placed by ``lay``."""
    fill = fills(d)
    width = max(lay.width, SCALE_WIDTH + 400)
    height = lay.height + LEGEND_HEIGHT
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT}" font-size="{FONT_SIZE:g}">',
        f"<title>{escape(d.model)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#777"/></marker>',
        '<linearGradient id="scale">'
        + "".join(
            f'<stop offset="{i / (len(colors.PALETTE) - 1):.3f}" stop-color="{c}"/>'
            for i, c in enumerate(colors.PALETTE)
        )
        + "</linearGradient>",
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    _legend(d, out)
    out.append(f'<g class="graph" transform="translate(0,{LEGEND_HEIGHT:g})">')
    training = {b.name for b in d.boxes if b.training_only}
    out.append('<g class="edges" fill="none" stroke="#777" stroke-width="1.2">')
    for src, dst, pts in lay.edges:
        path = "M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        dash = ' stroke-dasharray="5,3"' if dst in training else ""
        out.append(
            f'<path class="edge" d="{path}" marker-end="url(#arrow)"{dash} '
            f"data-from={quoteattr(src)} data-to={quoteattr(dst)}/>"
        )
    out.append("</g>")
    out.append('<g class="nodes">')
    for box in d.boxes:
        p = lay.boxes[box.name]
        f = fill[box.name]
        dash = ' stroke-dasharray="5,3"' if box.training_only else ""
        left, top = p.x - p.w / 2, p.y - p.h / 2
        out.append(
            f'<g class="node" data-name={quoteattr(box.name)} '
            f'data-value="{box.value(d.color)!r}" data-fill="{f}">'
        )
        out.append(f"<title>{escape(tooltip(box))}</title>")
        out.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{p.w:.1f}" height="{p.h:.1f}" rx="4" '
            f'fill="{f}" stroke="#333"{dash}/>'
        )
        ink = colors.text_color(f)
        out.append(f'<text fill="{ink}">')
        for i, line in enumerate(box_lines(box, d.color, d.depth)):
            ty = top + PAD_Y + (i + 0.8) * LINE_HEIGHT
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(f'<tspan x="{left + PAD_X:.1f}" y="{ty:.1f}"{weight}>{escape(line)}</tspan>')
        out.append("</text></g>")
    out.append("</g></g></svg>")
    return "\n".join(out) + "\n"
