"""remove_dropout: dropout and stochastic depth become nothing in an inference graph.

Before / after, in spec terms::

    x -> linear(4096) -> relu -> dropout(0.5) -> linear(1000)   # training graph
    x -> linear(4096) -> relu -> linear(1000)                    # inference graph

Fires on every ``dropout`` and ``drop_path`` node (every training-only stochastic regulariser the
IR has). The math: both are *inverted* — they scale kept activations by 1/(1-p) while training —
so at inference they are exactly the identity and no rescaling of the following layer is needed.
Their users are rewired to their input.
"""

from __future__ import annotations

from graphcnn.ir import Graph, GroupOp
from graphcnn.passes.manager import PassResult, Weights, bypass


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    return bypass(graph, lambda n: n.op in GroupOp.STOCHASTIC)
