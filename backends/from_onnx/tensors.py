"""Handlers of the ops that select, join or view activations.

Concat -> concat; Split, Slice and SplitToSequence/SequenceAt (``chunk``) -> split nodes;
Reshape, Flatten, Squeeze, Unsqueeze -> flatten or reshape (nothing when the shape is kept);
Reshape [N, g, C/g, H, W] -> Transpose (0, 2, 1, 3, 4) -> Reshape [N, C, H, W] ->
channel_shuffle; Reshape [-1] -> Gather of every element in order (the dynamo exporter's
``as_strided``) -> a view; Transpose -> LayerNormalization (last axis) -> Transpose back ->
layer_norm over the channels; Dropout, Identity and Cast to the model's own float type -> nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.importer import (
    PATTERN_HINT,
    Handler,
    Importer,
    axes_arg,
    slice_args,
)
from graphcnn.backends.from_onnx.values import BATCH, Const, Pending, Seq, Sym, Tensor, has_sym
from graphcnn.ir import AttrValue, Op, TensorType
from graphcnn.types import attr_ints

if TYPE_CHECKING:
    import onnx


def _h_identity(imp: Importer, n: onnx.NodeProto) -> None:
    if n.op_type == "Dropout" and not imp.unused(n, 1):
        raise imp.fail(n, "the dropout mask (second output) is not supported")
    v = imp.value(n, 0)
    assert v is not None
    imp.set(n, v)


def _h_cast(imp: Importer, n: onnx.NodeProto) -> None:
    from onnx import helper

    x = imp.tensor(n)
    if n.op_type == "CastLike":
        c = imp.value(n, 1)
        if isinstance(c, Tensor):
            target = imp.type(c.ir).dtype
        elif isinstance(c, Const):
            target = str(c.value.dtype)
        else:
            raise imp.fail(n, "unsupported CastLike target")
    else:
        target = str(helper.tensor_dtype_to_np_dtype(int(imp.attrs(n)["to"])))
    if target != imp.type(x).dtype:
        raise imp.fail(n, f"cast of a {imp.type(x).dtype} activation to {target} is not supported")
    imp.set(n, Tensor(x))


def _h_concat(imp: Importer, n: onnx.NodeProto) -> None:
    xs = [imp.tensor(n, i) for i in range(len(n.input)) if n.input[i]]
    rank = len(imp.type(xs[0]).shape)
    axis = int(imp.attrs(n)["axis"]) % rank
    if len(xs) == 1:
        imp.set(n, Tensor(xs[0]))
        return
    imp.set(n, Tensor(imp.emit(n, Op.CONCAT, xs, {"axis": axis})))


def _split_node(imp: Importer, n: onnx.NodeProto, x: str, axis: int, start: int, stop: int) -> str:
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


def _split_axis(
    imp: Importer, n: onnx.NodeProto, t: TensorType, a: dict[str, Any]
) -> tuple[int, int]:
    """The axis a Split cuts and its size; the batch axis (symbolic) cannot be split."""
    axis = int(a.get("axis", 0)) % len(t.shape)
    if axis == 0 or not isinstance(t.shape[axis], int):
        raise imp.fail(
            n, f"splitting axis {axis} of {list(t.shape)}: only per-sample axes can be split"
        )
    return axis, int(t.shape[axis])


def _h_split(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    a = imp.attrs(n)
    axis, size = _split_axis(imp, n, t, a)
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
            imp.set(n, Tensor(_split_node(imp, n, x, axis, start, start + s)), i)
        start += s


def _split_sizes(
    imp: Importer, n: onnx.NodeProto, size: int, given: list[int] | None, parts: int
) -> list[int]:
    if given is None:
        chunk = -(-size // parts)
        return [min(chunk, size - i * chunk) for i in range(parts)]
    return given


def _h_split_to_sequence(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    a = imp.attrs(n)
    axis, size = _split_axis(imp, n, t, a)
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
    imp.set(n, Seq(tuple(items), n.name))


def _h_sequence_at(imp: Importer, n: onnx.NodeProto) -> None:
    seq = imp.value(n, 0)
    if not isinstance(seq, Seq):
        raise imp.fail(n, "only sequences made by SplitToSequence are supported")
    pos = imp.ints(n, imp.const(n, 1, "position"), "position")[0]
    if not -len(seq.items) <= pos < len(seq.items):
        raise imp.fail(n, f"position {pos} is out of range for {len(seq.items)} items")
    imp.set(n, Tensor(seq.items[pos]))


def _h_slice(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    arrays: list[Any] = [None]
    for i in range(1, len(n.input)):
        c = imp.opt_const(n, i, "slice bounds")
        arrays.append(None if c is None else c.value)
    starts, ends, axes, steps = slice_args(imp, n, arrays, len(t.shape))
    shape = [int(d) if not isinstance(d, str) else 1 for d in t.shape]
    for ax, s, e, st in zip(axes, starts, ends, steps, strict=False):
        r = range(shape[ax])[slice(s, e, st)]
        if len(r) == shape[ax] and (len(r) < 2 or r.step == 1):
            continue  # the whole axis (a symbolic batch counts as size 1 here)
        if st != 1 or ax == 0:
            raise imp.fail(n, f"only a contiguous slice of a non-batch axis is supported "
                           f"(axis {ax}, step {st})")  # fmt: skip
        x = _split_node(imp, n, x, ax, r.start, r.stop)
    imp.set(n, Tensor(x))


def _h_reshape(imp: Importer, n: onnx.NodeProto) -> None:
    v = imp.value(n, 0)
    target_c = imp.const(n, 1, "the target shape")
    target: list[Any] = list(target_c.value.reshape(-1))
    if not imp.attrs(n).get("allowzero", 0):
        # 0 copies the input's dimension (of a pending pattern only the batch is known)
        src: list[Any] = list(imp.type(v.ir).shape) if isinstance(v, Tensor) else [imp.batch]
        if any(isinstance(d, int) and d == 0 and i >= len(src) for i, d in enumerate(target)):
            raise imp.fail(n, f"reshape target {target} copies a dimension the input lacks")
        target = [
            (BATCH if isinstance(src[i], str) else src[i])
            if not isinstance(d, Sym) and d == 0
            else d
            for i, d in enumerate(target)
        ]
    target = [d if isinstance(d, Sym) else int(d) for d in target]
    if isinstance(v, Pending):
        if v.kind == "shuffle":
            base = imp.type(v.base)
            if imp.batch_kept(n, v.base, target) == list(base.sample_shape):
                ir = imp.emit(n, Op.CHANNEL_SHUFFLE, [v.base], {"groups": int(v.value)})
                imp.set(n, Tensor(ir))
                return
        raise imp.fail(n, f"reshape of a {v.op_type} result is not supported", PATTERN_HINT)
    if target == [-1] and isinstance(imp.batch, int) and isinstance(v, Tensor):
        # the whole tensor, batch included, as one vector: only as the dynamo exporter's
        # as_strided (a Gather of every element in order, below) reads it
        imp.set(n, Pending("flat", v.ir, "Reshape", n.name))
        return
    x = imp.tensor(n)
    imp.set(n, Tensor(imp.view(n, x, imp.batch_kept(n, x, target))))


def _h_gather(imp: Importer, n: onnx.NodeProto) -> None:
    """Reshape [-1] -> Gather(indices 0, 1, ... in order) of a static batch: what the dynamo
    exporter writes for ``as_strided`` with contiguous strides (torchvision's ConvNeXt after
    its adaptive pool) -> a view of ``x`` with the indices' shape."""
    import numpy as np

    v = imp.value(n, 0)
    idx = imp.const(n, 1, "the indices")
    axis = int(imp.attrs(n).get("axis", 0))
    if isinstance(v, Pending) and v.kind == "flat" and axis == 0 and not has_sym(idx.value):
        t = imp.type(v.base)
        total = t.sample_numel * int(imp.batch)
        flat = idx.value.reshape(-1)
        shape = idx.value.shape
        if (
            flat.size == total
            and bool((flat == np.arange(total)).all())
            and len(shape) > 1
            and shape[0] == imp.batch
        ):
            imp.set(n, Tensor(imp.view(n, v.base, [int(d) for d in shape[1:]])))
            return
    raise imp.fail(
        n,
        "Gather of an activation has no IR counterpart (only the in-order gather of a "
        "flattened tensor that the dynamo exporter writes for as_strided)",
        "index with a slice (x[:, a:b]) instead of a tensor of indices",
    )


