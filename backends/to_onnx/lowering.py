"""The ONNX backend's lowering: ``LOWERINGS[op]`` appends the ONNX nodes of one IR node through a
builder, and :func:`to_onnx` assembles the model (inputs, outputs, initializers, opset). Built with
the ``onnx`` package only, imported inside functions; no torch anywhere here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_onnx import spatial
from graphcnn.backends.to_onnx.builder import Builder as _Builder
from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, Node, Op, attr_float, attr_int, attr_ints, attr_pair

if TYPE_CHECKING:
    import numpy as np
    import onnx

DEFAULT_OPSET = 17
OPSETS = (17, 18, 19, 20, 21)


class OnnxError(GraphcnnError):
    """The ONNX backend cannot lower a graph, or a model is invalid."""


Lowering = Callable[[_Builder, Node, list[str]], None]


def _pads(n: Node) -> list[int]:
    ph, pw = attr_pair(n.attrs, "padding")
    return [ph, pw, ph, pw]


def _conv(b: _Builder, n: Node, xs: list[str]) -> None:
    ins = xs + [f"{n.name}.weight"] + ([f"{n.name}.bias"] if n.attrs["bias"] else [])
    b.node(
        "Conv",
        ins,
        [n.name],
        n.name,
        n,
        kernel_shape=list(attr_pair(n.attrs, "kernel")),
        strides=list(attr_pair(n.attrs, "stride")),
        pads=_pads(n),
        dilations=list(attr_pair(n.attrs, "dilation")),
        group=attr_int(n.attrs, "groups"),
    )


def _linear(b: _Builder, n: Node, xs: list[str]) -> None:
    ins = xs + [f"{n.name}.weight"] + ([f"{n.name}.bias"] if n.attrs["bias"] else [])
    if len(n.type.shape) == 2:
        b.node("Gemm", ins, [n.name], n.name, n, transB=1)
        return
    # last_dim: Gemm is 2-D only; x @ W^T (+ b) broadcasts over the leading dimensions
    p = n.name
    b.node("Transpose", [ins[1]], [f"{p}.weight_t"], f"{p}.weight_t", n, perm=[1, 0])
    out = f"{p}.matmul" if n.attrs["bias"] else p
    b.node("MatMul", [xs[0], f"{p}.weight_t"], [out], out, n)
    if n.attrs["bias"]:
        b.node("Add", [out, ins[2]], [p], p, n)


def _layer_norm(b: _Builder, n: Node, xs: list[str]) -> None:
    axis, p = attr_int(n.attrs, "axis"), n.name
    c = int(n.type.shape[axis])
    if n.attrs["affine"]:
        scale, bias = f"{p}.weight", f"{p}.bias"
    else:
        scale = b.const(f"{p}.one", [1.0] * c, "float32")
        bias = b.const(f"{p}.zero", [0.0] * c, "float32")
    eps = attr_float(n.attrs, "eps")
    if axis == -1:
        b.node("LayerNormalization", [xs[0], scale, bias], [p], p, n, axis=-1, epsilon=eps)
        return
    # over the channels of NCHW: to channels-last, normalise the last axis, back
    b.node("Transpose", xs, [f"{p}.nhwc"], f"{p}.nhwc", n, perm=[0, 2, 3, 1])
    b.node("LayerNormalization", [f"{p}.nhwc", scale, bias], [f"{p}.norm"], f"{p}.norm", n,
           axis=-1, epsilon=eps)  # fmt: skip
    b.node("Transpose", [f"{p}.norm"], [p], p, n, perm=[0, 3, 1, 2])


def _layer_scale(b: _Builder, n: Node, xs: list[str]) -> None:
    gamma = initializer_name(n.name, b.graph)
    if n.attrs["flat"]:
        shape = b.const(f"{n.name}.shape4", [1, -1, 1, 1])
        b.node("Reshape", [gamma, shape], [f"{n.name}.c11"], f"{n.name}.c11", n)
        gamma = f"{n.name}.c11"
    b.node("Mul", [xs[0], gamma], [n.name], n.name, n)


def initializer_name(key: str, graph: Graph) -> str:
    """The ONNX initializer of weight ``key``: the key itself, except for a parameter named
    like its node (layer_scale's ``features.1.0.layer_scale``), whose node's output already
    holds that name: ``<key>.value``."""
    return f"{key}.value" if key in graph.nodes else key


def _scale(b: _Builder, n: Node, xs: list[str]) -> None:
    k = b.const(f"{n.name}.factor", [attr_float(n.attrs, "factor")], "float32")
    b.consts[-1].dims[:] = []  # a scalar
    b.node("Div" if n.attrs["divide"] else "Mul", [xs[0], k], [n.name], n.name, n)


def _permute(b: _Builder, n: Node, xs: list[str]) -> None:
    b.node("Transpose", xs, [n.name], n.name, n, perm=list(attr_ints(n.attrs, "dims")))


def _batch_norm(b: _Builder, n: Node, xs: list[str]) -> None:
    c = int(n.type.shape[1])
    if n.attrs["affine"]:
        scale, bias = f"{n.name}.weight", f"{n.name}.bias"
    else:
        scale = b.const(f"{n.name}.one", [1.0] * c, "float32")
        bias = b.const(f"{n.name}.zero", [0.0] * c, "float32")
    b.node(
        "BatchNormalization",
        xs + [scale, bias, f"{n.name}.running_mean", f"{n.name}.running_var"],
        [n.name],
        n.name,
        n,
        epsilon=attr_float(n.attrs, "eps"),
        momentum=1.0 - attr_float(n.attrs, "momentum"),
    )


def _simple(op_type: str) -> Lowering:
    return lambda b, n, xs: b.node(op_type, xs, [n.name], n.name, n)


def _relu6(b: _Builder, n: Node, xs: list[str]) -> None:
    lo = b.const(f"{n.name}.min", [0.0], "float32")
    hi = b.const(f"{n.name}.max", [6.0], "float32")
    b.consts[-2].dims[:] = []  # Clip's bounds are scalars
    b.consts[-1].dims[:] = []
    b.node("Clip", [xs[0], lo, hi], [n.name], n.name, n)


def _silu(b: _Builder, n: Node, xs: list[str]) -> None:
    b.node("Sigmoid", xs, [f"{n.name}.sigmoid"], f"{n.name}.sigmoid", n)
    b.node("Mul", [xs[0], f"{n.name}.sigmoid"], [n.name], n.name, n)


def _gelu(b: _Builder, n: Node, xs: list[str]) -> None:
    tanh = n.attrs.get("approximate", "none") == "tanh"
    if b.opset >= 20:
        extra = {"approximate": "tanh"} if tanh else {}
        b.node("Gelu", xs, [n.name], n.name, n, **extra)
        return
    if tanh:
        _gelu_tanh(b, n, xs)
        return
    # 0.5 * x * (1 + erf(x / sqrt(2))): the exact (non-tanh) form PyTorch uses by default
    c = b.const(f"{n.name}.inv_sqrt2", [1 / math.sqrt(2)], "float32")
    one = b.const(f"{n.name}.one", [1.0], "float32")
    half = b.const(f"{n.name}.half", [0.5], "float32")
    p = n.name
    b.node("Mul", [xs[0], c], [f"{p}.scaled"], f"{p}.scaled", n)
    b.node("Erf", [f"{p}.scaled"], [f"{p}.erf"], f"{p}.erf", n)
    b.node("Add", [f"{p}.erf", one], [f"{p}.erf1"], f"{p}.erf1", n)
    b.node("Mul", [xs[0], f"{p}.erf1"], [f"{p}.prod"], f"{p}.prod", n)
    b.node("Mul", [f"{p}.prod", half], [n.name], n.name, n)


def _gelu_tanh(b: _Builder, n: Node, xs: list[str]) -> None:
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))): PyTorch's approximate='tanh'."""
    p, x = n.name, xs[0]
    k = b.const(f"{p}.sqrt_2_over_pi", [math.sqrt(2 / math.pi)], "float32")
    c = b.const(f"{p}.c", [0.044715], "float32")
    one = b.const(f"{p}.one", [1.0], "float32")
    half = b.const(f"{p}.half", [0.5], "float32")
    steps = [
        ("Mul", [x, x], "x2"),
        ("Mul", [f"{p}.x2", x], "x3"),
        ("Mul", [f"{p}.x3", c], "cx3"),
        ("Add", [x, f"{p}.cx3"], "inner"),
        ("Mul", [f"{p}.inner", k], "scaled"),
        ("Tanh", [f"{p}.scaled"], "tanh"),
        ("Add", [f"{p}.tanh", one], "tanh1"),
        ("Mul", [x, f"{p}.tanh1"], "prod"),
    ]
    for op_type, ins, out in steps:
        b.node(op_type, ins, [f"{p}.{out}"], f"{p}.{out}", n)
    b.node("Mul", [f"{p}.prod", half], [p], p, n)


def _ceil_pads(b: _Builder, n: Node, op_type: str) -> tuple[list[int], int]:
    """Pads and ceil_mode that give PyTorch's output size in ONNX.

    PyTorch drops a last window that would start in the right padding; ONNX Runtime's ceil mode
    keeps it. Where they differ, a max pool is expressed exactly with ceil_mode 0 and just
    enough extra padding at the bottom/right (padding never wins a max); an average pool would
    change its divisor, so that case is refused.
    """
    pads, ceil = _pads(n), int(bool(n.attrs["ceil_mode"]))
    if not ceil:
        return pads, ceil
    src = b.graph[n.inputs[0]].type.shape
    dil = attr_pair(n.attrs, "dilation") if op_type == "MaxPool" else (1, 1)
    extra: list[int] = []
    for axis in (0, 1):
        size, k = int(src[2 + axis]), attr_pair(n.attrs, "kernel")[axis]
        s, p = attr_pair(n.attrs, "stride")[axis], attr_pair(n.attrs, "padding")[axis]
        k_eff, out = dil[axis] * (k - 1) + 1, int(n.type.shape[2 + axis])
        if -(-(size + 2 * p - k_eff) // s) + 1 == out:
            extra.append(p)
            continue
        end = (out - 1) * s + k_eff - size - p
        if op_type != "MaxPool" or end < 0 or (size + p + end - k_eff) // s + 1 != out:
            raise OnnxError(
                f"{n.op} {n.name} ({n.loc}): ceil mode with padding drops a last window in "
                "PyTorch but not in ONNX",
                "use ceil: false, or padding that fits exactly",
            )
        extra.append(end)
    if extra == pads[2:]:
        return pads, ceil
    return [pads[0], pads[1], extra[0], extra[1]], 0


def _pool(op_type: str) -> Lowering:
    def lower(b: _Builder, n: Node, xs: list[str]) -> None:
        pads, ceil = _ceil_pads(b, n, op_type)
        attrs: dict[str, Any] = {
            "kernel_shape": list(attr_pair(n.attrs, "kernel")),
            "strides": list(attr_pair(n.attrs, "stride")),
            "pads": pads,
            "ceil_mode": ceil,
        }
        if op_type == "MaxPool" and attr_pair(n.attrs, "dilation") != (1, 1):
            attrs["dilations"] = list(attr_pair(n.attrs, "dilation"))
        if op_type == "AveragePool":
            attrs["count_include_pad"] = int(bool(n.attrs["count_include_pad"]))
        b.node(op_type, xs, [n.name], n.name, n, **attrs)

    return lower


def _adaptive(b: _Builder, n: Node, xs: list[str]) -> None:
    src = b.graph[n.inputs[0]].type.shape
    h, w = int(src[2]), int(src[3])
    oh, ow = attr_pair(n.attrs, "output")
    if (oh, ow) == (1, 1):
        b.node("GlobalAveragePool", xs, [n.name], n.name, n)
    elif (oh, ow) == (h, w):
        b.node("Identity", xs, [n.name], n.name, n)
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        b.node("AveragePool", xs, [n.name], n.name, n, kernel_shape=k, strides=k)
    else:
        raise OnnxError(
            f"adaptive_avgpool from {h}x{w} to {oh}x{ow} (non-uniform windows) has "
            f"no ONNX lowering yet (node {n.name}, {n.loc})",
            "choose an input size that the output size divides",
        )


def _concat(b: _Builder, n: Node, xs: list[str]) -> None:
    b.node("Concat", xs, [n.name], n.name, n, axis=attr_int(n.attrs, "axis"))


def _split(b: _Builder, n: Node, xs: list[str]) -> None:
    sizes = attr_ints(n.attrs, "sizes")
    index, axis = attr_int(n.attrs, "index"), attr_int(n.attrs, "axis")
    start = sum(sizes[:index])
    ins = [
        xs[0],
        b.const(f"{n.name}.starts", [start]),
        b.const(f"{n.name}.ends", [start + sizes[index]]),
        b.const(f"{n.name}.axes", [axis]),
    ]
    b.node("Slice", ins, [n.name], n.name, n)


def _shuffle(b: _Builder, n: Node, xs: list[str]) -> None:
    _, c, h, w = (int(d) if not isinstance(d, str) else 0 for d in n.type.shape)
    g = attr_int(n.attrs, "groups")
    p = n.name
    b.node(  # a 0 in a Reshape target copies that input dim: the (dynamic) batch stays 'N'
        "Reshape",
        [xs[0], b.const(f"{p}.grouped_shape", [0, g, c // g, h, w])],
        [f"{p}.grouped"],
        f"{p}.grouped",
        n,
    )
    b.node(
        "Transpose",
        [f"{p}.grouped"],
        [f"{p}.transposed"],
        f"{p}.transposed",
        n,
        perm=[0, 2, 1, 3, 4],
    )
    b.node("Reshape", [f"{p}.transposed", b.const(f"{p}.shape", [0, c, h, w])], [n.name], n.name, n)


def _reshape(b: _Builder, n: Node, xs: list[str]) -> None:
    if n.op is Op.FLATTEN and attr_int(n.attrs, "start_dim") == 1:
        b.node("Flatten", xs, [n.name], n.name, n, axis=1)
        return
    dims = [0] + [int(d) for d in n.type.shape[1:]]  # 0 keeps the (dynamic) batch
    b.node("Reshape", [xs[0], b.const(f"{n.name}.shape", dims)], [n.name], n.name, n)


def _softmax(b: _Builder, n: Node, xs: list[str]) -> None:
    b.node("Softmax", xs, [n.name], n.name, n, axis=attr_int(n.attrs, "axis"))


def _lrn(b: _Builder, n: Node, xs: list[str]) -> None:
    if attr_int(n.attrs, "size") % 2 == 0:
        raise OnnxError(
            f"lrn {n.name} ({n.loc}) has an even size: ONNX's LRN needs an odd "
            "window (and centres it differently from PyTorch for even sizes)",
            "use an odd size, as AlexNet's 5",
        )
    b.node(
        "LRN",
        xs,
        [n.name],
        n.name,
        n,
        size=attr_int(n.attrs, "size"),
        alpha=attr_float(n.attrs, "alpha"),
        beta=attr_float(n.attrs, "beta"),
        bias=attr_float(n.attrs, "k"),
    )


def _input(b: _Builder, n: Node, xs: list[str]) -> None:
    raise OnnxError("graph inputs are not nodes")  # pragma: no cover - handled by to_onnx


LOWERINGS: dict[Op, Lowering] = {
    Op.INPUT: _input,
    Op.CONV2D: _conv,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _batch_norm,
    Op.LRN: _lrn,
    Op.RELU: _simple("Relu"),
    Op.RELU6: _relu6,
    Op.SIGMOID: _simple("Sigmoid"),
    Op.TANH: _simple("Tanh"),
    Op.SILU: _silu,
    Op.HARDSWISH: _simple("HardSwish"),
    Op.HARDSIGMOID: lambda b, n, xs: b.node(
        "HardSigmoid", xs, [n.name], n.name, n, alpha=1 / 6, beta=0.5
    ),
    Op.GELU: _gelu,
    Op.LEAKY_RELU: lambda b, n, xs: b.node(
        "LeakyRelu", xs, [n.name], n.name, n, alpha=attr_float(n.attrs, "negative_slope")
    ),
    Op.LAYER_NORM: _layer_norm,
    Op.LAYER_SCALE: _layer_scale,
    Op.SCALE: _scale,
    Op.PERMUTE: _permute,
    Op.MAX_POOL: _pool("MaxPool"),
    Op.AVG_POOL: _pool("AveragePool"),
    Op.ADAPTIVE_AVG_POOL: _adaptive,
    Op.GLOBAL_AVG_POOL: _simple("GlobalAveragePool"),
    Op.PAD: spatial.pad,
    Op.UPSAMPLE: spatial.upsample,
    Op.DROPOUT: _simple("Identity"),  # inference graph: inverted dropout is the identity
    Op.DROP_PATH: _simple("Identity"),
    Op.ADD: _simple("Add"),
    Op.MUL: _simple("Mul"),
    Op.CONCAT: _concat,
    Op.SPLIT: _split,
    Op.CHANNEL_SHUFFLE: _shuffle,
    Op.FLATTEN: _reshape,
    Op.RESHAPE: _reshape,
    Op.SOFTMAX: _softmax,
    Op.IDENTITY: _simple("Identity"),
}


def to_onnx(
    graph: Graph,
    weights: Mapping[str, np.ndarray[Any, Any]] | None = None,
    opset: int = DEFAULT_OPSET,
    static_batch: int | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """Build an ONNX model of ``graph``'s inference part with ``weights`` (else seeded init)."""
    from onnx import TensorProto, helper, numpy_helper

    from graphcnn.version import __version__
    from graphcnn.weights import check_weights, expected, init_weights

    if opset not in OPSETS:
        raise OnnxError(
            f"opset {opset} is not supported", f"supported opsets: {', '.join(map(str, OPSETS))}"
        )
    g = graph.inference()
    inputs = g.inputs
    if weights is None:
        weights = init_weights(g, seed)
    else:
        wanted = expected(g)  # training-only parameters are left out
        weights = {k: v for k, v in weights.items() if k in wanted}
    check_weights(g, weights)
    b = _Builder(g, opset)
    for node in g:
        if node.op is not Op.INPUT:
            LOWERINGS[node.op](b, node, list(node.inputs))
    batch: int | str = static_batch if static_batch is not None else "N"

    def value_info(name: str, shape: tuple[Any, ...]) -> Any:
        dims = [batch, *(int(d) for d in shape[1:])]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    outputs = []
    for out_name, node_name in g.outputs:
        name = out_name if out_name not in g.nodes else node_name
        if name != node_name:
            b.nodes.append(helper.make_node("Identity", [node_name], [name], name=name))
        outputs.append(value_info(name, g[node_name].type.shape))
    inits = [
        numpy_helper.from_array(v.astype("float32", copy=False), initializer_name(k, g))
        for k, v in weights.items()
    ]
    onnx_graph = helper.make_graph(
        b.nodes,
        g.name,
        [value_info(n.name, n.type.shape) for n in inputs],
        outputs,
        initializer=inits + b.consts,
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="graphcnn",
        producer_version=__version__,
        doc_string=f"{graph.name}, compiled by graphcnn {__version__}",
    )
    model.ir_version = min(model.ir_version, 10)  # what current ONNX Runtime releases accept
    from graphcnn.backends.to_onnx.metadata import add_metadata

    return add_metadata(model, g)
