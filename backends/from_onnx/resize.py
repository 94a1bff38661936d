"""The handler of ONNX ``Resize``: upsampling by whole factors -> the IR's ``upsample``.

``Resize(x, roi, scales, sizes)`` (opset 11+) of an ``[N, C, H, W]`` activation, with constant
``scales`` or ``sizes`` that keep N and C, becomes ``upsample([sh, sw])`` for scales that are
whole factors and ``upsample(size: [oh, ow])`` for sizes (and for scales whose outputs are
exactly ``input * scale``), when its coordinates are ones torch exports:

- ``nearest`` with ``coordinate_transformation_mode="asymmetric"`` and ``nearest_mode="floor"``
  (``F.interpolate(mode="nearest")``: output pixel ``i`` copies input pixel ``floor(i / s)``);
- ``linear`` (bilinear on H and W) with ``half_pixel`` or ``pytorch_half_pixel``
  (``mode="bilinear"``, the default ``align_corners=False``: pixel ``i`` samples
  ``(i + 0.5) / s - 0.5``) or ``align_corners`` (``align_corners=True``).

A resize to the input's own size becomes nothing. Anything else (cubic, other coordinate modes
such as TF's ``asymmetric`` bilinear, scales whose output size is not exactly ``input *
scale``, antialiasing, ``exclude_outside``, sizes computed from activations) is refused, naming
the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.importer import Handler, Importer
from graphcnn.backends.from_onnx.values import Tensor
from graphcnn.ir import AttrValue, Op

if TYPE_CHECKING:
    import onnx

HINT = (
    'export nn.Upsample(scale_factor=s, mode="nearest" or "bilinear") or F.interpolate with a '
    "whole s"
)


def _text(a: dict[str, object], key: str, default: str) -> str:
    v = a.get(key, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def _target(imp: Importer, n: onnx.NodeProto, shape: list[int]) -> dict[str, AttrValue]:
    """``{"scale": (sh, sw)}`` for whole factors, else ``{"size": (oh, ow)}``, from the
    constant scales (input 2) or sizes (input 3), axes included."""
    scales = imp.opt_const(n, 2, "scales")
    if scales is not None and scales.value.size == 0:
        scales = None  # an empty scales input: sizes given instead
    sizes = None if scales is not None else imp.const(n, 3, "the scales or sizes")
    axes = [int(x) % 4 for x in imp.attrs(n).get("axes", range(4))]
    if 0 in shape[2:]:
        raise imp.fail(n, f"the input's H and W must be known, got {shape[2:]}")
    factor = [1.0] * 4
    out = list(shape)
    if scales is not None:
        given = [float(x) for x in scales.value.reshape(-1)]
    else:
        assert sizes is not None
        # NOTE: the batch size may be symbolic here; only the listed H and W must be numbers
        given = []
        for axis, v in zip(axes, list(sizes.value.reshape(-1)), strict=False):
            given.append(1.0 if axis < 2 else int(v) / shape[axis])
            out[axis] = shape[axis] if axis < 2 else int(v)
    if len(given) != len(axes):
        raise imp.fail(n, f"{len(given)} scales or sizes for the {len(axes)} axes {axes}")
    for axis, f in zip(axes, given, strict=True):
        factor[axis] = f
        if scales is not None and axis >= 2:
            out[axis] = int(shape[axis] * f)  # ONNX: floor(input * scale)
    if factor[:2] != [1.0, 1.0]:
        raise imp.fail(n, f"scales {factor} resize the batch or the channels", HINT)
    if scales is None:  # sizes stay sizes (torch's F.interpolate(size=...))
        if min(out[2:]) < 1:
            raise imp.fail(n, f"sizes {out[2:]} of H and W must be >= 1", HINT)
        return {"size": (out[2], out[3])}
    if all(f >= 1 and f == int(f) for f in factor[2:]):
        return {"scale": (int(factor[2]), int(factor[3]))}
    # NOTE: a size samples at in/out; a scale at 1/scale: the same only where out = in * scale
    exact = all(out[a] == shape[a] * factor[a] for a in (2, 3))
    if min(out[2:]) < 1 or not exact:
        raise imp.fail(
            n,
            f"scales {factor[2:]} of H and W from {shape[2:]} give no whole output size "
            "(ONNX samples at 1 / scale, a resize to a size at input / output)",
            HINT,
        )
    return {"size": (out[2], out[3])}


def _coordinates(imp: Importer, n: onnx.NodeProto, a: dict[str, Any]) -> dict[str, AttrValue]:
    """The upsample attributes besides the scale, from Resize's mode and coordinates."""
    mode = _text(a, "mode", "nearest")
    coords = _text(a, "coordinate_transformation_mode", "half_pixel")
    if int(a.get("antialias", 0)) or int(a.get("exclude_outside", 0)):
        raise imp.fail(n, "antialias and exclude_outside are not supported", HINT)
    if mode == "nearest":
        rounding = _text(a, "nearest_mode", "round_prefer_floor")
        if coords == "asymmetric" and rounding == "floor":
            return {}
        raise imp.fail(
            n,
            f"nearest with coordinate_transformation_mode {coords!r} and nearest_mode "
            f"{rounding!r} is not supported: the IR's nearest upsample is torch's "
            "('asymmetric', 'floor')",
            HINT,
        )
    if mode == "linear" and coords in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        return {"mode": "bilinear", "align_corners": coords == "align_corners"}
    raise imp.fail(
        n,
        f"mode {mode!r} with coordinate_transformation_mode {coords!r} is not supported: the "
        "IR's upsample is torch's nearest ('asymmetric', 'floor') or bilinear ('half_pixel', "
        "'pytorch_half_pixel' or 'align_corners')",
        HINT,
    )


def _h_resize(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    shape = [int(d) if isinstance(d, int) else 0 for d in imp.type(x).shape]
    if len(shape) != 4:
        raise imp.fail(n, f"expects an [N, C, H, W] activation, got {list(imp.type(x).shape)}")
    a = imp.attrs(n)
    attrs = _coordinates(imp, n, a)
    if _text(a, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise imp.fail(n, "keep_aspect_ratio_policy other than 'stretch' is not supported", HINT)
    target = _target(imp, n, shape)
    if target.get("scale") == (1, 1) or target.get("size") == tuple(shape[2:]):
        imp.set(n, Tensor(x))
        return
    imp.set(n, Tensor(imp.emit(n, Op.UPSAMPLE, [x], {**target, **attrs})))


RESIZE_HANDLERS: dict[str, Handler] = {"Resize": _h_resize}
"""ONNX Resize (nearest or bilinear, whole upsampling factors)."""
