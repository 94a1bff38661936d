"""``graphcnn draw``: the network as a top-to-bottom dataflow picture, coloured by a cost."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from graphcnn.cli.options import (
    compile_spec,
    json_option,
    pipeline_options,
    run_passes,
    spec_options,
)


@click.command("draw")
@spec_options
@pipeline_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Picture to write: .svg (with tooltips) or .png.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=None,
    help="One box per scope prefix of N name components (default: one box per node).",
)
@click.option(
    "--color",
    type=click.Choice(["macs", "params", "memory", "time", "bound"]),
    default="macs",
    show_default=True,
    help="What the colour shows: MACs, params, activation memory, roofline time or bound.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    metavar="NAME",
    help="Device profile for --color time/bound: cpu (measured, cached) or h100-sxm.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default="float32",
    show_default=True,
    help="Element type of the time estimate (--color time/bound).",
)
@click.option("--png", "also_png", is_flag=True, help="Also write a PNG beside the SVG.")
@json_option("Print one JSON object: the files written, boxes, edges and seconds taken.")
def draw_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    output: str,
    depth: int | None,
    color: str,
    device: str,
    dtype: str,
    also_png: bool,
    as_json: bool,
    pipeline: str,
    report: bool,
    verify_passes: bool,
) -> None:
    """Draw the IR top to bottom: a box per node (or per scope with --depth), coloured by cost.

    \b
    Each box shows the name, op, output shape and the chosen cost; its SVG tooltip adds the spec
    location and every cost. Training-only parts (auxiliary heads) are dashed.
    Examples:
      graphcnn draw resnet152 -o r152.svg --depth 1
      graphcnn draw googlenet -o g.svg --depth 2 --color params
      graphcnn draw mobilenet_v2 -o m.svg --color bound --device h100-sxm --dtype float16 --png
    """
    from graphcnn.draw import draw
    from graphcnn.draw.diagram import DrawError
    from graphcnn.draw.layout import grandalf_api
    from graphcnn.passes import apply_pipeline

    out = Path(output)
    if out.suffix.lower() not in (".svg", ".png"):
        raise DrawError(f"cannot tell the picture format of {output!r}", "name it .svg or .png")
    grandalf_api()  # a missing layout library fails before any work
    if also_png or out.suffix.lower() == ".png":
        from graphcnn.draw.png import matplotlib_api

        matplotlib_api()
    if color in ("time", "bound"):
        from graphcnn.analysis.devices import get_device

        get_device(device).peak(dtype)
    g = compile_spec(spec, network, sets, input_shape, batch)
    if report or verify_passes:
        g, _ = run_passes(g, None, pipeline, report, verify_passes)
    else:
        g = apply_pipeline(g, pipeline)
    from graphcnn.cli import render
    from graphcnn.draw import save

    t0 = time.perf_counter()
    with render.console(stderr=True).status(f"drawing {g.name} ({len(g)} nodes)"):
        pic = draw(g, out, depth, color, device, dtype)
        written = [str(out)]
        if also_png and out.suffix.lower() != ".png":
            png_path = out.with_suffix(".png")
            save(png_path, pic.png())
            written.append(str(png_path))
    seconds = time.perf_counter() - t0
    d = pic.diagram
    if as_json:
        data = {
            "model": d.model,
            "depth": d.depth,
            "color": d.color,
            "boxes": len(d.boxes),
            "edges": len(d.edges),
            "files": written,
            "seconds": round(seconds, 3),
        }
        sys.stdout.write(json.dumps(data) + "\n")
        return
    what = f"depth {depth}" if depth else "every node"
    click.echo(
        f"{d.model}: {len(d.boxes)} boxes ({what}), {len(d.edges)} edges, colour {color}, "
        f"drawn in {seconds:.2f} s"
    )
    for path in written:
        click.echo(f"wrote {path}")
