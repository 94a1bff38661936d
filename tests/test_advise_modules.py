"""The Inception lesson for a whole module (graphcnn.analysis.advise_modules): every branch
rewritten at once, priced exactly against the hand-written rewritten network."""

from __future__ import annotations

import textwrap

import graphcnn
from graphcnn.analysis import advise_bottlenecks, advise_modules
from graphcnn.analysis.advise_bottlenecks import Counts
from graphcnn.analysis.report import analyze as report
from graphcnn.cost import profile
from graphcnn.ir import Graph

NAIVE = """
  a = x -> conv(128, 1) as b1
  b = x -> conv(192, 3, pad: 1) as b2
  c = x -> conv(96, 5, pad: 2) as b3
  d = x -> maxpool(3, stride: 1, pad: 1) as b4
"""
REDUCED = """
  a = x -> conv(128, 1) as b1
  b = x -> conv(64, 1) -> conv(192, 3, pad: 1) as b2
  c = x -> conv(64, 1) -> conv(96, 5, pad: 2) as b3
  d = x -> maxpool(3, stride: 1, pad: 1) as b4 -> conv(64, 1)
"""


def net(module: str, tail: str = "return m") -> Graph:
    body = textwrap.indent(textwrap.dedent(module).strip(), "  ")
    return graphcnn.compile_text(
        f"network n() {{\n  x = input(256, 28, 28)\n{body}\n  m = concat(a, b, c, d)\n"
        f"  {tail}\n}}\n"
    )


def totals(g: Graph) -> Counts:
    t = profile(g).totals
    return Counts(t.params, t.macs)


def test_the_lectures_naive_module_854m_to_271m() -> None:
    (s,) = advise_modules.analyze(net(NAIVE))
    assert s.kind == "inception_module" and s.lesson == "Inception (module)"
    assert s.layer_before.macs == 854_196_224
    assert s.layer_after.macs == 271_351_808
    assert s.layer_after == totals(net(REDUCED))  # the module is the whole network here
    assert s.model_after == totals(net(REDUCED))
    assert "projection to 64 after the pool b4" in s.description
    assert s.snippet == (
        "concat(x -> conv(128, 1), x -> conv(64, 1) -> conv(192, 3, pad: 1), "
        "x -> conv(64, 1) -> conv(96, 5, pad: 2), x -> maxpool(3, stride: 1, pad: 1) -> "
        "conv(64, 1))"
    )


def test_layers_after_the_narrower_concat_are_repriced() -> None:
    tail = "return m -> conv(32, 3, pad: 1) as after -> global_avgpool -> flatten -> linear(10)"
    g, want = net(NAIVE, tail), net(REDUCED, tail)
    (s,) = advise_modules.analyze(g)
    assert s.model_after == totals(want)  # `after` reads 480 channels instead of 672
    assert s.model_after.macs < s.model_before.macs - (s.layer_before.macs - s.layer_after.macs)


def test_a_module_whose_width_a_residual_needs_is_not_advised() -> None:
    g = net(NAIVE, "return m + (x -> conv(672, 1))")
    assert advise_modules.analyze(g) == []  # the add needs 672 channels


def test_a_reduced_module_gets_no_advice() -> None:
    assert advise_modules.analyze(net(REDUCED)) == []
    assert advise_modules.analyze(graphcnn.compile("googlenet")) == []


def test_no_single_reduction_in_front_of_a_conv_that_has_one() -> None:
    """GoogLeNet's 3x3 and 5x5 branches and ResNet's bottleneck 3x3s already have their 1x1."""
    for name in ("googlenet", "resnet50"):
        g = graphcnn.compile(name)
        kinds = {(s.layer, s.kind) for s in advise_bottlenecks.analyze(g, top=200)}
        reduced = [layer for layer, kind in kinds if kind == "reduce_1x1"]
        for layer in reduced:
            src = g[g[layer].inputs[0]]
            while src.op.value in ("batch_norm", "relu"):
                src = g[src.inputs[0]]
            assert not (src.op.value == "conv2d" and src.attr_pair("kernel") == (1, 1)), layer
    (s,) = [s for s in advise_bottlenecks.analyze(net(NAIVE)) if s.layer == "b2"][:1]
    assert s.kind == "reduce_1x1"  # a naive branch still gets its single rewrite


def test_analyze_report_shows_both_single_and_combined_rewrites() -> None:
    a = report(net(NAIVE))
    kinds = [s.kind for s in a.suggestions]
    assert "reduce_1x1" in kinds and kinds[-1] == "inception_module"
    assert a.to_json()["suggestions"][-1]["layer_after"]["macs"] == 271_351_808
