"""Handlers of the ONNX ops that are IR layers: conv, linear, norms, activations, pools.

Conv (2-D; ``auto_pad`` resolved; asymmetric pads: a pad node first) -> conv2d; Gemm (any
``transB``, ``alpha`` and ``beta`` folded into the weights) and MatMul -> linear (a MatMul of a
rank > 2 activation: ``linear(last_dim: true)``); BatchNormalization -> batch_norm;
LayerNormalization over the last axis -> layer_norm; LRN -> lrn; Relu, Sigmoid, HardSwish, Gelu
(exact or tanh), LeakyRelu -> themselves (Tanh: :mod:`.elementwise`, as it may be part of the
tanh gelu); Clip(0, 6) -> relu6 (Clip(0, inf) -> relu); MaxPool (asymmetric pads: a pad node of -inf
first), AveragePool (asymmetric pads that count as zeros: a pad node of zeros first),
GlobalAveragePool, ReduceMean over (2, 3) -> pools; Softmax -> softmax.
A bias-less conv or linear is recorded in ``Importer.biasable`` so that a following constant
Add becomes its bias (:mod:`.elementwise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphcnn.backends.from_onnx.importer import Handler, Importer, axes_arg
from graphcnn.backends.from_onnx.values import Const, Tensor
from graphcnn.ir import AttrValue, Op

if TYPE_CHECKING:
    import numpy as np
    import onnx


def _pads(imp: Importer, n: onnx.NodeProto, x: str, kernel: Sequence[int]) -> tuple[int, int]:
    """Symmetric (h, w) padding from ``pads``/``auto_pad``; asymmetric padding is an error."""
    return _padded(imp, n, x, kernel, None)[1]


def _padded(
    imp: Importer, n: onnx.NodeProto, x: str, kernel: Sequence[int], fill: float | None
) -> tuple[str, tuple[int, int]]:
    """The window's input and its symmetric (h, w) padding from ``pads``/``auto_pad``: asymmetric
    padding becomes a pad node filled with ``fill`` (an error where ``fill`` is None)."""
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
    if fill is not None and (pads[0] != pads[2] or pads[1] != pads[3]):
        # e.g. TF "same" padding of a stride-2 conv, which the dynamo exporter's optimizer
        # moves from timm's Conv2dSame (pad, then conv) into the Conv: the pad again
        sides = (int(pads[1]), int(pads[3]), int(pads[0]), int(pads[2]))
        attrs: dict[str, AttrValue] = {"pads": sides, "value": fill}
        return imp.emit(n, Op.PAD, [x], attrs), (0, 0)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise imp.fail(
            n,
            f"asymmetric padding {pads} (top, left, bottom, right) is not supported: the IR "
            "pads both sides of an axis equally",
            "export with symmetric padding (PyTorch's padding=k//2 style), or pad the input "
            "to a size where SAME padding is symmetric",
        )
    return x, (int(pads[0]), int(pads[1]))


def _pair(n: onnx.NodeProto, imp: Importer, v: Sequence[int], what: str) -> tuple[int, int]:
    if len(v) != 2:
        raise imp.fail(n, f"only 2-D windows are supported ({what} {list(v)})")
    return int(v[0]), int(v[1])


def _rank4(imp: Importer, n: onnx.NodeProto, x: str) -> None:
    if len(imp.type(x).shape) != 4:
        raise imp.fail(n, f"expects an [N, C, H, W] activation, got {list(imp.type(x).shape)}")


def _bias(imp: Importer, c: Const | None) -> np.ndarray[Any, Any] | None:
    """A bias, or None when there is none or it is a computed all-zero placeholder."""
    if c is None:
        return None
    if not c.name.endswith("bias") and not c.value.any():
        return None
    return c.value


def _h_conv(imp: Importer, n: onnx.NodeProto) -> None:
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
    x, padding = _padded(imp, n, x, kernel, 0.0)
    attrs: dict[str, AttrValue] = {
        "out_channels": int(w.value.shape[0]),
        "kernel": kernel,
        "stride": _pair(n, imp, a.get("strides", [1, 1]), "strides"),
        "padding": padding,
        "dilation": _pair(n, imp, a.get("dilations", [1, 1]), "dilations"),
        "groups": int(a.get("group", 1)),
        "bias": b is not None,
    }
    ir = imp.emit(n, Op.CONV2D, [x], attrs, params, w.name)
    if b is None:
        imp.biasable[n.output[0]] = ir
    imp.set(n, Tensor(ir))


def _linear(
    imp: Importer, n: onnx.NodeProto, x: str, w: np.ndarray[Any, Any], b: Any, wname: str
) -> None:
    rank = len(imp.type(x).shape)
    if rank != 2 and n.op_type != "MatMul":
        raise imp.fail(n, f"expects an [N, features] activation, got {list(imp.type(x).shape)}")
    params = {"weight": w}
    if b is not None:
        import numpy as np

        params["bias"] = np.broadcast_to(b, (w.shape[0],)).copy() if b.size == 1 else b.reshape(-1)
    attrs: dict[str, AttrValue] = {"out_features": int(w.shape[0]), "bias": b is not None}
    if rank > 2:  # the same map at every position (channels-last)
        attrs["last_dim"] = True
    ir = imp.emit(n, Op.LINEAR, [x], attrs, params, wname)
    if b is None:
        imp.biasable[n.output[0]] = ir
    imp.set(n, Tensor(ir))


def _h_gemm(imp: Importer, n: onnx.NodeProto) -> None:
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


def _h_matmul(imp: Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    x = imp.tensor(n)
    wc = imp.const(n, 1, "the weight (second operand)")
    if wc.value.ndim != 2:
        raise imp.fail(n, f"only a 2-D constant weight is supported, got {list(wc.value.shape)}")
    _linear(imp, n, x, np.ascontiguousarray(wc.value.T), None, wc.name)


def _h_batch_norm(imp: Importer, n: onnx.NodeProto) -> None:
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
    imp.set(n, Tensor(imp.emit(n, Op.BATCH_NORM, [x], attrs, params, name)))


def _h_lrn(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    attrs: dict[str, AttrValue] = {
        "size": int(a["size"]),
        "alpha": _f32(a.get("alpha", 1e-4)),
        "beta": _f32(a.get("beta", 0.75)),
        "k": _f32(a.get("bias", 1.0)),
    }
    imp.set(n, Tensor(imp.emit(n, Op.LRN, [imp.tensor(n)], attrs)))


def _f32(v: float) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (1e-4, not 9.99e-05)."""
    import numpy as np

    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def _unary(op: Op) -> Handler:
    def handle(imp: Importer, n: onnx.NodeProto) -> None:
        imp.set(n, Tensor(imp.emit(n, op, [imp.tensor(n)], {})))

    return handle


