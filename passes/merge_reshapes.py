"""merge_reshapes: consecutive flatten/reshape nodes become one.

Before / after::

    x -> reshape([64, 49]) -> flatten        # before: two views
    x -> flatten                             # after: one

Fires on a ``flatten``/``reshape`` whose input is a ``flatten``/``reshape`` used by nothing
else (a graph output counts as a use: a returned view is kept). A view of a view is a view of
the original: the second node is rewritten to read the first one's input (a ``flatten`` stays a
``flatten``, since it flattens any shape; otherwise a ``reshape`` to the same output shape) and
the first node goes.
"""

from __future__ import annotations

from graphcnn.ir import Graph, GroupOp, Node, Op, freeze
from graphcnn.passes.manager import PassResult, Weights

VIEWS = GroupOp.RESHAPE


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    replace: dict[str, Node] = {}
    remove: dict[str, str | None] = {}
    for node in graph:
        src = graph[node.inputs[0]] if node.inputs else None
        if node.op not in VIEWS or src is None or src.op not in VIEWS:
            continue
        if graph.uses(src.name) != 1 or src.name in remove:
            continue
        root = remove.get(src.name, src.inputs[0])
        start = node.attrs.get("start_dim")
        if node.op is Op.FLATTEN and start == 1:
            new = node.replace(inputs=(root,))
        else:
            new = node.replace(
                op=Op.RESHAPE, inputs=(root,), attrs=freeze({"shape": node.type.shape[1:]})
            )
        replace[node.name] = new
        remove[src.name] = root
    if not remove:
        return PassResult(graph)
    return PassResult(graph.rewrite(replace, remove), removed=list(remove), rewritten=list(replace))
