"""The ``graphcnn bench --plot`` chart: throughput per backend and batch size as a PNG bar chart
(matplotlib, imported only here), flagged backends hatched."""

from __future__ import annotations

from pathlib import Path

from graphcnn.bench.options import BACKENDS, BenchError
from graphcnn.bench.results import BenchResult


def plot(result: BenchResult, path: str | Path) -> Path:
    """A bar chart of throughput per backend per batch size, written atomically as PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib", "pip install 'graphcnn[plot]' (or pip install matplotlib)"
        ) from None
    import io

    from graphcnn.weights import write_atomic

    rows = [m for m in result.measurements if m.latency is not None]
    batches = sorted({m.batch for m in rows})
    names = [n for n in BACKENDS if any(m.backend == n for m in rows)]
    fig = Figure(figsize=(max(6.0, 1.0 + 1.1 * max(1, len(batches)) * max(1, len(names)) / 2), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys = [], []
        flagged = False
        for j, b in enumerate(batches):
            m = result.measurement(name, b)
            if m is not None and m.throughput:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(m.throughput)
                flagged = flagged or m.flagged
        label = name + (" (error FLAGGED)" if flagged else "")
        bars = ax.bar(xs, ys, width, label=label, hatch="//" if flagged else None)
        ax.bar_label(bars, labels=[f"{y:,.0f}" if y >= 100 else f"{y:.3g}" for y in ys], fontsize=7)
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set_ylabel("throughput (images/s, at p50 latency)")
    threads = f", {result.threads} threads" if result.threads else ""
    ax.set_title(f"{result.model} on {result.device}{threads}")
    if names:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    out = Path(path)
    write_atomic(out, buf.getvalue())
    return out


def check_plot_support() -> None:
    """Raise :class:`BenchError` early if ``--plot`` cannot work (matplotlib missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib", "pip install 'graphcnn[plot]' (or pip install matplotlib)"
        ) from None
