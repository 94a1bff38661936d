"""Reading an ONNX model (a ``ModelProto``, a path or its bytes) and checking its structure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.errors import OnnxImportError

if TYPE_CHECKING:
    import onnx


def load(src: Any) -> tuple[onnx.ModelProto, str]:
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise OnnxImportError(
            "importing ONNX models needs the onnx package", "pip install 'graphcnn[onnx]'"
        ) from None

    if isinstance(src, onnx.ModelProto):
        model, stem = src, ""
    elif isinstance(src, (bytes, bytearray)):
        try:
            model = onnx.load_from_string(bytes(src))
        except (DecodeError, ValueError) as e:
            raise OnnxImportError(f"cannot read ONNX model: {e}") from None
        stem = ""
    elif isinstance(src, (str, Path)):
        p = Path(src)
        if not p.is_file():
            raise OnnxImportError(f"cannot read ONNX model {str(p)!r}: no such file")
        try:
            model = onnx.load(str(p))
        except DecodeError as e:
            raise OnnxImportError(
                f"cannot read ONNX model {str(p)!r}: not a valid ONNX file ({e})",
                "the file may be truncated or corrupt: export or download it again",
            ) from None
        except (OSError, ValueError) as e:  # external data missing, ...
            raise OnnxImportError(f"cannot read ONNX model {str(p)!r}: {e}") from None
        stem = p.stem
    else:
        raise TypeError(f"expected an onnx.ModelProto, a path or bytes, got {type(src).__name__}")
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise OnnxImportError(
            f"{'ONNX model ' + repr(stem) if stem else 'the ONNX model'} is empty (no graph)",
            "the file may be truncated or not an ONNX model",
        )
    try:
        onnx.checker.check_model(_skeleton(model))
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise OnnxImportError(
            f"invalid ONNX model{' ' + repr(stem) if stem else ''}: {first}",
            "the file may be truncated or corrupt",
        ) from None
    if model.functions:
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    return model, stem


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without weight data (initializers become typed inputs), for a fast check.

    ``onnx.checker`` on the full model serializes every weight (seconds for a large model);
    what can be wrong in a model that parsed is its structure, which this keeps.
    """
    from onnx import GraphProto, helper

    g = GraphProto(name=model.graph.name)
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    g.value_info.extend(model.graph.value_info)
    listed = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        if t.name not in listed:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    for st in model.graph.sparse_initializer:
        v = st.values
        if v.name not in listed:
            g.input.append(helper.make_tensor_value_info(v.name, v.data_type, list(st.dims)))
    m = helper.make_model(g, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    m.functions.extend(model.functions)
    return m
