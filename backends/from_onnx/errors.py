"""The importer's error: a model that cannot be read, or that the IR cannot represent."""

from __future__ import annotations

from graphcnn.backends.to_onnx import OnnxError


class OnnxImportError(OnnxError):
    """An ONNX model cannot be read, or has ops or forms the IR cannot represent."""
