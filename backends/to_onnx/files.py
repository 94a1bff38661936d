"""Validating and writing ONNX models: :func:`check` (the full checker and strict shape inference,
compared with the IR's types) and :func:`save` (atomic; above protobuf's 2 GB limit the weights
go to a fresh external-data file beside the model, replaced as a pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from graphcnn.backends.to_onnx.lowering import OnnxError
from graphcnn.ir import Graph, Op

if TYPE_CHECKING:
    import onnx

PROTOBUF_LIMIT = 2**31 - 1


def check(model: onnx.ModelProto, graph: Graph | None = None) -> bytes | None:
    """``onnx.checker`` with full check (strict, type-checked shape inference), compared with
    the IR's types. Returns the serialized model (None above 2 GB) so that :func:`save` need not
    serialize it again: the model is encoded once, and shapes are inferred once."""
    import onnx

    data = model.SerializeToString() if _size(model) < PROTOBUF_LIMIT else None
    try:
        if data is not None:  # the checker proper; infer_shapes below is its full_check part
            onnx.checker.check_model(data)
            inferred = onnx.shape_inference.infer_shapes(
                data, check_type=True, strict_mode=True, data_prop=True
            )
        else:
            inferred = _check_large(model)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise OnnxError(f"invalid ONNX model: {e}") from None
    if graph is None:
        return data
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for node in graph.inference():
        info = known.get(node.name)
        if info is None or node.op is Op.INPUT:
            continue
        dims = [
            d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in info.type.tensor_type.shape.dim
        ]
        want = [int(x) for x in node.type.shape[1:]]
        if [int(d) for d in dims[1:]] != want:
            raise OnnxError(f"ONNX shape inference gives {dims} for {node.name}, the IR {want}")
    return data


def _check_large(model: onnx.ModelProto) -> onnx.ModelProto:
    """Check and infer shapes of a model above 2 GB: protobuf cannot hold it as one message, so
    both work on a temporary copy saved with external data (the checker's and shape inference's
    path forms); the inferred graph is read back without its weights."""
    import tempfile

    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "model.onnx", Path(tmp) / "inferred.onnx"
        onnx.save_model(
            copy,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx.data",
        )
        onnx.checker.check_model(str(path))
        onnx.shape_inference.infer_shapes_path(
            str(path), str(out), check_type=True, strict_mode=True
        )
        return onnx.load_model(str(out), load_external_data=False)


def save(model: onnx.ModelProto, path: str | Path, serialized: bytes | None = None) -> list[Path]:
    """Write ``model`` atomically; above 2 GB the weights go to ``<name>.data`` beside it."""
    import os
    import secrets
    import tempfile

    import onnx

    from graphcnn.weights import write_atomic

    p = Path(path)
    if serialized is not None or _size(model) < PROTOBUF_LIMIT:
        write_atomic(p, serialized if serialized is not None else model.SerializeToString())
        return [p]
    # NOTE: the data file gets a fresh name, and the model (which names it) is replaced last:
    # a reader sees the old pair or the new pair, never a model with someone else's weights.
    data = p.with_name(f"{p.name}.{secrets.token_hex(4)}.data")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # save_model turns tensors into external references in place
    umask = os.umask(0)
    os.umask(umask)
    with tempfile.TemporaryDirectory(dir=p.parent) as tmp:
        tmp_model = Path(tmp) / p.name
        onnx.save_model(
            copy,
            str(tmp_model),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data.name,
        )
        for f in (Path(tmp) / data.name, tmp_model):
            os.chmod(f, 0o666 & ~umask)
        os.replace(Path(tmp) / data.name, data)
        os.replace(tmp_model, p)
    for old in p.parent.glob(f"{p.name}.*.data"):
        if old != data:
            old.unlink(missing_ok=True)
    return [p, data]


def _size(model: onnx.ModelProto) -> int:
    """Serialized size, or the protobuf limit where protobuf refuses to compute it (> 2 GB)."""
    try:
        return int(model.ByteSize())
    except Exception:  # noqa: BLE001 - protobuf raises EncodeError/ValueError above 2 GB
        return PROTOBUF_LIMIT
