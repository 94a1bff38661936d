"""Running passes: results, reports and pipelines.

A transform pass is ``run(graph, weights) -> PassResult``: it returns a new graph (and new
weights when it changes them) and says what it changed. An analysis never mutates and returns a
plain dataclass. :func:`run_pipeline` runs a named pipeline or a list of pass names, measures
params and MACs around every pass, and (with ``verify=True``) runs ``Graph.verify()`` after each
one so a broken graph is blamed on the pass that broke it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphcnn.cost import COST_RULES
from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, GroupOp, IRError

if TYPE_CHECKING:
    import numpy as np

Weights = dict[str, "np.ndarray[Any, Any]"]


class PassError(GraphcnnError):
    """A pass or pipeline name is unknown, or a pass produced an invalid graph."""


@dataclass
class PassResult:
    """What a transform returns: the new graph and weights, and what it changed."""

    graph: Graph
    weights: Weights | None = None
    removed: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things the pass saw but did not do, with the reason (``not folded: ...``)."""


Transform = Callable[[Graph, "Weights | None"], PassResult]


@dataclass(frozen=True)
class PassReport:
    """One pass of a pipeline run: counts and the cost before and after."""

    name: str
    removed: int
    rewritten: int
    nodes: tuple[int, int]
    params: tuple[int, int]
    macs: tuple[int, int]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "pass": self.name,
            "removed": self.removed,
            "rewritten": self.rewritten,
            "nodes": list(self.nodes),
            "params": list(self.params),
            "macs": list(self.macs),
            "notes": list(self.notes),
        }


def resolve(
    pipeline: str | Sequence[str],
    passes: Mapping[str, Transform],
    pipelines: Mapping[str, Sequence[str]],
) -> list[str]:
    """Pass names of ``pipeline`` (a pipeline name, comma-separated pass names, or a list)."""
    if isinstance(pipeline, str):
        if pipeline in pipelines:
            return list(pipelines[pipeline])
        names = [p.strip() for p in pipeline.split(",") if p.strip()]
    else:
        names = list(pipeline)
    unknown = [n for n in names if n not in passes]
    if unknown:
        raise PassError(
            f"unknown pass or pipeline {', '.join(map(repr, unknown))}",
            f"pipelines: {', '.join(pipelines)}; passes: {', '.join(passes)}",
        )
    return names


def run_pipeline(
    graph: Graph,
    weights: Weights | None,
    names: Sequence[str],
    passes: Mapping[str, Transform],
    verify: bool = False,
) -> tuple[Graph, Weights | None, list[PassReport]]:
    """Run the passes ``names`` in order; return the final graph, weights and one report each."""
    reports = []
    before = _params_macs(graph)
    for name in names:
        result = passes[name](graph, weights)
        if verify:
            try:
                result.graph.verify()
            except IRError as e:
                raise PassError(
                    f"pass {name} broke the graph: {e}",
                    "this is a bug in the pass; rerun with --pipeline none",
                ) from None
        after = before if result.graph is graph else _params_macs(result.graph)
        reports.append(
            PassReport(
                name,
                len(result.removed),
                len(result.rewritten),
                (len(graph), len(result.graph)),
                (before[0], after[0]),
                (before[1], after[1]),
                tuple(result.notes),
            )
        )
        graph, before = result.graph, after
        if result.weights is not None:
            weights = result.weights
    return graph, weights, reports


def _params_macs(graph: Graph) -> tuple[int, int]:
    """Params and MACs of the whole graph (training parts included), without a full profile."""
    params = macs = 0
    for node in graph:
        params += node.num_params
        if node.op in GroupOp.MACS:
            macs += COST_RULES[node.op](node, [graph[i].type for i in node.inputs])[0]
    return params, macs


def bypass(graph: Graph, match: Callable[[Any], bool]) -> PassResult:
    """Remove every single-input node matching ``match``, wiring its users to its input."""
    removed = {n.name: n.inputs[0] for n in graph if match(n)}
    return PassResult(graph.rewrite(remove=removed), removed=list(removed))
