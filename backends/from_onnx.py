"""Import an ONNX CNN into the IR with its weights: the inverse of :mod:`.to_onnx`.

:func:`from_onnx` reads a model (a ``ModelProto``, a path or the serialized bytes) and returns
``(graph, weights)``: every node is built with :func:`graphcnn.shapes.infer_node`, so types and
parameter declarations are the IR's own, and the graph passes :meth:`Graph.verify`. The ``onnx``
package is imported lazily and torch never is.

What maps to what:

- Conv (2-D, symmetric pads; ``auto_pad`` resolved) -> conv2d; Gemm (any ``transB``, ``alpha`` and
  ``beta`` folded into the weights) and MatMul (+ a constant Add) -> linear; BatchNormalization ->
  batch_norm; LRN -> lrn; Relu, Sigmoid, Tanh, HardSwish, Gelu -> themselves; Clip(0, 6) -> relu6
  (Clip(0, inf) -> relu); MaxPool, AveragePool, GlobalAveragePool, ReduceMean over (2, 3) ->
  pools; Add, Mul (broadcast), Concat, Softmax -> themselves; Split and Slice -> split nodes;
  Reshape, Flatten, Squeeze, Unsqueeze -> flatten or reshape (nothing when the shape is kept);
  Dropout, Identity and Cast to the model's own float type -> nothing.
- Patterns: ``x * Sigmoid(x)`` -> silu; ``x * HardSigmoid(x)`` -> hardswish; the exact erf form
  ``0.5 * x * (1 + Erf(x / sqrt(2)))`` (any association) -> gelu; Reshape [N, g, C/g, H, W] ->
  Transpose (0, 2, 1, 3, 4) -> Reshape [N, C, H, W] -> channel_shuffle.
- Shape computations (Shape, Gather, Unsqueeze, Concat, Div, Slice, ... as ``torch.onnx.export``
  emits for ``x.view(x.size(0), -1)``, ``chunk`` or a channel shuffle with a dynamic batch) are
  folded by a small numpy evaluator in which the batch is a symbol; any other node whose inputs
  are all constant is folded with ``onnx.reference``. ONNX Runtime's offline optimizer is *not*
  used as a pre-pass: already its BASIC level fuses Conv+BatchNormalization, Conv+Add and
  Conv+Mul, which would change the parameters (and lose their state_dict names), and it cannot
  fold a Shape of a dynamic batch anyway; onnx-simplifier is not a dependency.
- An all-zero bias whose name does not end in ``bias`` is dropped: the dynamo exporter computes
  one (Shape/Expand) for every conv without bias, which thus keeps ``bias=False``. (A torch
  parameter ``*.bias`` is kept whatever its values.)

Node names: a node with a weight named ``<path>.weight`` (what torch exports) is named ``<path>``,
so the weights keys are the PyTorch ``state_dict`` keys; other nodes take the module path of a
torch-style name (``/layer1/layer1.0/relu/Relu`` -> ``layer1.0.relu``; an op called inside a
module that holds other layers gets the IR op appended: ``layer1.0.add``) or of the dynamo
exporter's ``pkg.torch.onnx.name_scopes``; any other name is used as it is, made into a valid
dotted scope name. The input is the first graph input that is not an initializer; a symbolic
batch becomes ``N``.

Errors are :class:`OnnxImportError` (a :class:`GraphcnnError`: exit code 2 in the CLI): every
unsupported op type is listed once with its count, and each conversion problem names the node.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_onnx import OnnxError

from graphcnn.ir import AttrValue, Dim, Graph, Node, Op, TensorType, freeze
from graphcnn.shapes import ShapeError, infer_node

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from graphcnn.weights import Weights

GENERIC_GRAPH_NAMES = {"", "main_graph", "torch_jit", "torch-jit-export", "graph"}
FLOAT_TYPES = {1: "float32", 10: "float16"}
"""ONNX element types of activations the IR can hold, by TensorProto enum value."""


class OnnxImportError(OnnxError):
    """An ONNX model cannot be read, or has ops or forms the IR cannot represent."""


# ----------------------------------------------------------------------------------- values


class _Sym:
    """A symbolic integer of a shape computation: the batch, or anything computed from it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return self.label

    def _unknown(self, *other: object) -> _Sym:
        return UNKNOWN

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unknown
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = _unknown
    __neg__ = __abs__ = _unknown


BATCH = _Sym("N")
UNKNOWN = _Sym("?")


@dataclass(frozen=True)
class _Tensor:
    """An activation: the IR node that computes it."""

    ir: str


@dataclass(frozen=True)
class _Const:
    """A constant (numeric, or an object array of ints and :class:`_Sym` for shape values)."""

    value: np.ndarray[Any, Any]
    name: str
    """The ONNX tensor's name (an Identity of an initializer names it anew: torch's exporter
    deduplicates equal initializers so, and the Identity's output keeps the parameter name)."""


@dataclass(frozen=True)
class _Pending:
    """Part of a pattern that has no IR op of its own (``x / sqrt(2)``, ``Erf``, ...)."""

    kind: str
    base: str
    """IR node of the pattern's input ``x``."""
    op_type: str
    node: str
    value: float = 0.0


@dataclass(frozen=True)
class _Seq:
    """A sequence of activations (SplitToSequence, as the dynamo exporter emits ``chunk``)."""

    items: tuple[str, ...]
    node: str


_Value = _Tensor | _Const | _Pending | _Seq


def _has_sym(a: np.ndarray[Any, Any]) -> bool:
    return a.dtype == object and any(isinstance(v, _Sym) for v in a.flat)


