"""The ``graphcnn`` command line (click). Spec errors print one located message and exit 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

import click

from graphcnn import __version__

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod

    from graphcnn.cost import LayerCost, Profile
    from graphcnn.ir import Dim, Graph

F = TypeVar("F", bound=Callable[..., Any])

EXIT_SPEC_ERROR = 2


class _ZooRow(TypedDict):
    """One model of ``graphcnn list`` (a JSON object with ``--json``)."""

    name: str
    spec: str
    input: list[int]
    params: int
    macs: int


class _CheckSkipped(TypedDict):
    """A network of ``graphcnn check`` that was not compiled (it needs arguments)."""

    network: str
    ok: None
    skipped: str


class _CheckOk(TypedDict):
    """A network of ``graphcnn check`` that compiled and verified."""

    network: str
    ok: Literal[True]
    nodes: int
    outputs: list[list[Dim]]
    params: int
    macs: int


def _parse_input(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    parts = value.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise click.BadParameter(
            f"expected CxHxW with positive integers, e.g. 3x224x224; got {value!r}"
        )
    return dims


def _parse_sets(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    out: dict[str, str] = {}
    for v in values:
        key, sep, expr = v.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"expected key=value (a spec expression), got {v!r}")
        out[key.strip()] = expr.strip()
    return out


def _spec_options(f: F) -> F:
    f = click.option(
        "--batch",
        type=click.IntRange(min=1),
        default=None,
        help="Concrete batch size (costs scale with it). Default: symbolic N, "
        "costs for one sample.",
    )(f)
    f = click.option(
        "--input",
        "input_shape",
        callback=_parse_input,
        metavar="CxHxW",
        help="Replace the network's input size, e.g. 3x299x299.",
    )(f)
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        callback=_parse_sets,
        metavar="KEY=VALUE",
        help="Override a network parameter with a spec expression, e.g. "
        "--set classes=10 --set 'layers=[1, 1, 1, 1]'. Repeatable.",
    )(f)
    f = click.option(
        "--network",
        "-n",
        default=None,
        help="Which network or model of the spec file (default: the last one).",
    )(f)
    return click.argument("spec", metavar="SPEC_OR_MODEL")(f)


def _compile(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> Graph:
    from graphcnn.api import compile as compile_spec

    return compile_spec(spec, network, sets, input_shape, batch)


class _Group(click.Group):
    """Turns graphcnn errors into one clear message and exit code 2 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        from graphcnn.errors import GraphcnnError

        try:
            return super().invoke(ctx)
        except GraphcnnError as e:
            click.echo(e.format(), err=True)
            ctx.exit(EXIT_SPEC_ERROR)
        except RecursionError:
            click.echo("error: the spec nests too deeply to process", err=True)
            ctx.exit(EXIT_SPEC_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="graphcnn")
def main() -> None:
    """graphcnn: compile CNN architecture specs (.gcnn) to a typed IR and profile them exactly.

    SPEC_OR_MODEL is a zoo model name (see `graphcnn list`) or a path to a .gcnn file.

    \b
    Examples:
      graphcnn list
      graphcnn check resnet50
      graphcnn profile resnet50 --depth 1
      graphcnn profile my_net.gcnn --set classes=10 --input 3x32x32 --json
      graphcnn dump googlenet
      graphcnn compile resnet18 --target torch -o resnet18.py
    """


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(as_json: bool) -> None:
    """List the zoo models with their input size, params and GMACs."""
    from graphcnn import zoo
    from graphcnn.api import compile as compile_spec
    from graphcnn.cost import profile

    rows: list[_ZooRow] = []
    for name, path in zoo.models().items():
        p = profile(compile_spec(name))
        rows.append(
            {
                "name": name,
                "spec": path.name,
                "input": list(p.input),
                "params": p.totals.params,
                "macs": p.totals.macs,
            }
        )
    if as_json:
        click.echo(json.dumps({"models": rows}))
        return
    from rich.table import Table

    table = Table(title=f"graphcnn zoo ({len(rows)} models)", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("model", "left"),
        ("spec", "left"),
        ("input", "left"),
        ("params", "right"),
        ("MACs", "right"),
    )
    for col, just in columns:
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(
            r["name"], r["spec"], "x".join(map(str, r["input"])), f"{r['params']:,}", _si(r["macs"])
        )
    _console().print(table)


