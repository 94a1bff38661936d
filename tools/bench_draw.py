"""Speed of ``graphcnn draw`` at full depth on the largest zoo models (issue: see it). A benchmark
script, not a timed test.

Timed per model, in-process, after compiling the graph (compilation excluded): the whole
``graphcnn.draw.draw(graph)`` (profile, grandalf's Sugiyama layout, SVG text) and, separately,
its layout step alone; ``--png`` also times the matplotlib PNG of the same picture. Repetitions
are interleaved across models; medians of wall clock and of process CPU time are printed (on a
shared machine CPU time is the steadier of the two), with the picture's size.

Examples::

    .venv/bin/python tools/bench_draw.py
    .venv/bin/python tools/bench_draw.py --models densenet264,efficientnet_b7 --reps 5 --png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def timed(fn: Any) -> tuple[float, float, Any]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="densenet264,efficientnet_b7,resnet152,googlenet")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--png", action="store_true", help="also time the PNG (slow: minutes)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    import graphcnn
    from graphcnn.draw import draw, svg
    from graphcnn.draw.diagram import diagram
    from graphcnn.draw.layout import box_size, layout

    names = args.models.split(",")
    graphs = {n: graphcnn.compile(n) for n in names}
    draw(graphs[names[0]])  # warm-up: imports
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    info: dict[str, dict[str, Any]] = {}
    for _ in range(args.reps):
        for n, g in graphs.items():
            s = samples[n]
            w, c, pic = timed(lambda g=g: draw(g))
            s.setdefault("draw_wall", []).append(w)
            s.setdefault("draw_cpu", []).append(c)
            d = diagram(g)
            sizes = {b.name: box_size(svg.box_lines(b, "macs", None)) for b in d.boxes}
            w, c, _ = timed(lambda d=d, sizes=sizes: layout(d, sizes))
            s.setdefault("layout_wall", []).append(w)
            s.setdefault("layout_cpu", []).append(c)
            info[n] = {
                "nodes": len(g),
                "boxes": len(pic.diagram.boxes),
                "edges": len(pic.diagram.edges),
                "width_px": round(pic.layout.width),
                "height_px": round(pic.layout.height),
                "svg_bytes": len(pic.svg.encode()),
            }
    if args.png:
        for n, g in graphs.items():
            pic = draw(g)
            w, c, _ = timed(pic.png)
            samples[n]["png_wall"] = [w]
            samples[n]["png_cpu"] = [c]
    result = {
        n: {**info[n], **{k: round(statistics.median(v), 3) for k, v in samples[n].items()}}
        for n in names
    }
    if args.json:
        print(json.dumps({"reps": args.reps, "models": result}))
        return
    print(f"graphcnn draw at full depth, medians of {args.reps} (seconds)")
    for n, r in result.items():
        extra = f"  png {r['png_wall']:.2f} s" if "png_wall" in r else ""
        print(
            f"{n:16s} {r['nodes']:5d} nodes {r['edges']:5d} edges  draw {r['draw_wall']:.3f} s "
            f"(cpu {r['draw_cpu']:.3f})  layout {r['layout_wall']:.3f} s  "
            f"{r['width_px']}x{r['height_px']} px, {r['svg_bytes'] / 1e6:.2f} MB SVG{extra}"
        )


if __name__ == "__main__":
    main()