def _h_gelu(imp: Importer, n: onnx.NodeProto) -> None:
    approx = imp.attrs(n).get("approximate", b"none")
    approx = approx.decode() if isinstance(approx, bytes) else approx
    if approx not in ("none", "tanh"):
        raise imp.fail(n, f"Gelu approximate={approx!r} is neither 'none' nor 'tanh'")
    attrs: dict[str, AttrValue] = {"approximate": "tanh"} if approx == "tanh" else {}
    imp.set(n, Tensor(imp.emit(n, Op.GELU, [imp.tensor(n)], attrs)))


def _h_layer_norm(imp: Importer, n: onnx.NodeProto) -> None:
    import numpy as np

    x = imp.tensor(n)
    t = imp.type(x)
    a = imp.attrs(n)
    if int(a.get("axis", -1)) not in (-1, len(t.shape) - 1):
        raise imp.fail(
            n,
            f"LayerNormalization over axes {a.get('axis')}.. of {list(t.shape)}: only the last "
            "axis is supported",
            "normalise the channels as Transpose -> LayerNormalization(axis=-1) -> Transpose",
        )
    if any(not imp.unused(n, i) for i in (1, 2)):
        raise imp.fail(n, "LayerNormalization's mean and inverse std outputs are not supported")
    scale = imp.const(n, 1, "the scale")
    bias = imp.opt_const(n, 2, "the bias")
    c = int(t.shape[-1])
    b = bias.value if bias is not None else np.zeros(c, scale.value.dtype)
    if scale.value.size != c or b.size != c:
        raise imp.fail(n, f"scale and bias must have {c} elements (one per feature)")
    # the placeholders to_onnx writes for layer_norm(affine: false): ones and zeros, unnamed
    plain = not scale.name.endswith("weight") and (scale.value == 1).all() and not b.any()
    attrs: dict[str, AttrValue] = {
        "axis": -1,
        "eps": _f32(a.get("epsilon", 1e-5)),
        "affine": not plain,
    }
    params = {} if plain else {"weight": scale.value.reshape(-1), "bias": b.reshape(-1)}
    imp.set(n, Tensor(imp.emit(n, Op.LAYER_NORM, [x], attrs, params, scale.name)))


