"""The torch backend's per-op table: ``LOWERINGS[op]`` turns one IR node into a :class:`Lowered`
(the layer's module constructor, for ops with parameters, and its forward expression), plus the
op categories the code generator consults for in-place ReLUs and additions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, GroupOp, Node, Op, attr_float, attr_int, attr_ints, attr_pair


class LoweringError(GraphcnnError):
    """The torch backend cannot lower a node (names the op and its spec location)."""


@dataclass(frozen=True)
class Lowered:
    """What one node becomes: an optional module constructor and a forward expression.

    ``expr`` is a format string: ``{m}`` is the node's module, ``{0}``, ``{1}`` its inputs.
    """

    expr: str
    module: str | None = None
    parameter: str | None = None
    """A tensor expression registered as an ``nn.Parameter`` at the node's name (on the parent
    scope's module, as torchvision keeps ConvNeXt's ``layer_scale``); ``{m}`` refers to it."""


Lowering = Callable[[Node, Graph], Lowered]


def _pair_or_int(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else str(tuple(v))


def _conv(n: Node, g: Graph) -> Lowered:
    cin = int(g[n.inputs[0]].type.shape[1])
    args = [
        str(cin),
        str(attr_int(n.attrs, "out_channels")),
        _pair_or_int(attr_pair(n.attrs, "kernel")),
    ]
    for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
        v = attr_pair(n.attrs, key)
        if v != default:
            args.append(f"{key}={_pair_or_int(v)}")
    if attr_int(n.attrs, "groups") != 1:
        args.append(f"groups={attr_int(n.attrs, 'groups')}")
    if not n.attrs["bias"]:
        args.append("bias=False")
    return Lowered(_dropped("{m}({0})", n), f"nn.Conv2d({', '.join(args)})")


def _dropped(expr: str, n: Node) -> str:
    """A conv/linear call, through ``_drop_connect`` when its weights are dropped in training."""
    p = n.attrs.get("drop_connect")
    return expr if not p else f"_drop_connect({{m}}, {{0}}, {p!r}, self.training)"


def _linear(n: Node, g: Graph) -> Lowered:
    fin = int(g[n.inputs[0]].type.shape[-1])
    bias = "" if n.attrs["bias"] else ", bias=False"
    module = f"nn.Linear({fin}, {attr_int(n.attrs, 'out_features')}{bias})"
    return Lowered(_dropped("{m}({0})", n), module)


def _layer_norm(n: Node, g: Graph) -> Lowered:
    axis = attr_int(n.attrs, "axis")
    args = [str(n.type.shape[axis])]
    if n.attrs["eps"] != 1e-5:
        args.append(f"eps={n.attrs['eps']!r}")
    if not n.attrs["affine"]:
        args.append("elementwise_affine=False")
    module = f"nn.LayerNorm({', '.join(args)})"
    if axis == -1:
        return Lowered("{m}({0})", module)
    # over the channels of NCHW, as torchvision's LayerNorm2d: to channels-last and back
    return Lowered("{m}({0}.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)", module)


def _layer_scale(n: Node, g: Graph) -> Lowered:
    c, init = int(n.type.shape[1]), n.attrs["init"]
    if n.attrs["flat"]:  # timm's gamma: shape (C,), broadcast over H, W
        return Lowered("{0} * {m}.reshape(1, -1, 1, 1)", parameter=f"torch.full(({c},), {init!r})")
    return Lowered("{0} * {m}", parameter=f"torch.full(({c}, 1, 1), {init!r})")


def _scale(n: Node, g: Graph) -> Lowered:
    return Lowered(f"{{0}} {'/' if n.attrs['divide'] else '*'} {n.attrs['factor']!r}")


def _gelu(n: Node, g: Graph) -> Lowered:
    if n.attrs.get("approximate", "none") == "tanh":
        return Lowered("F.gelu({0}, approximate='tanh')")
    return Lowered("F.gelu({0})")


def _batch_norm(n: Node, g: Graph) -> Lowered:
    x = g[n.inputs[0]].type
    cls = "BatchNorm2d" if len(x.shape) == 4 else "BatchNorm1d"
    args = [str(x.shape[1])]
    if n.attrs["eps"] != 1e-5:
        args.append(f"eps={n.attrs['eps']!r}")
    if n.attrs["momentum"] != 0.1:
        args.append(f"momentum={n.attrs['momentum']!r}")
    if not n.attrs["affine"]:
        args.append("affine=False")
    return Lowered("{m}({0})", f"nn.{cls}({', '.join(args)})")


def _fill(template: str, node: Node) -> str:
    """Replace ``{attr}`` by the node's attribute; ``{0}``, ``{1}``, ``{m}`` slots stay."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) == "m":
            return m.group(0)
        v = node.attrs[m.group(1)]
        if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
            return str(v[0])
        return repr(v)

    return re.sub(r"\{([a-z_]+)\}", value, template)


def _fn(template: str) -> Lowering:
    return lambda n, g: Lowered(_fill(template, n))


def _max_pool(n: Node, g: Graph) -> Lowered:
    parts = ["{0}", "{kernel}", "{stride}"]
    if attr_pair(n.attrs, "padding") != (0, 0):
        parts.append("{padding}")
    if attr_pair(n.attrs, "dilation") != (1, 1):
        parts.append("dilation={dilation}")
    if n.attrs["ceil_mode"]:
        parts.append("ceil_mode=True")
    return Lowered(_fill(f"F.max_pool2d({', '.join(parts)})", n))