@main.command()
@_spec_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    as_json: bool,
) -> None:
    """Parse and shape-check a spec (every network and model in a file, or one zoo model)."""
    from graphcnn.api import compile_loaded, resolve
    from graphcnn.cost import profile
    from graphcnn.lang.values import Block

    module, default = resolve(spec)
    chosen = network or default
    names = [chosen] if chosen else module.targets
    results: list[_CheckSkipped | _CheckOk] = []
    for name in names:
        target = module.target(name)
        if (
            isinstance(target, Block)
            and any(p.default is None for p in target.defn.params)
            and not sets
        ):
            results.append({"network": name, "ok": None, "skipped": "needs arguments"})
            continue
        g = compile_loaded(module, name, sets, input_shape, batch)
        g.verify()
        t = profile(g).totals
        outs = [list(g[n].type.shape[1:]) for _, n in g.outputs if not g[n].training_only]
        results.append(
            {
                "network": name,
                "ok": True,
                "nodes": len(g),
                "outputs": outs,
                "params": t.params,
                "macs": t.macs,
            }
        )
    if as_json:
        click.echo(json.dumps({"spec": spec, "results": results}))
        return
    for r in results:
        if r["ok"] is None:
            click.echo(f"skipped {r['network']}: {r['skipped']}")
        else:
            click.echo(
                f"ok {r['network']}: {r['nodes']} nodes, output {r['outputs']}, "
                f"{r['params']:,} params, {r['macs'] / 1e9:.3f} GMACs"
            )


@main.command()
@_spec_options
def dump(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> None:
    """Print the IR: one line per node with type, attributes, parameters and spec location."""
    click.echo(_compile(spec, network, sets, input_shape, batch).dump())


TARGETS = ("torch", "onnx", "tensorrt")


def _parse_batch_range(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from graphcnn.backends.to_tensorrt import TensorRTError, parse_batch_range

    try:
        return None if value is None else parse_batch_range(value)
    except TensorRTError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else "")) from None


def _parse_bytes(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from graphcnn.backends.to_tensorrt import TensorRTError, parse_size

    try:
        return None if value is None else parse_size(value)
    except TensorRTError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else "")) from None


def _pipeline_options(f: F) -> F:
    f = click.option(
        "--verify-passes",
        is_flag=True,
        help="Debug: run Graph.verify() after every pass; a failure names the pass.",
    )(f)
    f = click.option(
        "--report",
        is_flag=True,
        help="Print what each pass changed (nodes, params and MACs before/after).",
    )(f)
    return click.option(
        "--pipeline",
        "-p",
        default="none",
        show_default=True,
        metavar="NAME|PASS,PASS",
        help="Passes to run first: a pipeline (inference, none) or pass names "
        "separated by commas. See `graphcnn passes`.",
    )(f)


def _run_passes(g: Graph, weights: Any, pipeline: str, report: bool, verify: bool) -> Any:
    from graphcnn.passes import optimize

    g, weights, reports = optimize(g, weights, pipeline, verify=verify)
    if report and reports:
        from rich.table import Table

        table = Table(title=f"passes ({pipeline})", title_justify="left")
        for col in ("pass", "removed", "rewritten", "nodes", "params", "MACs"):
            table.add_column(col, justify="left" if col == "pass" else "right")
        for r in reports:
            table.add_row(
                r.name,
                str(r.removed),
                str(r.rewritten),
                f"{r.nodes[0]} -> {r.nodes[1]}",
                f"{r.params[0]:,} -> {r.params[1]:,}",
                f"{_si(r.macs[0])} -> {_si(r.macs[1])}",
            )
        console = _console(stderr=True)
        console.print(table)
        for r in reports:
            for note in r.notes:
                console.print(f"  {r.name}: {note}", style="dim")
    return g, weights


@main.command("passes")
def passes_cmd() -> None:
    """List the transform passes and the named pipelines."""
    from graphcnn.passes import PASSES, PIPELINES, describe

    for name in PASSES:
        click.echo(f"{name:26s} {describe(name).split(': ', 1)[-1]}")
    click.echo("")
    for name, names in PIPELINES.items():
        click.echo(f"pipeline {name}: {', '.join(names) or '(no passes)'}")


