"""Lower the IR to ONNX, built directly with the ``onnx`` package (no torch anywhere here).

``LOWERINGS[op]`` has one function per op that appends ONNX nodes for one IR node. Node and
initializer names are the IR scope names (``layer1.0.conv1``, ``layer1.0.conv1.weight``), so the
model reads like the spec in Netron, and every node's ``doc_string`` is its spec location. The
batch dimension is the symbol ``N`` unless a static batch is asked for. The graph is the
inference graph: training-only nodes (auxiliary heads) are not exported.

Opsets: :data:`OPSETS` (default :data:`DEFAULT_OPSET`). ``gelu`` uses the Gelu op from opset 20
and its exact erf form before; ``relu6`` is Clip(0, 6); ``silu`` is x * Sigmoid(x).
Weights larger than 2 GB are written as external data beside the model (``<name>.<id>.data``, a
fresh name per save, so the model and its weights are always replaced as a pair).

The package, each module importing only the ones before it: ``metadata`` (each node's cost and
spec location in its ``metadata_props``, shown by Netron), ``lowering`` (:class:`OnnxError`,
the opsets, ``LOWERINGS``, :func:`to_onnx`), ``files`` (:func:`check`, :func:`save`,
:data:`PROTOBUF_LIMIT`) and ``emit`` (what ``graphcnn compile --target onnx`` runs, named by
``graphcnn.backends.TARGETS``; not imported here, as it uses the INT8 quantiser, which uses this
package). Every other public name is importable from the package.
"""

from __future__ import annotations

from graphcnn.backends.to_onnx.files import PROTOBUF_LIMIT, check, save
from graphcnn.backends.to_onnx.lowering import (
    DEFAULT_OPSET,
    LOWERINGS,
    OPSETS,
    Lowering,
    OnnxError,
    to_onnx,
)

__all__ = [
    "DEFAULT_OPSET",
    "LOWERINGS",
    "OPSETS",
    "PROTOBUF_LIMIT",
    "Lowering",
    "OnnxError",
    "check",
    "save",
    "to_onnx",
]
