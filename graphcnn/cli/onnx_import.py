"""``graphcnn import``: an ONNX CNN into the IR, profiled, its weights saved."""

from __future__ import annotations

import json
import sys

import click

from graphcnn.cli.options import json_option


@click.command("import")
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
@json_option("Print exactly one JSON object: the profile plus source, nodes and ops.")
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
    from graphcnn.cli import render

    t = p.totals
    click.echo(
        f"imported {model}: {len(g)} nodes, {t.params:,} params, {t.macs / 1e9:.3f} GMACs, "
        f"input {'x'.join(map(str, p.input))}"
    )
    click.echo("  ops: " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
    render.print_profile(render.console(), p, p.at_depth(depth) if depth else p.layers)
    if wrote:
        click.echo(wrote)