def _h_leaky_relu(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    slope = _f32(imp.attrs(n).get("alpha", 0.01))
    imp.set(n, Tensor(imp.emit(n, Op.LEAKY_RELU, [x], {"negative_slope": slope})))


def _h_clip(imp: Importer, n: onnx.NodeProto) -> None:
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
    imp.set(n, Tensor(imp.emit(n, op, [x], {})))


def _window_attrs(
    imp: Importer, n: onnx.NodeProto, x: str, fill: float | None = None
) -> tuple[str, dict[str, AttrValue]]:
    a = imp.attrs(n)
    _rank4(imp, n, x)
    kernel = _pair(n, imp, a["kernel_shape"], "kernel")
    x, padding = _padded(imp, n, x, kernel, fill)
    return x, {
        "kernel": kernel,
        "stride": _pair(n, imp, a.get("strides", [1, 1]), "strides"),
        "padding": padding,
        "ceil_mode": bool(a.get("ceil_mode", 0)),
    }


def _h_max_pool(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    if not imp.unused(n, 1):
        raise imp.fail(n, "MaxPool indices (second output) are not supported")
    x, attrs = _window_attrs(imp, n, x, -math.inf)
    attrs["dilation"] = _pair(n, imp, imp.attrs(n).get("dilations", [1, 1]), "dilations")
    imp.set(n, Tensor(imp.emit(n, Op.MAX_POOL, [x], attrs)))


def _h_avg_pool(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    a = imp.attrs(n)
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise imp.fail(n, "dilated average pooling is not supported")
    include = bool(a.get("count_include_pad", 0))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if not include and len(pads) == 4 and (pads[0] != pads[2] or pads[1] != pads[3]):
        raise imp.fail(
            n,
            f"asymmetric padding {pads} (top, left, bottom, right) with count_include_pad=0 is "
            "not supported: the IR's average pool pads both sides of an axis equally, and a "
            "pad node's zeros would be counted",
            "export with symmetric padding, or count_include_pad=True (zeros counted: a pad "
            "node, then the pool)",
        )
    # NOTE: counted zeros: an asymmetric border is a pad node of zeros, then an unpadded pool
    x, attrs = _window_attrs(imp, n, x, 0.0 if include else None)
    attrs["count_include_pad"] = include
    imp.set(n, Tensor(imp.emit(n, Op.AVG_POOL, [x], attrs)))


def _h_global_avg_pool(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    _rank4(imp, n, x)
    imp.set(n, Tensor(imp.emit(n, Op.GLOBAL_AVG_POOL, [x], {})))


def _h_reduce_mean(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    rank = len(imp.type(x).shape)
    c = imp.opt_const(n, 1, "axes")
    axes = axes_arg(imp, n, [None, None if c is None else c.value])
    a = imp.attrs(n)
    if rank != 4 or sorted(ax % rank for ax in axes) != [2, 3]:
        raise imp.fail(n, f"only a mean over the spatial axes (2, 3) is supported, got {axes}")
    ir = imp.emit(n, Op.GLOBAL_AVG_POOL, [x], {})
    if not a.get("keepdims", 1):
        ir = imp.emit(n, Op.FLATTEN, [ir], {"start_dim": 1})
    imp.set(n, Tensor(ir))


def _h_softmax(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.tensor(n)
    rank = len(imp.type(x).shape)
    default = -1 if imp.opset >= 13 else 1
    axis = int(imp.attrs(n).get("axis", default)) % rank
    if imp.opset < 13 and axis != rank - 1:
        raise imp.fail(n, f"Softmax(axis={axis}) before opset 13 normalizes over a flattened "
                       "tail; only the last axis is supported")  # fmt: skip
    imp.set(n, Tensor(imp.emit(n, Op.SOFTMAX, [x], {"axis": axis})))


LAYER_HANDLERS: dict[str, Handler] = {
    "Conv": _h_conv,
    "Gemm": _h_gemm,
    "MatMul": _h_matmul,
    "BatchNormalization": _h_batch_norm,
    "LRN": _h_lrn,
    "Relu": _unary(Op.RELU),
    "Sigmoid": _unary(Op.SIGMOID),
    "HardSwish": _unary(Op.HARDSWISH),
    "Gelu": _h_gelu,
    "LeakyRelu": _h_leaky_relu,
    "LayerNormalization": _h_layer_norm,
    "Clip": _h_clip,
    "MaxPool": _h_max_pool,
    "AveragePool": _h_avg_pool,
    "GlobalAveragePool": _h_global_avg_pool,
    "ReduceMean": _h_reduce_mean,
    "Softmax": _h_softmax,
}
"""Layers with parameters or windows, activations and softmax."""
