"""``pareto.png``: every evaluated trial (objective against exact MACs) and the Pareto front.

matplotlib's object API (``Figure`` + ``FigureCanvasAgg``): no pyplot state, no display.
Rejected candidates have MACs but no objective; they are drawn as ticks along the bottom.
The file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

from graphcnn.search.result import SearchResult
from graphcnn.weights import write_atomic


def plot_pareto(result: SearchResult, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [t for t in result.trials if t.state == "complete" and t.cost and t.value is not None]
    rejected = [t for t in result.trials if t.state == "rejected" and t.cost]
    on_front = set(result.pareto)
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = [t.cost["macs"] for t in done if t.cost]
    ys = [float(t.value or 0.0) for t in done]
    ax.scatter(xs, ys, s=18, color="tab:blue", alpha=0.6, label=f"trials ({len(done)})")
    pts = sorted(
        (t.cost["macs"], float(t.value or 0.0)) for t in done if t.number in on_front and t.cost
    )
    if pts:
        ax.plot(
            *zip(*pts, strict=True),
            "-o",
            color="tab:red",
            ms=5,
            lw=1.5,
            label=f"Pareto front ({len(pts)})",
        )
    if rejected:
        ax.plot(
            [t.cost["macs"] for t in rejected if t.cost],
            [0.0] * len(rejected),
            "|",
            color="0.5",
            transform=ax.get_xaxis_transform(),
            ms=10,
            label=f"rejected by cost ({len(rejected)})",
        )
    limit = result.limits.get("max_macs")
    if limit:
        ax.axvline(limit, color="0.3", ls="--", lw=1, label="--max-macs")
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("MACs (exact)")
    ax.set_ylabel(result.objective)
    ax.set_title(f"{result.model}: {result.objective} ({result.direction}) vs MACs")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = Path(path)
    write_atomic(out, buf.getvalue())
    return out