@main.command("compile")
@_spec_options
@_pipeline_options
@click.option(
    "--target",
    "-t",
    type=click.Choice(TARGETS),
    default="torch",
    show_default=True,
    help="What to emit. torch: a standalone nn.Module source file + its weights; "
    "onnx: an ONNX model; tensorrt: a TensorRT engine + its manifest (needs TensorRT 10 "
    "and a CUDA GPU).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    required=True,
    help="File to write (e.g. model.py). Weights go beside it (model.safetensors).",
)
@click.option(
    "--weights",
    "weights_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Initial weights: a PyTorch .pt/.pth state dict or .safetensors, checked "
    "key by key against the model. Default: seeded PyTorch-style initialisation.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the default initialisation (ignored with --weights).",
)
@click.option(
    "--class-name",
    default="Model",
    show_default=True,
    help="Name of the generated nn.Module class.",
)
@click.option(
    "--opset",
    type=click.Choice(["17", "18", "19", "20", "21"]),
    default="17",
    show_default=True,
    callback=lambda c, p, v: int(v),
    help="ONNX opset (onnx target).",
)
@click.option(
    "--static-batch",
    type=click.IntRange(min=1),
    default=None,
    help="Fix the ONNX batch dimension (default: dynamic 'N').",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also write a statically quantised INT8 model (QDQ, per-channel int8 weights) as "
    "OUTPUT's stem + .int8.onnx and report its agreement with the FP32 OUTPUT (onnx target). "
    "tensorrt target: an INT8 engine calibrated on --calibration.",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True),
    default=None,
    metavar="DIR_OR_NPZ",
    help="INT8 calibration data: a folder of images or an .npz of model-ready inputs; 20% "
    "is held out for the report. Default: synthetic images (a fallback only).",
)
@click.option(
    "--fp16",
    is_flag=True,
    help="tensorrt target: let TensorRT run layers in FP16 (inputs and outputs stay FP32).",
)
@click.option(
    "--batch-range",
    callback=_parse_batch_range,
    default=None,
    metavar="MIN:OPT:MAX",
    help="tensorrt target: the batch sizes the engine accepts, tuned for OPT, e.g. 1:8:32. "
    "Default: B:B:B with --batch B, else 1:1:1.",
)
@click.option(
    "--workspace",
    callback=_parse_bytes,
    default=None,
    metavar="SIZE",
    help="tensorrt target: cap on the builder's scratch GPU memory, e.g. 1GiB or 512MiB.",
)
@click.option(
    "--timing-cache",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="tensorrt target: TensorRT timing cache, read before and updated after the build "
    "(faster rebuilds).",
)
def compile_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    target: str,
    output: str,
    weights_file: str | None,
    seed: int,
    class_name: str,
    opset: int,
    static_batch: int | None,
    int8: bool,
    calibration: str | None,
    fp16: bool,
    batch_range: tuple[int, int, int] | None,
    workspace: int | None,
    timing_cache: str | None,
    pipeline: str,
    report: bool,
    verify_passes: bool,
) -> None:
    """Compile a spec for a backend and write the artifacts atomically.

    \b
    --target torch: OUTPUT is Python (imports only torch and safetensors) and
      OUTPUT's stem + .safetensors holds the weights; `Model()` builds the module
      and loads them.
    --target onnx: OUTPUT is an ONNX model (the inference graph, weights inside;
      above 2 GB they go to OUTPUT.data), checked with onnx.checker.
    --target tensorrt: OUTPUT is a TensorRT engine built from that ONNX model
      (dynamic batch, one profile from --batch-range) and OUTPUT.json its
      manifest (IR/spec hashes, TensorRT, CUDA, GPU, precision, profiles);
      identical builds come from the engine cache ($GRAPHCNN_TRT_CACHE).
    """
    from pathlib import Path

    from graphcnn.weights import init_weights, load_checkpoint

    if int8 and target not in ("onnx", "tensorrt"):
        raise click.BadParameter("--int8 needs --target onnx or tensorrt", param_hint="--int8")
    trt_options = {"--fp16": fp16, "--batch-range": batch_range, "--workspace": workspace,
                   "--timing-cache": timing_cache}  # fmt: skip
    for name, value in trt_options.items():
        if value and target != "tensorrt":
            raise click.BadParameter(f"{name} needs --target tensorrt", param_hint=name)
    if target == "tensorrt" and fp16 and int8:
        raise click.BadParameter(
            "--fp16 and --int8 are exclusive (an INT8 engine falls back to FP16 already)",
            param_hint="--fp16",
        )
    if target == "tensorrt" and static_batch is not None:
        raise click.BadParameter(
            f"use --batch-range {static_batch}:{static_batch}:{static_batch} for a fixed batch",
            param_hint="--static-batch",
        )
    if calibration is not None and not int8:
        raise click.BadParameter("--calibration is only used with --int8", param_hint="--int8")
    g = _compile(spec, network, sets, input_shape, batch)
    if target == "tensorrt":
        from graphcnn.backends.to_tensorrt import require_runtime

        require_runtime()  # before any work: names what is missing (exit 2)
    out = Path(output)
    if target == "torch" and Path(output).suffix == ".safetensors":
        raise click.BadParameter(
            "the torch target writes Python source to OUTPUT and the weights beside it as "
            "<stem>.safetensors; give OUTPUT a .py name",
            param_hint="--output",
        )
    if not class_name.isidentifier():
        raise click.BadParameter(
            f"{class_name!r} is not a Python identifier", param_hint="--class-name"
        )
    weights = load_checkpoint(weights_file, g) if weights_file else init_weights(g, seed)
    g, weights = _run_passes(g, weights, pipeline, report, verify_passes)
    origin = weights_file or f"seeded PyTorch-style init, seed {seed}"
    if target == "torch":
        _emit_torch(g, weights, out, class_name, origin)
    elif target == "tensorrt":
        from graphcnn.backends.to_tensorrt import emit_engine

        precision = "int8" if int8 else "fp16" if fp16 else "fp32"
        emit_engine(
            g, weights, out, precision, batch_range, workspace, timing_cache, calibration, opset,
            echo=click.echo,
        )  # fmt: skip
    else:
        _emit_onnx(g, weights, out, opset, static_batch, origin, pipeline)
        if int8:
            from graphcnn.backends.quantize import emit_int8

            emit_int8(out, calibration, echo=click.echo)


