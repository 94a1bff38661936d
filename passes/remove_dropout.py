"""remove_dropout: dropout and stochastic depth become nothing in an inference graph.

Before / after, in spec terms::

    x -> linear(4096) -> relu -> dropout(0.5) -> linear(1000)   # training graph
    x -> linear(4096) -> relu -> linear(1000)                    # inference graph

    x -> conv(64, 3, drop_connect: 0.3) as c1 -> relu    # training graph (DropConnect)
    x -> conv(64, 3) as c1 -> relu                       # inference graph

Fires on every ``dropout`` and ``drop_path`` node (every training-only stochastic regulariser the
IR has), and on every conv or linear layer with ``drop_connect`` (Wan et al. 2013: its weights
are masked while training). The math: all are *inverted* — they scale kept activations (kept
weights) by 1/(1-p) while training — so at inference dropout and drop_path are exactly the
identity, and a DropConnect layer is exactly the plain layer with the same weights; no rescaling
is needed. Dropout's users are rewired to its input; a DropConnect layer loses the attribute.
"""

from __future__ import annotations

from graphcnn.ir import Graph, GroupOp, Node, freeze
from graphcnn.passes.manager import PassResult, Weights, bypass


def _plain(node: Node) -> Node:
    return node.replace(attrs=freeze({k: v for k, v in node.attrs.items() if k != "drop_connect"}))


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    result = bypass(graph, lambda n: n.op in GroupOp.STOCHASTIC)
    dropped = {n.name: _plain(n) for n in result.graph if "drop_connect" in n.attrs}
    if not dropped:
        return result
    return PassResult(
        result.graph.rewrite(dropped),
        removed=result.removed,
        rewritten=list(dropped),
    )
