"""eliminate_identity: ``identity`` nodes (and reshapes to the same shape) disappear.

Before / after::

    y = x -> identity -> relu        # before
    y = x -> relu                    # after

Fires on ``identity`` and on ``reshape``/``flatten`` whose output type equals its input type.
Users are rewired to the input; nothing else changes.
"""

from __future__ import annotations

from graphcnn.ir import Graph, GroupOp, Node, Op
from graphcnn.passes.manager import PassResult, Weights, bypass


def _noop(graph: Graph, n: Node) -> bool:
    if n.op is Op.IDENTITY:
        return True
    return n.op in GroupOp.RESHAPE and graph[n.inputs[0]].type == n.type


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    return bypass(graph, lambda n: _noop(graph, n))
