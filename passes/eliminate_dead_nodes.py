"""eliminate_dead_nodes: nodes no graph output depends on are removed.

Before / after::

    a = x -> conv(8, 3)          # before: `b` is computed and never used
    b = x -> conv(8, 1)
    return a

    a = x -> conv(8, 3)          # after
    return a

One backward sweep in reverse topological order marks what the outputs need (O(nodes + edges)).
Graph inputs are always kept, as they are the graph's signature. Weights of removed nodes go too.
"""

from __future__ import annotations

from graphcnn.ir import Graph, Op
from graphcnn.passes.manager import PassResult, Weights


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    live = {n for _, n in graph.outputs}
    for node in reversed(list(graph)):
        if node.name in live:
            live.update(node.inputs)
    dead = {n.name: None for n in graph if n.name not in live and n.op is not Op.INPUT}
    if not dead:
        return PassResult(graph)
    g = graph.rewrite(remove=dead)
    if weights is not None:
        weights = {k: v for k, v in weights.items() if k.rpartition(".")[0] not in dead}
    return PassResult(g, weights, removed=list(dead))
