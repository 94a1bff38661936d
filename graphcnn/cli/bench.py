"""``graphcnn bench``: backends compared on the same inputs (``graphcnn.bench`` measures)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from graphcnn.cli.options import json_option, load_model, model_options


def _backends(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    from graphcnn.bench import BenchError, parse_backends

    try:
        return parse_backends(values)
    except BenchError as e:
        raise click.BadParameter(f"{e.message}; {e.hint}") from None


def _batches(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    from graphcnn.bench import BenchError, parse_batches

    try:
        return parse_batches(values or ["1,8"])
    except BenchError as e:
        raise click.BadParameter(e.message) from None


@click.command("bench")
@model_options
@click.option(
    "--backend",
    "-b",
    "backends",
    multiple=True,
    callback=_backends,
    metavar="NAME[,NAME]",
    help="Backends to compare (comma list or repeated): torch, torch-compile, ort, ort-int8, "
    "tensorrt. Default: torch,ort,ort-int8 (+ torch-compile with --compile).",
)
@click.option(
    "--batch",
    "batches",
    multiple=True,
    callback=_batches,
    metavar="B[,B]",
    help="Batch sizes (comma list or repeated). Default: 1,8.",
)
@click.option("--compile", "with_compile", is_flag=True, help="Add torch-compile to the defaults.")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where to run (cuda is skipped with the reason when no GPU is usable).",
)
@click.option(
    "--half",
    type=click.Choice(["fp16", "bf16"]),
    default=None,
    help="On cuda: run the torch backends (and tensorrt) in this dtype, channels_last.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads: torch.set_num_threads and ONNX Runtime intra-op threads.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Untimed calls before each measurement.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Timed calls per measurement, at least.",
)
@click.option(
    "--min-time",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds of timed calls per measurement, at least.",
)
@click.option(
    "--pipeline",
    "-p",
    default="inference",
    show_default=True,
    metavar="NAME|PASS,PASS",
    help="Passes applied for the deployment backends (ort, ort-int8, tensorrt).",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True),
    default=None,
    metavar="DIR_OR_NPZ",
    help="ort-int8 calibration data (default: synthetic images, a fallback only).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Weights and inputs seed (an .onnx input keeps its own weights).",
)
@json_option("Print exactly one JSON object.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="OUT.png",
    help="Also write a bar chart of throughput per backend and batch (needs matplotlib).",
)
def bench_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    backends: list[str],
    batches: list[int],
    with_compile: bool,
    device: str,
    half: str | None,
    threads: int | None,
    warmup: int,
    repeat: int,
    min_time: float,
    pipeline: str,
    calibration: str | None,
    seed: int,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """Compare backends on the same inputs: latency, throughput, GFLOP/s and output error.

    \b
    Each backend's output is first checked against PyTorch eager (float32) on the same input;
    an error above tolerance is FLAGGED in the table, not hidden. A backend that cannot run
    here (no GPU, no tensorrt) is listed as skipped with the reason. See graphcnn/bench/ for
    the method and the --json keys.
    """
    from graphcnn import bench
    from graphcnn.cli import render

    if half is not None and device != "cuda":
        raise click.BadParameter("--half needs --device cuda", param_hint="--half")
    if plot_path is not None:
        bench.check_plot_support()
    if calibration is not None:
        from graphcnn.backends.quantize.calibration import check_calibration_path

        check_calibration_path(calibration)
    names = backends or [*bench.DEFAULT_BACKENDS] + (["torch-compile"] if with_compile else [])
    if backends and with_compile and "torch-compile" not in names:
        names.insert(1, "torch-compile")
    g, weights = load_model(spec, network, sets, input_shape, None)
    from graphcnn.api import is_onnx, retype

    if is_onnx(spec) and all(isinstance(i.type.shape[0], int) for i in g.inputs):
        g = retype(g, batch="N", source=spec)  # an export's fixed batch: run every --batch
    options: dict[str, Any] = dict(
        weights=weights,
        device=device,
        threads=threads,
        half=half,
        warmup=warmup,
        repeat=repeat,
        min_time=min_time,
        pipeline=pipeline,
        seed=seed,
        calibration=calibration,
    )
    if as_json or not sys.stderr.isatty():
        result = bench.run_bench(g, names, batches, **options)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=render.console(stderr=True),
        )
        with bar:
            task = bar.add_task("bench", total=1)

            def progress(text: str, done: float, total: float) -> None:
                bar.update(task, description=text, completed=done, total=total)

            result = bench.run_bench(g, names, batches, progress=progress, **options)
    if plot_path is not None:
        bench.plot(result, plot_path)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return
    out = render.console()
    for item in render.bench_tables(result):
        out.print(item)
    if plot_path is not None:
        out.print(f"wrote {plot_path}")
