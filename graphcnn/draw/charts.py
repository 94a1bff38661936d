"""Charts of ``graphcnn analyze --plot``: the roofline with every layer on it, and the cost per
block as bars (the picture version of the papers' tables).

Roofline (``graphcnn.analysis.roofline`` on a ``graphcnn.analysis.devices`` profile): the roof
is ``min(peak_flops[dtype], mem_bandwidth * I)`` over arithmetic intensity ``I`` (FLOP/byte),
log-log; every inference layer that takes time is a point at its intensity
(``flops / bytes_moved``) and its attained rate (``flops / time_s``), the same numbers
``graphcnn analyze --json`` reports per layer, coloured by its block (the scope prefix of
``depth`` name components, as the bars). Points on the slanted part are memory-bound, on the
flat part compute-bound. Views move nothing and are left out (they have no intensity).

Bars: MACs and params of each block at ``depth`` (``Profile.at_depth``, inference rows only), in
graph order. Everything is drawn with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``),
never pyplot's global state, and written atomically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from graphcnn.analysis import roofline
from graphcnn.analysis.devices import DeviceProfile, get_device
from graphcnn.analysis.report import retype
from graphcnn.cost import profile
from graphcnn.draw.diagram import DrawError, save
from graphcnn.draw.png import matplotlib_api
from graphcnn.ir import Graph

FORMATS = ("png", "svg", "pdf")
"""What :func:`plot` writes, by the file's suffix."""

MAX_LEGEND = 24
"""More blocks than this: the legend names the largest only (colours still differ)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One layer on the roofline."""

    name: str
    block: str
    intensity: float
    """FLOPs per byte moved."""
    rate: float
    """Attained FLOP/s under the roofline model: flops / time_s."""
    flops: int
    bytes: int
    time_s: float
    bound: str


@dataclass(frozen=True, slots=True)
class Bar:
    """One block's cost."""

    name: str
    macs: int
    params: int


@dataclass
class Charts:
    """What was plotted: the points, the roof, the bars."""

    model: str
    device: str
    dtype: str
    batch: int
    peak: float
    bandwidth: float
    points: list[Point]
    bars: list[Bar]

    @property
    def ridge(self) -> float:
        return self.peak / self.bandwidth


def chart_data(
    graph: Graph,
    device: DeviceProfile | str = "cpu",
    dtype: str = "float32",
    depth: int = 1,
    batch: int | None = None,
) -> Charts:
    """The roofline points and per-block bars of ``graph`` (retyped to ``dtype``, as
    ``graphcnn.analysis.report.analyze`` does)."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    dev = get_device(device) if isinstance(device, str) else device
    peak = dev.peak(dtype)
    g = retype(graph, dtype)
    p = profile(g, batch)
    points = [
        Point(
            t.name,
            ".".join(t.name.split(".")[:depth]),
            t.intensity,
            t.flops / t.time_s,
            t.flops,
            t.bytes,
            t.time_s,
            t.bound,
        )
        for t in roofline.analyze(g, dev, dtype, p.batch, profile=p)
        if t.time_s > 0 and t.flops > 0
    ]
    bars = [
        Bar(r.name, r.cost.macs, r.cost.params) for r in p.at_depth(depth) if not r.training_only
    ]
    return Charts(g.name, dev.name, dtype, p.batch, peak, dev.mem_bandwidth, points, bars)


def plot(c: Charts, path: str | Path) -> Path:
    """Draw ``c`` (roofline on top, MACs and params per block below) at ``path``: PNG, or SVG
    or PDF by its suffix."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise DrawError(
            f"cannot tell the chart format of {str(path)!r}",
            f"name it {' or '.join('.' + f for f in FORMATS)}",
        )
    figure_cls, canvas_cls = matplotlib_api()
    from matplotlib import colormaps

    from graphcnn.units import si

    rows = max(1, len(c.bars))
    bar_h = min(0.22 * rows + 1.0, 40.0)
    fig = figure_cls(figsize=(12.0, 6.0 + bar_h), dpi=100)
    canvas_cls(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[6.0, bar_h])
    ax = fig.add_subplot(grid[0, :])
    blocks = list(dict.fromkeys(p.block for p in c.points))
    cmap = colormaps["tab20"]
    color_of = {b: cmap(i % 20) for i, b in enumerate(blocks)}
    if c.points:
        lo = min(p.intensity for p in c.points) / 2
        hi = max(max(p.intensity for p in c.points) * 2, c.ridge * 4)
    else:
        lo, hi = c.ridge / 100, c.ridge * 100
    xs = [lo, c.ridge, hi]
    ax.plot(xs, [min(c.peak, c.bandwidth * x) for x in xs], color="black", linewidth=1.5)
    ax.axvline(c.ridge, color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"ridge {c.ridge:.3g} FLOP/B",
        (c.ridge, c.peak),
        textcoords="offset points",
        xytext=(4, -12),
        fontsize=8,
    )
    by_time = sorted(blocks, key=lambda b: -sum(p.time_s for p in c.points if p.block == b))
    labelled = set(by_time[:MAX_LEGEND])
    for b in blocks:
        pts = [p for p in c.points if p.block == b]
        ax.scatter(
            [p.intensity for p in pts],
            [p.rate for p in pts],
            s=26,
            color=color_of[b],
            label=b if b in labelled else None,
            edgecolors="black",
            linewidths=0.3,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    ax.set_ylabel("attained FLOP/s (roofline model)")
    ax.set_title(
        f"{c.model} on {c.device}: peak {si(c.peak)}FLOP/s {c.dtype}, {si(c.bandwidth)}B/s, "
        f"batch {c.batch}, {len(c.points)} layers"
    )
    if blocks:
        ax.legend(fontsize=7, ncol=2, loc="lower right", title="block", title_fontsize=7)
    ax.grid(True, which="both", alpha=0.2)
    names = [b.name for b in c.bars]
    for col, (attr, label) in enumerate((("macs", "MACs"), ("params", "params"))):
        bx = fig.add_subplot(grid[1, col])
        values = [getattr(b, attr) for b in c.bars]
        bars = bx.barh(range(len(values)), values, color="#fd8d3c" if attr == "macs" else "#6baed6")
        bx.bar_label(bars, labels=[si(v) if v else "" for v in values], fontsize=7, padding=2)
        bx.set_yticks(range(len(names)), names if col == 0 else [""] * len(names), fontsize=7)
        bx.invert_yaxis()
        bx.set_title(f"{label} per block", fontsize=9)
        bx.margins(x=0.15)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return save(path, buf.getvalue())
