"""The ONNX side of a build: the model's nodes, inputs and Q/DQ nodes, and TensorRT's
ONNX-parser errors mapped back to the IR.

Parser errors name the ONNX node, which is the IR scope name, and its spec location (the
node's ``doc_string``); :class:`ParseError` lists every one, located in the spec.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from graphcnn.backends.to_tensorrt.errors import TensorRTError
from graphcnn.ir import Graph, SourceLoc

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node: its name (an IR scope name for graphcnn models), op and location."""

    index: int
    name: str
    op: str
    loc: SourceLoc | None


def parse_loc(text: str) -> SourceLoc | None:
    """``"resnet.gcnn:12:5"`` -> SourceLoc; anything else -> None."""
    m = re.fullmatch(r"(.+):(\d+):(\d+)", text.strip())
    return SourceLoc(m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def _model(model: bytes | onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    return model


def onnx_nodes(model: bytes | onnx.ModelProto) -> list[OnnxNode]:
    """Every node of the model in order; ``loc`` parsed from its ``doc_string``."""
    m = _model(model)
    return [
        OnnxNode(i, n.name, n.op_type, parse_loc(n.doc_string)) for i, n in enumerate(m.graph.node)
    ]


def onnx_inputs(model: bytes | onnx.ModelProto) -> list[str]:
    """Names of the real inputs (initializers excluded)."""
    m = _model(model)
    inits = {i.name for i in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


def qdq_summary(model: bytes | onnx.ModelProto) -> dict[str, int]:
    """Counts of QuantizeLinear / DequantizeLinear nodes and of uint8 (asymmetric) quantizers."""
    m = _model(model)
    inits = {i.name: i for i in m.graph.initializer}
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    uint8 = 0
    for n in q:
        zp = inits.get(n.input[2]) if len(n.input) > 2 else None
        if zp is not None and zp.data_type == 2:  # TensorProto.UINT8
            uint8 += 1
    return {"quantize": len(q), "dequantize": len(dq), "uint8": uint8}


@dataclass(frozen=True)
class ParserIssue:
    """One ONNX-parser error, mapped back to the IR."""

    desc: str
    node: OnnxNode | None
    scope: str | None
    """The IR node it comes from (helper nodes such as ``x.sigmoid`` map to ``x``)."""

    def format(self) -> str:
        from graphcnn.errors import SpecError

        if self.node is None:
            return f"error: {self.desc}"
        what = f"ONNX node {self.node.name!r} ({self.node.op}"
        if self.scope and self.scope != self.node.name:
            what += f", from IR node {self.scope!r}"
        return SpecError(f"TensorRT cannot parse {what}): {self.desc}", self.node.loc).format()


def map_parser_error(
    desc: str,
    node_index: int,
    node_name: str,
    nodes: Sequence[OnnxNode],
    graph: Graph | None = None,
) -> ParserIssue:
    """Locate one parser error: by node name if TensorRT gives one, else by node index."""
    by_name = {n.name: n for n in nodes}
    node = by_name.get(node_name) if node_name else None
    if node is None and 0 <= node_index < len(nodes):
        node = nodes[node_index]
    scope = None
    if node is not None and graph is not None:
        name = node.name
        while name and name not in graph.nodes:
            name = name.rpartition(".")[0]
        scope = name or None
    elif node is not None:
        scope = node.name
    return ParserIssue(desc, node, scope)


class ParseError(TensorRTError):
    """TensorRT's ONNX parser rejected the model; every issue is located in the spec."""

    def __init__(self, issues: Sequence[ParserIssue]) -> None:
        n = len(issues)
        super().__init__(
            f"TensorRT's ONNX parser reported {n} error{'s' if n != 1 else ''}",
            "an op or attribute TensorRT does not support; `--target onnx` still works",
        )
        self.issues = list(issues)

    def format(self) -> str:
        lines = [f"error: {self.message}"] + [i.format() for i in self.issues]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)
