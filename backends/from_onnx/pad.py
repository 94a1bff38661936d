"""The handler of ONNX ``Pad``: constant padding of H and W -> the IR's ``pad`` op.

``Pad(x, pads, constant_value, axes)`` (opset 11+; before, ``pads`` and ``value`` are
attributes) with ``mode="constant"``, constant ``pads`` and value, an ``[N, C, H, W]`` activation
and pads that touch only H and W becomes ``pad([left, right, top, bottom], value)`` (a negative
pad crops, in ONNX as in the IR); all-zero pads become nothing. ONNX lists the begins of every
axis, then the ends: ``[n0, c0, top, left, n1, c1, bottom, right]`` (or those of ``axes``,
opset 18). Anything else (reflect/edge modes, padding the batch or the channels, a ``pads``
computed from activations) is refused, naming the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphcnn.backends.from_onnx.importer import Handler, Importer
from graphcnn.backends.from_onnx.values import Tensor
from graphcnn.ir import AttrValue, Op

if TYPE_CHECKING:
    import onnx


def _spatial(imp: Importer, n: onnx.NodeProto, pads: list[int], axes: list[int]) -> list[int]:
    """``[left, right, top, bottom]`` from ONNX pads over ``axes`` of a rank-4 tensor."""
    if len(pads) != 2 * len(axes):
        raise imp.fail(n, f"pads {pads} do not list a begin and an end for each of axes {axes}")
    full = [0] * 8
    for i, axis in enumerate(axes):
        if not -4 <= axis < 4:
            raise imp.fail(n, f"axis {axis} is out of range for an [N, C, H, W] activation")
        full[axis % 4] += pads[i]
        full[axis % 4 + 4] += pads[i + len(axes)]
    if any(full[i] for i in (0, 1, 4, 5)):
        raise imp.fail(
            n,
            f"pads {full} pad the batch or the channels: only H and W can be padded",
            "pad the channels with a concat of a constant, or export without it",
        )
    return [full[3], full[7], full[2], full[6]]


def _h_pad(imp: Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    x = imp.tensor(n)
    rank = len(imp.type(x).shape)
    if rank != 4:
        raise imp.fail(n, f"expects an [N, C, H, W] activation, got {list(imp.type(x).shape)}")
    a = imp.attrs(n)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise imp.fail(
            n,
            f"mode {mode!r} is not supported: the IR's pad fills a constant",
            "export zero or constant padding (nn.ZeroPad2d, nn.ConstantPad2d, F.pad)",
        )
    if "pads" in a:  # opset < 11: attributes
        pads, value = [int(p) for p in a["pads"]], float(a.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads = imp.ints(n, imp.const(n, 1, "pads"), "pads")
        fill = imp.opt_const(n, 2, "the constant value")
        if fill is not None and fill.value.size != 1:
            raise imp.fail(n, f"the constant value has shape {list(fill.value.shape)}, not 1")
        value = 0.0 if fill is None else float(fill.value.reshape(-1)[0])
        given = imp.opt_const(n, 3, "axes")
        axes = list(range(rank)) if given is None else imp.ints(n, given, "axes")
    sides = _spatial(imp, n, pads, axes)
    if not any(sides):
        imp.set(n, Tensor(x))
        return
    # the float32 value as its shortest decimal (0.1, not 0.10000000149011612); inf stays inf
    value = float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
    attrs: dict[str, AttrValue] = {"pads": tuple(sides), "value": value}
    imp.set(n, Tensor(imp.emit(n, Op.PAD, [x], attrs)))


PAD_HANDLERS: dict[str, Handler] = {"Pad": _h_pad}
"""ONNX Pad (constant mode, spatial pads)."""
