"""The spec commands: ``list`` the zoo, ``check`` a spec, ``dump`` its IR, ``profile`` its cost."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Literal, TypedDict

import click

from graphcnn.cli.options import (
    compile_spec,
    json_option,
    pipeline_options,
    run_passes,
    spec_options,
)

if TYPE_CHECKING:
    from graphcnn.ir import Dim


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


@click.command("list")
@json_option()
def list_cmd(as_json: bool) -> None:
    """List the zoo models with their input size, params and GMACs."""
    from graphcnn import zoo
    from graphcnn.api import compile as compile_graph
    from graphcnn.cost import profile

    rows: list[_ZooRow] = []
    for name, path in zoo.models().items():
        p = profile(compile_graph(name))
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
    from graphcnn.cli import render

    render.console().print(render.zoo_table(rows))


@click.command()
@spec_options
@json_option()
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


@click.command()
@spec_options
def dump(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> None:
    """Print the IR: one line per node with type, attributes, parameters and spec location."""
    click.echo(compile_spec(spec, network, sets, input_shape, batch).dump())


@click.command("profile")
@spec_options
@pipeline_options
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
@json_option("Print exactly one JSON object: model, input, convention, totals, layers.")
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

    g = compile_spec(spec, network, sets, input_shape, batch)
    g, _ = run_passes(g, None, pipeline, report, verify_passes)
    p = profile(g, training=training)
    if as_json:
        sys.stdout.write(json.dumps(p.to_json(depth)) + "\n")
        return
    from graphcnn.cli import render

    render.print_profile(render.console(), p, p.at_depth(depth) if depth else p.layers)
