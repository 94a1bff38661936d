"""The spec commands: ``list`` the zoo, ``check`` a spec, ``dump`` its IR, ``profile`` its cost."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import click

from graphcnn.cli.options import (
    compile_spec,
    json_option,
    pipeline_options,
    run_passes,
    spec_options,
)

if TYPE_CHECKING:
    from graphcnn.ir import Dim, Graph
    from graphcnn.weights import KeyDiff


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


@dataclass(frozen=True)
class NamesCheck:
    """``check --names-from``: how a checkpoint's keys compare with a network's parameters."""

    path: str
    graph: Graph
    keys: int
    diff: KeyDiff

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "network": self.graph.name,
            "keys": self.keys,
            "expected": self.keys - len(self.diff.unexpected) + len(self.diff.missing),
            **self.diff.to_json(),
        }

    def report(self) -> None:
        """Say that the names match, or raise the error listing every difference (exit 2)."""
        from pathlib import Path

        from graphcnn.weights import WeightsError, diff_text, hint_for

        name = Path(self.path).name
        if self.diff.ok:
            click.echo(f"names from {name}: all {self.keys} keys match {self.graph.name}")
            return
        title = f"{name} does not match {self.graph.name} ({self.keys} keys in the file):"
        raise WeightsError(diff_text(self.diff, title), hint_for(self.graph, self.diff))


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


def _checked(g: Graph, name: str) -> _CheckOk:
    """``check``'s result for one compiled network: verified, with its outputs and cost."""
    from graphcnn.cost import profile

    g.verify()
    t = profile(g).totals
    outs = [list(g[n].type.shape[1:]) for _, n in g.outputs if not g[n].training_only]
    return {
        "network": name,
        "ok": True,
        "nodes": len(g),
        "outputs": outs,
        "params": t.params,
        "macs": t.macs,
    }


@click.command()
@spec_options
@json_option()
@click.option(
    "--names-from",
    "names_from",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="CHECKPOINT",
    help="Compare the parameter names and shapes with a checkpoint's (.pt/.pth state dict or "
    ".safetensors, read without running code from it) and list the missing, unexpected and "
    "mis-shaped keys; exit 2 if they differ. Checks one network (--network, else the last).",
)
def check(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    as_json: bool,
    names_from: str | None,
) -> None:
    """Parse and shape-check a spec (every network and model in a file, or one zoo model).

    \b
    With --names-from CHECKPOINT, also compare the network's parameter names and shapes with
    the checkpoint's before any weights are loaded:
      graphcnn check my_resnet.gcnn --names-from resnet18.pth
    """
    from graphcnn.api import compile_loaded, is_onnx, resolve
    from graphcnn.lang.values import Block
    from graphcnn.weights import read_shapes

    shapes = read_shapes(names_from) if names_from else None  # an unreadable file first
    results: list[_CheckSkipped | _CheckOk] = []
    graphs: dict[str, Graph] = {}
    if is_onnx(spec):  # an imported graph: one network, no spec module
        g = compile_spec(spec, network, sets, input_shape, batch)
        names = [g.name]
        graphs[g.name] = g
        results.append(_checked(g, g.name))
    else:
        module, default = resolve(spec)
        chosen = network or default
        if names_from and not chosen and module.targets:
            chosen = module.targets[-1]
        names = [chosen] if chosen else module.targets
        for name in names:
            target = module.target(name)
            if (
                isinstance(target, Block)
                and any(p.default is None for p in target.defn.params)
                and not sets
            ):
                results.append({"network": name, "ok": None, "skipped": "needs arguments"})
                continue
            g = graphs[name] = compile_loaded(module, name, sets, input_shape, batch)
            results.append(_checked(g, name))
    names_check = None
    if names_from and shapes is not None:
        names_check = _names_check(names_from, shapes, graphs, names)
    if as_json:
        data: dict[str, Any] = {"spec": spec, "results": results}
        if names_check is not None:
            data["names_from"] = names_check.to_json()
        click.echo(json.dumps(data))
        if names_check is not None and not names_check.diff.ok:
            click.get_current_context().exit(2)
        return
    for r in results:
        if r["ok"] is None:
            click.echo(f"skipped {r['network']}: {r['skipped']}")
        else:
            click.echo(
                f"ok {r['network']}: {r['nodes']} nodes, output {r['outputs']}, "
                f"{r['params']:,} params, {r['macs'] / 1e9:.3f} GMACs"
            )
    if names_check is not None:
        names_check.report()


def _names_check(
    path: str, shapes: dict[str, tuple[int, ...]], graphs: dict[str, Graph], names: list[str]
) -> NamesCheck:
    """``--names-from``: the checkpoint's names and shapes against the one checked network."""
    from graphcnn.weights import WeightsError, compare_keys

    if len(names) != 1:
        raise WeightsError(
            "--names-from compares one network; the spec has none",
            "define a network or model in it, or name one with --network",
        )
    g = graphs.get(names[0])
    if g is None:
        raise WeightsError(
            f"--names-from: network {names[0]} needs arguments",
            "give them with --set NAME=VALUE",
        )
    return NamesCheck(path, g, len(shapes), compare_keys(g, shapes))


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
