"""Analytic cost model: exact per-layer params, MACs, FLOPs and bytes from the IR alone.

No weights are allocated and nothing is executed. ``COST_RULES[op](node, inputs)`` gives the MACs
and FLOPs of one sample; the profiler multiplies by the batch. The counting convention is
:data:`CONVENTION`, printed with every report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from graphcnn.ir import Graph, GroupOp, Node, Op, TensorType
from graphcnn.util import gc_paused

CONVENTION: dict[str, str] = {
    "macs": "multiply-accumulates of conv2d and linear only (the torchvision/fvcore/paper "
    "convention): conv = Cout*Hout*Wout*(Cin/groups)*kh*kw, linear = in*out; per batch",
    "flops": "2 per MAC, +1 per output element for a bias; batch_norm 2/element (inference "
    "scale+shift); every activation 1/element; add and mul 1/element; max_pool kh*kw-1 and "
    "avg_pool kh*kw per output element (adaptive/global pools: the exact window sizes, 0 "
    "when the output size equals the input's); "
    "lrn 2*size+3/element; softmax 3/element; layer_norm 5/element (mean, subtract, square, "
    "variance, scale by 1/std: computed at inference too, unlike batch_norm's) +2/element "
    "with affine; "
    "layer_scale and scale (x * k, x / k) 1/element; a conv or linear with drop_connect "
    "costs the plain layer (the mask is training-only); dropout, drop_path, concat, split, "
    "channel_shuffle, flatten, reshape, permute, identity and input 0; "
    "pad 0 (a copy with a constant border, or cropped: no arithmetic; its output counts in "
    "activation_bytes); "
    "upsample (nearest) 0 (each output pixel copies one input pixel: no arithmetic); "
    "upsample (bilinear) 8/element (a weighted sum of 4 input pixels: 4 multiply-adds at 2 "
    "each, as a conv counts them; the weights depend only on positions)",
    "params": "trainable parameters (BN running statistics are buffers, counted in weight_bytes)",
    "activation_bytes": "bytes of each node's output tensor (graph input excluded); the total "
    "is the naive sum over nodes, not a liveness peak",
    "weight_bytes": "bytes of parameters and buffers in their dtype",
    "intensity": "flops / (input + output + weight bytes)",
}

CostRule = Callable[[Node, Sequence[TensorType]], tuple[int, int]]
"""``(node, input types) -> (macs, flops)`` for one sample."""


def _zero(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    return 0, 0


def _per_element(k: int) -> CostRule:
    def rule(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
        return 0, k * node.type.sample_numel

    return rule


def _upsample(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    bilinear = node.attrs.get("mode", "nearest") == "bilinear"
    return 0, 8 * node.type.sample_numel if bilinear else 0


def _conv(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    kh, kw = node.attr_pair("kernel")
    cin, groups = int(xs[0].shape[1]), node.attr_int("groups")
    out = node.type.sample_numel
    macs = out * (cin // groups) * kh * kw
    return macs, 2 * macs + (out if node.attrs["bias"] else 0)


def _linear(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    out = node.type.sample_numel
    macs = out * int(xs[0].shape[-1])
    return macs, 2 * macs + (out if node.attrs["bias"] else 0)


def _pool(extra: int) -> CostRule:
    def rule(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
        kh, kw = node.attr_pair("kernel")
        return 0, node.type.sample_numel * (kh * kw + extra)

    return rule


def _adaptive_windows(size: int, out: int) -> int:
    """Sum of PyTorch's adaptive window lengths along one axis."""
    return sum(math.ceil((i + 1) * size / out) - (i * size) // out for i in range(out))


def _adaptive(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    _, c, h, w = xs[0].shape
    oh, ow = node.attr_pair("output")
    if (oh, ow) == (h, w):  # a pool to the input's own size is the identity: no work
        return 0, 0
    return 0, int(c) * _adaptive_windows(int(h), oh) * _adaptive_windows(int(w), ow)


def _layer_norm(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    return 0, node.type.sample_numel * (7 if node.attrs["affine"] else 5)


def _lrn(node: Node, xs: Sequence[TensorType]) -> tuple[int, int]:
    return 0, node.type.sample_numel * (2 * node.attr_int("size") + 3)


COST_RULES: dict[Op, CostRule] = {
    Op.INPUT: _zero,
    Op.CONV2D: _conv,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _per_element(2),
    Op.LRN: _lrn,
    **{op: _per_element(1) for op in GroupOp.ACTIVATION},
    Op.MAX_POOL: _pool(-1),
    Op.AVG_POOL: _pool(0),
    Op.ADAPTIVE_AVG_POOL: _adaptive,
    Op.PAD: _zero,
    Op.UPSAMPLE: _upsample,
    Op.GLOBAL_AVG_POOL: lambda node, xs: (0, 0 if node.type == xs[0] else xs[0].sample_numel),
    Op.DROPOUT: _zero,
    Op.DROP_PATH: _zero,
    Op.ADD: _per_element(1),
    Op.MUL: _per_element(1),
    Op.CONCAT: _zero,
    Op.SPLIT: _zero,
    Op.CHANNEL_SHUFFLE: _zero,
    Op.FLATTEN: _zero,
    Op.RESHAPE: _zero,
    Op.PERMUTE: _zero,
    Op.LAYER_NORM: _layer_norm,
    Op.LAYER_SCALE: _per_element(1),
    Op.SCALE: _per_element(1),
    Op.SOFTMAX: _per_element(3),
    Op.IDENTITY: _zero,
}


@dataclass(frozen=True)
class Cost:
    """Additive cost of a node, a scope or a graph."""

    params: int = 0
    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    weight_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.params + other.params,
            self.macs + other.macs,
            self.flops + other.flops,
            self.activation_bytes + other.activation_bytes,
            self.weight_bytes + other.weight_bytes,
        )


@dataclass(frozen=True)
class LayerCost:
    """One row of a profile: a node, or a scope aggregated at some depth."""

    name: str
    op: str
    output: tuple[int, ...]
    cost: Cost
    input_bytes: int = 0
    training_only: bool = False

    @property
    def intensity(self) -> float:
        moved = self.input_bytes + self.cost.activation_bytes + self.cost.weight_bytes
        return self.cost.flops / moved if moved else 0.0


def node_cost(node: Node, inputs: Sequence[TensorType], batch: int = 1) -> Cost:
    """The cost of one node for ``batch`` samples."""
    macs, flops = COST_RULES[node.op](node, inputs)
    weights = sum(p.numel for p in node.params) * node.type.itemsize
    act = 0 if node.op is Op.INPUT else node.type.sample_numel * node.type.itemsize * batch
    return Cost(node.num_params, macs * batch, flops * batch, act, weights)


@dataclass
class Profile:
    """Per-layer costs of a graph, with totals for inference and for training-only parts."""

    model: str
    input: tuple[int, ...]
    batch: int
    layers: list[LayerCost]
    training: bool = False
    scopes: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> Cost:
        return sum((r.cost for r in self.layers if not r.training_only), Cost())

    @property
    def training_only(self) -> Cost:
        return sum((r.cost for r in self.layers if r.training_only), Cost())

    def at_depth(self, depth: int) -> list[LayerCost]:
        """Rows aggregated by scope prefix of ``depth`` name components, in first-seen order.

        Training-only rows of a scope are aggregated apart from its inference rows (a scope
        holding both yields two rows of the same name), so inference rows add up to the totals.
        """
        if depth < 1:
            raise ValueError("depth must be >= 1")
        groups: dict[tuple[str, bool], list[LayerCost]] = {}
        for row in self.layers:
            group = (".".join(row.name.split(".")[:depth]), row.training_only)
            groups.setdefault(group, []).append(row)
        out: list[LayerCost] = []
        for (key, _training), rows in groups.items():
            if len(rows) == 1 and rows[0].name == key:
                out.append(rows[0])
                continue
            out.append(
                LayerCost(
                    key,
                    self.scopes.get(key, "scope"),
                    rows[-1].output,
                    sum((r.cost for r in rows), Cost()),
                    rows[0].input_bytes,
                    all(r.training_only for r in rows),
                )
            )
        return out

    def to_json(self, depth: int | None = None) -> dict[str, object]:
        rows = self.at_depth(depth) if depth else self.layers
        t = self.totals
        data: dict[str, object] = {
            "model": self.model,
            "input": list(self.input),
            "batch": self.batch,
            "training": self.training,
            "convention": CONVENTION,
            "totals": asdict(t),
            "training_only": {"params": self.training_only.params, "macs": self.training_only.macs},
            "layers": [
                {
                    "name": r.name,
                    "op": r.op,
                    "output": list(r.output),
                    "params": r.cost.params,
                    "macs": r.cost.macs,
                    "flops": r.cost.flops,
                    "activation_bytes": r.cost.activation_bytes,
                    "weight_bytes": r.cost.weight_bytes,
                    "intensity": round(r.intensity, 3),
                    **({"training_only": True} if r.training_only else {}),
                }
                for r in rows
            ],
        }
        return data


def profile(graph: Graph, batch: int | None = None, training: bool = False) -> Profile:
    """Profile ``graph``. ``batch`` defaults to the graph's concrete batch, else 1.

    With ``training=False`` training-only nodes still appear as rows (marked), but totals and
    ``training_only`` keep them apart; with ``training=True`` they count in the totals.
    """
    with gc_paused():
        return _profile(graph, batch, training)


def _profile(graph: Graph, batch: int | None, training: bool) -> Profile:
    inputs = graph.inputs
    if batch is None:
        b = inputs[0].type.shape[0] if inputs else 1
        batch = b if isinstance(b, int) else 1
    types = {n.name: n.type for n in graph}
    rows = []
    for node in graph:
        if node.op is Op.INPUT:
            continue
        ins = [types[i] for i in node.inputs]
        in_bytes = sum(t.sample_numel * t.itemsize for t in ins) * batch
        rows.append(
            LayerCost(
                node.name,
                str(node.op),
                node.type.sample_shape,
                node_cost(node, ins, batch),
                in_bytes,
                node.training_only and not training,
            )
        )
    shape = inputs[0].type.sample_shape if inputs else ()
    return Profile(graph.name, shape, batch, rows, training, dict(graph.scopes))