def _emit_torch(g: Graph, weights: Any, out: Any, class_name: str, origin: str) -> None:
    from graphcnn.backends.to_torch import generate_source
    from graphcnn.cost import profile
    from graphcnn.weights import save_safetensors, write_atomic

    wpath = out.with_suffix(".safetensors")
    source = generate_source(g, class_name, wpath.name)
    save_safetensors(weights, wpath, {"graphcnn.model": g.name, "graphcnn.origin": origin})
    write_atomic(out, source)
    t = profile(g).totals
    click.echo(f"{g.name}: {len(g)} nodes, {t.params:,} params, {t.macs / 1e9:.3f} GMACs")
    click.echo(f"wrote {out} ({source.count(chr(10))} lines, class {class_name})")
    click.echo(f"wrote {wpath} ({_si(wpath.stat().st_size, 'B')}, {origin})")


def _emit_onnx(
    g: Graph,
    weights: Any,
    out: Any,
    opset: int,
    static_batch: int | None,
    origin: str,
    pipeline: str,
) -> None:
    from collections import Counter

    from graphcnn.backends.to_onnx import check, save, to_onnx
    from graphcnn.cost import profile

    model = to_onnx(g, weights, opset=opset, static_batch=static_batch)
    serialized = check(model, g)
    files = save(model, out, serialized)
    t = profile(g.inference()).totals
    ops = Counter(n.op_type for n in model.graph.node)
    size = sum(f.stat().st_size for f in files)
    batch = static_batch if static_batch is not None else "N (dynamic)"
    click.echo(
        f"{g.name} -> ONNX opset {opset}, batch {batch}, input "
        f"{'x'.join(str(d) for d in g.inputs[0].type.shape[1:])}"
    )
    click.echo(
        f"  {len(model.graph.node)} nodes: " + ", ".join(f"{op} {n}" for op, n in ops.most_common())
    )
    click.echo(f"  {t.params:,} params, {t.macs / 1e9:.3f} GMACs, weights: {origin}")
    click.echo(f"  passes: {pipeline}; checked: onnx.checker (full) + strict shape inference")
    click.echo(f"wrote {', '.join(str(f) for f in files)} ({_si(size, 'B')})")


