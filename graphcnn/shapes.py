"""Shape inference: one rule per op, ``SHAPE_RULES[op](attrs, inputs) -> (type, params)``.

Each rule takes the node's frozen attributes and its input tensor types and returns the output type
and the parameters the node declares (shapes only). A rule raises :class:`ShapeError` with a message
that names both shapes when they disagree; the language front end adds the spec location.
Spatial output sizes follow PyTorch exactly (floor division, ``ceil_mode`` with its
"last window must start inside the input" correction).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from graphcnn.ops import GroupOp, Op, arity
from graphcnn.types import AttrValue, Dim, ParamDecl, TensorType, attr_int, attr_ints, attr_pair

MAX_NUMEL = 10**12
"""Largest tensor (elements per sample) a spec may create: larger is a runaway spec."""

Attrs = Mapping[str, AttrValue]
Rule = Callable[[Attrs, Sequence[TensorType]], tuple[TensorType, tuple[ParamDecl, ...]]]


class ShapeError(Exception):
    """A shape rule failed: ``message`` says what, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def fmt_shape(t: TensorType) -> str:
    """The per-sample shape as users write it: ``[64, 56, 56]``."""
    return "[" + ", ".join(str(d) for d in t.shape[1:]) + "]"


def conv_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output size for a conv/pool window along one axis."""
    span = size + 2 * p - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    # NOTE: in ceil mode PyTorch drops a last window that would start in the right padding.
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def _checked(shape: tuple[Dim, ...], dtype: str = "float32") -> TensorType:
    numel = 1
    for d in shape[1:]:
        if not isinstance(d, int) or d < 1:
            raise ShapeError(f"output size {list(shape[1:])} has a non-positive dimension")
        numel *= d
    if numel > MAX_NUMEL:
        raise ShapeError(
            f"tensor of {numel:.3g} elements per sample is too large (limit {MAX_NUMEL:.0e})",
            "check the input size and channel counts",
        )
    return TensorType(shape, dtype)


def _rank(x: TensorType, rank: int, op: str) -> None:
    if len(x.shape) != rank:
        want = {4: "[C, H, W]", 2: "[features]"}.get(rank, f"rank {rank}")
        raise ShapeError(
            f"{op} expects a {want} input, got {fmt_shape(x)}",
            "insert flatten before a linear layer" if rank == 2 else None,
        )


def _window(attrs: Attrs, x: TensorType, op: str, dilated: bool = True) -> tuple[int, int]:
    _rank(x, 4, op)
    kh, kw = attr_pair(attrs, "kernel")
    sh, sw = attr_pair(attrs, "stride")
    ph, pw = attr_pair(attrs, "padding")
    dh, dw = attr_pair(attrs, "dilation", (1, 1)) if dilated else (1, 1)
    ceil = bool(attrs.get("ceil_mode", False))
    _, _, h, w = x.shape
    assert isinstance(h, int) and isinstance(w, int)
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ShapeError(f"{op}: kernel, stride and dilation must be >= 1 and padding >= 0")
    oh, ow = conv_out(h, kh, sh, ph, dh, ceil), conv_out(w, kw, sw, pw, dw, ceil)
    if oh < 1 or ow < 1:
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        raise ShapeError(
            f"{op}: window {eh}x{ew} does not fit the padded input {h + 2 * ph}x{w + 2 * pw} "
            f"(input {fmt_shape(x)}): output size would be {oh}x{ow}",
            "use a smaller kernel or stride, more padding, or a larger input",
        )
    return oh, ow


def _conv(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    oh, ow = _window(attrs, x, "conv")
    cin, cout, groups = int(x.shape[1]), attr_int(attrs, "out_channels"), attr_int(attrs, "groups")
    if cout < 1 or groups < 1:
        raise ShapeError(f"conv: out_channels ({cout}) and groups ({groups}) must be >= 1")
    for what, c in (("input", cin), ("output", cout)):
        if c % groups:
            raise ShapeError(
                f"conv: groups={groups} does not divide the {what} channels ({c})",
                f"divisors of {c} near {groups}: {_near_divisors(c, groups)}",
            )
    kh, kw = attr_pair(attrs, "kernel")
    params = [ParamDecl("weight", (cout, cin // groups, kh, kw))]
    if attrs["bias"]:
        params.append(ParamDecl("bias", (cout,)))
    return _checked((x.shape[0], cout, oh, ow), x.dtype), tuple(params)


def _near_divisors(c: int, g: int) -> str:
    # NOTE: divisors come in pairs (d, c // d): trial division to sqrt(c) stays fast for any c.
    small = [d for d in range(1, math.isqrt(c) + 1) if c % d == 0]
    divs = sorted({*small, *(c // d for d in small)}, key=lambda d: (abs(d - g), d))
    return ", ".join(map(str, sorted(divs[:3])))


def _linear(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    if len(x.shape) < 2:
        raise ShapeError("linear expects at least one feature dimension")
    if len(x.shape) > 2 and not attrs.get("last_dim", False):
        raise ShapeError(
            f"linear expects a [features] input, got {fmt_shape(x)}",
            "insert flatten (or global_avgpool -> flatten) before the linear layer, or write "
            "linear(..., last_dim: true) to apply it at every position (channels-last)",
        )
    fin, fout = int(x.shape[-1]), attr_int(attrs, "out_features")
    params = [ParamDecl("weight", (fout, fin))]
    if attrs["bias"]:
        params.append(ParamDecl("bias", (fout,)))
    return _checked((*x.shape[:-1], fout), x.dtype), tuple(params)


def _batch_norm(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    if len(x.shape) not in (2, 4):
        raise ShapeError(f"bn expects a [C, H, W] or [features] input, got {fmt_shape(x)}")
    c = int(x.shape[1])
    params = [ParamDecl("weight", (c,)), ParamDecl("bias", (c,))] if attrs["affine"] else []
    params += [ParamDecl("running_mean", (c,), False), ParamDecl("running_var", (c,), False)]
    return x, tuple(params)


def _same(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    return xs[0], ()


def _spatial_same(
    attrs: Attrs, xs: Sequence[TensorType]
) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    _rank(xs[0], 4, "lrn")
    return xs[0], ()


def _layer_norm(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    axis = attr_int(attrs, "axis")
    if (axis == 1 and len(x.shape) != 4) or (axis == -1 and len(x.shape) < 2):
        raise ShapeError(
            f"layer_norm over axis {axis} expects a [C, H, W] input, got {fmt_shape(x)}",
            "axis 1 normalises the channels of an NCHW tensor; axis -1 the last dimension",
        )
    c = int(x.shape[axis])
    params = [ParamDecl("weight", (c,)), ParamDecl("bias", (c,))] if attrs["affine"] else []
    return x, tuple(params)


def _layer_scale(
    attrs: Attrs, xs: Sequence[TensorType]
) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "layer_scale")
    c = int(x.shape[1])
    # NOTE: the parameter is named "" so its key is the node's own name: torchvision keeps
    # ConvNeXt's layer_scale (and timm its gamma) directly on the block module.
    return x, (ParamDecl("", (c,) if attrs["flat"] else (c, 1, 1)),)


def _permute(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    dims = attr_ints(attrs, "dims")
    if sorted(dims) != list(range(len(x.shape))) or dims[0] != 0:
        raise ShapeError(
            f"permute: dims {list(dims)} are not a permutation of the {len(x.shape)} axes of "
            f"{fmt_shape(x)} that keeps the batch (axis 0) first",
            "e.g. permute([0, 2, 3, 1]) for NCHW -> NHWC, permute([0, 3, 1, 2]) back",
        )
    return TensorType(tuple(x.shape[d] for d in dims), x.dtype), ()


def _pool(op: str) -> Rule:
    def rule(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
        return _pool_shape(op, attrs, xs[0])

    return rule


def _pool_shape(op: str, attrs: Attrs, x: TensorType) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    kh, kw = attr_pair(attrs, "kernel")
    ph, pw = attr_pair(attrs, "padding")
    if 2 * ph > kh or 2 * pw > kw:
        raise ShapeError(
            f"{op}: padding {ph}x{pw} is more than half the kernel {kh}x{kw}",
            "PyTorch requires padding <= kernel // 2 for pooling",
        )
    oh, ow = _window(attrs, x, op)
    return _checked((x.shape[0], x.shape[1], oh, ow), x.dtype), ()


def _adaptive(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "adaptive_avgpool")
    oh, ow = attr_pair(attrs, "output")
    return _checked((x.shape[0], x.shape[1], oh, ow), x.dtype), ()


def _pad(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "pad")
    left, right, top, bottom = attr_ints(attrs, "pads")
    _, c, h, w = x.shape
    oh, ow = int(h) + top + bottom, int(w) + left + right
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"pad: pads {[left, right, top, bottom]} (left, right, top, bottom) crop the input "
            f"{fmt_shape(x)} to nothing ({oh}x{ow})",
            "a negative pad removes that many rows or columns; keep at least one",
        )
    return _checked((x.shape[0], c, oh, ow), x.dtype), ()


def _upsample(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "upsample")
    if "size" in attrs:
        oh, ow = attr_pair(attrs, "size")
        if oh < 1 or ow < 1:
            raise ShapeError(f"upsample: size {oh}x{ow} must be >= 1", None)
        return _checked((x.shape[0], x.shape[1], oh, ow), x.dtype), ()
    sh, sw = attr_pair(attrs, "scale")
    if sh < 1 or sw < 1:
        raise ShapeError(
            f"upsample: scale {sh}x{sw} must be >= 1",
            "upsample makes a map scale times larger; to shrink, use a pool or a stride",
        )
    _, c, h, w = x.shape
    return _checked((x.shape[0], c, int(h) * sh, int(w) * sw), x.dtype), ()


def _global(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "global_avgpool")
    return TensorType((x.shape[0], x.shape[1], 1, 1), x.dtype), ()


def _add(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    a, b = xs
    if a.shape != b.shape:
        raise ShapeError(
            f"add: {fmt_shape(a)} vs {fmt_shape(b)}",
            "a residual connection needs a projection (1x1 conv, matching stride) "
            "when channels or spatial size change",
        )
    return a, ()


def _mul(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    a, b = xs
    out: list[Dim] = [a.shape[0]]
    if len(a.shape) == len(b.shape) and a.shape[0] == b.shape[0]:
        for da, db in zip(a.shape[1:], b.shape[1:], strict=False):
            if da == db or db == 1 or da == 1:
                out.append(da if db == 1 else db)
            else:
                break
        else:
            return TensorType(tuple(out), a.dtype), ()
    raise ShapeError(
        f"mul: {fmt_shape(a)} vs {fmt_shape(b)} do not broadcast",
        "scaling by channel (squeeze-excitation) needs a [C, 1, 1] gate",
    )


def _concat(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    axis = attr_int(attrs, "axis")
    first = xs[0]
    if not 1 <= axis < len(first.shape):
        raise ShapeError(f"concat: axis {axis} out of range for {fmt_shape(first)}")
    total = 0
    for x in xs:
        same_rank = len(x.shape) == len(first.shape)
        if not same_rank or any(
            i != axis and da != db
            for i, (da, db) in enumerate(zip(x.shape, first.shape, strict=False))
        ):
            raise ShapeError(
                f"concat: {fmt_shape(first)} vs {fmt_shape(x)} differ outside axis {axis}",
                "branches of a concatenation must keep the same spatial size",
            )
        total += int(x.shape[axis])
    shape = list(first.shape)
    shape[axis] = total
    return _checked(tuple(shape), first.dtype), ()


def _split(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    axis, index = attr_int(attrs, "axis"), attr_int(attrs, "index")
    sizes = attr_ints(attrs, "sizes")
    if not 1 <= axis < len(x.shape):
        raise ShapeError(f"split: axis {axis} out of range for {fmt_shape(x)}")
    if sum(sizes) != x.shape[axis] or min(sizes) < 1:
        raise ShapeError(
            f"split: sizes {list(sizes)} do not add up to {x.shape[axis]} (axis {axis} of "
            f"{fmt_shape(x)})",
            "give a number of equal parts that divides the axis, or sizes that add up to it",
        )
    shape = list(x.shape)
    shape[axis] = sizes[index]
    return TensorType(tuple(shape), x.dtype), ()


def _shuffle(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    _rank(x, 4, "channel_shuffle")
    g = attr_int(attrs, "groups")
    if g < 1 or int(x.shape[1]) % g:
        raise ShapeError(
            f"channel_shuffle: groups={g} does not divide the channels ({x.shape[1]})",
            f"divisors of {x.shape[1]} near {g}: {_near_divisors(int(x.shape[1]), g)}",
        )
    return x, ()


def _flatten(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    start = attr_int(attrs, "start_dim")
    if not 1 <= start < len(x.shape):
        raise ShapeError(f"flatten: start_dim {start} out of range for {fmt_shape(x)}")
    # Dimensions after the batch are always concrete (see _checked).
    numel = math.prod(cast("tuple[int, ...]", x.shape[start:]))
    return TensorType((*x.shape[:start], numel), x.dtype), ()


def _reshape(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    want = attr_ints(attrs, "shape")
    total = x.sample_numel
    known = math.prod(d for d in want if d != -1)
    if list(want).count(-1) > 1 or known < 1 or any(d < -1 or d == 0 for d in want):
        raise ShapeError(f"reshape: invalid target {list(want)} (at most one -1, others >= 1)")
    if -1 in want:
        if total % known:
            raise ShapeError(
                f"reshape: {fmt_shape(x)} ({total} elements) cannot be viewed as {list(want)}: "
                f"{total} is not a multiple of {known}"
            )
        want = tuple(total // known if d == -1 else d for d in want)
    if math.prod(want) != total:
        raise ShapeError(
            f"reshape: {fmt_shape(x)} ({total} elements) vs {list(want)} ({math.prod(want)})"
        )
    return TensorType((x.shape[0], *want), x.dtype), ()


def _softmax(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    (x,) = xs
    axis = attr_int(attrs, "axis")
    if not 1 <= axis < len(x.shape):
        raise ShapeError(f"softmax: axis {axis} out of range for {fmt_shape(x)}")
    return x, ()


def _input(attrs: Attrs, xs: Sequence[TensorType]) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    shape = attr_ints(attrs, "shape")
    batch = cast(Dim, attrs["batch"])
    return _checked((batch, *shape), str(attrs.get("dtype", "float32"))), ()


SHAPE_RULES: dict[Op, Rule] = {
    Op.INPUT: _input,
    Op.CONV2D: _conv,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _batch_norm,
    Op.LRN: _spatial_same,
    **{op: _same for op in GroupOp.ACTIVATION},
    Op.MAX_POOL: _pool("maxpool"),
    Op.AVG_POOL: _pool("avgpool"),
    Op.ADAPTIVE_AVG_POOL: _adaptive,
    Op.GLOBAL_AVG_POOL: _global,
    Op.PAD: _pad,
    Op.UPSAMPLE: _upsample,
    Op.DROPOUT: _same,
    Op.DROP_PATH: _same,
    Op.ADD: _add,
    Op.MUL: _mul,
    Op.CONCAT: _concat,
    Op.SPLIT: _split,
    Op.CHANNEL_SHUFFLE: _shuffle,
    Op.FLATTEN: _flatten,
    Op.RESHAPE: _reshape,
    Op.PERMUTE: _permute,
    Op.LAYER_NORM: _layer_norm,
    Op.LAYER_SCALE: _layer_scale,
    Op.SCALE: _same,
    Op.SOFTMAX: _softmax,
    Op.IDENTITY: _same,
}


def infer_node(
    op: Op, attrs: Attrs, inputs: Sequence[TensorType]
) -> tuple[TensorType, tuple[ParamDecl, ...]]:
    """Output type and parameter declarations of ``op`` applied to ``inputs``."""
    n = arity(op)
    if n is not None and len(inputs) != n:
        raise ShapeError(f"{op} takes {n} input(s), got {len(inputs)}")
    if n is None and not inputs:
        raise ShapeError(f"{op} needs at least one input")
    batches = {x.shape[0] for x in inputs}
    if len(batches) > 1:
        raise ShapeError(f"{op}: inputs have different batch sizes {sorted(map(str, batches))}")
    return SHAPE_RULES[op](attrs, inputs)
