"""The receptive-field analysis: hand-computed values, known values of classic networks, and a
brute force that measures receptive fields with torch.

The brute force runs the graph as a one-channel network of averaging windows (every conv and pool
becomes an all-positive window of the same geometry, every pointwise op the identity, concat a
sum), backpropagates from one output pixel and reads the rows and columns of the input whose
gradient is nonzero. Nothing can cancel, so that extent is the receptive field, clipped to the
image; only pixels whose predicted field lies inside the image are compared.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from helpers.specs import net
from helpers.zoo import compiled
from hypothesis import given, settings
from hypothesis import strategies as st

from graphcnn import zoo
from graphcnn.analysis.receptive_field import (
    RULES,
    ReceptiveField,
    ReceptiveFieldError,
    analyze,
)
from graphcnn.ir import Graph, Op, attr_int, attr_ints, attr_pair

# -- brute force ---------------------------------------------------------------------------------


def _run(graph: Graph, torch: Any) -> tuple[Any, dict[str, Any]]:
    """The one-channel averaging twin of ``graph``: (input, every node's value)."""
    import torch.nn.functional as F

    (inp,) = graph.inputs
    _, _, h, w = inp.type.shape
    x = torch.ones(1, 1, int(h), int(w), dtype=torch.float64, requires_grad=True)
    vals: dict[str, Any] = {inp.name: x}
    for n in graph:
        if n.op is Op.INPUT or len(n.type.shape) != 4:
            continue  # flatten and classifiers have no spatial grid left
        a = [vals[i] for i in n.inputs]
        if n.op in (Op.CONV2D, Op.MAX_POOL, Op.AVG_POOL):
            k, s, p = (attr_pair(n.attrs, key) for key in ("kernel", "stride", "padding"))
            d = attr_pair(n.attrs, "dilation", (1, 1))
            if n.op is not Op.CONV2D and d == (1, 1):  # avg_pool2d knows ceil_mode
                y = F.avg_pool2d(a[0], k, s, p, ceil_mode=bool(n.attrs["ceil_mode"]))
            else:
                assert not n.attrs.get("ceil_mode")
                ones = torch.full((1, 1, *k), 1.0 / (k[0] * k[1]), dtype=torch.float64)
                y = F.conv2d(a[0], ones, stride=s, padding=p, dilation=d)
        elif n.op is Op.ADAPTIVE_AVG_POOL:
            y = F.adaptive_avg_pool2d(a[0], attr_pair(n.attrs, "output"))
        elif n.op is Op.GLOBAL_AVG_POOL:
            y = a[0].mean((2, 3), keepdim=True)
        elif n.op in (Op.ADD, Op.CONCAT):
            y = sum(a[1:], a[0])
        elif n.op is Op.MUL:
            y = a[0] * a[1]
        elif n.op is Op.SPLIT and attr_int(n.attrs, "axis") >= 2:
            sizes, index = attr_ints(n.attrs, "sizes"), attr_int(n.attrs, "index")
            y = a[0].narrow(attr_int(n.attrs, "axis"), sum(sizes[:index]), sizes[index])
        else:
            assert n.op is not Op.RESHAPE and n.type.shape[2:] == graph[n.inputs[0]].type.shape[2:]
            y = a[0]  # pointwise along H and W
        vals[n.name] = y
    return x, vals


def measured(x: Any, y: Any, row: int, col: int, torch: Any) -> tuple[tuple[int, int], ...]:
    """Rows and columns of the input that output pixel (row, col) of ``y`` depends on."""
    (g,) = torch.autograd.grad(y[0, 0, row, col], x, retain_graph=True)
    rows = g[0, 0].abs().sum(1).nonzero().flatten()
    cols = g[0, 0].abs().sum(0).nonzero().flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def inside(rf: ReceptiveField, row: int, col: int, h: int, w: int) -> bool:
    (top, bottom), (left, right) = rf.bounds(row, col)
    return bool(top >= 0 and left >= 0 and bottom < h and right < w)


def brute_force(torch: Any, graph: Graph, names: list[str] | None = None) -> int:
    """Compare every named node (default: all) with torch; return how many pixels matched.

    Per node, the central output pixel and its lower-right neighbour are measured (so size,
    start and jump are all checked) where their predicted fields lie inside the image.
    """
    fields = analyze(graph)
    x, vals = _run(graph, torch)
    h, w = int(x.shape[2]), int(x.shape[3])
    checked = 0
    for name in names or list(vals):
        y = vals[name]
        if y is x:
            continue
        oh, ow = y.shape[2:]
        for row, col in ((oh // 2, ow // 2), (oh // 2 + 1, ow // 2 + 1)):
            if row < oh and col < ow and inside(fields[name], row, col, h, w):
                got = measured(x, y, row, col, torch)
                assert got == fields[name].bounds(row, col), (name, row, col, fields[name])
                checked += 1
    return checked


TORCH = importlib.util.find_spec("torch") is not None


def confirm(graph: Graph, names: list[str] | None, at_least: int) -> None:
    """The brute force agrees on at least ``at_least`` pixels; without torch the analytic
    checks before it stand alone."""
    if TORCH:
        import torch

        assert brute_force(torch, graph, names) >= at_least


# -- hand-computed -------------------------------------------------------------------------------


def test_three_stacked_3x3_convs_see_7x7() -> None:
    g = net(
        "  return x -> conv(1, 3, pad: 1) as c1 -> relu -> conv(1, 3, pad: 1) as c2 -> bn\n"
        "    -> conv(1, 3, pad: 1) as c3",
        "1, 32, 32",
    )
    rf = analyze(g)
    assert rf["input"] == ReceptiveField((1, 1), (1, 1), (0.0, 0.0))
    assert [rf[c].size for c in ("c1", "c2", "c3")] == [(3, 3), (5, 5), (7, 7)]
    assert {rf[c].jump for c in ("c1", "c2", "c3")} == {(1, 1)}
    assert {rf[c].start for c in ("c1", "c2", "c3")} == {(0.0, 0.0)}  # 'same' padding
    assert rf["c3"].bounds(5, 10) == ((2, 8), (7, 13))
    confirm(g, None, 6)


def test_recurrence_with_stride_padding_dilation_and_rectangles() -> None:
    g = net(
        "  return x -> conv(1, (3, 5), stride: (2, 1), pad: (0, 2)) as a\n"
        "    -> maxpool(3, stride: 2, pad: 1, dilation: 2) as b -> avgpool(2) as c",
        "1, 64, 64",
    )
    rf = analyze(g)
    assert rf["a"] == ReceptiveField((3, 5), (2, 1), (1.0, 0.0))
    # maxpool: k_eff 5; size 3 + 4*2 = 11 and 5 + 4*1 = 9; start + (2 - 1) * jump
    assert rf["b"] == ReceptiveField((11, 9), (4, 2), (3.0, 1.0))
    # avgpool 2x2: size + 1 * jump, start + 0.5 * jump
    assert rf["c"] == ReceptiveField((15, 11), (8, 4), (5.0, 2.0))
    confirm(g, None, 6)


def test_vgg16_conv5_3_and_pool5() -> None:
    """VGG16's conv5_3 sees 196x196 on a 16-pixel grid; pool5 sees the often quoted 212x212 (on a
    32-pixel grid): 212 belongs to pool5, not to conv5_3."""
    g = compiled("vgg16")
    rf = analyze(g)
    conv5_3, pool5 = "features.28", "features.30"
    assert rf[conv5_3] == ReceptiveField((196, 196), (16, 16), (7.5, 7.5))
    assert rf["features.29"] == rf[conv5_3]  # its relu
    assert rf[pool5] == ReceptiveField((212, 212), (32, 32), (15.5, 15.5))
    assert rf["avgpool"] == rf[pool5]  # adaptive 7 -> 7: the identity
    assert rf["features.2"].size == (5, 5) and rf["features.4"].size == (6, 6)
    confirm(g, ["features.2", "features.16", "features.26", conv5_3, pool5], 8)


def test_resnet50_stem_and_stages() -> None:
    g = compiled("resnet50")
    rf = analyze(g)
    assert rf["conv1"] == ReceptiveField((7, 7), (2, 2), (0.0, 0.0))
    assert rf["relu"] == rf["conv1"]
    assert rf["maxpool"] == ReceptiveField((11, 11), (4, 4), (0.0, 0.0))
    # one 3x3 conv per bottleneck: + 2 * jump each
    assert rf["layer1.2.relu_2"].size == (11 + 3 * 8,) * 2
    assert rf["layer4.2.relu_2"] == ReceptiveField((427, 427), (32, 32), (0.0, 0.0))
    # global pooling: the union of all 7x7 pixels' fields, which covers the image
    assert rf["avgpool"] == ReceptiveField((427 + 6 * 32,) * 2, (224, 224), (96.0, 96.0))
    assert rf["fc"] == rf["flatten"] == rf["avgpool"]
    (top, bottom), (left, right) = rf["avgpool"].bounds()
    assert top <= 0 and left <= 0 and bottom >= 223 and right >= 223
    confirm(g, ["conv1", "maxpool", "layer1.0.add", "layer1.2.relu_2"], 8)


@pytest.mark.torch
def test_resnet50_final_field_by_brute_force_on_a_large_input(torch: Any) -> None:
    g = compiled("resnet50", (3, 512, 512))
    assert analyze(g)["layer4.2.relu_2"].size == (427, 427)
    assert brute_force(torch, g, ["layer3.0.add", "layer4.2.relu_2"]) >= 3


def test_union_of_branches_with_different_centres() -> None:
    """k=1 and k=2 stride-2 branches: pixel i sees [2i, 2i] and [2i, 2i + 1]: the sum sees 2."""
    g = net(
        "  a = x -> conv(1, 1, stride: 2) as a\n  b = x -> conv(1, 2, stride: 2) as b\n"
        "  return add(a, b) as s",
        "1, 16, 16",
    )
    rf = analyze(g)
    assert rf["a"].start == (0.0, 0.0) and rf["b"].start == (0.5, 0.5)
    assert rf["s"] == ReceptiveField((2, 2), (2, 2), (0.5, 0.5))
    confirm(g, None, 6)


def test_spatial_split_shifts_the_start() -> None:
    g = net(
        "  y = x -> conv(1, 3) as c\n  a, b = split(y, [4, 10], axis: 2)\n  return b", "1, 16, 16"
    )
    rf = analyze(g)
    assert rf["c"].start == (1.0, 1.0)
    assert rf[g.outputs[0][1]] == ReceptiveField((3, 3), (1, 1), (5.0, 1.0))
    confirm(g, None, 4)


def test_squeeze_excitation_gate_is_seen_by_every_pixel() -> None:
    g = net(
        "  y = x -> conv(4, 3, pad: 1) as c\n"
        "  gate = y -> global_avgpool as pool -> conv(4, 1) as fc -> sigmoid\n"
        "  return mul(y, gate) as scaled",
        "1, 16, 16",
    )
    rf = analyze(g)
    assert rf["pool"] == ReceptiveField((18, 18), (16, 16), (7.5, 7.5))  # [-1, 16]
    # each pixel: its own 3x3 window and, through the gate, the whole map's field [-1, 16]
    assert rf["scaled"] == ReceptiveField((3, 3), (1, 1), (0.0, 0.0), ((-1, 16), (-1, 16)))
    for i in (0, 7, 15):
        assert rf["scaled"].bounds(i, i) == ((-1, 16), (-1, 16))
    if TORCH:
        import torch

        x, vals = _run(g, torch)
        assert measured(x, vals["scaled"], 0, 0, torch) == ((0, 15), (0, 15))


def test_a_gate_adds_the_whole_map_and_leaves_the_window_alone() -> None:
    """After squeeze-excitation each pixel's own window grows as without the gate (the gate's
    field is kept apart in ``whole``, not folded into a nominal window that would then grow
    with every later layer, as it did: EfficientNet-B0's last map was reported as seeing 4,153
    pixels of a 224 image)."""
    body = (
        "  y = x -> conv(4, 3, stride: 2, pad: 1) as c\n"
        "{gate}"
        "  y = y -> conv(4, 3, pad: 1) as c2 -> conv(4, 3, stride: 2, pad: 1) as c3\n"
        "  return y -> global_avgpool as pool"
    )
    gate = (
        "  gate = y -> global_avgpool -> conv(4, 1) -> sigmoid\n"
        "  y = mul(y, gate) as scaled\n"
    )
    plain, gated = (analyze(net(body.format(gate=t), "1, 32, 32")) for t in ("", gate))
    for name in ("c2", "c3"):
        assert gated[name].size == plain[name].size and gated[name].start == plain[name].start
        assert plain[name].whole == (None, None)
        assert gated[name].whole == gated["scaled"].whole == ((-1, 31), (-1, 31))
    assert gated["c3"].bounds(3, 3) == ((-1, 31), (-1, 31))
    assert gated["pool"].whole == (None, None)  # a whole-map node takes it into its window
    assert gated["pool"].bounds() == plain["pool"].bounds()


@pytest.mark.torch
def test_squeeze_excitation_network_by_brute_force(torch: Any) -> None:
    """MobileNetV3-Small (a gate in most blocks) at 64x64: every node's central pixel sees
    what the analysis says, clipped to the image."""
    g = compiled("mobilenet_v3_small", (3, 64, 64))
    fields = analyze(g)
    x, vals = _run(g, torch)
    gated = 0
    for name, y in vals.items():
        if y is x:
            continue
        row, col = y.shape[2] // 2, y.shape[3] // 2
        want = tuple((max(a, 0), min(b, 63)) for a, b in fields[name].bounds(row, col))
        assert measured(x, y, row, col, torch) == want, name
        gated += fields[name].whole != (None, None)
    assert gated > 50


def test_misaligned_grids_are_reported() -> None:
    g = net(
        "  a = x -> conv(1, 1, stride: 2)\n  b = x -> conv(1, 5)\n  return add(a, b) as s",
        "1, 8, 8",
    )
    with pytest.raises(ReceptiveFieldError, match=r"s: add inputs .* different jumps \[1, 2\]"):
        analyze(g)
    g = net("  return concat(x, x, axis: 2) as c", "1, 8, 8")
    with pytest.raises(ReceptiveFieldError, match="c: concat along a spatial axis"):
        analyze(g)


def test_adaptive_pooling() -> None:
    g = net(
        "  a = x -> adaptive_avgpool((4, 3)) as a\n  b = x -> adaptive_avgpool(5) as b\n"
        "  return a, b",
        "1, 8, 12",
    )
    rf = analyze(g)
    assert rf["a"] == ReceptiveField((2, 4), (2, 4), (0.5, 1.5))  # windows 2x4
    assert rf["b"] == ReceptiveField((8, 12), (8, 12), (3.5, 5.5))  # irregular: whole map
    confirm(g, ["a"], 2)


def test_every_op_has_a_rule() -> None:
    assert set(RULES) == set(Op)


def test_analysis_does_not_mutate() -> None:
    g = compiled("googlenet")
    before = g.dump()
    analyze(g)
    assert g.dump() == before


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model(name: str) -> None:
    g = compiled(name)
    rf = analyze(g)
    assert set(rf) == set(g.nodes)
    _, h, w = g.inputs[0].type.sample_shape
    for node in g:
        r = rf[node.name]
        assert min(r.size) >= 1 and min(r.jump) >= 1
        if node.op is Op.CONV2D:
            assert rf[node.inputs[0]].size <= r.size
    logits = rf[g.outputs[0][1]]
    last = [d - 1 for d in g[g.outputs[0][1]].type.shape[2:]]  # a per-pixel map's last pixel
    (top, bottom), (left, right) = logits.bounds()
    if last:  # a segmentation map (an FCN's pixel sees 451x451): its pixels together see it all
        (_, bottom), (_, right) = logits.bounds(*last)
    assert top <= 0 and left <= 0 and bottom >= h - 1 and right >= w - 1  # sees the whole image


@pytest.mark.torch
@pytest.mark.parametrize(
    "name, shape",
    [
        ("googlenet", None),  # ceil-mode pools, concat
        ("inception_v3", None),  # 1x7 / 7x1 kernels, unpadded convs
        ("shufflenet_v2_x1_0", None),  # channel split and shuffle
        ("mobilenet_v2", None),  # depthwise convs, residual adds
        ("densenet121", (3, 160, 160)),  # long concat chains, avg pools
    ],
)
def test_zoo_models_by_brute_force(name: str, shape: tuple[int, ...] | None, torch: Any) -> None:
    g = compiled(name, shape)
    rf = analyze(g)
    _, h, w = g.inputs[0].type.sample_shape
    central = [
        n.name
        for n in g
        if n.op is not Op.INPUT
        and len(n.type.shape) == 4
        and inside(rf[n.name], int(n.type.shape[2]) // 2, int(n.type.shape[3]) // 2, h, w)
    ]
    sample = central[:: max(1, len(central) // 12)]
    assert len(sample) >= 10
    assert brute_force(torch, g, sample) >= len(sample)


LAYER = st.tuples(
    st.sampled_from(["conv", "maxpool", "avgpool"]),
    st.tuples(st.integers(1, 5), st.integers(1, 5)),  # kernel
    st.tuples(st.integers(1, 2), st.integers(1, 2)),  # stride
    st.tuples(st.integers(1, 3), st.integers(1, 3)),  # dilation
    st.tuples(st.floats(0, 1), st.floats(0, 1)),  # padding, as a fraction of its maximum
)


def _layer(kind: str, k: Any, s: Any, d: Any, f: Any) -> str:
    if kind == "avgpool":
        d = (1, 1)
    keff = [di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True)]
    most = keff if kind == "conv" else k  # PyTorch: pool padding <= kernel // 2
    p = tuple(int(fi * (m // 2)) for fi, m in zip(f, most, strict=True))
    args = f"{k}, stride: {s}, pad: {p}" + ("" if kind == "avgpool" else f", dilation: {d}")
    return f"conv(1, {args})" if kind == "conv" else f"{kind}({args})"


@pytest.mark.torch
@settings(max_examples=30, deadline=None)
@given(st.lists(LAYER, min_size=1, max_size=4))
def test_random_stacks_by_brute_force(torch: Any, layers: list[Any]) -> None:
    body = "".join(f"  x = x -> {_layer(*layer)} as l{i}\n" for i, layer in enumerate(layers))
    # fields do not depend on the input size: measure them on a large input (strides <= 2 and
    # kernels <= 13 over <= 4 layers fit 320 pixels), then on one just large enough that the
    # central output pixel and its neighbour see no border
    rf = analyze(net(body + "  return x", "1, 320, 320"))[f"l{len(layers) - 1}"]
    h, w = (2 * s + 6 * j + 8 for s, j in zip(rf.size, rf.jump, strict=True))
    g = net(body + "  return x", f"1, {h}, {w}")
    assert analyze(g)[f"l{len(layers) - 1}"] == rf
    assert brute_force(torch, g, [f"l{i}" for i in range(len(layers))]) == 2 * len(layers)