@main.command("profile")
@_spec_options
@_pipeline_options
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=None,
    help="Aggregate rows by scope prefix of N name components (1: top-level blocks).",
)
@click.option(
    "--training",
    is_flag=True,
    help="Profile the training graph (auxiliary heads count in the totals).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print exactly one JSON object: model, input, convention, totals, layers.",
)
def profile_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    depth: int | None,
    training: bool,
    as_json: bool,
    pipeline: str,
    report: bool,
    verify_passes: bool,
) -> None:
    """Exact per-layer params, MACs, FLOPs and memory, computed from the IR alone.

    Totals describe the inference graph; training-only parts (auxiliary heads) are reported
    beside them, or included with --training.
    """
    from graphcnn.cost import profile

    g = _compile(spec, network, sets, input_shape, batch)
    g, _ = _run_passes(g, None, pipeline, report, verify_passes)
    p = profile(g, training=training)
    if as_json:
        sys.stdout.write(json.dumps(p.to_json(depth)) + "\n")
        return
    _print_profile(p, p.at_depth(depth) if depth else p.layers)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else 160, stderr=stderr)


def _print_profile(p: Profile, rows: list[LayerCost]) -> None:
    from rich.table import Table

    from graphcnn.cost import CONVENTION

    t = p.totals
    title = (
        f"{p.model}: input {'x'.join(map(str, p.input))}, batch {p.batch}"
        f"{', training graph' if p.training else ''}"
    )
    table = Table(title=title, title_justify="left", show_footer=True)
    cols = [
        ("layer", "total"),
        ("op", ""),
        ("output", ""),
        ("params", f"{t.params:,}"),
        ("MACs", _si(t.macs)),
        ("FLOPs", _si(t.flops)),
        ("act bytes", _si(t.activation_bytes, "B")),
        ("FLOP/B", ""),
    ]
    for i, (name, foot) in enumerate(cols):
        table.add_column(name, footer=foot, justify="left" if i < 3 else "right")
    for r in rows:
        name = r.name + (" (training)" if r.training_only else "")
        table.add_row(
            name,
            r.op,
            "x".join(map(str, r.output)),
            f"{r.cost.params:,}",
            _si(r.cost.macs),
            _si(r.cost.flops),
            _si(r.cost.activation_bytes, "B"),
            f"{r.intensity:.1f}",
        )
    console = _console()
    console.print(table)
    console.print(
        f"params {t.params:,}  MACs {t.macs:,} ({t.macs / 1e9:.3f} G)  "
        f"FLOPs {t.flops:,}  weights {_si(t.weight_bytes, 'B')}  "
        f"activations {_si(t.activation_bytes, 'B')}"
    )
    tr = p.training_only
    if tr.params or tr.macs:
        console.print(f"training-only (not in totals): params {tr.params:,}  MACs {tr.macs:,}")
    console.print(
        "convention: " + "; ".join(f"{k}: {v}" for k, v in CONVENTION.items()), style="dim"
    )


def _si(n: int, unit: str = "") -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n}{unit}"


@main.command("analyze")
@_spec_options
@_pipeline_options
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
    "--json",
    "as_json",
    is_flag=True,
    help="Print exactly one JSON object (with the receptive field of every layer).",
)
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
    from graphcnn.analyze import analyze, apply_pipeline, render
    from graphcnn.devices import get_device

    dev = get_device(device, remeasure)
    dev.peak(dtype)  # an unsupported dtype fails before compiling
    g = _compile(spec, network, sets, input_shape, batch)
    if report or verify_passes:
        lean, _ = _run_passes(g, None, pipeline, report, verify_passes)
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
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        return
    render(result, _console())


