"""Reading an ONNX model (a ``ModelProto``, a path or its bytes) and checking its structure.

:func:`validate` refuses, each with one clear error, what would otherwise crash or hang later:
no graph, an IR version or opset newer than the installed ``onnx`` knows, negative dimensions
(0 is refused for the input by the driver), a node that consumes its own output, a cycle,
nodes out of order, two nodes writing one value. External data is read only from regular
files inside the model's own folder (no absolute paths, no ``..``, no symlinks out of it), and
never for a model given as bytes or a ``ModelProto`` (it would be read relative to the
working directory).
"""

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
        if p.is_dir():
            raise OnnxImportError(f"cannot read ONNX model {str(p)!r}: it is a directory")
        if not p.is_file():
            raise OnnxImportError(f"cannot read ONNX model {str(p)!r}: no such file")
        try:
            model = onnx.load(str(p), load_external_data=False)
        except DecodeError as e:
            raise OnnxImportError(
                f"cannot read ONNX model {str(p)!r}: not a valid ONNX file ({e})",
                "the file may be truncated or corrupt: export or download it again",
            ) from None
        except (OSError, ValueError) as e:
            raise OnnxImportError(f"cannot read ONNX model {str(p)!r}: {e}") from None
        stem = p.stem
        validate(model, stem)
        _load_external(model, p)
    else:
        raise TypeError(f"expected an onnx.ModelProto, a path or bytes, got {type(src).__name__}")
    if not isinstance(src, (str, Path)):
        validate(model, stem)
        external = [t.name for t in _tensors(model.graph) if _is_external(t)]
        if external:
            raise OnnxImportError(
                f"tensor {external[0]!r} keeps its data in an external file, and the model was "
                "given without its file's path",
                "pass the .onnx path: external data is read only from the model's own folder",
            )
    try:
        onnx.checker.check_model(_skeleton(model))
    except (onnx.checker.ValidationError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise OnnxImportError(
            f"invalid ONNX model{' ' + repr(stem) if stem else ''}: {first}",
            "the file may be truncated or corrupt",
        ) from None
    if model.functions:
        from onnx import inliner

        try:
            model = inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - the inliner raises several kinds
            raise OnnxImportError(f"cannot inline the model's local functions: {e}") from None
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


def validate(model: onnx.ModelProto, stem: str = "") -> None:
    """Refuse a degenerate model with one clear error (see the module docstring)."""
    import onnx

    what = f"ONNX model {stem!r}" if stem else "the ONNX model"
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise OnnxImportError(
            f"{what} is empty (no graph)", "the file may be truncated or not an ONNX model"
        )
    hint = f"this onnx ({onnx.__version__}) reads up to IR version {onnx.IR_VERSION} and opset "
    hint += f"{onnx.defs.onnx_opset_version()}: upgrade onnx, or export with an older opset"
    if model.ir_version > onnx.IR_VERSION:
        raise OnnxImportError(f"{what} has IR version {model.ir_version}, from the future", hint)
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > onnx.defs.onnx_opset_version():
            raise OnnxImportError(f"{what} uses opset {op.version}, from the future", hint)
    graph = model.graph
    names = [x for n in graph.node for x in (n.name, n.op_type, n.domain, *n.input, *n.output)]
    names += [v.name for v in [*graph.input, *graph.output, *graph.initializer]]
    bad = next((x for x in names if isinstance(x, bytes)), None)
    if bad is not None:  # protobuf hands back bytes for a string that is not UTF-8
        raise OnnxImportError(
            f"{what} holds a name that is not valid UTF-8: {bad!r}", "the file is corrupt"
        )
    for t in _tensors(graph):
        if any(d < 0 for d in t.dims):
            raise OnnxImportError(
                f"tensor {t.name!r} has a negative dimension: {list(t.dims)}",
                "the file is corrupt: export it again",
            )
    for v in [*graph.input, *graph.output, *graph.value_info]:
        if v.type.HasField("tensor_type"):
            dims = [d.dim_value for d in v.type.tensor_type.shape.dim if d.HasField("dim_value")]
            if any(d < 0 for d in dims):
                raise OnnxImportError(
                    f"value {v.name!r} is declared with a negative dimension",
                    "the file is corrupt: export it again",
                )
    _check_order(graph)


def _check_order(graph: onnx.GraphProto) -> None:
    """Self-loops, cycles, nodes out of topological order, a value written twice."""
    producer: dict[str, int] = {}
    for i, n in enumerate(graph.node):
        for o in n.output:
            if not o:
                continue
            if o in n.input:
                raise OnnxImportError(
                    f"ONNX node {_label(n, i)} consumes its own output {o!r}",
                    "a node's output cannot be its input: the file is corrupt",
                )
            if o in producer:
                first = _label(graph.node[producer[o]], producer[o])
                raise OnnxImportError(
                    f"value {o!r} is written by two nodes: {first} and {_label(n, i)}",
                    "every value in an ONNX graph has one producer (SSA)",
                )
            producer[o] = i
    given = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    given |= {t.values.name for t in graph.sparse_initializer}
    for i, n in enumerate(graph.node):
        missing = [x for x in n.input if x and x not in producer and x not in given]
        if missing:
            raise OnnxImportError(
                f"ONNX node {_label(n, i)} reads {missing[0]!r}, which nothing in the graph "
                "defines (no node, input or initializer)",
                "the file is corrupt or was edited by hand",
            )
    late = [(i, x) for i, n in enumerate(graph.node) for x in n.input if producer.get(x, -1) >= i]
    if not late:
        return
    cycle = _find_cycle(graph, producer)
    if cycle:
        names = " -> ".join(_label(graph.node[i], i) for i in [*cycle, cycle[0]])
        raise OnnxImportError(f"the ONNX graph has a cycle: {names}", "ONNX graphs are acyclic")
    i, x = late[0]
    raise OnnxImportError(
        f"ONNX node {_label(graph.node[i], i)} reads {x!r} before the node that computes it",
        "ONNX requires nodes in topological order: the file is corrupt or was edited by hand",
    )


def _find_cycle(graph: onnx.GraphProto, producer: dict[str, int]) -> list[int]:
    """Node indices along one cycle (each reads the next one's output), or []."""
    state = [0] * len(graph.node)  # 0 new, 1 on the path, 2 done
    for root in range(len(graph.node)):
        if state[root]:
            continue
        path: list[int] = []
        stack: list[tuple[int, int]] = [(root, 0)]
        while stack:
            i, k = stack.pop()
            if k == 0:
                state[i] = 1
                path.append(i)
            deps = [producer[x] for x in graph.node[i].input if x in producer]
            if k < len(deps):
                stack.append((i, k + 1))
                j = deps[k]
                if state[j] == 1:
                    return path[path.index(j) :]
                if state[j] == 0:
                    stack.append((j, 0))
            else:
                state[i] = 2
                path.pop()
    return []


def _label(n: onnx.NodeProto, i: int) -> str:
    return f"{n.name or '#' + str(i)!r} ({n.op_type})"


def _tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Every tensor of the graph: initializers, attribute tensors, subgraphs' (recursively)."""
    out = list(graph.initializer) + [st.values for st in graph.sparse_initializer]
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("t"):
                out.append(a.t)
            out.extend(a.tensors)
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out.extend(_tensors(g))
    return out


def _is_external(t: onnx.TensorProto) -> bool:
    import onnx

    return t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL


def _load_external(model: onnx.ModelProto, path: Path) -> None:
    """Read external data, each file a regular file inside the model's folder (no escape)."""
    import os

    from onnx.external_data_helper import load_external_data_for_tensor

    folder = path.resolve().parent
    for t in _tensors(model.graph):
        if not _is_external(t):
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = folder / loc
        inside = (
            loc
            and not os.path.isabs(loc)
            and ".." not in Path(loc).parts
            and target.resolve().parent.is_relative_to(folder)
            and not target.is_symlink()
        )
        if not inside:
            raise OnnxImportError(
                f"tensor {t.name!r} names external data {loc!r} outside the model's folder",
                "external data must be a file beside the model (a relative path, no '..', "
                "no symlink); this file may be crafted to read other files",
            )
        if not target.is_file():
            raise OnnxImportError(
                f"tensor {t.name!r}: its external data file {loc!r} is missing or not a file",
                f"copy {loc!r} beside {path.name}",
            )
        try:
            load_external_data_for_tensor(t, str(folder))
        except Exception as e:  # noqa: BLE001 - onnx raises several kinds for bad offsets
            raise OnnxImportError(
                f"cannot read external data of tensor {t.name!r} from {loc!r}: {e}"
            ) from None
