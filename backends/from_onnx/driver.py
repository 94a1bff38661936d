"""The driver: :func:`from_onnx` reads the model, converts node by node, names the result.

Nodes that contribute to an output are converted in order: Shape/Size and nodes whose inputs
are all constant are folded (:mod:`.folding`), any other goes to its handler
(:data:`~.handlers.HANDLERS`). Dead nodes (patterns leave some) are dropped and every node
gets its final name from the hints gathered on the way (:mod:`.naming`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from graphcnn.backends.from_onnx.errors import OnnxImportError
from graphcnn.backends.from_onnx.folding import fold_node, fold_shape
from graphcnn.backends.from_onnx.handlers import DATA_OPS, HANDLERS, SHAPE_SOURCES
from graphcnn.backends.from_onnx.importer import Importer
from graphcnn.backends.from_onnx.loading import load
from graphcnn.backends.from_onnx.naming import identifier, scope_name
from graphcnn.backends.from_onnx.values import Const, Pending, Tensor
from graphcnn.ir import AttrValue, Graph, Node, Op, freeze
from graphcnn.shapes import ShapeError, infer_node
from graphcnn.weights import param_key

if TYPE_CHECKING:
    import onnx

    from graphcnn.weights import Weights

GENERIC_GRAPH_NAMES = {"", "main_graph", "torch_jit", "torch-jit-export", "graph"}
FLOAT_TYPES = {1: "float32", 10: "float16"}
"""ONNX element types of activations the IR can hold, by TensorProto enum value."""


def from_onnx(
    model_or_path: onnx.ModelProto | str | Path | bytes, name: str | None = None
) -> tuple[Graph, Weights]:
    """The IR graph and weights of an ONNX model (a ``ModelProto``, a path, or its bytes).

    ``name`` names the graph (default: the ONNX graph's name unless it is an exporter's generic
    one, else the file's stem). Raises :class:`OnnxImportError` for a file that cannot be read,
    a model with ops the IR does not have (all listed at once, with counts) or a form it cannot
    express (asymmetric padding, a reshape across the batch, ...).
    """
    model, stem = load(model_or_path)
    if name is None:
        gname = model.graph.name
        name = stem if (gname in GENERIC_GRAPH_NAMES and stem) else (gname or "onnx_model")
    return _run(Importer(model, identifier(name)))


def _run(imp: Importer) -> tuple[Graph, Weights]:
    """Convert every live node, check the outputs, name the nodes; the weights in the model's
    float type."""
    import numpy as np
    from onnx import numpy_helper

    graph = imp.model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes = _live_nodes(imp.model)
    _check_supported(nodes, set(inits))
    for t in graph.initializer:
        # A tensor with external data that is missing raises here; name it.
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001 - onnx raises several kinds for bad data
            raise OnnxImportError(f"cannot read initializer {t.name!r}: {e}") from None
        imp.env[t.name] = Const(arr, t.name)
    _add_input(imp, set(inits))
    for n in nodes:
        for i in n.input:
            if i:
                imp.uses[i] += 1
    for o in graph.output:
        imp.uses[o.name] += 1
    for n in nodes:
        _convert(imp, n)
    outputs: list[tuple[str, str]] = []
    for o in graph.output:
        v = imp.env.get(o.name)
        if isinstance(v, Pending):  # e.g. a model that ends in x * 0.5: a scale node
            from onnx import helper

            ir = imp.materialize(helper.make_node(v.op_type, [], [o.name], name=v.node), v)
            v = Tensor(ir) if ir is not None else v
        if not isinstance(v, Tensor):
            what = "a constant" if isinstance(v, Const) else "not computed"
            if isinstance(v, Pending):
                what = f"an unfinished {v.op_type} pattern (node {v.node!r})"
            raise OnnxImportError(f"graph output {o.name!r} is {what}")
        outputs.append((o.name, v.ir))
    g, weights = _finish_graph(imp, outputs)
    for k, arr in weights.items():  # e.g. float64 initializers: the activations' type
        if arr.dtype != np.dtype(imp.dtype):
            try:
                with np.errstate(over="raise", invalid="raise"):
                    weights[k] = arr.astype(imp.dtype)
            except FloatingPointError:
                raise OnnxImportError(
                    f"weight {k!r} ({arr.dtype}) has values {imp.dtype} cannot hold",
                    "the file may be corrupt",
                ) from None
        elif not arr.flags.writeable:  # numpy_helper views the protobuf's bytes
            weights[k] = arr.copy()
    return g, weights


def _live_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes that contribute to a graph output, in (checked) topological order."""
    graph = model.graph
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    live: set[int] = set()
    stack = [producer[o.name] for o in graph.output if o.name in producer]
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        stack.extend(producer[x] for x in graph.node[i].input if x in producer)
    return [n for i, n in enumerate(graph.node) if i in live]


def _check_supported(nodes: list[onnx.NodeProto], inits: set[str]) -> None:
    """One error listing every op type that has no IR counterpart, with counts."""
    const = set(inits)
    bad: Counter[str] = Counter()
    attention: Counter[str] = Counter()
    for n in nodes:
        op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        # CastLike only takes the element type of its second input
        used = n.input[:1] if n.op_type == "CastLike" else n.input
        inputs_const = all(i in const for i in used if i)
        if op in SHAPE_SOURCES or (inputs_const and n.domain in ("", "ai.onnx")):
            const.update(o for o in n.output if o)
        elif op in ("MatMul", "Einsum") and sum(i not in const for i in n.input if i) > 1:
            attention[f"{op} between two activations"] += 1
        elif op not in DATA_OPS:
            bad[op] += 1
        elif op == "Softmax":
            attention["Softmax over tokens"] += 1
    if attention.total() > attention["Softmax over tokens"]:
        items = sorted(attention.items(), key=lambda kv: (-kv[1], kv[0]))
        rest = sorted(bad.items(), key=lambda kv: (-kv[1], kv[0]))
        raise OnnxImportError(
            "attention is not supported: "
            + ", ".join(f"{op} x{k}" for op, k in items)
            + (" (also unsupported: " + ", ".join(f"{op} x{k}" for op, k in rest) + ")"
               if rest else ""),
            "the IR has layers with weights, not products of two activations (q @ k^T, "
            "attn @ v): transformers (ViT, Swin, MaxViT) cannot be imported",
        )  # fmt: skip
    if bad:
        items = sorted(bad.items(), key=lambda kv: (-kv[1], kv[0]))
        raise OnnxImportError(
            "unsupported ONNX ops: " + ", ".join(f"{op} x{n}" for op, n in items),
            "the IR has no such layers; supported: " + ", ".join(sorted(DATA_OPS)),
        )


def _add_input(imp: Importer, inits: set[str]) -> None:
    """The graph input: the first one that is not an initializer; a symbolic batch is ``N``."""
    graph = imp.model.graph
    inp = next((i for i in graph.input if i.name not in inits), None)
    if inp is None:
        raise OnnxImportError("the model has no input (every graph input is an initializer)")
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
        raise OnnxImportError(f"input {inp.name!r} must be a float32 or float16 tensor")
    imp.dtype = FLOAT_TYPES[tt.elem_type]
    dims = list(tt.shape.dim)
    if len(dims) < 2:
        raise OnnxImportError(
            f"input {inp.name!r} has rank {len(dims)}: expected [N, C, H, W] or [N, features]"
        )
    imp.batch = dims[0].dim_value if dims[0].HasField("dim_value") else "N"
    shape: list[int] = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value < 1:
            raise OnnxImportError(
                f"input {inp.name!r}: dimension {i} is {d.dim_value}; sizes must be >= 1",
                "the file is corrupt, or was exported with an empty example input",
            )
        if i == 0:
            continue
        if not d.HasField("dim_value"):
            raise OnnxImportError(
                f"input {inp.name!r}: dimension {i} is "
                f"{repr(d.dim_param) if d.dim_param else 'unknown'}; only the batch may be "
                "dynamic",
                "export the model with a fixed input size",
            )
        shape.append(d.dim_value)
    attrs: dict[str, AttrValue] = {
        "shape": tuple(shape),
        "batch": imp.batch,
        "dtype": imp.dtype,
    }
    try:
        t, _ = infer_node(Op.INPUT, attrs, [])
    except ShapeError as e:
        raise OnnxImportError(f"input {inp.name!r}: {e}", e.hint) from None
    ir = scope_name(inp.name)
    imp.g.add(Node(ir, Op.INPUT, (), freeze(attrs), t))
    imp.input_name = ir
    imp.env[inp.name] = Tensor(ir)


def _convert(imp: Importer, n: onnx.NodeProto) -> None:
    """Fold a node whose inputs are all constant (and Shape, Size), else hand it to its handler."""
    values = [imp.value(n, i) for i in range(len(n.input))]
    if n.op_type == "CastLike" and isinstance(values[0], Const):
        like = values[1]
        if isinstance(like, Tensor):  # only its element type matters
            import numpy as np

            values[1] = Const(np.zeros(0, imp.type(like.ir).dtype), n.input[1])
    present = [v for v in values if v is not None]
    if n.op_type in ("Shape", "Size"):
        fold_shape(imp, n)
        return
    if all(isinstance(v, Const) for v in present):
        fold_node(imp, n, [v if isinstance(v, Const) else None for v in values])
        return
    handler = HANDLERS.get(n.op_type)
    if handler is None or n.domain not in ("", "ai.onnx"):
        raise imp.fail(n, "this op has no IR counterpart when applied to activations")
    try:
        handler(imp, n)
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
        # NOTE: a handler assumes what a well-formed model guarantees; a malformed file must
        # still end in one error naming the node, never a traceback (tests/test_file_fuzz.py).
        raise imp.fail(
            n,
            f"cannot convert this node ({type(e).__name__}: {e})",
            "the node's attributes or inputs are not what this op allows: the file may be "
            "corrupt; if it loads in onnxruntime, please report it with the file",
        ) from None


def _name_folded_layers(imp: Importer, order: list[Node]) -> None:
    """A layer whose weight lost its name takes its module's path as if it were
    ``<path>.weight``, when it is the only layer with parameters of that module.

    The legacy exporter folds a batch norm into the conv before it and names the new weight
    ``onnx::Conv_123``; with the conv alone in its module the path names it anyway, but a conv
    module that also pads (timm's ``Conv2dSame``) would make it ``conv_dw.conv2d``.
    """
    named = {imp.hints[node.name].param for node in order} - {None}
    count: Counter[str] = Counter()
    for node in order:
        h = imp.hints[node.name]
        if node.params and not h.param and h.path:
            count[h.path] += 1
    for node in order:
        h = imp.hints[node.name]
        if node.params and not h.param and h.path and count[h.path] == 1:
            if h.path not in named:
                h.param = h.path


def _finish_graph(imp: Importer, outputs: list[tuple[str, str]]) -> tuple[Graph, Weights]:
    """Drop dead nodes (patterns leave some), give every node its final name, rebuild."""
    g = imp.g
    live = {ir for _, ir in outputs}
    for node in reversed(list(g)):
        if node.name in live:
            live.update(node.inputs)
    order = [node for node in g if node.name in live and node.op is not Op.INPUT]
    _name_folded_layers(imp, order)
    params = {h.param for ir, h in imp.hints.items() if ir in live and h.param}
    paths: dict[str, set[Op]] = {}
    for node in order:
        h = imp.hints[node.name]
        if not h.param and h.path:
            paths.setdefault(h.path, set()).add(node.op)
    prefixes: set[str] = set()
    for name in list(params) + list(paths):
        parts = name.split(".")
        prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
    taken = {imp.input_name}
    rename = {imp.input_name: imp.input_name}
    for node in order:
        h = imp.hints[node.name]
        if h.param:
            want = h.param
        elif h.path is not None:
            # a module that holds no other layer (it may be called more than once: relu, relu_1)
            leaf = h.path and len(paths[h.path]) == 1 and h.path not in prefixes | params
            want = h.path if leaf else (f"{h.path}.{node.op}" if h.path else str(node.op))
        else:
            want = h.plain
        want = scope_name(want)
        final, i = want, 1
        while final in taken:
            final, i = f"{want}_{i}", i + 1
        taken.add(final)
        rename[node.name] = final
    out = Graph(g.name)
    for node in g:
        if node.name in rename:
            out.add(
                node.replace(name=rename[node.name], inputs=tuple(rename[i] for i in node.inputs))
            )
    out.outputs = [(o, rename[ir]) for o, ir in outputs]
    weights: Weights = {}
    for (ir, p), arr in imp.params.items():
        if ir in rename:
            weights[param_key(rename[ir], p)] = arr
    try:
        out.verify()
    except Exception as e:  # pragma: no cover - a bug in this importer
        raise OnnxImportError(f"internal error: the imported graph does not verify: {e}") from e
    return out, weights