@main.command("import")
@click.argument("model", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save the imported weights (keys node.param, e.g. layer1.0.conv1.weight) to this "
    ".safetensors file.",
)
@click.option("--dump", is_flag=True, help="Print the imported IR instead of the profile.")
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=None,
    help="Aggregate profile rows by scope prefix of N name components.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print exactly one JSON object: the profile plus source, nodes and ops.",
)
def import_cmd(
    model: str, output: str | None, dump: bool, depth: int | None, as_json: bool
) -> None:
    """Import an ONNX CNN into the IR: profile it (params, MACs, nodes, ops), save its weights.

    \b
    Supported: the ops the IR has (Conv, Gemm/MatMul, BatchNormalization, pools,
    activations, Add/Mul/Concat, Split/Slice, Reshape/Flatten, Softmax, ...), the patterns
    torch.onnx.export emits for silu, hardswish, gelu and channel shuffle, and
    shape computations for a dynamic batch. Unsupported ops are listed with their
    counts (exit code 2).
    """
    from collections import Counter
    from pathlib import Path

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.cost import profile
    from graphcnn.ir import Op

    if dump and as_json:
        raise click.UsageError("--dump and --json are exclusive")
    g, weights = from_onnx(model)
    if output:
        from graphcnn.weights import save_safetensors

        save_safetensors(
            weights, output, {"graphcnn.model": g.name, "graphcnn.origin": Path(model).name}
        )
    ops = Counter(str(n.op) for n in g if n.op is not Op.INPUT)
    wrote = f"wrote {output} ({len(weights)} tensors)" if output else None
    if dump:
        click.echo(g.dump())
        if wrote:
            click.echo(wrote, err=True)
        return
    p = profile(g)
    if as_json:
        data = p.to_json(depth)
        data.update(source=model, nodes=len(g), ops=dict(ops.most_common()), weights_file=output)
        sys.stdout.write(json.dumps(data) + "\n")
        return
    t = p.totals
    click.echo(
        f"imported {model}: {len(g)} nodes, {t.params:,} params, {t.macs / 1e9:.3f} GMACs, "
        f"input {'x'.join(map(str, p.input))}"
    )
    click.echo("  ops: " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
    _print_profile(p, p.at_depth(depth) if depth else p.layers)
    if wrote:
        click.echo(wrote)


def _bench_backends(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    from graphcnn.backends.bench import BenchError, parse_backends

    try:
        return parse_backends(values)
    except BenchError as e:
        raise click.BadParameter(f"{e.message}; {e.hint}") from None


def _bench_batches(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    from graphcnn.backends.bench import BenchError, parse_batches

    try:
        return parse_batches(values or ["1,8"])
    except BenchError as e:
        raise click.BadParameter(e.message) from None


@main.command("bench")
@click.argument("spec", metavar="SPEC_OR_MODEL")
@click.option("--network", "-n", default=None, help="Which network or model of the spec file.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    callback=_parse_sets,
    metavar="KEY=VALUE",
    help="Override a network parameter with a spec expression. Repeatable.",
)
@click.option(
    "--input",
    "input_shape",
    callback=_parse_input,
    metavar="CxHxW",
    help="Replace the network's input size, e.g. 3x299x299.",
)
@click.option(
    "--backend",
    "-b",
    "backends",
    multiple=True,
    callback=_bench_backends,
    metavar="NAME[,NAME]",
    help="Backends to compare (comma list or repeated): torch, torch-compile, ort, ort-int8, "
    "tensorrt. Default: torch,ort,ort-int8 (+ torch-compile with --compile).",
)
@click.option(
    "--batch",
    "batches",
    multiple=True,
    callback=_bench_batches,
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
@click.option("--seed", type=int, default=0, show_default=True, help="Weights and inputs seed.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
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
    here (no GPU, no tensorrt) is listed as skipped with the reason. See
    graphcnn/backends/bench.py for the method and the --json keys.
    """
    from graphcnn.backends import bench

    if half is not None and device != "cuda":
        raise click.BadParameter("--half needs --device cuda", param_hint="--half")
    if plot_path is not None:
        bench.check_plot_support()
    names = backends or [*bench.DEFAULT_BACKENDS] + (["torch-compile"] if with_compile else [])
    if backends and with_compile and "torch-compile" not in names:
        names.insert(1, "torch-compile")
    g = _compile(spec, network, sets, input_shape, None)
    options: dict[str, Any] = dict(
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
            console=_console(stderr=True),
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
    console = _console()
    for item in bench.render(result):
        console.print(item)
    if plot_path is not None:
        console.print(f"wrote {plot_path}")


if __name__ == "__main__":  # pragma: no cover
    main()