def _avg_pool(n: Node, g: Graph) -> Lowered:
    parts = ["{0}", "{kernel}", "{stride}"]
    if attr_pair(n.attrs, "padding") != (0, 0):
        parts.append("{padding}")
    if n.attrs["ceil_mode"]:
        parts.append("ceil_mode=True")
    if not n.attrs["count_include_pad"]:
        parts.append("count_include_pad=False")
    return Lowered(_fill(f"F.avg_pool2d({', '.join(parts)})", n))


def _pad(n: Node, g: Graph) -> Lowered:
    pads, value = attr_ints(n.attrs, "pads"), attr_float(n.attrs, "value")
    if value == 0.0:
        return Lowered(f"F.pad({{0}}, {pads})")
    fill = repr(value) if math.isfinite(value) else f"float('{value}')"
    return Lowered(f"F.pad({{0}}, {pads}, value={fill})")


def _upsample(n: Node, g: Graph) -> Lowered:
    if "size" in n.attrs:
        target = f"size={tuple(attr_pair(n.attrs, 'size'))}"
    else:
        sh, sw = attr_pair(n.attrs, "scale")
        target = f"scale_factor={sh if sh == sw else (float(sh), float(sw))}"
    if n.attrs.get("mode", "nearest") == "bilinear":
        corners = bool(n.attrs["align_corners"])
        return Lowered(f"F.interpolate({{0}}, {target}, mode='bilinear', align_corners={corners})")
    return Lowered(f"F.interpolate({{0}}, {target}, mode='nearest')")


def _split(n: Node, g: Graph) -> Lowered:
    sizes: tuple[int, ...] = n.attrs["sizes"]  # type: ignore[assignment]
    index = attr_int(n.attrs, "index")
    start = sum(sizes[:index])
    return Lowered(f"{{0}}.narrow({n.attrs['axis']}, {start}, {sizes[index]})")


def _concat(n: Node, g: Graph) -> Lowered:
    inputs = ", ".join(f"{{{i}}}" for i in range(len(n.inputs)))
    return Lowered(f"torch.cat([{inputs}], {n.attrs['axis']})")


def _reshape(n: Node, g: Graph) -> Lowered:
    dims = ", ".join(str(d) for d in n.type.shape[1:])
    return Lowered(f"{{0}}.reshape({{0}}.shape[0], {dims})")


def _unsupported(n: Node, g: Graph) -> Lowered:
    raise LoweringError(
        f"the torch backend cannot lower op {n.op} (node {n.name}"
        f"{', ' + str(n.loc) if n.loc else ''})"
    )


LOWERINGS: dict[Op, Lowering] = {
    Op.INPUT: _unsupported,  # inputs are forward()'s arguments
    Op.CONV2D: _conv,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _batch_norm,
    Op.LRN: _fn("F.local_response_norm({0}, {size}, alpha={alpha}, beta={beta}, k={k})"),
    Op.RELU: _fn("F.relu({0})"),
    Op.RELU6: _fn("F.relu6({0})"),
    Op.SIGMOID: _fn("torch.sigmoid({0})"),
    Op.TANH: _fn("torch.tanh({0})"),
    Op.SILU: _fn("F.silu({0})"),
    Op.HARDSWISH: _fn("F.hardswish({0})"),
    Op.HARDSIGMOID: _fn("F.hardsigmoid({0})"),
    Op.GELU: _gelu,
    Op.LEAKY_RELU: _fn("F.leaky_relu({0}, {negative_slope})"),
    Op.LAYER_NORM: _layer_norm,
    Op.LAYER_SCALE: _layer_scale,
    Op.SCALE: _scale,
    Op.PERMUTE: lambda n, g: Lowered(f"{{0}}.permute{attr_ints(n.attrs, 'dims')}"),
    Op.MAX_POOL: _max_pool,
    Op.AVG_POOL: _avg_pool,
    Op.ADAPTIVE_AVG_POOL: _fn("F.adaptive_avg_pool2d({0}, {output})"),
    Op.GLOBAL_AVG_POOL: _fn("F.adaptive_avg_pool2d({0}, 1)"),
    Op.PAD: _pad,
    Op.UPSAMPLE: _upsample,
    Op.DROPOUT: _fn("F.dropout({0}, {p}, self.training)"),
    Op.DROP_PATH: _fn("_drop_path({0}, {p}, self.training)"),
    Op.ADD: _fn("{0} + {1}"),
    Op.MUL: _fn("{0} * {1}"),
    Op.CONCAT: _concat,
    Op.SPLIT: _split,
    Op.CHANNEL_SHUFFLE: _fn("_channel_shuffle({0}, {groups})"),
    Op.FLATTEN: _fn("torch.flatten({0}, {start_dim})"),
    Op.RESHAPE: _reshape,
    Op.SOFTMAX: _fn("F.softmax({0}, {axis})"),
    Op.IDENTITY: _fn("{0}"),
}

# Ops whose result may share memory with their input (in-place ops must not run after them).
_ALIASING = GroupOp.INFERENCE_VIEW
# Producers whose output autograd does not save, so a following ReLU may overwrite it.
_INPLACE_SAFE = {Op.CONV2D, Op.BATCH_NORM, Op.ADD, Op.LINEAR}
