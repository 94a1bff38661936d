"""The bottleneck advisor, against the three lessons worked out by hand.

Inception: the naive module on a 28x28x256 input (1x1/128, 3x3/192, 5x5/96 and a 3x3 max pool)
costs about 854M MACs; 1x1 reductions to 64 channels before the 3x3 and 5x5 convs cut it to about
a third. Both modules are written in the spec language and profiled, and the advisor's numbers
must equal those profiles exactly. VGG: three 3x3 convs have 27C^2 weights where one 7x7 has 49C^2.
MobileNet: a depthwise separable conv costs 1/N + 1/k^2 of the standard one.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from helpers.specs import net

import graphcnn
from graphcnn.analysis import advise_bottlenecks
from graphcnn.analysis.advise_bottlenecks import Counts, Suggestion, analyze
from graphcnn.cost import profile
from graphcnn.ir import Graph


def pick(suggestions: list[Suggestion], layer: str, kind: str) -> Suggestion:
    (s,) = [s for s in suggestions if s.layer == layer and s.kind == kind]
    return s


def counts(g: Graph) -> Counts:
    t = profile(g).totals
    return Counts(t.params, t.macs)


def layer_counts(g: Graph, name: str) -> Counts:
    (row,) = [r for r in profile(g).layers if r.name == name]
    return Counts(row.cost.params, row.cost.macs)


# --------------------------------------------------------------------------- Inception
INPUT = (256, 28, 28)
HW = 28 * 28


def inception(reduce3: bool, reduce5: bool) -> Graph:
    b2 = (
        "x -> conv(64, 1) as b2r -> conv(192, 3, pad: 1) as b2"
        if reduce3
        else ("x -> conv(192, 3, pad: 1) as b2")
    )
    b3 = (
        "x -> conv(64, 1) as b3r -> conv(96, 5, pad: 2) as b3"
        if reduce5
        else ("x -> conv(96, 5, pad: 2) as b3")
    )
    return net(
        f"""  a = x -> conv(128, 1) as b1
  b = {b2}
  c = {b3}
  d = x -> maxpool(3, stride: 1, pad: 1) as b4
  return concat(a, b, c, d)""",
        INPUT,
    )


def test_inception_by_hand() -> None:
    # naive: every branch reads all 256 channels
    naive_macs = {
        "b1": HW * 256 * 128,  # 25,690,112
        "b2": HW * 256 * 9 * 192,  # 346,816,512
        "b3": HW * 256 * 25 * 96,  # 481,689,600
    }
    naive = sum(naive_macs.values())
    assert naive == 854_196_224  # "about 854M"
    # reduced: 1x1 to 64 first, then the 3x3 / 5x5 on 64 channels
    reduced = HW * 256 * 128 + 2 * HW * 256 * 64 + HW * 64 * 9 * 192 + HW * 64 * 25 * 96
    assert reduced == 258_506_752
    assert 0.25 < reduced / naive < 0.35  # "about a third"
    # params (biases on: the spec's default)
    naive_params = (256 * 128 + 128) + (256 * 9 * 192 + 192) + (256 * 25 * 96 + 96)
    reduced_params = (
        (256 * 128 + 128) + 2 * (256 * 64 + 64) + (64 * 9 * 192 + 192) + (64 * 25 * 96 + 96)
    )
    assert counts(inception(False, False)) == Counts(naive_params, naive)
    assert counts(inception(True, True)) == Counts(reduced_params, reduced)
    for name, macs in naive_macs.items():
        assert layer_counts(inception(False, False), name).macs == macs


@pytest.mark.parametrize("reduction", [None, 64])
def test_inception_advice_equals_the_profiled_modules(reduction: int | None) -> None:
    g = inception(False, False)
    advice = analyze(g, top=5, reduction=reduction)
    s3, s5 = pick(advice, "b2", "reduce_1x1"), pick(advice, "b3", "reduce_1x1")
    only3, only5, both = inception(True, False), inception(False, True), inception(True, True)
    # the layer before and after: the profiled branch convs
    assert s3.layer_before == layer_counts(g, "b2")
    assert s3.layer_after == Counts(
        layer_counts(only3, "b2r").params + layer_counts(only3, "b2").params,
        layer_counts(only3, "b2r").macs + layer_counts(only3, "b2").macs,
    )
    assert s3.layer_after.macs == HW * 256 * 64 + HW * 64 * 9 * 192
    assert s5.layer_after.macs == HW * 256 * 64 + HW * 64 * 25 * 96
    # the whole model before and after: the profiled modules
    for s, variant in ((s3, only3), (s5, only5)):
        assert s.model_before == counts(g) == Counts(s.model_before.params, 854_196_224)
        assert s.model_after == counts(variant)
    # both reductions together: the savings add up to the reduced module
    saved = sum(s.layer_before.macs - s.layer_after.macs for s in (s3, s5))
    assert 854_196_224 - saved == counts(both).macs == 258_506_752
    saved_params = sum(s.layer_before.params - s.layer_after.params for s in (s3, s5))
    assert counts(g).params - saved_params == counts(both).params
    # the snippet is the reduced branch
    assert s3.snippet == "x -> conv(64, 1) -> conv(192, 3, pad: 1)"
    assert s5.snippet == "x -> conv(64, 1) -> conv(96, 5, pad: 2)"
    said = "reduction width 64 given" if reduction else "default width min(256 // 2, 64) = 64"
    assert said in s3.description and "Inception" in s3.description


def test_default_reduction_width() -> None:
    assert advise_bottlenecks.default_reduction(256) == 64  # capped
    assert advise_bottlenecks.default_reduction(96) == 48  # half
    g = net("  return x -> conv(64, 3, pad: 1, bias: false) as c", (96, 14, 14))
    s = pick(analyze(g), "c", "reduce_1x1")
    assert s.snippet == "x -> conv(48, 1, bias: false) -> conv(64, 3, pad: 1, bias: false)"
    assert s.layer_after == Counts(96 * 48 + 48 * 9 * 64, 196 * (96 * 48 + 48 * 9 * 64))


# --------------------------------------------------------------------------- VGG
@pytest.mark.parametrize("k, n, weights", [(7, 3, 27), (5, 2, 18)])
def test_vgg_stacked_3x3(k: int, n: int, weights: int) -> None:
    c = 64
    g = net(f"  return x -> conv({c}, {k}, pad: {k // 2}, bias: false) as big", (c, 28, 28))
    s = pick(analyze(g), "big", "stack_3x3")
    assert s.layer_before.params == k * k * c * c  # 49 C^2 for 7x7
    assert s.layer_after.params == weights * c * c == n * 9 * c * c  # 27 C^2 for 7x7
    assert Fraction(s.layer_after.macs, s.layer_before.macs) == Fraction(weights, k * k)
    assert s.snippet == "x -> " + " -> ".join([f"conv({c}, 3, pad: 1, bias: false)"] * n)
    assert [nd.type for nd in s.nodes][-1] == g["big"].type
    assert f"{9 * n} vs {k * k} weights per channel pair" in s.description


def test_stacked_3x3_keeps_stride_and_shape() -> None:
    g = net("  return x -> conv(64, 7, stride: 2, pad: 3) as stem", (32, 56, 56))
    s = pick(analyze(g), "stem", "stack_3x3")
    # widening 32 -> 64: the stack stays at 32 channels until its last conv
    assert s.snippet == (
        "x -> conv(32, 3, stride: 2, pad: 1) -> conv(32, 3, pad: 1) -> conv(64, 3, pad: 1)"
    )
    assert s.nodes[-1].type == g["stem"].type
    assert s.layer_after.params == 2 * (9 * 32 * 32 + 32) + 9 * 32 * 64 + 64
    assert "32 -> 32 -> 32 -> 64 channels" in s.description
    # narrowing 64 -> 32: the first conv narrows, the rest stay at 32
    g = net("  return x -> conv(32, 5, pad: 2, bias: false) as c", (64, 14, 14))
    s = pick(analyze(g), "c", "stack_3x3")
    assert s.snippet == "x -> conv(32, 3, pad: 1, bias: false) -> conv(32, 3, pad: 1, bias: false)"
    assert s.layer_after.params == 9 * 64 * 32 + 9 * 32 * 32
    # an RGB stem: the stack would cost more, and nothing to reduce or separate
    rgb = net("  return x -> conv(64, 7, stride: 2, pad: 3) as stem", (3, 224, 224))
    assert analyze(rgb) == []


# --------------------------------------------------------------------------- MobileNet
@pytest.mark.parametrize("k, n", [(3, 128), (5, 64), (3, 32)])
def test_mobilenet_depthwise_separable_ratio(k: int, n: int) -> None:
    g = net(f"  return x -> conv({n}, {k}, pad: {k // 2}, bias: false) as c", (64, 14, 14))
    s = pick(analyze(g), "c", "depthwise_separable")
    ratio = Fraction(1, n) + Fraction(1, k * k)
    assert Fraction(s.layer_after.macs, s.layer_before.macs) == ratio
    assert Fraction(s.layer_after.params, s.layer_before.params) == ratio
    # by hand: dw k x k on 64 channels + pw 1x1 64 -> N, at 14x14
    assert s.layer_after.macs == 196 * 64 * k * k + 196 * 64 * n
    assert s.snippet == (
        f"x -> conv(64, {k}, pad: {k // 2}, groups: 64, bias: false) -> conv({n}, 1, bias: false)"
    )


# --------------------------------------------------------------------------- general
@pytest.mark.parametrize("model", ["naive inception", "googlenet_paper", "alexnet"])
def test_snippets_compile_to_the_priced_layers(model: str) -> None:
    g = inception(False, False) if model == "naive inception" else graphcnn.compile(model)
    advice = analyze(g, top=30)
    # GoogLeNet's k x k convs all have their 1x1 reduction already: none is suggested again
    expected = {"stack_3x3", "depthwise_separable"} | (
        set() if model == "googlenet_paper" else {"reduce_1x1"}
    )
    assert {s.kind for s in advice} == expected
    for s in advice:
        x = g[g[s.layer].inputs[0]].type
        c, h, w = x.sample_shape
        rewritten = net(f"  return {s.snippet}", (c, h, w))
        assert counts(rewritten) == s.layer_after, s
        (out,) = [rewritten[n].type.sample_shape for _, n in rewritten.outputs]
        assert out == g[s.layer].type.sample_shape
        assert s.model_after == Counts(
            s.model_before.params - s.layer_before.params + s.layer_after.params,
            s.model_before.macs - s.layer_before.macs + s.layer_after.macs,
        )
        assert s.layer_after.macs < s.layer_before.macs
        assert s.lesson in s.description


def test_ranked_by_macs_top_layers_only() -> None:
    g = graphcnn.compile("vgg16")
    # every 3x3 conv but the first (3 input channels), most MACs first, ties in graph order
    convs = [r for r in profile(g).layers if r.op == "conv2d"][1:]
    ranked = sorted(convs, key=lambda r: -r.cost.macs)
    for top in (1, 3, 12):
        layers = list(dict.fromkeys(s.layer for s in analyze(g, top=top)))
        assert layers == [r.name for r in ranked[:top]]
    assert len(set(s.layer for s in analyze(g, top=100))) == len(convs) == 12
    assert analyze(g, top=0) == []


def test_only_square_ungrouped_kxk_inference_convs() -> None:
    g = net(
        """  a = x -> conv(64, 1) as one
  b = x -> conv(64, 3, pad: 1, groups: 4) as grouped
  c = x -> conv(64, 3, pad: 1, groups: 64) as depthwise
  d = x -> conv(64, (1, 7), pad: (0, 3)) as asym
  e = x -> conv(64, 3, pad: 1) as ok
  training { t = x -> conv(64, 3, pad: 1) as aux }
  return concat(a, b, c, d, e), t""",
        (64, 16, 16),
    )
    assert {s.layer for s in analyze(g, top=10)} == {"ok"}


def test_advice_is_never_applied() -> None:
    g = inception(False, False)
    before = g.dump()
    analyze(g)
    assert g.dump() == before and "b2r" not in g.nodes


def test_batch_scales_macs_not_params() -> None:
    g = inception(False, False)
    one = pick(analyze(g), "b3", "reduce_1x1")
    eight = pick(analyze(g, batch=8), "b3", "reduce_1x1")
    assert eight.layer_after == Counts(one.layer_after.params, 8 * one.layer_after.macs)
    assert eight.model_after.macs == 8 * one.model_after.macs


def test_json() -> None:
    s = pick(analyze(inception(False, False)), "b2", "depthwise_separable")
    data = s.to_json()
    assert data["lesson"] == "MobileNet" and data["layer"] == "b2"
    assert data["layer_before"] == {"params": s.layer_before.params, "macs": 346_816_512}
    assert set(data) == {
        "layer",
        "kind",
        "lesson",
        "description",
        "layer_before",
        "layer_after",
        "model_before",
        "model_after",
        "snippet",
    }
