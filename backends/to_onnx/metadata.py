"""Each ONNX node's cost and spec location, as node metadata that Netron shows.

ONNX ``NodeProto.metadata_props`` (IR version 10, onnx 1.16+) holds string key/value pairs;
Netron lists them under the node's properties when the node is selected, and the full checker
and ONNX Runtime accept them. :func:`add_metadata` writes, on the ONNX node that computes an IR
node (same name as the IR node):

``graphcnn.op``, ``graphcnn.output`` (shape without the batch, ``64x56x56``), ``graphcnn.spec``
(file:line:col, also the node's ``doc_string``), ``graphcnn.params``, ``graphcnn.macs``,
``graphcnn.flops``, ``graphcnn.activation_bytes``, ``graphcnn.weight_bytes`` (plain integers,
``graphcnn.cost.CONVENTION``); and on the helper nodes a lowering adds for one IR node
(``stem.act.sigmoid`` of a SiLU) ``graphcnn.part_of`` (the IR node) and ``graphcnn.spec``.
Costs are those of ``graphcnn.cost.profile`` at the graph's concrete batch, else of one sample;
the model's own ``metadata_props`` say which (``graphcnn.cost_batch``) and carry the totals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphcnn.cost import profile
from graphcnn.ir import Graph

if TYPE_CHECKING:
    import onnx

PREFIX = "graphcnn."


def _owner(name: str, graph: Graph) -> str | None:
    """The IR node an ONNX node was lowered from: the longest dotted prefix naming one."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in graph.nodes:
            return prefix
    return None


def _set(props: object, items: dict[str, str]) -> None:
    for key, value in items.items():
        entry = props.add()  # type: ignore[attr-defined]
        entry.key, entry.value = PREFIX + key, value


def add_metadata(model: onnx.ModelProto, graph: Graph) -> onnx.ModelProto:
    """Add cost and spec-location metadata to ``model``'s nodes (lowered from ``graph``).

    Returns ``model`` unchanged where node metadata cannot exist: an ``onnx`` older than 1.16,
    or a model of IR version below 10.
    """
    import onnx

    if model.ir_version < 10 or "metadata_props" not in onnx.NodeProto.DESCRIPTOR.fields_by_name:
        return model
    p = profile(graph)
    costs = {row.name: row for row in p.layers}
    for onnx_node in model.graph.node:
        name = onnx_node.name
        row = costs.get(name)
        if row is not None:
            ir = graph.nodes[name]
            c = row.cost
            _set(
                onnx_node.metadata_props,
                {
                    "op": row.op,
                    "output": "x".join(map(str, row.output)),
                    "spec": str(ir.loc) if ir.loc else "",
                    "params": str(c.params),
                    "macs": str(c.macs),
                    "flops": str(c.flops),
                    "activation_bytes": str(c.activation_bytes),
                    "weight_bytes": str(c.weight_bytes),
                },
            )
            continue
        owner = _owner(name, graph)
        if owner is not None:
            loc = graph.nodes[owner].loc
            _set(onnx_node.metadata_props, {"part_of": owner, "spec": str(loc) if loc else ""})
    t = p.totals
    _set(
        model.metadata_props,
        {
            "cost_batch": str(p.batch),
            "params": str(t.params),
            "macs": str(t.macs),
            "flops": str(t.flops),
        },
    )
    return model
