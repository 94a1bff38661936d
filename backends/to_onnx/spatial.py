"""ONNX lowerings that move pixels: ``pad`` (Pad) and ``upsample`` (Resize), for
:data:`graphcnn.backends.to_onnx.lowering.LOWERINGS`."""

from __future__ import annotations

from typing import Any

from graphcnn.backends.to_onnx.builder import Builder
from graphcnn.ir import Node, attr_float, attr_ints, attr_pair


def pad(b: Builder, n: Node, xs: list[str]) -> None:
    left, right, top, bottom = attr_ints(n.attrs, "pads")
    pads = b.const(f"{n.name}.pads", [0, 0, top, left, 0, 0, bottom, right])
    value = b.const(f"{n.name}.value", [attr_float(n.attrs, "value")], "float32")
    b.consts[-1].dims[:] = []  # constant_value is a scalar
    b.node("Pad", [xs[0], pads, value], [n.name], n.name, n, mode="constant")


def upsample(b: Builder, n: Node, xs: list[str]) -> None:
    extra: dict[str, Any] = {}
    if "size" in n.attrs:
        # sizes, not scales: the coordinates use in/out exactly as torch's F.interpolate(size=)
        oh, ow = attr_pair(n.attrs, "size")
        if b.opset >= 18:  # only H and W (the axes attribute): shapes infer statically
            sizes, extra = b.const(f"{n.name}.sizes", [oh, ow]), {"axes": [2, 3]}
        else:  # Shape(x)[:2] ++ [oh, ow], as torch exports it: the batch stays dynamic
            shape, nc = f"{n.name}.input_shape", f"{n.name}.batch_channels"
            b.node("Shape", [xs[0]], [shape], shape, n)
            zero, two = b.const(f"{n.name}.zero", [0]), b.const(f"{n.name}.two", [2])
            b.node("Slice", [shape, zero, two], [nc], nc, n)
            sizes = f"{n.name}.sizes"
            b.node("Concat", [nc, b.const(f"{n.name}.hw", [oh, ow])], [sizes], sizes, n, axis=0)
        inputs = [xs[0], "", "", sizes]
    else:
        sh, sw = attr_pair(n.attrs, "scale")
        scales = b.const(f"{n.name}.scales", [1.0, 1.0, float(sh), float(sw)], "float32")
        inputs = [xs[0], "", scales]
    if n.attrs.get("mode", "nearest") == "bilinear":
        # torch's bilinear: align_corners maps the corner pixels onto each other; without it
        # pixel i samples (i + 0.5) / s - 0.5 (pytorch_half_pixel: half_pixel, but a length-1
        # output samples 0, as torch does)
        corners = bool(n.attrs["align_corners"])
        b.node(
            "Resize",
            inputs,
            [n.name],
            n.name,
            n,
            mode="linear",
            coordinate_transformation_mode="align_corners" if corners else "pytorch_half_pixel",
            **extra,
        )
        return
    # torch's nearest: source pixel floor(i / s), i.e. asymmetric coordinates rounded down
    b.node(
        "Resize",
        inputs,
        [n.name],
        n.name,
        n,
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
        **extra,
    )
