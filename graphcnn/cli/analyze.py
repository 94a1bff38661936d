"""``graphcnn analyze``: bottlenecks, roofline bounds, advice, receptive field, peak memory."""

from __future__ import annotations

import json
import sys

import click

from graphcnn.cli.options import (
    compile_spec,
    json_option,
    pipeline_options,
    run_passes,
    spec_options,
)


@click.command("analyze")
@spec_options
@pipeline_options
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    metavar="NAME",
    help="Device profile for the time estimates: cpu (this machine: float32 GEMM and copy "
    "bandwidth measured with numpy once, then cached) or h100-sxm.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default="float32",
    show_default=True,
    help="Element type of the estimate: peak rate and bytes per element.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many layers and blocks to rank per metric, and convolutions to advise on.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Blocks are scope prefixes of N name components (1: top-level blocks).",
)
@click.option(
    "--reduction",
    type=click.IntRange(min=1),
    default=None,
    metavar="C",
    help="Width of the advisor's 1x1 reductions (default: half the input channels, at most 64).",
)
@click.option(
    "--remeasure", is_flag=True, help="Measure the cpu profile again (updates the cache)."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Also draw the roofline (every layer, coloured by its --depth block) and MACs and "
    "params per block, as .png, .svg or .pdf (needs matplotlib).",
)
@json_option("Print exactly one JSON object (with the receptive field of every layer).")
def analyze_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    device: str,
    dtype: str,
    top: int,
    depth: int,
    reduction: int | None,
    remeasure: bool,
    plot_path: str | None,
    as_json: bool,
    pipeline: str,
    report: bool,
    verify_passes: bool,
) -> None:
    """Bottlenecks: top layers and blocks by MACs, params, memory and estimated time.

    \b
    Each layer and block is marked compute- or memory-bound on the device (roofline model);
    the advisor prices cheaper rewrites of the most expensive k x k convolutions (1x1
    reduction, stacked 3x3, depthwise separable) exactly; the report adds the receptive field
    of the output and peak activation memory by liveness (inference and training) against the
    naive sum. A symbolic batch counts as 1 unless --batch is given.
    """
    from graphcnn.analysis.devices import get_device
    from graphcnn.analysis.report import analyze
    from graphcnn.passes import apply_pipeline

    dev = get_device(device, remeasure)
    dev.peak(dtype)  # an unsupported dtype fails before compiling
    if plot_path is not None:
        from graphcnn.draw.png import matplotlib_api

        matplotlib_api()  # a missing matplotlib fails before any work
    g = compile_spec(spec, network, sets, input_shape, batch)
    if report or verify_passes:
        lean, _ = run_passes(g, None, pipeline, report, verify_passes)
    else:
        lean = apply_pipeline(g, pipeline)
    result = analyze(
        lean,
        dev,
        dtype,
        top,
        depth,
        training_graph=None if lean is g else g,
        pipeline=pipeline,
        reduction=reduction,
    )
    if plot_path is not None:
        from graphcnn.draw.charts import chart_data, plot

        plot(chart_data(lean, dev, dtype, depth, result.batch), plot_path)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        from graphcnn.cli import render

        render.print_analysis(render.console(), result)
    if plot_path is not None:
        click.echo(f"wrote {plot_path}", err=as_json)
