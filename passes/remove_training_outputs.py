"""remove_training_outputs: auxiliary heads and everything training-only are dropped.

Before / after (GoogLeNet)::

    inception4a -> ... -> fc            inception4a -> ... -> fc
    training { inception4a -> aux1 }    (aux1 and its outputs are gone)
    return logits, aux2, aux1           return logits

Fires on every node marked ``training_only`` (created inside a ``training { }`` block, or
computed from such a node) and on every graph output they produce, with their weights.
"""

from __future__ import annotations

from graphcnn.ir import Graph
from graphcnn.passes.manager import PassResult, Weights


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    dropped = [n.name for n in graph if n.training_only]
    g = graph.inference()
    if weights is not None and dropped:
        gone = set(dropped)
        weights = {k: v for k, v in weights.items() if k.rpartition(".")[0] not in gone}
    return PassResult(g, weights if dropped else None, removed=dropped)
