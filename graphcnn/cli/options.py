"""Options shared by the commands, declared once: the spec options, the pipeline options.

Every command that takes a spec takes ``SPEC_OR_MODEL --network --set --input --batch``
(:func:`spec_options`); those that can run passes first take ``--pipeline --report
--verify-passes`` (:func:`pipeline_options`). Parsing callbacks turn bad values into click's
usage errors (exit code 2). SPEC_OR_MODEL is a zoo name, a ``.gcnn`` file or an ``.onnx`` file
(imported, see :func:`graphcnn.api.load`): :func:`compile_spec` and :func:`load_model` are the
one place that tells them apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from graphcnn.ir import Graph
    from graphcnn.weights import Weights

F = TypeVar("F", bound=Callable[..., Any])

SPEC_METAVAR = "SPEC_OR_MODEL"
SPEC_HELP = "SPEC_OR_MODEL is a zoo model name, a .gcnn spec file or an .onnx file (imported)."
"""The argument's name, and what it may be (the commands' help texts say it)."""


def parse_input(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``3x224x224`` (or ``3,224,224``) -> ``(3, 224, 224)``."""
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


def parse_sets(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> Any:
    """Repeated ``KEY=EXPR`` -> ``{KEY: EXPR}`` (EXPR stays a spec expression)."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, expr = v.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"expected key=value (a spec expression), got {v!r}")
        out[key.strip()] = expr.strip()
    return out


def model_options(f: F) -> F:
    """``SPEC_OR_MODEL --network --set --input``: which network, with which parameters.

    The command's help (its docstring) gains a last paragraph saying what SPEC_OR_MODEL may be,
    unless it says so itself.
    """
    if f.__doc__ and "SPEC_OR_MODEL is" not in f.__doc__:
        f.__doc__ = inspect.cleandoc(f.__doc__) + "\n\n" + SPEC_HELP
    f = click.option(
        "--input",
        "input_shape",
        callback=parse_input,
        metavar="CxHxW",
        help="Replace the network's input size, e.g. 3x299x299 (an .onnx model's graph is "
        "re-inferred at that size; its weights must still fit).",
    )(f)
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        callback=parse_sets,
        metavar="KEY=VALUE",
        help="Override a network parameter with a spec expression, e.g. "
        "--set classes=10 --set 'layers=[1, 1, 1, 1]'. Repeatable.",
    )(f)
    f = click.option(
        "--network",
        "-n",
        default=None,
        help="Which network or model of the spec file (default: the last one; an .onnx "
        "file has one).",
    )(f)
    return click.argument("spec", metavar=SPEC_METAVAR)(f)


def spec_options(f: F) -> F:
    """:func:`model_options` and ``--batch`` (a concrete batch size)."""
    f = click.option(
        "--batch",
        type=click.IntRange(min=1),
        default=None,
        help="Concrete batch size (costs scale with it). Default: symbolic N, "
        "costs for one sample.",
    )(f)
    return model_options(f)


def pipeline_options(f: F) -> F:
    """``--pipeline --report --verify-passes``: transform passes to run first."""
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


def json_option(help: str = "Print one JSON object.") -> Callable[[F], F]:
    """``--json``: machine-readable output, exactly one JSON object on stdout."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def compile_spec(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> Graph:
    """The graph of the spec options (a zoo model, a spec file or an ONNX file)."""
    return load_model(spec, network, sets, input_shape, batch)[0]


def load_model(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> tuple[Graph, Weights | None]:
    """The graph of the spec options and its weights: an ONNX file's own, None for a spec."""
    from graphcnn.api import load

    return load(spec, network, sets, input_shape, batch)


def run_passes(g: Graph, weights: Any, pipeline: str, report: bool, verify: bool) -> Any:
    """Run ``pipeline`` on a graph (and weights); print the per-pass report with ``report``."""
    from graphcnn.passes import optimize

    g, weights, reports = optimize(g, weights, pipeline, verify=verify)
    if report and reports:
        from graphcnn.cli import render

        render.print_pass_reports(render.console(stderr=True), pipeline, reports)
    return g, weights
