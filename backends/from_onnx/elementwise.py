"""Handlers of the elementwise ops, and the activation patterns they form.

Add, Mul (broadcast) -> themselves; a constant Add after a bias-less linear or conv (MatMul +
Add) -> its bias; an all-zero constant Add -> nothing. Patterns: ``x * Sigmoid(x)`` -> silu;
``x * HardSigmoid(x)`` -> hardswish; the exact erf form ``0.5 * x * (1 + Erf(x / sqrt(2)))``
(any association) -> gelu, its tanh form ``0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 *
x^3)))`` (as to_onnx writes it) -> gelu(approximate: "tanh"); ``x * gamma`` with a constant
gamma of shape (C, 1, 1) -> layer_scale. The parts of a pattern become
:class:`~.values.Pending` values until the pattern completes; one used outside its pattern
becomes its own op when it is one (a scalar Mul or Div: scale; HardSigmoid: hardsigmoid;
``x * x``: mul), else the import fails naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from graphcnn.backends.from_onnx.importer import MATERIALIZED, PATTERN_HINT, Handler, Importer
from graphcnn.backends.from_onnx.values import Const, Pending, Tensor, has_sym
from graphcnn.ir import AttrValue, Dim, Op
from graphcnn.shapes import infer_node

if TYPE_CHECKING:
    import onnx


def _h_hard_sigmoid(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    x = imp.tensor(n)
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(a.get("beta", 0.5) - 0.5) > 1e-6:
        raise imp.fail(n, "HardSigmoid has no IR counterpart", PATTERN_HINT)
    imp.set(n, Pending("hardsigmoid", x, n.op_type, n.name))


def _is_op(imp: Importer, ir: str, op: Op, src: str | None = None) -> bool:
    node = imp.g[ir]
    return node.op is op and (src is None or node.inputs == (src,))


def _scalar(c: Const) -> float | None:
    """A one-element constant's value as the shortest decimal that reads back as the same number
    in its dtype: a float32 0.17 is the 0.17 a spec wrote, not 0.17000000178813934."""
    import numpy as np

    if c.value.size != 1 or has_sym(c.value):
        return None
    v = c.value.reshape(-1)[0]
    return float(np.format_float_positional(v) if isinstance(v, np.floating) else v)


def _h_add(imp: Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, Const) and not isinstance(b, Const):
        a, b = b, a
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        imp.set(n, Tensor(imp.emit(n, Op.ADD, [a.ir, b.ir], {})))
        return
    if isinstance(a, Pending) and isinstance(b, Const):
        if a.kind in ("erf", "tanh") and _scalar(b) == 1.0:
            imp.set(n, Pending(a.kind + "1", a.base, a.op_type, a.node))
            return
        raise imp.fail(n, f"adding a constant to a {a.op_type} result is not supported")
    if isinstance(b, Pending) and isinstance(a, Tensor):
        a, b = b, a
    if isinstance(a, Pending) and isinstance(b, Tensor) and a.kind == "cube_c" and a.base == b.ir:
        imp.set(n, Pending("inner", b.ir, "Mul", a.node))  # x + 0.044715 * x^3
        return
    if _materialize_one(imp, n):
        _h_add(imp, n)
        return
    if isinstance(a, Tensor) and isinstance(b, Const):
        src = n.input[0] if isinstance(imp.value(n, 0), Tensor) else n.input[1]
        node = imp.g[a.ir]
        cout = int(node.type.shape[-1 if node.op is Op.LINEAR else 1])
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
            hint = imp.hints[a.ir]
            if hint.param is None and b.name.endswith(".bias") and len(b.name) > 5:
                # a MatMul's weight is a transposed copy (`fc.weight_t`): the bias names the layer
                hint.param = b.name[: -len(".bias")]
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


def _h_mul(imp: Importer, n: onnx.NodeProto) -> None:
    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, Const) or (isinstance(a, Pending) and isinstance(b, Tensor)):
        a, b = b, a
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.ir == b.ir:  # x * x: maybe the cube of a tanh gelu, else a mul
            imp.set(n, Pending("square", a.ir, "Mul", n.name))
            return
        for x, s in ((a.ir, b.ir), (b.ir, a.ir)):
            if _is_op(imp, s, Op.SIGMOID, x):
                imp.set(n, Tensor(imp.emit(n, Op.SILU, [x], {})))
                return
        imp.set(n, Tensor(imp.emit(n, Op.MUL, [a.ir, b.ir], {})))
        return
    if isinstance(a, Tensor) and isinstance(b, Pending) and b.base == a.ir:
        if b.kind in _TANH_STEPS and _TANH_STEPS[b.kind][1] is None:  # x^2 * x, x * (1 + tanh)
            imp.set(n, Pending(_TANH_STEPS[b.kind][0], a.ir, b.op_type, b.node))
            return
        if b.kind == "hardsigmoid":
            imp.set(n, Tensor(imp.emit(n, Op.HARDSWISH, [a.ir], {})))
            return
        if b.kind == "erf1":  # x * (1 + erf(x / sqrt 2))
            imp.set(n, Pending("gelu2", a.ir, "Erf", b.node))
            return
        if b.kind == "erf1_half":  # x * (0.5 * (1 + erf(x / sqrt 2))): the dynamo exporter
            imp.set(n, Tensor(imp.emit(n, Op.GELU, [a.ir], {})))
            return
    if isinstance(a, Pending) and isinstance(b, Pending) and a.base == b.base:
        kinds = {p.kind: p for p in (a, b)}
        half = kinds.get("scaled")
        if "erf1" in kinds and half is not None and abs(half.value - 0.5) < 1e-6:
            imp.set(n, Tensor(imp.emit(n, Op.GELU, [a.base], {})))
            return
    if isinstance(a, (Tensor, Pending)) and isinstance(b, Const):
        k = _scalar(b)
        if k is not None:
            if isinstance(a, Tensor):
                if k == 1.0:
                    imp.set(n, a)
                    return
                imp.set(n, Pending("scaled", a.ir, "Mul", n.name, k))
                return
            if a.kind == "erf1" and abs(k - 0.5) < 1e-6:
                imp.set(n, Pending("erf1_half", a.base, a.op_type, a.node))
                return
            if a.kind == "gelu2" and abs(k - 0.5) < 1e-6:
                imp.set(n, Tensor(imp.emit(n, Op.GELU, [a.base], {})))
                return
            step = _TANH_STEPS.get(a.kind)
            if step is not None and step[1] is not None and abs(k - step[1]) < 1e-5:
                if step[0] == "gelu":
                    attrs: dict[str, AttrValue] = {"approximate": "tanh"}
                    imp.set(n, Tensor(imp.emit(n, Op.GELU, [a.base], attrs)))
                else:
                    imp.set(n, Pending(step[0], a.base, a.op_type, a.node))
                return
        if isinstance(a, Tensor) and _per_channel(imp, a.ir, b):
            # x * gamma, gamma of shape (C, 1, 1): ConvNeXt's layer scale
            c = int(imp.type(a.ir).shape[1])
            params = {"": b.value.reshape(c, 1, 1)}
            attrs = {"init": 1.0, "flat": False}
            imp.set(n, Tensor(imp.emit(n, Op.LAYER_SCALE, [a.ir], attrs, params, b.name)))
            return
    if _materialize_one(imp, n):
        _h_mul(imp, n)
        return
    for p in (a, b):
        if isinstance(p, Pending):
            raise imp.fail(
                n,
                f"the {p.op_type} result of node {p.node!r} is used in a way that has no IR "
                "counterpart",
                PATTERN_HINT,
            )
    raise imp.fail(
        n,
        "this multiplication has no IR counterpart (mul takes two activations of the same "
        "rank, or is part of a pattern)",
        PATTERN_HINT,
    )


_TANH_STEPS: dict[str, tuple[str, float | None]] = {
    "square": ("cube", None),
    "cube": ("cube_c", 0.044715),
    "inner": ("tanh_arg", math.sqrt(2 / math.pi)),
    "tanh1": ("gelu2t", None),
    "gelu2t": ("gelu", 0.5),
}
"""The tanh gelu, 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), one multiplication
at a time: pending kind -> (the next kind, the constant it is multiplied by, or None for x)."""


def _materialize_one(imp: Importer, n: onnx.NodeProto) -> bool:
    """Turn the first pending input of ``n`` that is an op by itself (a scale outside its
    pattern, ...) into its IR node; False if there is none (the caller then fails)."""
    for i in range(len(n.input)):
        v = imp.value(n, i)
        if isinstance(v, Pending) and v.kind in MATERIALIZED:
            imp.tensor(n, i)
            return True
    return False


def _per_channel(imp: Importer, x: str, c: Const) -> bool:
    t = imp.type(x)
    if len(t.shape) != 4 or has_sym(c.value):
        return False
    return tuple(c.value.shape) in {(t.shape[1], 1, 1), (1, t.shape[1], 1, 1)}


def _h_tanh(imp: Importer, n: onnx.NodeProto) -> None:
    v = imp.value(n, 0)
    if isinstance(v, Pending) and v.kind == "tanh_arg":
        imp.set(n, Pending("tanh", v.base, "Tanh", n.name))
        return
    imp.set(n, Tensor(imp.emit(n, Op.TANH, [imp.tensor(n)], {})))


def _h_div(imp: Importer, n: onnx.NodeProto) -> None:
    a, b = imp.value(n, 0), imp.value(n, 1)
    if isinstance(a, Tensor) and isinstance(b, Const):
        s = _scalar(b)
        if s:
            imp.set(n, Pending("scaled", a.ir, "Div", n.name, 1.0 / s, divisor=s))
            return
    if _materialize_one(imp, n):
        _h_div(imp, n)
        return
    raise imp.fail(
        n, "division has no IR counterpart (only an activation by a number)", PATTERN_HINT
    )


def _h_erf(imp: Importer, n: onnx.NodeProto) -> None:
    v = imp.value(n, 0)
    if isinstance(v, Pending) and v.kind == "scaled" and abs(v.value - 1 / math.sqrt(2)) < 1e-5:
        imp.set(n, Pending("erf", v.base, "Erf", n.name))
        return
    raise imp.fail(n, "Erf has no IR counterpart", PATTERN_HINT)


ELEMENTWISE_HANDLERS: dict[str, Handler] = {
    "HardSigmoid": _h_hard_sigmoid,
    "Erf": _h_erf,
    "Add": _h_add,
    "Mul": _h_mul,
    "Div": _h_div,
    "Tanh": _h_tanh,
}
"""Add, Mul and the ops that only convert as part of a pattern."""