def _h_flatten(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    axis = int(imp.attrs(n).get("axis", 1)) % (len(t.shape) + 1)
    lead = math.prod(int(d) for d in t.shape[1:axis])
    if axis == 0 or lead != 1:
        raise imp.fail(n, f"Flatten(axis={axis}) of {list(t.shape)} merges the batch dimension")
    imp.set(n, Tensor(imp.view(n, x, [t.sample_numel])))


def _h_squeeze(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    c = imp.opt_const(n, 1, "axes")
    axes = axes_arg(imp, n, [None, None if c is None else c.value])
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
    imp.set(n, Tensor(imp.view(n, x, [int(d) for d in new[1:]])))


def _h_transpose(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    t = imp.type(x)
    perm = list(imp.attrs(n).get("perm", reversed(range(len(t.shape)))))
    if perm == list(range(len(t.shape))):
        imp.set(n, Tensor(x))
        return
    src = imp.g[x]
    if (
        src.op is Op.RESHAPE
        and perm == [0, 2, 1, 3, 4]
        and len(t.shape) == 5
        and len(imp.type(src.inputs[0]).shape) == 4
        and t.shape[3:] == imp.type(src.inputs[0]).shape[2:]
    ):
        imp.set(n, Pending("shuffle", src.inputs[0], "Transpose", n.name, int(t.shape[1])))
        return
    if perm == [0, 3, 1, 2] and _channels_layer_norm(imp, n, x):
        return
    if perm[0] == 0:  # keeps the batch first: a permute (NCHW <-> NHWC, ...)
        imp.set(n, Tensor(imp.emit(n, Op.PERMUTE, [x], {"dims": tuple(int(d) for d in perm)})))
        return
    raise imp.fail(
        n,
        f"Transpose(perm={perm}) of {list(t.shape)} moves the batch dimension",
        "only transposes that keep the batch (axis 0) first are supported",
    )


def _channels_layer_norm(imp: Importer, n: onnx.NodeProto, x: str) -> bool:
    """Transpose (0, 2, 3, 1) -> LayerNormalization over the last axis -> Transpose (0, 3, 1,
    2), as to_onnx writes layer_norm over the channels of NCHW: one ``layer_norm(axis: 1)``
    (the channels-last nodes it replaces are left dead, unless something else reads them)."""
    ln = imp.g[x]
    if ln.op is not Op.LAYER_NORM or imp.uses[n.input[0]] != 1:
        return False
    src = imp.g[ln.inputs[0]]
    if src.op is not Op.PERMUTE or attr_ints(src.attrs, "dims") != (0, 2, 3, 1):
        return False
    params = {p.name: imp.params[(ln.name, p.name)] for p in ln.params}
    stem = imp.hints[ln.name].param
    attrs = dict(ln.attrs, axis=1)
    ir = imp.emit(n, Op.LAYER_NORM, [src.inputs[0]], attrs, params, stem and f"{stem}.weight")
    imp.set(n, Tensor(ir))
    return True


TENSOR_HANDLERS: dict[str, Handler] = {
    "Dropout": _h_identity,
    "Identity": _h_identity,
    "Cast": _h_cast,
    "CastLike": _h_cast,
    "Concat": _h_concat,
    "Split": _h_split,
    "Slice": _h_slice,
    "SplitToSequence": _h_split_to_sequence,
    "SequenceAt": _h_sequence_at,
    "Reshape": _h_reshape,
    "Flatten": _h_flatten,
    "Squeeze": _h_squeeze,
    "Unsqueeze": _h_squeeze,
    "Transpose": _h_transpose,
    "Gather": _h_gather,
}
"""Ops that select, join or view activations (and no-ops)."""
