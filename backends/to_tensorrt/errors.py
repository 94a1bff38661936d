"""The TensorRT backend's errors: every one is a :class:`TensorRTError` (a GraphcnnError).

The parser's own error, :class:`graphcnn.backends.to_tensorrt.onnx_side.ParseError`, lives with
the mapping of parser errors to the IR.
"""

from __future__ import annotations

from graphcnn.errors import GraphcnnError


class TensorRTError(GraphcnnError):
    """A TensorRT engine cannot be built, loaded or run (or its options are invalid)."""


class TensorRTUnavailable(TensorRTError):
    """TensorRT's Python package, torch with CUDA, or a CUDA GPU is missing here."""


class ManifestMismatch(TensorRTError):
    """An engine was built for another GPU, TensorRT version or IR than the current one."""
