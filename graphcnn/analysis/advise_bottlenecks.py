"""advise_bottlenecks: cheaper rewrites of the most expensive k x k convolutions (advice only).

An analysis: it proposes rewrites and prices them exactly; it never applies them. Candidates are
the inference convolutions with a square kernel k >= 3, ``groups == 1`` (grouped and depthwise
convolutions are already factorised) and at least ``MIN_CHANNELS`` (16) input channels (an RGB
stem has nothing to reduce or separate; MobileNet keeps its first conv a full conv). They are
ranked by MACs (ties in graph order) and the ``top`` ones that get any suggestion are advised.
For each, up to three lessons from the literature, each priced for that layer and for the whole
model:

*Inception (1x1 reduction)*: put a 1x1 conv to ``r`` channels in front of the k x k conv::

    x -> conv(C_out, k, pad: p)                       # before: H'W' C_in k^2 C_out MACs
    x -> conv(r, 1) -> conv(C_out, k, pad: p)         # after:  HW C_in r + H'W' r k^2 C_out

``r`` is the ``reduction`` argument; by default half the input channels, at most 64
(``min(C_in // 2, 64)``; the width the Inception paper's 28x28x256 example reduces to). The 1x1
runs at the input resolution (stride 1); the k x k conv keeps its stride, padding and dilation.
Not offered for a conv that a 1x1 conv already feeds (through batch norms and activations only):
it has its reduction. The whole-module version (every branch of an Inception module at once) is
:mod:`.advise_modules`.

*VGG (stacked 3x3)*, for k >= 5 (odd): ``n = (k - 1) / 2`` stacked 3x3 convs see the same k x k
window with ``9n`` instead of ``k^2`` weights per channel pair: for 7x7 with C channels in and
out, ``27 C^2`` vs ``49 C^2``. The stack runs at the narrower width ``m = min(C_in, C_out)``:
every 3x3 but the last outputs m channels, the last C_out (C_in -> C_out -> ... -> C_out when
the conv narrows, C_in -> ... -> C_in -> C_out when it widens). The first takes the stride; the
padding is spread over them (p // n each, the remainder one by one from the first) and the
dilation kept, so the output shape is unchanged (checked).

*MobileNet (depthwise separable)*: a depthwise k x k conv (groups = C_in) and a pointwise 1x1 to
C_out. MACs: ``H'W' C_in k^2 + H'W' C_in C_out``, the fraction ``1/C_out + 1/k^2`` of the
standard conv's (MobileNet's ``1/N + 1/D_K^2``).

Every new conv takes the original's bias flag (bias-free convs stay bias-free for a following
BN); activations and BN between the new convs are not included (they add no MACs). The
replacement layers are built as IR nodes with ``graphcnn.shapes.infer_node`` and priced with
``graphcnn.cost.node_cost``, so the numbers follow the cost model's convention exactly; the model
total after a rewrite is the total before minus the layer plus its replacement (costs add up).
A rewrite is only suggested when it lowers the layer's MACs (and the stack only when its narrow
width is at least ``MIN_CHANNELS``).
``snippet`` is the replacement in the spec language (``x -> conv(...) -> conv(...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from graphcnn.cost import Profile, node_cost
from graphcnn.cost import profile as make_profile
from graphcnn.ir import Graph, GroupOp, Node, Op, TensorType, freeze
from graphcnn.shapes import infer_node

Kind = Literal["reduce_1x1", "stack_3x3", "depthwise_separable", "inception_module"]

LESSONS: dict[str, str] = {
    "reduce_1x1": "Inception",
    "stack_3x3": "VGG",
    "depthwise_separable": "MobileNet",
    "inception_module": "Inception (module)",
}

MAX_REDUCTION = 64
"""Default reduction width cap: ``min(C_in // 2, MAX_REDUCTION)``."""

MIN_CHANNELS = 16
"""Fewest input channels (for the 3x3 stack: its narrow width) for which a rewrite is offered."""


@dataclass(frozen=True)
class Counts:
    """Trainable parameters and MACs (per batch) of a layer, its replacement or a model."""

    params: int
    macs: int

    def to_json(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs}


@dataclass(frozen=True)
class Suggestion:
    """One proposed rewrite of one layer, priced exactly for the layer and the whole model."""

    layer: str
    kind: Kind
    description: str
    layer_before: Counts
    layer_after: Counts
    model_before: Counts
    model_after: Counts
    snippet: str
    """The replacement in the spec language, e.g. ``x -> conv(64, 1) -> conv(192, 3, pad: 1)``."""
    nodes: tuple[Node, ...] = ()
    """The replacement layers as IR nodes (their first input is the original's input)."""

    @property
    def lesson(self) -> str:
        return LESSONS[self.kind]

    @property
    def mac_ratio(self) -> float:
        """Layer MACs after / before."""
        return self.layer_after.macs / self.layer_before.macs

    @property
    def param_ratio(self) -> float:
        """Layer params after / before."""
        return self.layer_after.params / self.layer_before.params

    def to_json(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "lesson": self.lesson,
            "description": self.description,
            "layer_before": self.layer_before.to_json(),
            "layer_after": self.layer_after.to_json(),
            "model_before": self.model_before.to_json(),
            "model_after": self.model_after.to_json(),
            "snippet": self.snippet,
        }


@dataclass(frozen=True)
class _Conv:
    """The attributes of a conv that a rewrite keeps or changes."""

    out: int
    k: int
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True

    def attrs(self) -> dict[str, object]:
        return {
            "out_channels": self.out,
            "kernel": (self.k, self.k),
            "stride": self.stride,
            "padding": self.pad,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias,
        }

    def spec(self) -> str:
        """This conv as a spec-language layer call (defaults left out)."""
        args = [str(self.out), str(self.k)]
        for key, value, default in (
            ("stride", self.stride, (1, 1)),
            ("pad", self.pad, (0, 0)),
            ("dilation", self.dilation, (1, 1)),
        ):
            if value != default:
                args.append(f"{key}: {_pair(value)}")
        if self.groups != 1:
            args.append(f"groups: {self.groups}")
        if not self.bias:
            args.append("bias: false")
        return f"conv({', '.join(args)})"


def _pair(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else f"({v[0]}, {v[1]})"


def _build(
    base: str, src: str, x: TensorType, convs: Sequence[_Conv], batch: int
) -> tuple[tuple[Node, ...], Counts]:
    """The chain ``x -> convs[0] -> convs[1] ...`` as IR nodes, and its params and MACs."""

    nodes: list[Node] = []
    params = macs = 0
    for i, conv in enumerate(convs):
        attrs = freeze(conv.attrs())  # type: ignore[arg-type]
        out, decls = infer_node(Op.CONV2D, attrs, [x])
        node = Node(f"{base}.{i}", Op.CONV2D, (src,), attrs, out, decls)
        cost = node_cost(node, [x], batch)
        params, macs = params + cost.params, macs + cost.macs
        nodes.append(node)
        src, x = node.name, out
    return tuple(nodes), Counts(params, macs)


def _eligible(graph: Graph, node: Node) -> bool:
    """A square k x k conv, k >= 3, ungrouped, with at least MIN_CHANNELS input channels."""
    kh, kw = node.attr_pair("kernel")
    return (
        kh == kw >= 3
        and node.attr_int("groups") == 1
        and int(graph[node.inputs[0]].type.shape[1]) >= MIN_CHANNELS
    )


def _reduced(graph: Graph, node: Node) -> bool:
    """Whether a 1x1 conv already feeds ``node`` (through batch norms and activations only)."""
    src = graph[node.inputs[0]]
    while src.op is Op.BATCH_NORM or src.op in GroupOp.ACTIVATION:
        src = graph[src.inputs[0]]
    return src.op is Op.CONV2D and src.attr_pair("kernel") == (1, 1)


def default_reduction(cin: int) -> int:
    """Half the input channels, at most :data:`MAX_REDUCTION`."""
    return min(cin // 2, MAX_REDUCTION)


def analyze(
    graph: Graph,
    top: int = 5,
    reduction: int | None = None,
    batch: int | None = None,
    profile: Profile | None = None,
) -> list[Suggestion]:
    """Suggestions for the ``top`` most expensive convs that have one, most MACs first
    (ties in graph order).

    ``reduction`` fixes the 1x1 reduction width (default :func:`default_reduction` of each
    layer's input channels). ``batch`` defaults to the graph's concrete batch, else 1; ``profile``
    reuses an existing ``graphcnn.cost.profile(graph, batch)`` for the model totals.
    """

    if top < 1:
        return []
    p = profile if profile is not None else make_profile(graph, batch)
    b = p.batch
    totals = p.totals
    model = Counts(totals.params, totals.macs)
    nodes = graph.nodes
    candidates = sorted(
        (
            (-row.cost.macs, i, nodes[row.name], Counts(row.cost.params, row.cost.macs))
            for i, row in enumerate(p.layers)
            if row.op == "conv2d" and not row.training_only and _eligible(graph, nodes[row.name])
        ),
        key=lambda t: (t[0], t[1]),
    )
    out: list[Suggestion] = []
    advised = 0
    for _, _, node, before in candidates:
        if advised == top:
            break
        found = len(out)
        for kind, desc, new_nodes, after in _rewrites(graph, node, reduction, b):
            if after.macs >= before.macs:
                continue
            whole = Counts(
                model.params - before.params + after.params,
                model.macs - before.macs + after.macs,
            )
            snippet = "x -> " + " -> ".join(conv_spec(n) for n in new_nodes)
            ratio = after.macs / before.macs
            text = (
                f"{LESSONS[kind]}: {desc}; layer MACs x{ratio:.3f}, model MACs "
                f"x{whole.macs / model.macs:.3f}"
            )
            out.append(
                Suggestion(node.name, kind, text, before, after, model, whole, snippet, new_nodes)
            )
        advised += len(out) > found
    return out


def conv_spec(node: Node) -> str:
    """A conv node as a spec-language layer call (defaults left out)."""
    a = node.attrs
    return _Conv(
        node.attr_int("out_channels"),
        node.attr_pair("kernel")[0],
        node.attr_pair("stride"),
        node.attr_pair("padding"),
        node.attr_pair("dilation"),
        node.attr_int("groups"),
        bool(a["bias"]),
    ).spec()


def _rewrites(
    graph: Graph, node: Node, reduction: int | None, batch: int
) -> list[tuple[Kind, str, tuple[Node, ...], Counts]]:
    x = graph[node.inputs[0]].type
    cin, cout = int(x.shape[1]), node.attr_int("out_channels")
    k = node.attr_pair("kernel")[0]
    stride, pad = node.attr_pair("stride"), node.attr_pair("padding")
    dil, bias = node.attr_pair("dilation"), bool(node.attrs["bias"])
    src, base = node.inputs[0], node.name
    found: list[tuple[Kind, str, tuple[Node, ...], Counts]] = []

    r = reduction if reduction is not None else default_reduction(cin)
    if 1 <= r < cin and not _reduced(graph, node):
        why = (
            f"reduction width {r} given"
            if reduction is not None
            else f"default width min({cin} // 2, {MAX_REDUCTION}) = {r}"
        )
        convs: tuple[_Conv, ...] = (
            _Conv(r, 1, bias=bias),
            _Conv(cout, k, stride, pad, dil, bias=bias),
        )
        nodes, after = _build(f"{base}_reduce", src, x, convs, batch)
        found.append(
            (
                "reduce_1x1",
                f"a 1x1 conv {cin} -> {r} channels ({why}) in front of the {k}x{k} conv "
                f"{cin} -> {cout}",
                nodes,
                after,
            )
        )

    n = (k - 1) // 2
    if k >= 5 and k % 2 == 1 and min(cin, cout) >= MIN_CHANNELS:
        pads = [tuple(pp // n + (1 if i < pp % n else 0) for pp in pad) for i in range(n)]
        widths = [min(cin, cout)] * (n - 1) + [cout]
        convs = tuple(
            _Conv(c, 3, stride if i == 0 else (1, 1), (pads[i][0], pads[i][1]), dil, bias=bias)
            for i, c in enumerate(widths)
        )
        nodes, after = _build(f"{base}_stack", src, x, convs, batch)
        if nodes[-1].type == node.type:
            found.append(
                (
                    "stack_3x3",
                    f"{n} stacked 3x3 convs ({' -> '.join(map(str, [cin, *widths]))} channels) "
                    f"instead of one {k}x{k}: {9 * n} vs {k * k} weights per channel pair "
                    "at equal widths",
                    nodes,
                    after,
                )
            )

    convs = (_Conv(cin, k, stride, pad, dil, groups=cin, bias=bias), _Conv(cout, 1, bias=bias))
    nodes, after = _build(f"{base}_dwsep", src, x, convs, batch)
    found.append(
        (
            "depthwise_separable",
            f"depthwise {k}x{k} ({cin} channels) + pointwise 1x1 {cin} -> {cout}: "
            f"1/{cout} + 1/{k * k} = {1 / cout + 1 / (k * k):.3f} of the MACs",
            nodes,
            after,
        )
    )
    return found


__all__ = [
    "LESSONS",
    "MAX_REDUCTION",
    "MIN_CHANNELS",
    "Counts",
    "Suggestion",
    "analyze",
    "conv_spec",
    "default_reduction",
]
