"""``graphcnn search``: cost-constrained search over a spec's parameters and training options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from graphcnn.cli.options import json_option, model_options

COMPOUND_TRIALS = 100_000
"""--compound without --trials: every feasible point of the grid (the grid ends first)."""


@click.command("search")
@model_options
@click.option(
    "--space",
    "space",
    multiple=True,
    metavar="NAME=DIST",
    help="A searched parameter: choice(A, B, ...), int(LOW, HIGH[, STEP]), uniform(LOW, HIGH) "
    "or loguniform(LOW, HIGH). NAME is a network parameter, 'resolution' (input size) or a "
    "training option (lr, dropout, ...). Repeatable.",
)
@click.option(
    "--objective",
    default="macs",
    show_default=True,
    metavar="EXPR",
    help="macs, params, flops, latency, measured, val_accuracy, val_loss, or a "
    "weighted sum such as 'val_accuracy - 0.05 * macs / 100M'.",
)
@click.option(
    "--direction",
    type=click.Choice(["minimize", "maximize"]),
    default=None,
    help="Default: maximize when val_accuracy has a positive weight, else minimize.",
)
@click.option("--max-macs", default=None, metavar="N", help="Reject candidates over N MACs (300M).")
@click.option(
    "--max-params", default=None, metavar="N", help="Reject candidates over N params (5M)."
)
@click.option(
    "--max-latency",
    default=None,
    metavar="T",
    help="Reject candidates slower than T (2ms): roofline on --device, or --measure.",
)
@click.option(
    "--device",
    default=None,
    metavar="cpu|h100-sxm",
    help="Device profile of the roofline latency estimate.",
)
@click.option(
    "--measure",
    type=click.Choice(["ort"]),
    default=None,
    help="Measure each candidate's batch-1 latency in ONNX Runtime (CPU) instead.",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Stop when the study holds this many evaluated (complete) trials "
    "[default: 20; with --compound, the whole grid].",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many trials per process, rejected ones included (default: 50 x --trials).",
)
@click.option(
    "--sampler", type=click.Choice(["random", "tpe", "grid"]), default="random", show_default=True
)
@click.option(
    "--pruner",
    type=click.Choice(["none", "median"]),
    default="none",
    show_default=True,
    help="Stop hopeless trainings early (median of epochs).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Optuna storage URL shared by processes and machines (default: sqlite:///OUT/study.db); "
    "journal:PATH is Optuna's journal file, faster for several processes on one machine.",
)
@click.option("--study-name", default="search", show_default=True)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="search",
    show_default=True,
    help="Folder for study.db and pareto.png.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes sharing the study's storage.",
)
@click.option(
    "--train",
    "train",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A fixed training option for trained objectives (epochs=2, data=digits, ...). Repeatable.",
)
@click.option(
    "--compound",
    is_flag=True,
    help="EfficientNet compound scaling: grid-search alpha, beta, gamma in 1.0..1.5 "
    "(step 0.05) under alpha*beta^2*gamma^2 = 2 +- 0.1.",
)
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write OUT/pareto.png.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Trials shown in the table (the best first).",
)
@json_option("Print exactly one JSON object: trials, pareto, counts, best.")
def search_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    space: tuple[str, ...],
    objective: str,
    direction: str | None,
    max_macs: str | None,
    max_params: str | None,
    max_latency: str | None,
    device: str | None,
    measure: str | None,
    trials: int | None,
    max_attempts: int | None,
    sampler: str,
    pruner: str,
    seed: int,
    storage: str | None,
    study_name: str,
    out: str,
    workers: int,
    train: tuple[str, ...],
    compound: bool,
    plot: bool,
    top: int,
    as_json: bool,
) -> None:
    """Search SPEC_OR_MODEL's parameters under exact cost limits, on an Optuna study.

    Candidates over a limit are rejected analytically, before anything trains. SPEC_OR_MODEL is
    a zoo model name or a .gcnn spec file (an .onnx file has no parameters to search).

    \b
    Examples:
      graphcnn search resnet18 --set classes=10 --space 'unit=choice(basic, bottleneck)' \\
          --space "layers=choice([1,1,1,1], [2,2,2,2])" --max-macs 1G --trials 10
      graphcnn search efficientnet_b0 --compound
      graphcnn search docs/examples/nasnet_cells.gcnn \\
          --space 'n0=choice(sep3, sep5, pool3, skip)' --max-macs 20M \\
          --objective val_accuracy --train epochs=2
    """
    from graphcnn.api import is_onnx
    from graphcnn.search import SearchConfig, parse_objective, parse_space, run_search
    from graphcnn.search.candidate import Limits, SearchError, parse_count, parse_seconds

    if is_onnx(spec):
        raise SearchError(
            f"{spec!r} is an ONNX model: it has no parameters to search",
            "search the spec it was exported from (`graphcnn train` trains the ONNX model)",
        )
    if not space and not compound:
        raise SearchError("nothing to search", "give --space NAME=DIST (repeatable) or --compound")
    if compound and space:
        raise SearchError("--compound searches alpha, beta, gamma itself", "drop --space")
    limits = Limits(
        parse_count(max_macs, "--max-macs") if max_macs else None,
        parse_count(max_params, "--max-params") if max_params else None,
        parse_seconds(max_latency, "--max-latency") if max_latency else None,
    )
    config = SearchConfig(
        spec,
        parse_space(space),
        parse_objective(objective, direction),
        limits,
        network,
        sets,
        input_shape,
        None,
        device,
        "float32",
        measure,
        trials or (COMPOUND_TRIALS if compound else 20),
        sampler,
        pruner,
        seed,
        storage,
        Path(out),
        study_name,
        train,
        compound,
        max_attempts,
    )
    import optuna

    from graphcnn.cli import render

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if as_json or not sys.stderr.isatty():
        result = run_search(config, workers)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        total = None if compound and not trials else config.trials
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=render.console(stderr=True),
            transient=True,
        )
        with bar:
            task = bar.add_task("evaluated", total=total)

            def tick(number: int, complete: int) -> None:
                bar.update(task, completed=complete, description=f"trial {number}, evaluated")

            result = run_search(config, workers, tick)
    if plot and any(t.state == "complete" for t in result.trials):
        from graphcnn.search.chart import plot_pareto

        result.png = str(plot_pareto(result, Path(out) / "pareto.png"))
    if as_json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
        return
    render.print_search(render.console(), result, top)
