"""The analytic cost model, on small specs whose costs are computed by hand.

The convention (``graphcnn.cost.CONVENTION``): MACs count conv2d and linear only,
conv = Cout*Hout*Wout*(Cin/groups)*kh*kw and linear = in*out; FLOPs are 2 per MAC plus 1 per
output element for a bias, BN 2 per element, activations, add and mul 1, max pool kh*kw-1 and avg
pool kh*kw per output element, adaptive and global pools their exact window sizes.
Every number is for one sample unless the graph has a concrete batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcnn
from graphcnn.cost import CONVENTION, COST_RULES, Cost, LayerCost, Profile, profile
from graphcnn.ir import Graph, Node, Op, TensorType, freeze
from graphcnn.shapes import infer_node


def one_layer(layer: str, shape: str = "8, 16, 16") -> LayerCost:
    """The profile row of ``x -> LAYER as layer`` (or ``LAYER as layer`` where LAYER names x)
    on ``x = input(SHAPE)``."""
    expr = layer if "(x" in layer else f"x -> {layer}"
    g = graphcnn.compile_text(
        f"network net() {{\n  x = input({shape})\n  return {expr} as layer\n}}\n"
    )
    (row,) = [r for r in profile(g).layers if r.name == "layer"]
    return row


@dataclass(frozen=True)
class Expected:
    """``x -> spec`` on ``input(shape)`` costs ``params``, ``macs`` and ``flops`` per sample."""

    spec: str
    params: int
    macs: int
    flops: int
    shape: str = "8, 16, 16"


SINGLE_LAYERS = {
    # out [16, 16, 16] = 4096 elements, each a sum over 8 channels x 3x3; bias: +1 FLOP each
    "conv 3x3": Expected("conv(16, 3, pad: 1)", 16 * 8 * 9 + 16, 4096 * 72, 2 * 4096 * 72 + 4096),
    "conv without bias": Expected(
        "conv(16, 3, pad: 1, bias: false)", 1152, 4096 * 72, 2 * 4096 * 72
    ),
    # out [16, 8, 8] = 1024; each output channel sees 8 / 4 = 2 input channels
    "grouped conv": Expected(
        "conv(16, 3, stride: 2, pad: 1, groups: 4, bias: false)",
        16 * 2 * 9,
        1024 * 18,
        2 * 1024 * 18,
    ),
    # depthwise: out [8, 16, 16] = 2048, one input channel per output channel
    "depthwise conv": Expected(
        "conv(8, 3, pad: 1, groups: 8, bias: false)", 72, 2048 * 9, 2 * 2048 * 9
    ),
    # 1x3 kernel: out [4, 16, 16] = 1024
    "asymmetric conv": Expected(
        "conv(4, (1, 3), pad: (0, 1))", 4 * 24 + 4, 1024 * 24, 2 * 1024 * 24 + 1024
    ),
    # 7x7 stride 2 on [3, 32, 32]: out [8, 16, 16] = 2048
    "strided stem": Expected(
        "conv(8, 7, stride: 2, pad: 3, bias: false)",
        8 * 147,
        2048 * 147,
        2 * 2048 * 147,
        "3, 32, 32",
    ),
    "linear": Expected("linear(10)", 128 * 10 + 10, 1280, 2 * 1280 + 10, "128"),
    "linear without bias": Expected("linear(10, bias: false)", 1280, 1280, 2560, "128"),
    # BN: weight and bias are parameters (running statistics are buffers); 2 FLOPs per element
    "bn": Expected("bn", 16, 0, 2 * 2048),
    "bn not affine": Expected("bn(affine: false)", 0, 0, 2 * 2048),
    "bn on features": Expected("bn", 200, 0, 200, "100"),
    "relu": Expected("relu", 0, 0, 2048),
    "gelu": Expected("gelu", 0, 0, 2048),
    # out [8, 8, 8] = 512: a max over 4 values is 3 comparisons, an average counts all 4
    "maxpool": Expected("maxpool(2)", 0, 0, 512 * 3),
    "avgpool": Expected("avgpool(2)", 0, 0, 512 * 4),
    "avgpool 3x3 stride 2": Expected("avgpool(3, stride: 2, pad: 1)", 0, 0, 512 * 9),
    # every input element is summed once
    "global_avgpool": Expected("global_avgpool", 0, 0, 2048),
    "lrn": Expected("lrn(5)", 0, 0, 2048 * (2 * 5 + 3)),
    "softmax": Expected("softmax", 0, 0, 3 * 10, "10"),
    "add": Expected("add(x, x)", 0, 0, 2048),
    "mul": Expected("mul(x, x)", 0, 0, 2048),
    "dropout": Expected("dropout", 0, 0, 0),
    "identity": Expected("identity", 0, 0, 0),
    "flatten": Expected("flatten", 0, 0, 0),
    "concat": Expected("concat(x, x)", 0, 0, 0),
    "channel_shuffle": Expected("channel_shuffle(2)", 0, 0, 0),
}


@pytest.mark.parametrize("expected", SINGLE_LAYERS.values(), ids=SINGLE_LAYERS.keys())
def test_single_layer_cost(expected: Expected) -> None:
    cost = one_layer(expected.spec, expected.shape).cost
    assert (cost.params, cost.macs, cost.flops) == (
        expected.params,
        expected.macs,
        expected.flops,
    )


def test_bytes_are_the_output_and_the_weights_in_float32() -> None:
    row = one_layer("bn")
    assert row.cost.activation_bytes == 4 * 8 * 16 * 16
    # weight, bias, running_mean, running_var: 4 vectors of 8 (buffers count as weights bytes)
    assert row.cost.weight_bytes == 4 * 4 * 8
    assert row.input_bytes == 4 * 8 * 16 * 16
    assert row.intensity == pytest.approx(row.cost.flops / (2 * 4 * 2048 + 128))


# --------------------------------------------------------------------------- adaptive pooling


def adaptive_window_sum(size: int, out: int) -> int:
    """Sum of PyTorch's adaptive bin lengths: bin i is [floor(i*size/out), ceil((i+1)*size/out))."""
    return sum(-(-(i + 1) * size // out) - (i * size) // out for i in range(out))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(1, 12),
    st.integers(1, 12),
)
def test_adaptive_avg_pool_sums_the_exact_windows(c: int, h: int, w: int, oh: int, ow: int) -> None:
    """FLOPs = every (bin_h, bin_w) pair's element count, also when bins overlap (o > size)."""
    x = TensorType(("N", c, h, w))
    node_attrs = freeze({"output": (oh, ow)})
    out, _ = infer_node(Op.ADAPTIVE_AVG_POOL, node_attrs, [x])
    node = Node("pool", Op.ADAPTIVE_AVG_POOL, ("x",), node_attrs, out)
    brute = sum(
        (-(-(i + 1) * h // oh) - i * h // oh) * (-(-(j + 1) * w // ow) - j * w // ow)
        for i in range(oh)
        for j in range(ow)
    )
    identity = (oh, ow) == (h, w)  # pooling a map to its own size is free (the identity)
    assert COST_RULES[Op.ADAPTIVE_AVG_POOL](node, [x]) == (0, 0 if identity else c * brute)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 12))
def test_adaptive_bins_are_pytorchs(torch: Any, size: int, out: int) -> None:
    """Recover torch's bins from adaptive max pooling: argmax of a ramp is a bin's last element,
    of a falling ramp its first."""
    ramp = torch.arange(size, dtype=torch.float32).reshape(1, 1, size, 1)
    _, last = torch.nn.functional.adaptive_max_pool2d(ramp, (out, 1), return_indices=True)
    _, first = torch.nn.functional.adaptive_max_pool2d(-ramp, (out, 1), return_indices=True)
    assert int((last - first + 1).sum()) == adaptive_window_sum(size, out)


def test_adaptive_avg_pool_in_a_spec() -> None:
    # 7 -> 3 bins: [0, 3), [2, 5), [4, 7): 3 + 3 + 3 along each axis, 8 channels
    assert one_layer("adaptive_avgpool(3)", "8, 7, 7").cost.flops == 8 * 9 * 9
    # output 1x1 is the global average: every element once
    assert one_layer("adaptive_avgpool(1)", "8, 7, 7").cost.flops == 8 * 49


# --------------------------------------------------------------------------- a small network

NET = """
block unit(x, c) {
  y = x -> conv(c, 3, pad: 1, bias: false) as conv -> bn as bn -> relu
  return y + x
}

network net() {
  x = input(3, 16, 16)
  x = x -> conv(8, 3, stride: 2, pad: 1) as stem
  x = unit(x, 8)
  seq features { x = x -> conv(8, 1) -> relu -> maxpool(2) }
  training { aux = x -> global_avgpool -> flatten -> linear(5) as aux_fc }
  y = x -> adaptive_avgpool(3) as pool -> flatten -> linear(10) as fc
  return y, aux
}
"""

# Per sample, by hand:
STEM = Cost(params=8 * 27 + 8, macs=8 * 64 * 27, flops=2 * 8 * 64 * 27 + 512)  # out [8, 8, 8]
UNIT = Cost(params=8 * 72 + 16, macs=512 * 72, flops=2 * 512 * 72 + 2 * 512 + 512 + 512)
FEATURES = Cost(params=64 + 8, macs=512 * 8, flops=2 * 512 * 8 + 512 + 512 + 128 * 3)
HEAD = Cost(params=720 + 10, macs=720, flops=8 * 6 * 6 + 2 * 720 + 10)  # 4 -> 3 bins of 2
AUX = Cost(params=40 + 5, macs=40, flops=128 + 2 * 40 + 5)


def _compute_only(c: Cost) -> tuple[int, int, int]:
    return c.params, c.macs, c.flops


@pytest.fixture(scope="module")
def net() -> Graph:
    return graphcnn.compile_text(NET)


def test_totals_are_the_sum_of_the_hand_computed_parts(net: Graph) -> None:
    p = profile(net)
    assert p.batch == 1, "a symbolic batch profiles one sample"
    assert p.input == (3, 16, 16)
    assert _compute_only(p.totals) == _compute_only(STEM + UNIT + FEATURES + HEAD)
    assert _compute_only(p.training_only) == _compute_only(AUX)


def test_activation_bytes_are_the_naive_sum_of_outputs(net: Graph) -> None:
    p = profile(net)
    expected = sum(
        n.type.sample_numel * 4 for n in net if n.op is not Op.INPUT and not n.training_only
    )
    assert p.totals.activation_bytes == expected
    # parameters and BN buffers, float32
    weights = sum(q.numel for n in net if not n.training_only for q in n.params)
    assert p.totals.weight_bytes == 4 * weights


def test_training_only_nodes_are_rows_but_not_totals(net: Graph) -> None:
    p = profile(net)
    marked = [r.name for r in p.layers if r.training_only]
    assert marked == ["global_avgpool", "flatten", "aux_fc"]
    assert p.totals == profile(net.inference()).totals


def test_training_profile_counts_the_auxiliary_head(net: Graph) -> None:
    inference, training = profile(net), profile(net, training=True)
    assert training.training is True
    assert training.totals == inference.totals + inference.training_only
    assert training.training_only == Cost()
    assert not any(r.training_only for r in training.layers)


@pytest.mark.parametrize("batch", [2, 8])
def test_batch_scales_compute_and_activations_not_weights(net: Graph, batch: int) -> None:
    one = profile(net).totals
    p = profile(graphcnn.compile_text(NET, batch=batch))
    assert p.batch == batch
    assert p.totals == Cost(
        params=one.params,
        macs=batch * one.macs,
        flops=batch * one.flops,
        activation_bytes=batch * one.activation_bytes,
        weight_bytes=one.weight_bytes,
    )
    assert p.training_only.macs == batch * profile(net).training_only.macs
    # profiling a symbolic-batch graph for a given batch gives the same numbers
    assert profile(net, batch=batch).totals == p.totals


# --------------------------------------------------------------------------- at_depth


def test_depth_one_rows_are_the_top_level_scopes_in_order(net: Graph) -> None:
    p = profile(net)
    rows = p.at_depth(1)
    assert [(r.name, r.op) for r in rows] == [
        ("stem", "conv2d"),
        ("unit", "unit"),  # a block scope is named after its block
        ("features", "seq"),
        ("global_avgpool", "global_avg_pool"),
        ("flatten", "flatten"),
        ("aux_fc", "linear"),
        ("pool", "adaptive_avg_pool2d"),
        ("flatten_1", "flatten"),
        ("fc", "linear"),
    ]
    by_name = {r.name: r for r in rows}
    assert _compute_only(by_name["unit"].cost) == _compute_only(UNIT)
    assert _compute_only(by_name["features"].cost) == _compute_only(FEATURES)
    assert by_name["features"].output == (8, 4, 4), "a scope's output is its last node's"
    assert by_name["stem"] is p.layers[0], "a top-level node is its own row"


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_aggregation_keeps_the_totals(net: Graph, depth: int) -> None:
    p = profile(net)
    rows = p.at_depth(depth)
    assert sum((r.cost for r in rows), Cost()) == p.totals + p.training_only
    assert sum((r.cost for r in rows if not r.training_only), Cost()) == p.totals


def test_deep_enough_depth_gives_the_layers_back(net: Graph) -> None:
    p = profile(net)
    assert p.at_depth(2) == p.layers
    with pytest.raises(ValueError):
        p.at_depth(0)


NESTED = """
block basic(x, c) {
  y = x -> conv(c, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  return relu(y + x)
}

network nested() {
  x = input(4, 8, 8)
  seq layer1 {
    x = basic(x, 4)
    x = basic(x, 4)
  }
  seq layer2 { x = basic(x, 4) }
  return x -> global_avgpool -> flatten -> linear(3) as fc
}
"""


def test_depth_walks_nested_scopes_like_a_resnet() -> None:
    """``layer1`` (a seq scope) holds ``layer1.0`` and ``layer1.1`` (block scopes)."""
    p = profile(graphcnn.compile_text(NESTED))
    assert [(r.name, r.op) for r in p.at_depth(1)] == [
        ("layer1", "seq"),
        ("layer2", "seq"),
        ("global_avgpool", "global_avg_pool"),
        ("flatten", "flatten"),
        ("fc", "linear"),
    ]
    assert [(r.name, r.op) for r in p.at_depth(2)][:3] == [
        ("layer1.0", "basic"),
        ("layer1.1", "basic"),
        ("layer2.0", "basic"),
    ]
    block = Cost(params=4 * 36 + 8, macs=64 * 4 * 36, flops=2 * 64 * 144 + 2 * 256 + 3 * 256)
    assert _compute_only(p.at_depth(1)[0].cost) == _compute_only(block + block)
    assert _compute_only(p.at_depth(2)[2].cost) == _compute_only(block)
    assert p.at_depth(3) == p.layers
    for depth in (1, 2, 3):
        assert sum((r.cost for r in p.at_depth(depth)), Cost()) == p.totals


MIXED = """
network net() {
  x = input(3, 8, 8)
  scope body {
    x = x -> conv(4, 3, pad: 1) as conv
    training { aux = x -> global_avgpool -> flatten -> linear(2) as aux_fc }
    x = x -> relu
  }
  return x -> global_avgpool -> flatten -> linear(10) as fc, aux
}
"""


def test_depth_rows_keep_a_training_head_inside_a_scope_apart() -> None:
    """A scope holding inference and training-only nodes gives two rows of the same name."""
    p = profile(graphcnn.compile_text(MIXED))
    rows = p.at_depth(1)
    assert [(r.name, r.training_only) for r in rows] == [
        ("body", False),
        ("body", True),
        ("global_avgpool", False),
        ("flatten", False),
        ("fc", False),
    ]
    # the aux head: global pool over [4, 8, 8], then linear 4 -> 2
    assert _compute_only(rows[1].cost) == (4 * 2 + 2, 4 * 2, 256 + 2 * 8 + 2)
    assert sum((r.cost for r in rows if not r.training_only), Cost()) == p.totals
    assert sum((r.cost for r in rows if r.training_only), Cost()) == p.training_only


# --------------------------------------------------------------------------- to_json


def test_json_has_exactly_the_documented_keys(net: Graph) -> None:
    p = profile(net)
    data: Any = p.to_json()
    assert set(data) == {
        "model",
        "input",
        "batch",
        "training",
        "convention",
        "totals",
        "training_only",
        "layers",
    }
    assert set(data["totals"]) == {"params", "macs", "flops", "activation_bytes", "weight_bytes"}
    assert set(data["training_only"]) == {"params", "macs"}
    row_keys = {
        "name",
        "op",
        "output",
        "params",
        "macs",
        "flops",
        "activation_bytes",
        "weight_bytes",
        "intensity",
    }
    for row in data["layers"]:
        extra = (
            {"training_only"} if row["name"] in ("global_avgpool", "flatten", "aux_fc") else set()
        )
        assert set(row) == row_keys | extra
    assert json.loads(json.dumps(data)) == data, "plain JSON values only"


def test_json_values(net: Graph) -> None:
    p = profile(net)
    data: Any = p.to_json()
    assert data["model"] == "net"
    assert data["input"] == [3, 16, 16]
    assert data["convention"] == CONVENTION
    assert data["totals"] == asdict(p.totals)
    assert data["training_only"] == {"params": AUX.params, "macs": AUX.macs}
    stem = data["layers"][0]
    assert {k: stem[k] for k in ("name", "op", "output", "params", "macs", "flops")} == {
        "name": "stem",
        "op": "conv2d",
        "output": [8, 8, 8],
        "params": STEM.params,
        "macs": STEM.macs,
        "flops": STEM.flops,
    }
    assert [r["name"] for r in data["layers"]] == [r.name for r in p.layers]


def test_json_at_depth(net: Graph) -> None:
    p = profile(net)
    data: Any = p.to_json(depth=1)
    assert [r["name"] for r in data["layers"]] == [r.name for r in p.at_depth(1)]
    assert data["totals"] == p.to_json()["totals"]


def test_convention_names_every_reported_quantity() -> None:
    assert set(CONVENTION) >= {"macs", "flops", "params", "activation_bytes", "weight_bytes"}


def test_profile_is_a_plain_dataclass(net: Graph) -> None:
    p = profile(net)
    assert isinstance(p, Profile)
    assert all(isinstance(r, LayerCost) for r in p.layers)
    assert [r.name for r in p.layers] == [n.name for n in net if n.op is not Op.INPUT]
    assert math.isfinite(sum(r.intensity for r in p.layers))
