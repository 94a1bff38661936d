"""Every op and every supported opset: a spec using every op lowers at each opset (gelu: Gelu
from opset 20, erf form before) and computes what torch does; unsupported opsets are clear errors;
the output is deterministic; single ops whose PyTorch and ONNX meanings can differ (ceil-mode
pools, even-size LRN) are exact or refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402
from helpers.onnx_ref import (  # noqa: E402
    TOL,
    assert_valid,
    ort_run,
    rel_err,
    sample,
    torch_run,
)
from helpers.weights import random_bn_weights  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_onnx import (  # noqa: E402
    DEFAULT_OPSET,
    LOWERINGS,
    OPSETS,
    OnnxError,
    to_onnx,
)
from graphcnn.cli import main  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402

ALL_OPS = """
network allops(classes = 10) {
  x = input(3, 16, 16)
  x = x -> conv(16, 3, pad: 1, bias: false) as stem -> bn as stem_bn -> gelu
  a = x -> conv(16, 3, pad: 2, dilation: 2, groups: 4) as dil -> relu6 -> relu
  b = x -> conv(16, 1) as pw -> silu
  c = x -> hardswish -> leaky_relu(0.1) -> dropout(0.2) -> drop_path(0.1)
  d = (x -> sigmoid) * (x -> global_avgpool -> conv(16, 1) as gate -> tanh)
  x = concat([a + b, c, d]) -> channel_shuffle(4)
  p, q = split(x, [16, 32])
  x = concat([q, p -> identity]) -> lrn(5, alpha: 1e-2, k: 2.0) -> bn(affine: false) as nab
  r = x -> permute([0, 2, 3, 1]) -> layer_norm(axis: -1) -> linear(48, last_dim: true) as pw2
        -> gelu(approximate: "tanh") -> permute([0, 3, 1, 2]) -> layer_scale(0.5) as gamma
  x = (x + r * 0.17) -> layer_norm -> hardsigmoid -> scale(2.0, divide: true)
  x = x -> pad([0, 1, 1, 0], value: "-inf") -> maxpool(3, stride: 2, pad: 1, ceil: true)
        -> avgpool(3, stride: 1, pad: 1)
  x = x -> avgpool(2, count_include_pad: false) -> upsample([2, 4])
        -> upsample(2, mode: "bilinear") -> upsample(2, mode: "bilinear", align_corners: true)
        -> adaptive_avgpool(2) -> softmax(axis: 1)
  x = x -> reshape([48, 4]) -> flatten -> linear(32) as fc1 -> bn as fc1_bn -> gelu
  return x -> linear(classes) as fc
}
"""


@pytest.fixture(scope="module")
def allops() -> Graph:
    return graphcnn.compile_text(ALL_OPS)


def test_all_ops_spec_covers_every_lowering(allops: Graph) -> None:
    used = {n.op for n in allops}
    missing = set(LOWERINGS) - used - {Op.GLOBAL_AVG_POOL, Op.MUL, Op.RESHAPE}
    assert not missing, missing
    assert set(LOWERINGS) == set(Op), set(Op) - set(LOWERINGS)


@pytest.mark.parametrize("opset", OPSETS)
def test_every_supported_opset_gives_a_valid_model(opset: int, allops: Graph, torch1: Any) -> None:
    w = random_bn_weights(allops)
    model = to_onnx(allops, w, opset=opset)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    assert_valid(model, allops)
    ops = {n.op_type for n in model.graph.node}
    if opset >= 20:
        assert "Gelu" in ops and "Erf" not in ops
    else:
        assert "Erf" in ops and "Gelu" not in ops
    x = sample(allops)
    (ref,) = torch_run(torch1, allops, w, x)
    (out,) = ort_run(model, x)
    assert rel_err(out, ref) <= TOL


def test_default_opset_is_17(allops: Graph) -> None:
    assert DEFAULT_OPSET == 17 == OPSETS[0]
    assert to_onnx(allops).opset_import[0].version == 17


@pytest.mark.parametrize("opset", [1, 13, 16, 22, 99])
def test_unsupported_opset_is_a_clear_error(opset: int, allops: Graph) -> None:
    with pytest.raises(OnnxError) as info:
        to_onnx(allops, opset=opset)
    msg = info.value.format()
    assert f"opset {opset}" in msg
    assert "17, 18, 19, 20, 21" in msg


def test_cli_rejects_an_unsupported_opset(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(
        main, ["compile", "lenet5", "--target", "onnx", "-o", str(out), "--opset", "16"]
    )
    assert r.exit_code == 2
    assert all(s in r.output for s in ("17", "18", "19", "20", "21"))
    assert not out.exists()


def test_output_is_deterministic(allops: Graph) -> None:
    a = to_onnx(allops, seed=5).SerializeToString()
    assert a == to_onnx(allops, seed=5).SerializeToString()
    assert a != to_onnx(allops, seed=6).SerializeToString()


def ceil_pool(pool: str) -> Graph:
    """A ceil-mode pool whose last window PyTorch drops (it would start in the right padding)."""
    return graphcnn.compile_text(
        f"network t() {{\n x = input(3, 11, 11)\n return x -> {pool}(2, stride: 2, pad: 1, "
        "ceil: true) as pool\n}\n"
    )


def test_ceil_mode_max_pool_dropping_the_last_window_is_exact(torch1: Any) -> None:
    """Padding never wins a max: the lowering pads just enough without ceil mode."""
    g = ceil_pool("maxpool")
    model = to_onnx(g)
    assert_valid(model, g)
    x = sample(g)
    assert rel_err(ort_run(model, x)[0], torch_run(torch1, g, None, x)[0]) <= TOL


def test_ceil_mode_avg_pool_dropping_the_last_window_is_refused() -> None:
    """Extra padding would change an average's divisor: a clear error naming the pool."""
    with pytest.raises(OnnxError) as info:
        to_onnx(ceil_pool("avgpool"))
    text = info.value.format()
    assert "avg_pool2d pool (<spec>:3:" in text and "ceil mode with padding" in text
    assert "hint: use ceil: false" in text


def test_even_size_lrn() -> None:
    """ONNX's LRN needs an odd window (and centres an even one differently from PyTorch)."""
    g = graphcnn.compile_text(
        "network t() {\n x = input(8, 6, 6)\n return x -> lrn(4, alpha: 0.1, k: 2.0) as n\n}\n"
    )
    with pytest.raises(OnnxError) as info:
        to_onnx(g)
    text = info.value.format()
    assert "lrn n (<spec>:3:" in text and "has an even size" in text
    assert "hint: use an odd size" in text
