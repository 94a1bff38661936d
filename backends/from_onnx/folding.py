"""Constant folding: shape computations (with a symbolic batch) and all-constant nodes.

``torch.onnx.export`` computes reshape targets, split sizes and the like from ``Shape`` of an
activation; :func:`fold_shape` makes that a constant in which a dynamic batch is the symbol
:data:`~.values.BATCH`, and :func:`fold_node` evaluates a node whose inputs are all constant:
with a small numpy folder (``FOLDERS[op_type]``) that carries the symbols through, else with
``onnx.reference`` (a result that would depend on a symbol becomes :data:`~.values.UNKNOWN`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.errors import OnnxImportError
from graphcnn.backends.from_onnx.importer import Importer, axes_arg, slice_args
from graphcnn.backends.from_onnx.values import BATCH, UNKNOWN, Const, Sym, has_sym, normalize

if TYPE_CHECKING:
    import onnx


Folder = Callable[[Importer, "onnx.NodeProto", list[Any]], list[Any]]


def _f_gather(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axis = int(imp.attrs(n).get("axis", 0))
    idx = a[1].astype(np.int64)
    data = a[0]
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take(data, idx, axis=axis)]


def _f_unsqueeze(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axes = axes_arg(imp, n, a)
    out = a[0]
    rank = out.ndim + len(axes)
    for ax in sorted(x % rank for x in axes):
        out = np.expand_dims(out, ax)
    return [out]


def _f_squeeze(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    axes = axes_arg(imp, n, a)
    x = a[0]
    if not axes:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))]


def _f_concat(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
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


def _f_slice(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    x = a[0]
    starts, ends, axes, steps = slice_args(imp, n, a, x.ndim)
    return [x[tuple(_slices(x.shape, starts, ends, axes, steps))]]


def _f_cast(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np
    from onnx import helper

    if n.op_type == "CastLike":
        dtype = a[1].dtype
    else:
        dtype = helper.tensor_dtype_to_np_dtype(int(imp.attrs(n)["to"]))
    x = a[0]
    if has_sym(x):
        if np.issubdtype(dtype, np.integer):
            return [x]
        raise imp.fail(n, "a batch-dependent shape value is cast to a non-integer type")
    return [x.astype(dtype)]


def _arith(op: Callable[[Any, Any], Any]) -> Folder:
    """Elementwise arithmetic on numbers and on shape values holding symbols."""

    def fold(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
        import numpy as np

        x, y = a[0], a[1]
        if x.dtype != object and y.dtype != object:
            return [np.asarray(np.frompyfunc(op, 2, 1)(x, y)).astype(x.dtype)]
        return [np.frompyfunc(op, 2, 1)(x.astype(object), y.astype(object))]

    return fold


def _div(x: Any, y: Any) -> Any:
    """ONNX Div: integer division truncates toward zero."""
    import numpy as np

    if isinstance(x, Sym) or isinstance(y, Sym):
        return UNKNOWN
    if isinstance(x, (int, np.integer)) and isinstance(y, (int, np.integer)):
        q = abs(int(x)) // abs(int(y))
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _f_constant(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
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


def _f_expand(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    import numpy as np

    shape = [int(d) for d in a[1].reshape(-1)]
    x = a[0]
    full = np.broadcast_shapes(x.shape, tuple(shape))
    return [np.broadcast_to(x, full).copy()]


def _f_reshape(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
    x = a[0]
    shape = [int(d) for d in a[1].reshape(-1)]
    if not imp.attrs(n).get("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


def _fold_reference(imp: Importer, n: onnx.NodeProto, a: list[Any]) -> list[Any]:
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


def fold_shape(imp: Importer, n: onnx.NodeProto) -> None:
    """Shape or Size: a constant, with the batch as :data:`BATCH` when it is dynamic."""
    import numpy as np

    v = imp.value(n, 0)
    if isinstance(v, Const):
        dims: list[Any] = list(v.value.shape)
    else:
        dims = [BATCH if isinstance(d, str) else d for d in imp.type(imp.tensor(n)).shape]
    if n.op_type == "Size":
        size = math.prod(dims) if BATCH not in dims else UNKNOWN
        imp.set(n, Const(normalize(np.array(size, dtype=object)), n.output[0]))
        return
    a = imp.attrs(n)
    start, end = a.get("start", 0), a.get("end", len(dims))
    arr = np.empty(len(dims), dtype=object)
    arr[:] = dims
    imp.set(n, Const(normalize(arr[slice(start, end)]), n.output[0]))


def fold_node(imp: Importer, n: onnx.NodeProto, ins: list[Const | None]) -> None:
    """A node whose inputs are all constant: its outputs become constants."""
    import numpy as np

    if n.op_type == "Identity" and ins[0] is not None:
        # an Identity of a parameter keeps the parameter's (output) name: torch's exporter
        # deduplicates equal initializers this way
        imp.set(n, Const(ins[0].value, n.output[0]))
        return
    arrays = [None if c is None else c.value for c in ins]
    try:
        fold = FOLDERS.get(n.op_type)
        if fold is not None and (
            fold is not _fold_reference or not any(a is not None and has_sym(a) for a in arrays)
        ):
            outs = fold(imp, n, arrays)
        elif any(a is not None and has_sym(a) for a in arrays):
            outs = [np.array(UNKNOWN, dtype=object)]
        else:
            outs = _fold_reference(imp, n, arrays)
    except OnnxImportError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy / onnx.reference raise many kinds
        raise imp.fail(n, f"cannot fold this constant computation: {e}") from None
    for i, out in enumerate(outs):
        imp.set(n, Const(normalize(np.asarray(out)), n.output[i]), i)
