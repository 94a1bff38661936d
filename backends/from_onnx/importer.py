"""The importer's state, and the helpers every op handler and folder uses.

:class:`Importer` holds the IR graph being built, what each ONNX tensor name stands for (a
:class:`~.values.Value`) and the naming hints; its methods read a node's inputs and attributes,
add IR nodes through the shape rules, and build the errors that name the node. Handlers
(``Handler``) and folders receive it as their first argument.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.errors import OnnxImportError
from graphcnn.backends.from_onnx.naming import Hint, module_path
from graphcnn.backends.from_onnx.values import (
    BATCH,
    Const,
    Pending,
    Seq,
    Sym,
    Tensor,
    Value,
    has_sym,
)
from graphcnn.ir import AttrValue, Dim, Graph, Node, Op, TensorType, freeze
from graphcnn.shapes import ShapeError, infer_node

_KEY = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)+")
"""A state_dict key as torch's exporters keep it (``features.1.0.layer_scale``), not
``onnx::Mul_12`` or ``val_3``."""

if TYPE_CHECKING:
    import numpy as np
    import onnx

PATTERN_HINT = (
    "the IR has no such op; supported patterns: x*Sigmoid(x) (silu), x*HardSigmoid(x) "
    "(hardswish), 0.5*x*(1+Erf(x/sqrt(2))) (gelu), 0.5*x*(1+Tanh(sqrt(2/pi)*(x+0.044715*x^3))) "
    "(gelu tanh), Reshape-Transpose-Reshape (channel shuffle)"
)


MATERIALIZED = ("scaled", "hardsigmoid", "square")
"""Pending kinds that are an IR op by themselves (:meth:`Importer.materialize`)."""


class Importer:
    """The graph being built and what each ONNX tensor name stands for; helpers for handlers."""

    def __init__(self, model: onnx.ModelProto, name: str) -> None:
        self.model = model
        self.name = name
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21
        )
        self.g = Graph(name)
        self.env: dict[str, Value] = {}
        self.params: dict[tuple[str, str], np.ndarray[Any, Any]] = {}
        self.hints: dict[str, Hint] = {}
        self.uses: Counter[str] = Counter()
        self.biasable: dict[str, str] = {}
        """ONNX tensor -> bias-less conv/linear IR node that computes it (for a following Add)."""
        self.dtype = "float32"
        self.batch: Dim = "N"
        self.input_name = ""
        """IR name of the graph input (set by the driver)."""

    def where(self, n: onnx.NodeProto) -> str:
        return f"ONNX node {n.name or n.output[0]!r} ({n.op_type})"

    def fail(self, n: onnx.NodeProto, msg: str, hint: str | None = None) -> OnnxImportError:
        return OnnxImportError(f"{self.where(n)}: {msg}", hint)

    def value(self, n: onnx.NodeProto, i: int) -> Value | None:
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
        if isinstance(v, Tensor):
            return v.ir
        if isinstance(v, Pending):
            ir = self.materialize(n, v)
            if ir is not None:
                self.env[n.input[i]] = Tensor(ir)
                return ir
            raise self.fail(
                n,
                f"input {i} comes from {v.op_type} node {v.node!r}, which only converts as part "
                "of a pattern",
                PATTERN_HINT,
            )
        what = "missing" if v is None else "a sequence" if isinstance(v, Seq) else "a constant"
        raise self.fail(n, f"input {i} is {what}; expected an activation")

    def materialize(self, n: onnx.NodeProto, v: Pending) -> str | None:
        """The IR node of a pattern part that is an op by itself, when it is used outside its
        pattern: a scalar Mul or Div (scale), HardSigmoid (hardsigmoid), x * x (mul); else
        None. The node is named after the pattern part's own ONNX node."""
        from onnx import helper

        n = helper.make_node(v.op_type, [], [v.node], name=v.node)
        if v.kind == "scaled":
            if v.divisor:
                return self.emit(n, Op.SCALE, [v.base], {"factor": v.divisor, "divide": True})
            return self.emit(n, Op.SCALE, [v.base], {"factor": v.value, "divide": False})
        if v.kind == "hardsigmoid":
            return self.emit(n, Op.HARDSIGMOID, [v.base], {})
        if v.kind == "square":
            return self.emit(n, Op.MUL, [v.base, v.base], {})
        return None

    def const(self, n: onnx.NodeProto, i: int, what: str) -> Const:
        v = self.value(n, i)
        if not isinstance(v, Const):
            raise self.fail(n, f"{what} (input {i}) must be a constant")
        return v

    def opt_const(self, n: onnx.NodeProto, i: int, what: str) -> Const | None:
        return None if self.value(n, i) is None else self.const(n, i, what)

    def ints(self, n: onnx.NodeProto, c: Const, what: str) -> list[int]:
        if has_sym(c.value):
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
        elif param_name and "" in params and _KEY.fullmatch(param_name):
            # a parameter keyed by its node's name (a layer scale's gamma): torch's key, or
            # graphcnn's own ``<key>.value`` (to_onnx's initializer_name)
            out = n.output[0]
            stem = out if param_name == f"{out}.value" else param_name
        self.hints[ir] = Hint(stem, module_path(n), n.name or n.output[0])
        return ir

    def set(self, n: onnx.NodeProto, v: Value, i: int = 0) -> None:
        if i < len(n.output) and n.output[i]:
            self.env[n.output[i]] = v

    def unused(self, n: onnx.NodeProto, i: int) -> bool:
        return i >= len(n.output) or not n.output[i] or self.uses[n.output[i]] == 0

    def attrs(self, n: onnx.NodeProto) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

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
        if any(isinstance(d, Sym) for d in rest):
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


Handler = Callable[[Importer, "onnx.NodeProto"], None]
"""Converts one ONNX node applied to activations (``HANDLERS[op_type]``)."""


def axes_arg(imp: Importer, n: onnx.NodeProto, arrays: list[Any], idx: int = 1) -> list[int]:
    """The axes of a node: its ``axes`` attribute (before opset 13), else input ``idx``."""
    a = imp.attrs(n)
    if "axes" in a:
        return [int(x) for x in a["axes"]]
    if idx < len(arrays) and arrays[idx] is not None:
        return [int(x) for x in arrays[idx].reshape(-1)]
    return []


def slice_args(
    imp: Importer, n: onnx.NodeProto, a: list[Any], rank: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    """A Slice's starts, ends, axes (non-negative) and steps: attributes before opset 10, else
    its constant inputs ``a[1:5]``."""
    attrs = imp.attrs(n)
    if "starts" in attrs:  # opset < 10
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        return starts, ends, axes, [1] * len(starts)

    def arg(i: int) -> list[int] | None:
        if i < len(a) and a[i] is not None:
            if has_sym(a[i]):
                raise imp.fail(n, f"slice bounds depend on the batch: {a[i].tolist()}")
            return [int(x) for x in a[i].reshape(-1)]
        return None

    starts, ends = arg(1) or [], arg(2) or []
    axes = arg(3) or list(range(len(starts)))
    steps = arg(4) or [1] * len(starts)
    return starts, ends, [ax % rank for ax in axes], steps