def _normalize(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Object arrays without symbols become int64 (or float64) arrays again."""
    import numpy as np

    if a.dtype != object or _has_sym(a):
        return a
    if all(isinstance(v, (int, np.integer, bool, np.bool_)) for v in a.flat):
        return a.astype(np.int64)
    return a.astype(np.float64)


# ------------------------------------------------------------------------------ entry point


def from_onnx(
    model_or_path: onnx.ModelProto | str | Path | bytes, name: str | None = None
) -> tuple[Graph, Weights]:
    """The IR graph and weights of an ONNX model (a ``ModelProto``, a path, or its bytes).

    ``name`` names the graph (default: the ONNX graph's name unless it is an exporter's generic
    one, else the file's stem). Raises :class:`OnnxImportError` for a file that cannot be read,
    a model with ops the IR does not have (all listed at once, with counts) or a form it cannot
    express (asymmetric padding, a reshape across the batch, ...).
    """
    model, stem = _load(model_or_path)
    if name is None:
        gname = model.graph.name
        name = stem if (gname in GENERIC_GRAPH_NAMES and stem) else (gname or "onnx_model")
    return _Importer(model, _identifier(name)).run()


def _load(src: Any) -> tuple[onnx.ModelProto, str]:
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


# --------------------------------------------------------------------------------- naming


_COMPONENT = re.compile(r"[^0-9A-Za-z_]")


def _component(c: str) -> str:
    c = _COMPONENT.sub("_", c) or "_"
    if c.isdigit() and len(c) > 1 and c[0] == "0":
        c = "_" + c
    return c


def _scope_name(text: str) -> str:
    """Any string as a dotted IR name: components of letters, digits and underscores."""
    return ".".join(_component(c) for c in text.strip(".").split(".")) or "_"


def _identifier(text: str) -> str:
    out = _COMPONENT.sub("_", text) or "model"
    return "m_" + out if out[0].isdigit() else out


def _join_scopes(parts: Sequence[str]) -> str:
    """Module path from torch's scope components: ``layer1, layer1.0, conv1`` -> ``layer1.0.conv1``.

    A dotted component repeats the end of the path so far (``stage2, stage2.0, branch1,
    branch1.4`` -> ``stage2.0.branch1.4``; the dynamo exporter's are full paths); a plain one is
    a child's name.
    """
    path: list[str] = []
    for p in parts:
        if not p:
            continue
        comps = p.split(".")
        overlap = 0
        if len(comps) > 1:
            for k in range(min(len(comps), len(path)), 0, -1):
                if path[-k:] == comps[:k]:
                    overlap = k
                    break
        path += comps[overlap:]
    return ".".join(path)


def _module_path(node: onnx.NodeProto) -> str | None:
    """The torch module path a node comes from, or None for a name that is not torch's."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            import ast

            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes):
                return _join_scopes(scopes[1:-1])
    if node.name.startswith("/"):
        return _join_scopes(node.name.strip("/").split("/")[:-1])
    return None


@dataclass
class _Hint:
    """What the final naming pass knows about one IR node."""

    param: str | None
    """``<path>`` of a ``<path>.weight`` initializer."""
    path: str | None
    """torch module path (None: not a torch-style name)."""
    plain: str
    """The ONNX node name (or its first output), for models not exported by torch."""


# ------------------------------------------------------------------------------ importer


DATA_OPS = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "LRN", "Relu", "Clip", "Sigmoid", "Tanh",
    "HardSwish", "HardSigmoid", "Gelu", "Erf", "MaxPool", "AveragePool", "GlobalAveragePool",
    "ReduceMean", "Dropout", "Identity", "Add", "Mul", "Div", "Concat", "Split", "Slice",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Softmax", "Transpose", "Shape", "Cast",
    "CastLike", "Constant", "SplitToSequence", "SequenceAt",
}  # fmt: skip
"""ONNX ops the importer converts when they compute on activations."""

SHAPE_SOURCES = {"Shape", "Size", "Constant", "ConstantOfShape"}
"""Ops whose output is constant (given the input size) even when their input is not."""


class _Importer:
    def __init__(self, model: onnx.ModelProto, name: str) -> None:
        self.model = model
        self.name = name
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21
        )
        self.g = Graph(name)
        self.env: dict[str, _Value] = {}
        self.params: dict[tuple[str, str], np.ndarray[Any, Any]] = {}
        self.hints: dict[str, _Hint] = {}
        self.uses: Counter[str] = Counter()
        self.biasable: dict[str, str] = {}
        """ONNX tensor -> bias-less conv/linear IR node that computes it (for a following Add)."""
        self.dtype = "float32"
        self.batch: Dim = "N"

    # -------------------------------------------------------------------------------- run

    def run(self) -> tuple[Graph, Weights]:
        import numpy as np
        from onnx import numpy_helper

        graph = self.model.graph
        inits = {t.name: t for t in graph.initializer}
        nodes = self._live_nodes()
        self._check_supported(nodes, set(inits))
        for t in graph.initializer:
            # A tensor with external data that is missing raises here; name it.
            try:
                arr = numpy_helper.to_array(t)
            except Exception as e:  # noqa: BLE001 - onnx raises several kinds for bad data
                raise OnnxImportError(f"cannot read initializer {t.name!r}: {e}") from None
            self.env[t.name] = _Const(arr, t.name)
        self._add_input(set(inits))
        for n in nodes:
            for i in n.input:
                if i:
                    self.uses[i] += 1
        for o in graph.output:
            self.uses[o.name] += 1
        for n in nodes:
            self._convert(n)
        outputs: list[tuple[str, str]] = []
        for o in graph.output:
            v = self.env.get(o.name)
            if not isinstance(v, _Tensor):
                what = "a constant" if isinstance(v, _Const) else "not computed"
                if isinstance(v, _Pending):
                    what = f"an unfinished {v.op_type} pattern (node {v.node!r})"
                raise OnnxImportError(f"graph output {o.name!r} is {what}")
            outputs.append((o.name, v.ir))
        g, weights = _finish_graph(self, outputs)
        for k, arr in weights.items():  # e.g. float64 initializers: the activations' type
            if arr.dtype != np.dtype(self.dtype):
                weights[k] = arr.astype(self.dtype)
            elif not arr.flags.writeable:  # numpy_helper views the protobuf's bytes
                weights[k] = arr.copy()
        return g, weights

    def _live_nodes(self) -> list[onnx.NodeProto]:
        """The nodes that contribute to a graph output, in (checked) topological order."""
        graph = self.model.graph
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

    def _check_supported(self, nodes: list[onnx.NodeProto], inits: set[str]) -> None:
        """One error listing every op type that has no IR counterpart, with counts."""
        const = set(inits)
        bad: Counter[str] = Counter()
        for n in nodes:
            op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
            # CastLike only takes the element type of its second input
            used = n.input[:1] if n.op_type == "CastLike" else n.input
            inputs_const = all(i in const for i in used if i)
            if op in SHAPE_SOURCES or (inputs_const and n.domain in ("", "ai.onnx")):
                const.update(o for o in n.output if o)
            elif op not in DATA_OPS:
                bad[op] += 1
        if bad:
            items = sorted(bad.items(), key=lambda kv: (-kv[1], kv[0]))
            raise OnnxImportError(
                "unsupported ONNX ops: " + ", ".join(f"{op} x{n}" for op, n in items),
                "the IR has no such layers; supported: " + ", ".join(sorted(DATA_OPS)),
            )

    def _add_input(self, inits: set[str]) -> None:
        graph = self.model.graph
        inp = next((i for i in graph.input if i.name not in inits), None)
        if inp is None:
            raise OnnxImportError("the model has no input (every graph input is an initializer)")
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
            raise OnnxImportError(f"input {inp.name!r} must be a float32 or float16 tensor")
        self.dtype = FLOAT_TYPES[tt.elem_type]
        dims = list(tt.shape.dim)
        if len(dims) < 2:
            raise OnnxImportError(
                f"input {inp.name!r} has rank {len(dims)}: expected [N, C, H, W] or [N, features]"
            )
        self.batch = dims[0].dim_value if dims[0].HasField("dim_value") else "N"
        shape: list[int] = []
        for i, d in enumerate(dims[1:], 1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise OnnxImportError(
                    f"input {inp.name!r}: dimension {i} is "
                    f"{repr(d.dim_param) if d.dim_param else 'unknown'}; only the batch may be "
                    "dynamic",
                    "export the model with a fixed input size",
                )
            shape.append(d.dim_value)
        attrs: dict[str, AttrValue] = {
            "shape": tuple(shape),
            "batch": self.batch,
            "dtype": self.dtype,
        }
        t, _ = infer_node(Op.INPUT, attrs, [])
        ir = _scope_name(inp.name)
        self.g.add(Node(ir, Op.INPUT, (), freeze(attrs), t))
        self.input_name = ir
        self.env[inp.name] = _Tensor(ir)

    # ------------------------------------------------------------------------ helpers

    def where(self, n: onnx.NodeProto) -> str:
        return f"ONNX node {n.name or n.output[0]!r} ({n.op_type})"

    def fail(self, n: onnx.NodeProto, msg: str, hint: str | None = None) -> OnnxImportError:
        return OnnxImportError(f"{self.where(n)}: {msg}", hint)

    def value(self, n: onnx.NodeProto, i: int) -> _Value | None:
        if i >= len(n.input) or not n.input[i]:
            return None
        v = self.env.get(n.input[i])
        if v is None:
            raise self.fail(
                n, f"input {n.input[i]!r} is not computed by the model (a second graph input?)"
            )
        return v

    def tensor(self, n: onnx.NodeProto, i: int = 0) -> str:
        v = self.value(n, i)
        if isinstance(v, _Tensor):
            return v.ir
        if isinstance(v, _Pending):
            raise self.fail(
                n,
                f"input {i} comes from {v.op_type} node {v.node!r}, which only converts as part "
                "of a pattern",
                _PATTERN_HINT,
            )
        what = "missing" if v is None else "a sequence" if isinstance(v, _Seq) else "a constant"
        raise self.fail(n, f"input {i} is {what}; expected an activation")

    def const(self, n: onnx.NodeProto, i: int, what: str) -> _Const:
        v = self.value(n, i)
        if not isinstance(v, _Const):
            raise self.fail(n, f"{what} (input {i}) must be a constant")
        return v

    def opt_const(self, n: onnx.NodeProto, i: int, what: str) -> _Const | None:
        return None if self.value(n, i) is None else self.const(n, i, what)

    def ints(self, n: onnx.NodeProto, c: _Const, what: str) -> list[int]:
        if _has_sym(c.value):
            raise self.fail(n, f"{what} depends on the batch size: {c.value.tolist()}")
        return [int(x) for x in c.value.reshape(-1)]

    def type(self, ir: str) -> TensorType:
        return self.g[ir].type

    def emit(
        self,
        n: onnx.NodeProto,
        op: Op,
        inputs: Sequence[str],
        attrs: dict[str, AttrValue],
        params: dict[str, np.ndarray[Any, Any]] | None = None,
        param_name: str | None = None,
    ) -> str:
        """Add one IR node built by the shape rules; check the weights against its params."""
        try:
            t, decls = infer_node(op, attrs, [self.type(i) for i in inputs])
        except ShapeError as e:
            raise self.fail(n, str(e), e.hint) from None
        ir = f"%{len(self.g.nodes)}"
        params = params or {}
        for p in decls:
            arr = params[p.name]
            if tuple(arr.shape) != p.shape:
                raise self.fail(
                    n, f"{p.name} has shape {list(arr.shape)}, {op} expects {list(p.shape)}"
                )
            self.params[(ir, p.name)] = arr
        self.g.add(Node(ir, op, tuple(inputs), freeze(attrs), t, decls))
        stem = None
        if param_name and param_name.endswith(".weight") and len(param_name) > 7:
            stem = param_name[: -len(".weight")]
        self.hints[ir] = _Hint(stem, _module_path(n), n.name or n.output[0])
        return ir

    def set(self, n: onnx.NodeProto, v: _Value, i: int = 0) -> None:
        if i < len(n.output) and n.output[i]:
            self.env[n.output[i]] = v

    def unused(self, n: onnx.NodeProto, i: int) -> bool:
        return i >= len(n.output) or not n.output[i] or self.uses[n.output[i]] == 0

    def attrs(self, n: onnx.NodeProto) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    # --------------------------------------------------------------------- conversion

    def _convert(self, n: onnx.NodeProto) -> None:
        values = [self.value(n, i) for i in range(len(n.input))]
        if n.op_type == "CastLike" and isinstance(values[0], _Const):
            like = values[1]
            if isinstance(like, _Tensor):  # only its element type matters
                import numpy as np

                values[1] = _Const(np.zeros(0, self.type(like.ir).dtype), n.input[1])
        present = [v for v in values if v is not None]
        if n.op_type in ("Shape", "Size"):
            self._shape(n)
            return
        if all(isinstance(v, _Const) for v in present):
            self._fold(n, [v if isinstance(v, _Const) else None for v in values])
            return
        handler = HANDLERS.get(n.op_type)
        if handler is None or n.domain not in ("", "ai.onnx"):
            raise self.fail(n, "this op has no IR counterpart when applied to activations")
        handler(self, n)

    # -------------------------------------------------------------------- folding

    def _shape(self, n: onnx.NodeProto) -> None:
        import numpy as np

        v = self.value(n, 0)
        if isinstance(v, _Const):
            dims: list[Any] = list(v.value.shape)
        else:
            dims = [BATCH if isinstance(d, str) else d for d in self.type(self.tensor(n)).shape]
        if n.op_type == "Size":
            size = math.prod(dims) if BATCH not in dims else UNKNOWN
            self.set(n, _Const(_normalize(np.array(size, dtype=object)), n.output[0]))
            return
        a = self.attrs(n)
        start, end = a.get("start", 0), a.get("end", len(dims))
        arr = np.empty(len(dims), dtype=object)
        arr[:] = dims
        self.set(n, _Const(_normalize(arr[slice(start, end)]), n.output[0]))

    def _fold(self, n: onnx.NodeProto, ins: list[_Const | None]) -> None:
        import numpy as np

        if n.op_type == "Identity" and ins[0] is not None:
            # an Identity of a parameter keeps the parameter's (output) name: torch's exporter
            # deduplicates equal initializers this way
            self.set(n, _Const(ins[0].value, n.output[0]))
            return
        arrays = [None if c is None else c.value for c in ins]
        try:
            fold = FOLDERS.get(n.op_type)
            if fold is not None and (
                fold is not _fold_reference
                or not any(a is not None and _has_sym(a) for a in arrays)
            ):
                outs = fold(self, n, arrays)
            elif any(a is not None and _has_sym(a) for a in arrays):
                outs = [np.array(UNKNOWN, dtype=object)]
            else:
                outs = _fold_reference(self, n, arrays)
        except OnnxImportError:
            raise
        except Exception as e:  # noqa: BLE001 - numpy / onnx.reference raise many kinds
            raise self.fail(n, f"cannot fold this constant computation: {e}") from None
        for i, out in enumerate(outs):
            self.set(n, _Const(_normalize(np.asarray(out)), n.output[i]), i)

    # ------------------------------------------------------------------ view ops

    def view(self, n: onnx.NodeProto, x: str, shape: Sequence[int]) -> str:
        """``x`` seen with a new per-sample ``shape``: nothing, flatten or reshape."""
        t = self.type(x)
        shape = tuple(int(d) for d in shape)
        if shape == t.sample_shape:
            return x
        if len(shape) == 1 and len(t.shape) > 2:
            return self.emit(n, Op.FLATTEN, [x], {"start_dim": 1})
        return self.emit(n, Op.RESHAPE, [x], {"shape": shape})

    def batch_kept(self, n: onnx.NodeProto, x: str, target: list[Any]) -> list[int]:
        """The per-sample shape of a reshape target that keeps the batch dimension, else fail."""
        t = self.type(x)
        numel = t.sample_numel
        rest = target[1:]
        if any(isinstance(d, _Sym) for d in rest):
            raise self.fail(n, f"reshape target {target} mixes the batch into other dimensions")
        first = target[0]
        fixed = math.prod(int(d) for d in rest if d != -1)
        if first is BATCH or (isinstance(self.batch, int) and first == self.batch):
            pass
        elif first == -1 and -1 not in rest and fixed == numel:
            pass
        else:
            raise self.fail(
                n,
                f"reshape of {list(t.shape)} to {target} changes the batch dimension",
                "only reshapes that keep the batch (dimension 0) are supported",
            )
        if rest.count(-1) > 1 or fixed < 1 or (-1 not in rest and fixed != numel):
            raise self.fail(n, f"reshape of {list(t.shape)} to {target} is invalid")
        return [numel // fixed if d == -1 else int(d) for d in rest]


_PATTERN_HINT = (
    "the IR has no such op; supported patterns: x*Sigmoid(x) (silu), x*HardSigmoid(x) "
    "(hardswish), 0.5*x*(1+Erf(x/sqrt(2))) (gelu), Reshape-Transpose-Reshape (channel shuffle)"
)


# -------------------------------------------------------------------------- folders

Folder = Callable[[_Importer, "onnx.NodeProto", list[Any]], list[Any]]


def _axes_arg(imp: _Importer, n: onnx.NodeProto, arrays: list[Any], idx: int = 1) -> list[int]:
    a = imp.attrs(n)
    if "axes" in a:
        return [int(x) for x in a["axes"]]
    if idx < len(arrays) and arrays[idx] is not None:
        return [int(x) for x in arrays[idx].reshape(-1)]
    return []


def _f_gather(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axis = int(imp.attrs(n).get("axis", 0))
    idx = a[1].astype(np.int64)
    data = a[0]
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take(data, idx, axis=axis)]


def _f_unsqueeze(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axes = _axes_arg(imp, n, a)
    out = a[0]
    rank = out.ndim + len(axes)
    for ax in sorted(x % rank for x in axes):
        out = np.expand_dims(out, ax)
    return [out]


def _f_squeeze(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axes = _axes_arg(imp, n, a)
    x = a[0]
    if not axes:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))]


def _f_concat(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    parts = [x for x in a if x is not None]
    if any(x.dtype == object for x in parts):
        parts = [x.astype(object) for x in parts]
    return [np.concatenate(parts, axis=int(imp.attrs(n)["axis"]))]


def _slices(
    shape: Sequence[int], starts: list[int], ends: list[int], axes: list[int], steps: list[int]
) -> list[slice]:
    out = [slice(None)] * len(shape)
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        out[ax % len(shape)] = slice(s, e, st)
    return out


def _slice_args(
    imp: _Importer, n: onnx.NodeProto, a: list[Any], rank: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    attrs = imp.attrs(n)
    if "starts" in attrs:  # opset < 10
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        return starts, ends, axes, [1] * len(starts)

    def arg(i: int) -> list[int] | None:
        if i < len(a) and a[i] is not None:
            if _has_sym(a[i]):
                raise imp.fail(n, f"slice bounds depend on the batch: {a[i].tolist()}")
            return [int(x) for x in a[i].reshape(-1)]
        return None

    starts, ends = arg(1) or [], arg(2) or []
    axes = arg(3) or list(range(len(starts)))
    steps = arg(4) or [1] * len(starts)
    return starts, ends, [ax % rank for ax in axes], steps


def _f_slice(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    x = a[0]
    starts, ends, axes, steps = _slice_args(imp, n, a, x.ndim)
    return [x[tuple(_slices(x.shape, starts, ends, axes, steps))]]


def _f_cast(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np
    from onnx import helper

    if n.op_type == "CastLike":
        dtype = a[1].dtype
    else:
        dtype = helper.tensor_dtype_to_np_dtype(int(imp.attrs(n)["to"]))
    x = a[0]
    if _has_sym(x):
        if np.issubdtype(dtype, np.integer):
            return [x]
        raise imp.fail(n, "a batch-dependent shape value is cast to a non-integer type")
    return [x.astype(dtype)]


def _arith(op: Callable[[Any, Any], Any]) -> Folder:
    """Elementwise arithmetic on numbers and on shape values holding symbols."""

    def fold(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
        import numpy as np

        x, y = a[0], a[1]
        if x.dtype != object and y.dtype != object:
            return [np.asarray(np.frompyfunc(op, 2, 1)(x, y)).astype(x.dtype)]
        return [np.frompyfunc(op, 2, 1)(x.astype(object), y.astype(object))]

    return fold


def _div(x: Any, y: Any) -> Any:
    """ONNX Div: integer division truncates toward zero."""
    import numpy as np

    if isinstance(x, _Sym) or isinstance(y, _Sym):
        return UNKNOWN
    if isinstance(x, (int, np.integer)) and isinstance(y, (int, np.integer)):
        q = abs(int(x)) // abs(int(y))
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _f_constant(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np
    from onnx import numpy_helper

    for attr in n.attribute:
        if attr.name == "value":
            return [numpy_helper.to_array(attr.t)]
        if attr.name in ("value_float", "value_floats"):
            return [np.asarray(imp.attrs(n)[attr.name], dtype=np.float32)]
        if attr.name in ("value_int", "value_ints"):
            return [np.asarray(imp.attrs(n)[attr.name], dtype=np.int64)]
    return _fold_reference(imp, n, a)


def _f_expand(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    shape = [int(d) for d in a[1].reshape(-1)]
    x = a[0]
    full = np.broadcast_shapes(x.shape, tuple(shape))
    return [np.broadcast_to(x, full).copy()]


def _f_reshape(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    x = a[0]
    shape = [int(d) for d in a[1].reshape(-1)]
    if not imp.attrs(n).get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


def _fold_reference(imp: _Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    """Any other all-constant node: evaluate it with ``onnx.reference``."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"i{k}" if x is not None else "" for k, x in enumerate(a)]
    while names and not names[-1]:
        names.pop()
    outs = [f"o{k}" if o else "" for k, o in enumerate(n.output)]
    node = helper.make_node(n.op_type, names, outs, domain=n.domain)
    node.attribute.extend(n.attribute)
    ev = ReferenceEvaluator(node, opsets={"": imp.opset})
    feeds = {name: x for name, x in zip(names, a, strict=False) if name}
    res = ev.run(None, feeds)
    return list(res)


FOLDERS: dict[str, Folder] = {
    "Gather": _f_gather,
    "Unsqueeze": _f_unsqueeze,
    "Squeeze": _f_squeeze,
    "Concat": _f_concat,
    "Slice": _f_slice,
    "Cast": _f_cast,
    "CastLike": _f_cast,
    "Add": _arith(lambda x, y: x + y),
    "Sub": _arith(lambda x, y: x - y),
    "Mul": _arith(lambda x, y: x * y),
    "Div": _arith(_div),
    "Expand": _f_expand,
    "Reshape": _f_reshape,
    "Constant": _f_constant,
}


# --------------------------------------------------------------------------- handlers

Handler = Callable[[_Importer, "onnx.NodeProto"], None]


def _pads(imp: _Importer, n: onnx.NodeProto, x: str, kernel: Sequence[int]) -> tuple[int, int]:
    """Symmetric (h, w) padding from ``pads``/``auto_pad``; asymmetric padding is an error."""
    a = imp.attrs(n)
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    strides = list(a.get("strides", [1, 1]))
    dil = list(a.get("dilations", [1, 1]))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        t = imp.type(x)
        pads = [0, 0, 0, 0]
        for i, size in enumerate((int(t.shape[2]), int(t.shape[3]))):
            out = -(-size // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - size)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = list(a.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise imp.fail(n, f"only 2-D windows are supported (pads {pads})")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise imp.fail(
            n,
            f"asymmetric padding {pads} (top, left, bottom, right) is not supported: the IR "
            "pads both sides of an axis equally",
            "export with symmetric padding (PyTorch's padding=k//2 style), or pad the input "
            "to a size where SAME padding is symmetric",
        )
    return int(pads[0]), int(pads[1])


def _pair(n: onnx.NodeProto, imp: _Importer, v: Sequence[int], what: str) -> tuple[int, int]:
    if len(v) != 2:
        raise imp.fail(n, f"only 2-D windows are supported ({what} {list(v)})")
    return int(v[0]), int(v[1])


def _rank4(imp: _Importer, n: onnx.NodeProto, x: str) -> None:
    if len(imp.type(x).shape) != 4:
        raise imp.fail(n, f"expects an [N, C, H, W] activation, got {list(imp.type(x).shape)}")


def _bias(imp: _Importer, c: _Const | None) -> np.ndarray[Any, Any] | None:
    """A bias, or None when there is none or it is a computed all-zero placeholder."""
    if c is None:
        return None
    if not c.name.endswith("bias") and not c.value.any():
        return None
    return c.value


def _h_conv(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    w = imp.const(n, 1, "the weight")
    _rank4(imp, n, x)
    if w.value.ndim != 4:
        raise imp.fail(n, f"only 2-D convolutions are supported (weight {list(w.value.shape)})")
    a = imp.attrs(n)
    kernel = _pair(n, imp, a.get("kernel_shape", w.value.shape[2:]), "kernel")
    b = _bias(imp, imp.opt_const(n, 2, "the bias"))
    params = {"weight": w.value}
    if b is not None:
        params["bias"] = b.reshape(-1)
    attrs: dict[str, AttrValue] = {
        "out_channels": int(w.value.shape[0]),
        "kernel": kernel,
        "stride": _pair(n, imp, a.get("strides", [1, 1]), "strides"),
        "padding": _pads(imp, n, x, kernel),
        "dilation": _pair(n, imp, a.get("dilations", [1, 1]), "dilations"),
        "groups": int(a.get("group", 1)),
        "bias": b is not None,
    }
    ir = imp.emit(n, Op.CONV2D, [x], attrs, params, w.name)
    if b is None:
        imp.biasable[n.output[0]] = ir
    imp.set(n, _Tensor(ir))


def _linear(
    imp: _Importer, n: onnx.NodeProto, x: str, w: np.ndarray[Any, Any], b: Any, wname: str
) -> None:
    if len(imp.type(x).shape) != 2:
        raise imp.fail(n, f"expects an [N, features] activation, got {list(imp.type(x).shape)}")
    params = {"weight": w}
    if b is not None:
        import numpy as np

        params["bias"] = np.broadcast_to(b, (w.shape[0],)).copy() if b.size == 1 else b.reshape(-1)
    attrs: dict[str, AttrValue] = {"out_features": int(w.shape[0]), "bias": b is not None}
    ir = imp.emit(n, Op.LINEAR, [x], attrs, params, wname)
    if b is None:
        imp.biasable[n.output[0]] = ir
    imp.set(n, _Tensor(ir))


def _h_gemm(imp: _Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    a = imp.attrs(n)
    if a.get("transA", 0):
        raise imp.fail(n, "transA=1 is not supported (the activation must be [N, features])")
    x = imp.tensor(n)
    wc = imp.const(n, 1, "the weight (B)")
    w = wc.value if a.get("transB", 0) else np.ascontiguousarray(wc.value.T)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        w = w * np.asarray(alpha, dtype=w.dtype)
    c = _bias(imp, imp.opt_const(n, 2, "the bias (C)"))
    if c is not None and beta != 1.0:
        c = c * np.asarray(beta, dtype=c.dtype)
    if c is not None and c.size not in (1, w.shape[0]):
        raise imp.fail(n, f"bias C of shape {list(c.shape)} is not per output feature")
    _linear(imp, n, x, w, c, wc.name)


def _h_matmul(imp: _Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    x = imp.tensor(n)
    wc = imp.const(n, 1, "the weight (second operand)")
    if wc.value.ndim != 2:
        raise imp.fail(n, f"only a 2-D constant weight is supported, got {list(wc.value.shape)}")
    _linear(imp, n, x, np.ascontiguousarray(wc.value.T), None, wc.name)


def _h_batch_norm(imp: _Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    a = imp.attrs(n)
    if a.get("training_mode", 0) or not all(imp.unused(n, i) for i in (1, 2)):
        raise imp.fail(n, "training-mode batch normalization is not supported")
    x = imp.tensor(n)
    scale, bias, mean, var = (
        imp.const(n, i, what) for i, what in enumerate(("scale", "bias", "mean", "var"), 1)
    )
    # a BN without affine parameters is exported with constant ones/zeros (not parameters)
    affine = not (
        not scale.name.endswith("weight")
        and not bias.name.endswith("bias")
        and bool(np.all(scale.value == 1))
        and not bias.value.any()
    )
    params = {"running_mean": mean.value, "running_var": var.value}
    if affine:
        params.update(weight=scale.value, bias=bias.value)
    attrs: dict[str, AttrValue] = {
        "eps": _f32(a.get("epsilon", 1e-5)),
        "momentum": round(1.0 - _f32(a.get("momentum", 0.9)), 9),
        "affine": affine,
    }
    name = scale.name if affine else None
    imp.set(n, _Tensor(imp.emit(n, Op.BATCH_NORM, [x], attrs, params, name)))


def _h_lrn(imp: _Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    attrs: dict[str, AttrValue] = {
        "size": int(a["size"]),
        "alpha": _f32(a.get("alpha", 1e-4)),
        "beta": _f32(a.get("beta", 0.75)),
        "k": _f32(a.get("bias", 1.0)),
    }
    imp.set(n, _Tensor(imp.emit(n, Op.LRN, [imp.tensor(n)], attrs)))


def _f32(v: float) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (1e-4, not 9.99e-05)."""
    import numpy as np

    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def _unary(op: Op) -> Handler:
    def handle(imp: _Importer, n: onnx.NodeProto) -> None:
        imp.set(n, _Tensor(imp.emit(n, op, [imp.tensor(n)], {})))

    return handle


def _h_gelu(imp: _Importer, n: onnx.NodeProto) -> None:
    approx = imp.attrs(n).get("approximate", b"none")
    if (approx.decode() if isinstance(approx, bytes) else approx) != "none":
        raise imp.fail(n, "only the exact (erf) Gelu is supported, not approximate='tanh'")
    _unary(Op.GELU)(imp, n)


def _h_clip(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    a = imp.attrs(n)
    lo: float | None = a.get("min")
    hi: float | None = a.get("max")
    c = imp.opt_const(n, 1, "min")
    if c is not None:
        lo = float(c.value.reshape(-1)[0])
    c = imp.opt_const(n, 2, "max")
    if c is not None:
        hi = float(c.value.reshape(-1)[0])
    if lo == 0.0 and hi == 6.0:
        op = Op.RELU6
    elif lo == 0.0 and (hi is None or math.isinf(hi) or hi >= 3.4e38):
        op = Op.RELU
    else:
        raise imp.fail(n, f"Clip({lo}, {hi}) has no IR counterpart (only relu6 = Clip(0, 6))")
    imp.set(n, _Tensor(imp.emit(n, op, [x], {})))


def _h_hard_sigmoid(imp: _Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    x = imp.tensor(n)
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        raise imp.fail(n, "HardSigmoid has no IR counterpart", _PATTERN_HINT)
    imp.set(n, _Pending("hardsigmoid", x, n.op_type, n.name))


def _window_attrs(imp: _Importer, n: onnx.NodeProto, x: str) -> dict[str, AttrValue]:
    a = imp.attrs(n)
    _rank4(imp, n, x)
    kernel = _pair(n, imp, a["kernel_shape"], "kernel")
    return {
        "kernel": kernel,
        "stride": _pair(n, imp, a.get("strides", [1, 1]), "strides"),
        "padding": _pads(imp, n, x, kernel),
        "ceil_mode": bool(a.get("ceil_mode", 0)),
    }


def _h_max_pool(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    if not imp.unused(n, 1):
        raise imp.fail(n, "MaxPool indices (second output) are not supported")
    attrs = _window_attrs(imp, n, x)
    attrs["dilation"] = _pair(n, imp, imp.attrs(n).get("dilations", [1, 1]), "dilations")
    imp.set(n, _Tensor(imp.emit(n, Op.MAX_POOL, [x], attrs)))


def _h_avg_pool(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    a = imp.attrs(n)
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise imp.fail(n, "dilated average pooling is not supported")
    attrs = _window_attrs(imp, n, x)
    attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
    imp.set(n, _Tensor(imp.emit(n, Op.AVG_POOL, [x], attrs)))


def _h_global_avg_pool(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    _rank4(imp, n, x)
    imp.set(n, _Tensor(imp.emit(n, Op.GLOBAL_AVG_POOL, [x], {})))


def _h_reduce_mean(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    rank = len(imp.type(x).shape)
    c = imp.opt_const(n, 1, "axes")
    axes = _axes_arg(imp, n, [None, None if c is None else c.value])
    a = imp.attrs(n)
    if rank != 4 or sorted(ax % rank for ax in axes) != [2, 3]:
        raise imp.fail(n, f"only a mean over the spatial axes (2, 3) is supported, got {axes}")
    ir = imp.emit(n, Op.GLOBAL_AVG_POOL, [x], {})
    if not a.get("keepdims", 1):
        ir = imp.emit(n, Op.FLATTEN, [ir], {"start_dim": 1})
    imp.set(n, _Tensor(ir))


def _h_identity(imp: _Importer, n: onnx.NodeProto) -> None:
    if n.op_type == "Dropout" and not imp.unused(n, 1):
        raise imp.fail(n, "the dropout mask (second output) is not supported")
    v = imp.value(n, 0)
    assert v is not None
    imp.set(n, v)


def _h_cast(imp: _Importer, n: onnx.NodeProto) -> None:
    from onnx import helper

    x = imp.tensor(n)
    if n.op_type == "CastLike":
        c = imp.value(n, 1)
        if isinstance(c, _Tensor):
            target = imp.type(c.ir).dtype
        elif isinstance(c, _Const):
            target = str(c.value.dtype)
        else:
            raise imp.fail(n, "unsupported CastLike target")
    else:
        target = str(helper.tensor_dtype_to_np_dtype(int(imp.attrs(n)["to"])))
    if target != imp.type(x).dtype:
        raise imp.fail(n, f"cast of a {imp.type(x).dtype} activation to {target} is not supported")
    imp.set(n, _Tensor(x))


def _is_op(imp: _Importer, ir: str, op: Op, src: str | None = None) -> bool:
    node = imp.g[ir]
    return node.op is op and (src is None or node.inputs == (src,))


def _scalar(c: _Const) -> float | None:
    return float(c.value.reshape(-1)[0]) if c.value.size == 1 and not _has_sym(c.value) else None


def _h_add(imp: _Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, _Const) and not isinstance(b, _Const):
        a, b = b, a
    if isinstance(a, _Tensor) and isinstance(b, _Tensor):
        imp.set(n, _Tensor(imp.emit(n, Op.ADD, [a.ir, b.ir], {})))
        return
    if isinstance(a, _Pending) and isinstance(b, _Const):
        if a.kind == "erf" and _scalar(b) == 1.0:
            imp.set(n, _Pending("erf1", a.base, "Erf", a.node))
            return
        raise imp.fail(n, f"adding a constant to a {a.op_type} result is not supported")
    if isinstance(a, _Tensor) and isinstance(b, _Const):
        src = n.input[0] if isinstance(imp.value(n, 0), _Tensor) else n.input[1]
        node = imp.g[a.ir]
        cout = int(node.type.shape[1])
        ok_shapes = (
            {(cout,), (1, cout)} if node.op is Op.LINEAR else {(cout, 1, 1), (1, cout, 1, 1)}
        )
        if (
            src in imp.biasable
            and imp.biasable[src] == a.ir
            and imp.uses[src] == 1
            and tuple(b.value.shape) in ok_shapes
        ):
            # MatMul + Add (and Conv + Add): the constant is the layer's bias
            params = {p.name: imp.params[(a.ir, p.name)] for p in node.params}
            params["bias"] = np.ascontiguousarray(b.value.reshape(-1))
            attrs = dict(node.attrs, bias=True)
            t, decls = infer_node(node.op, attrs, [imp.type(i) for i in node.inputs])
            imp.g.nodes[a.ir] = node.replace(attrs=attrs, params=decls)
            imp.params[(a.ir, "bias")] = params["bias"]
            del imp.biasable[src]
            imp.set(n, a)
            return
        if not b.value.any() and _broadcasts_into(b.value.shape, imp.type(a.ir).shape):
            imp.set(n, a)
            return
        raise imp.fail(
            n,
            f"adding a constant of shape {list(b.value.shape)} to an activation has no IR "
            "counterpart (only a linear/conv bias)",
        )
    raise imp.fail(n, "unsupported operands")


def _broadcasts_into(small: Sequence[int], shape: Sequence[Dim]) -> bool:
    """Whether a constant of shape ``small`` broadcasts to ``shape`` without growing it."""
    if len(small) > len(shape):
        return False
    return all(s == 1 or s == d for s, d in zip(reversed(small), reversed(shape), strict=False))


def _h_mul(imp: _Importer, n: onnx.NodeProto) -> None:
    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, _Const) or (isinstance(a, _Pending) and isinstance(b, _Tensor)):
        a, b = b, a
    if isinstance(a, _Tensor) and isinstance(b, _Tensor):
        for x, s in ((a.ir, b.ir), (b.ir, a.ir)):
            if _is_op(imp, s, Op.SIGMOID, x):
                imp.set(n, _Tensor(imp.emit(n, Op.SILU, [x], {})))
                return
        imp.set(n, _Tensor(imp.emit(n, Op.MUL, [a.ir, b.ir], {})))
        return
    if isinstance(a, _Tensor) and isinstance(b, _Pending) and b.base == a.ir:
        if b.kind == "hardsigmoid":
            imp.set(n, _Tensor(imp.emit(n, Op.HARDSWISH, [a.ir], {})))
            return
        if b.kind == "erf1":  # x * (1 + erf(x / sqrt 2))
            imp.set(n, _Pending("gelu2", a.ir, "Erf", b.node))
            return
    if isinstance(a, _Pending) and isinstance(b, _Pending) and a.base == b.base:
        kinds = {p.kind: p for p in (a, b)}
        half = kinds.get("scaled")
        if "erf1" in kinds and half is not None and abs(half.value - 0.5) < 1e-6:
            imp.set(n, _Tensor(imp.emit(n, Op.GELU, [a.base], {})))
            return
    if isinstance(a, (_Tensor, _Pending)) and isinstance(b, _Const):
        k = _scalar(b)
        if k is not None:
            if isinstance(a, _Tensor):
                if k == 1.0:
                    imp.set(n, a)
                    return
                imp.set(n, _Pending("scaled", a.ir, "Mul", n.name, k))
                return
            if a.kind == "gelu2" and abs(k - 0.5) < 1e-6:
                imp.set(n, _Tensor(imp.emit(n, Op.GELU, [a.base], {})))
                return
    for p in (a, b):
        if isinstance(p, _Pending):
            raise imp.fail(
                n,
                f"the {p.op_type} result of node {p.node!r} is used in a way that has no IR "
                "counterpart",
                _PATTERN_HINT,
            )
    raise imp.fail(
        n,
        "this multiplication has no IR counterpart (mul takes two activations of the same "
        "rank, or is part of a pattern)",
        _PATTERN_HINT,
    )


def _h_div(imp: _Importer, n: onnx.NodeProto) -> None:
    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, _Tensor) and isinstance(b, _Const):
        s = _scalar(b)
        if s:
            imp.set(n, _Pending("scaled", a.ir, "Div", n.name, 1.0 / s))
            return
    raise imp.fail(n, "division has no IR counterpart", _PATTERN_HINT)


def _h_erf(imp: _Importer, n: onnx.NodeProto) -> None:
    v = imp.value(n, 0)
    if isinstance(v, _Pending) and v.kind == "scaled" and abs(v.value - 1 / math.sqrt(2)) < 1e-5:
        imp.set(n, _Pending("erf", v.base, "Erf", n.name))
        return
    raise imp.fail(n, "Erf has no IR counterpart", _PATTERN_HINT)


def _h_concat(imp: _Importer, n: onnx.NodeProto) -> None:
    xs = [imp.tensor(n, i) for i in range(len(n.input)) if n.input[i]]
    rank = len(imp.type(xs[0]).shape)
    axis = int(imp.attrs(n)["axis"]) % rank
    if len(xs) == 1:
        imp.set(n, _Tensor(xs[0]))
        return
    imp.set(n, _Tensor(imp.emit(n, Op.CONCAT, xs, {"axis": axis})))


def _split_node(imp: _Importer, n: onnx.NodeProto, x: str, axis: int, start: int, stop: int) -> str:
    """``x[start:stop]`` along ``axis`` as an IR split node (nothing if it is all of ``x``)."""
    size = int(imp.type(x).shape[axis])
    if axis == 0:
        raise imp.fail(n, "splitting or slicing the batch dimension is not supported")
    if start == 0 and stop == size:
        return x
    if stop <= start:
        raise imp.fail(n, f"empty slice [{start}:{stop}] of axis {axis}")
    sizes = [s for s in (start, stop - start, size - stop) if s > 0]
    index = 1 if start > 0 else 0
    attrs: dict[str, AttrValue] = {"axis": axis, "sizes": tuple(sizes), "index": index}
    return imp.emit(n, Op.SPLIT, [x], attrs)


def _h_split(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    a = imp.attrs(n)
    axis = int(a.get("axis", 0)) % len(t.shape)
    size = int(t.shape[axis])
    c = imp.opt_const(n, 1, "split sizes")
    if "split" in a:
        sizes = [int(s) for s in a["split"]]
    elif c is not None:
        sizes = imp.ints(n, c, "split sizes")
    else:
        sizes = _split_sizes(imp, n, size, None, int(a.get("num_outputs", len(n.output))))
    if sum(sizes) != size or len(sizes) != len(n.output):
        raise imp.fail(n, f"split sizes {sizes} do not fit axis {axis} of size {size}")
    start = 0
    for i, s in enumerate(sizes):
        if not imp.unused(n, i):
            imp.set(n, _Tensor(_split_node(imp, n, x, axis, start, start + s)), i)
        start += s


def _split_sizes(
    imp: _Importer, n: onnx.NodeProto, size: int, given: list[int] | None, parts: int
) -> list[int]:
    if given is None:
        chunk = -(-size // parts)
        return [min(chunk, size - i * chunk) for i in range(parts)]
    return given


def _h_split_to_sequence(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    a = imp.attrs(n)
    axis = int(a.get("axis", 0)) % len(t.shape)
    size = int(t.shape[axis])
    c = imp.opt_const(n, 1, "split")
    if c is None:
        if not a.get("keepdims", 1):
            raise imp.fail(n, "SplitToSequence with keepdims=0 is not supported")
        sizes = [1] * size
    elif c.value.ndim == 0:
        chunk = int(c.value)
        sizes = [min(chunk, size - i) for i in range(0, size, chunk)]
    else:
        sizes = imp.ints(n, c, "split sizes")
    if sum(sizes) != size:
        raise imp.fail(n, f"split sizes {sizes} do not fit axis {axis} of size {size}")
    items, start = [], 0
    for s in sizes:
        items.append(_split_node(imp, n, x, axis, start, start + s))
        start += s
    imp.set(n, _Seq(tuple(items), n.name))


def _h_sequence_at(imp: _Importer, n: onnx.NodeProto) -> None:
    seq = imp.value(n, 0)
    if not isinstance(seq, _Seq):
        raise imp.fail(n, "only sequences made by SplitToSequence are supported")
    pos = imp.ints(n, imp.const(n, 1, "position"), "position")[0]
    if not -len(seq.items) <= pos < len(seq.items):
        raise imp.fail(n, f"position {pos} is out of range for {len(seq.items)} items")
    imp.set(n, _Tensor(seq.items[pos]))


def _h_slice(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    arrays: list[Any] = [None]
    for i in range(1, len(n.input)):
        c = imp.opt_const(n, i, "slice bounds")
        arrays.append(None if c is None else c.value)
    starts, ends, axes, steps = _slice_args(imp, n, arrays, len(t.shape))
    shape = [int(d) if not isinstance(d, str) else 1 for d in t.shape]
    for ax, s, e, st in zip(axes, starts, ends, steps, strict=False):
        r = range(shape[ax])[slice(s, e, st)]
        if len(r) == shape[ax] and (len(r) < 2 or r.step == 1):
            continue  # the whole axis (a symbolic batch counts as size 1 here)
        if st != 1 or ax == 0:
            raise imp.fail(n, f"only a contiguous slice of a non-batch axis is supported "
                           f"(axis {ax}, step {st})")  # fmt: skip
        x = _split_node(imp, n, x, ax, r.start, r.stop)
    imp.set(n, _Tensor(x))


def _h_reshape(imp: _Importer, n: onnx.NodeProto) -> None:
    v = imp.value(n, 0)
    target_c = imp.const(n, 1, "the target shape")
    target: list[Any] = list(target_c.value.reshape(-1))
    if not imp.attrs(n).get("allowzero", 0):
        # 0 copies the input's dimension (of a pending pattern only the batch is known)
        src: list[Any] = list(imp.type(v.ir).shape) if isinstance(v, _Tensor) else [imp.batch]
        if any(isinstance(d, int) and d == 0 and i >= len(src) for i, d in enumerate(target)):
            raise imp.fail(n, f"reshape target {target} copies a dimension the input lacks")
        target = [
            (BATCH if isinstance(src[i], str) else src[i])
            if not isinstance(d, _Sym) and d == 0
            else d
            for i, d in enumerate(target)
        ]
    target = [d if isinstance(d, _Sym) else int(d) for d in target]
    if isinstance(v, _Pending):
        if v.kind == "shuffle":
            base = imp.type(v.base)
            if imp.batch_kept(n, v.base, target) == list(base.sample_shape):
                ir = imp.emit(n, Op.CHANNEL_SHUFFLE, [v.base], {"groups": int(v.value)})
                imp.set(n, _Tensor(ir))
                return
        raise imp.fail(n, f"reshape of a {v.op_type} result is not supported", _PATTERN_HINT)
    x = imp.tensor(n)
    imp.set(n, _Tensor(imp.view(n, x, imp.batch_kept(n, x, target))))


def _h_flatten(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    axis = int(imp.attrs(n).get("axis", 1)) % (len(t.shape) + 1)
    lead = math.prod(int(d) for d in t.shape[1:axis])
    if axis == 0 or lead != 1:
        raise imp.fail(n, f"Flatten(axis={axis}) of {list(t.shape)} merges the batch dimension")
    imp.set(n, _Tensor(imp.view(n, x, [t.sample_numel])))


def _h_squeeze(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    c = imp.opt_const(n, 1, "axes")
    axes = _axes_arg(imp, n, [None, None if c is None else c.value])
    rank = len(t.shape)
    shape = list(t.shape)
    if n.op_type == "Squeeze":
        drop = {a % rank for a in axes} if axes else {i for i, d in enumerate(shape) if d == 1}
        if 0 in drop:
            raise imp.fail(n, "squeezing the batch dimension is not supported")
        new = [d for i, d in enumerate(shape) if i not in drop]
    else:
        out_rank = rank + len(axes)
        new = list(shape)
        for ax in sorted(a % out_rank for a in axes):
            if ax == 0:
                raise imp.fail(n, "a new leading dimension before the batch is not supported")
            new.insert(ax, 1)
    imp.set(n, _Tensor(imp.view(n, x, [int(d) for d in new[1:]])))


def _h_softmax(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    rank = len(imp.type(x).shape)
    default = -1 if imp.opset >= 13 else 1
    axis = int(imp.attrs(n).get("axis", default)) % rank
    if imp.opset < 13 and axis != rank - 1:
        raise imp.fail(n, f"Softmax(axis={axis}) before opset 13 normalizes over a flattened "
                       "tail; only the last axis is supported")  # fmt: skip
    imp.set(n, _Tensor(imp.emit(n, Op.SOFTMAX, [x], {"axis": axis})))


def _h_transpose(imp: _Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    perm = list(imp.attrs(n).get("perm", reversed(range(len(t.shape)))))
    if perm == list(range(len(t.shape))):
        imp.set(n, _Tensor(x))
        return
    src = imp.g[x]
    if (
        src.op is Op.RESHAPE
        and perm == [0, 2, 1, 3, 4]
        and len(t.shape) == 5
        and len(imp.type(src.inputs[0]).shape) == 4
        and t.shape[3:] == imp.type(src.inputs[0]).shape[2:]
    ):
        imp.set(n, _Pending("shuffle", src.inputs[0], "Transpose", n.name, int(t.shape[1])))
        return
    raise imp.fail(
        n,
        f"Transpose(perm={perm}) of {list(t.shape)} has no IR counterpart",
        "only the channel shuffle Reshape [N, g, C/g, H, W] -> Transpose (0, 2, 1, 3, 4) -> "
        "Reshape [N, C, H, W] is supported",
    )


HANDLERS: dict[str, Handler] = {
    "Conv": _h_conv,
    "Gemm": _h_gemm,
    "MatMul": _h_matmul,
    "BatchNormalization": _h_batch_norm,
    "LRN": _h_lrn,
    "Relu": _unary(Op.RELU),
    "Sigmoid": _unary(Op.SIGMOID),
    "Tanh": _unary(Op.TANH),
    "HardSwish": _unary(Op.HARDSWISH),
    "Gelu": _h_gelu,
    "Clip": _h_clip,
    "HardSigmoid": _h_hard_sigmoid,
    "Erf": _h_erf,
    "MaxPool": _h_max_pool,
    "AveragePool": _h_avg_pool,
    "GlobalAveragePool": _h_global_avg_pool,
    "ReduceMean": _h_reduce_mean,
    "Dropout": _h_identity,
    "Identity": _h_identity,
    "Cast": _h_cast,
    "CastLike": _h_cast,
    "Add": _h_add,
    "Mul": _h_mul,
    "Div": _h_div,
    "Concat": _h_concat,
    "Split": _h_split,
    "Slice": _h_slice,
    "SplitToSequence": _h_split_to_sequence,
    "SequenceAt": _h_sequence_at,
    "Reshape": _h_reshape,
    "Flatten": _h_flatten,
    "Squeeze": _h_squeeze,
    "Unsqueeze": _h_squeeze,
    "Softmax": _h_softmax,
    "Transpose": _h_transpose,
}
assert set(HANDLERS) | {"Shape", "Constant"} == DATA_OPS


# ------------------------------------------------------------------------ finishing


def _finish_graph(imp: _Importer, outputs: list[tuple[str, str]]) -> tuple[Graph, Weights]:
    """Drop dead nodes (patterns leave some), give every node its final name, rebuild."""
    g = imp.g
    live = {ir for _, ir in outputs}
    for node in reversed(list(g)):
        if node.name in live:
            live.update(node.inputs)
    order = [node for node in g if node.name in live and node.op is not Op.INPUT]
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
        want = _scope_name(want)
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
            weights[f"{rename[ir]}.{p}"] = arr
    try:
        out.verify()
    except Exception as e:  # pragma: no cover - a bug in this importer
        raise OnnxImportError(f"internal error: the imported graph does not verify: {e}") from e
    return out, weights
