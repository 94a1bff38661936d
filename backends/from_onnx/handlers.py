"""The op table: every ONNX op type the importer converts, and the handler of each.

``HANDLERS[op_type]`` converts a node applied to activations (a node whose inputs are all
constant is folded instead: :mod:`.folding`). ``DATA_OPS`` is what the importer accepts on
activations, ``SHAPE_SOURCES`` the ops whose output is constant even when their input is not.
"""

from __future__ import annotations

from graphcnn.backends.from_onnx.elementwise import ELEMENTWISE_HANDLERS
from graphcnn.backends.from_onnx.importer import Handler
from graphcnn.backends.from_onnx.layers import LAYER_HANDLERS
from graphcnn.backends.from_onnx.pad import PAD_HANDLERS
from graphcnn.backends.from_onnx.resize import RESIZE_HANDLERS
from graphcnn.backends.from_onnx.tensors import TENSOR_HANDLERS

DATA_OPS = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "LRN", "Relu", "Clip", "Sigmoid", "Tanh",
    "HardSwish", "HardSigmoid", "Gelu", "Erf", "MaxPool", "AveragePool", "GlobalAveragePool",
    "ReduceMean", "LayerNormalization", "Dropout", "Identity", "Add", "Mul", "Div", "Concat",
    "Split", "Slice", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Softmax", "Transpose",
    "Shape", "Cast", "CastLike", "Constant", "SplitToSequence", "SequenceAt", "Gather", "LeakyRelu",
}  # fmt: skip
"""ONNX ops the importer converts when they compute on activations."""
DATA_OPS |= set(PAD_HANDLERS) | set(RESIZE_HANDLERS)

SHAPE_SOURCES = {"Shape", "Size", "Constant", "ConstantOfShape"}
"""Ops whose output is constant (given the input size) even when their input is not."""


HANDLERS: dict[str, Handler] = {**LAYER_HANDLERS, **ELEMENTWISE_HANDLERS, **TENSOR_HANDLERS}
"""ONNX op type -> the function that converts a node of it applied to activations."""
assert len(HANDLERS) == len(LAYER_HANDLERS) + len(ELEMENTWISE_HANDLERS) + len(TENSOR_HANDLERS)
assert not HANDLERS.keys() & PAD_HANDLERS.keys()
HANDLERS.update(PAD_HANDLERS)
assert not HANDLERS.keys() & RESIZE_HANDLERS.keys()
HANDLERS.update(RESIZE_HANDLERS)
assert set(HANDLERS) | {"Shape", "Constant"} == DATA_OPS
