"""The builder the ONNX lowerings append to: the nodes and constant initializers of one graph
(``onnx`` imported inside its methods)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphcnn.ir import Graph, Node


@dataclass
class Builder:
    """Collects ONNX nodes and constant initializers for one graph."""

    graph: Graph
    opset: int
    nodes: list[Any] = field(default_factory=list)
    consts: list[Any] = field(default_factory=list)

    def node(
        self,
        op_type: str,
        inputs: list[str],
        outputs: list[str],
        name: str,
        src: Node,
        **attrs: Any,
    ) -> None:
        from onnx import helper

        doc = str(src.loc) if src.loc else ""
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=name, doc_string=doc, **attrs)
        )

    def const(self, name: str, values: list[int] | list[float], dtype: str = "int64") -> str:
        import numpy as np
        from onnx import numpy_helper

        self.consts.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name
