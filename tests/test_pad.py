"""The ``pad`` op: explicit, possibly asymmetric, constant padding of H and W, through every stage.

``x -> pad([left, right, top, bottom], value: 0)`` is ``F.pad(x, (left, right, top, bottom),
value=0)`` (``nn.ZeroPad2d``, ``nn.ConstantPad2d``); ``value: "-inf"`` is the border of timm's
"same" max pooling (``MaxPool2dSame``). Shapes and errors, cost, the receptive field, fold_bn
(never across a pad), the torch meaning, ONNX Runtime, and the import of ONNX ``Pad``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from helpers.passes import check_pass
from helpers.specs import net

from graphcnn.analysis import peak_memory
from graphcnn.analysis.receptive_field import analyze
from graphcnn.cost import CONVENTION, profile
from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Op


def pad_node(g: Graph) -> Any:
    (node,) = [n for n in g if n.op is Op.PAD]
    return node


def spec_error(body: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        net(body, "4, 6, 8")
    return info.value


def test_asymmetric_pads_grow_width_and_height() -> None:
    g = net("return x -> pad([1, 2, 3, 4])", "4, 6, 8")
    node = pad_node(g)
    assert dict(node.attrs) == {"pads": (1, 2, 3, 4), "value": 0.0}
    assert node.type.shape[1:] == (4, 6 + 3 + 4, 8 + 1 + 2)  # top/bottom on H, left/right on W
    assert node.params == ()


def test_one_integer_pads_every_side_and_value_takes_minus_infinity() -> None:
    node = pad_node(net('return x -> pad(2, value: "-inf")', "4, 6, 8"))
    assert dict(node.attrs) == {"pads": (2, 2, 2, 2), "value": -math.inf}
    assert node.type.shape[1:] == (4, 10, 12)
    assert pad_node(net("return x -> pad(1, value: 0.5)")).attrs["value"] == 0.5


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("return x -> pad([1, 2, 3])", ["[left, right, top, bottom]", "got [1, 2, 3]"]),
        ("return x -> pad([0, 0, -3, -3])", ["crop the input [4, 6, 8] to nothing (0x8)"]),
        ('return x -> pad(1, value: "zero")', ['"-inf"', 'got "zero"']),
        ("return x -> pad(1, value: true)", ["finite number"]),
        ("return x -> flatten -> pad(1)", ["pad expects a [C, H, W] input"]),
    ],
)
def test_bad_pads_are_spec_errors_with_the_location(body: str, words: list[str]) -> None:
    err = spec_error(body)
    text = str(err)
    for word in words:
        assert word in text, text
    assert ":3:" in text  # the line of the pad call (line 2 is the input)


def test_a_pad_costs_no_arithmetic_and_counts_its_output() -> None:
    assert "pad 0" in CONVENTION["flops"]
    g = net("return x -> pad([1, 0, 2, 0])", "4, 6, 8")
    (row,) = profile(g, batch=3).layers
    assert (row.cost.macs, row.cost.flops, row.cost.params) == (0, 0, 0)
    assert row.cost.activation_bytes == 3 * 4 * 8 * 9 * 4
    assert row.input_bytes == 3 * 4 * 6 * 8 * 4


def test_peak_memory_saves_nothing_for_a_pad() -> None:
    g = net("return x -> conv(4, 1) as c -> pad(1) as p -> relu", "4, 6, 8")
    report = peak_memory.analyze(g, 1, training=True)
    # conv saves the input, relu its output; the pad's own output is relu's input, not kept
    assert report.saved_bytes == 4 * 6 * 8 * 4 + 4 * 8 * 10 * 4


def test_receptive_field_moves_the_start_into_the_border(torch: Any) -> None:
    g = net("x = x -> pad([1, 0, 2, 0]) as p\nreturn x -> conv(1, 3) as c", "1, 9, 9")
    rf = analyze(g)
    assert rf["p"].size == (1, 1) and rf["p"].start == (-2.0, -1.0)
    assert rf["c"].size == (3, 3) and rf["c"].start == (-1.0, 0.0)
    # brute force: output pixel (3, 4) of the conv sees input rows 2..4 and columns 4..6
    import torch.nn.functional as F

    x = torch.ones(1, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(F.pad(x, (1, 0, 2, 0)), torch.ones(1, 1, 3, 3, dtype=torch.float64))
    (grad,) = torch.autograd.grad(y[0, 0, 3, 4], x)
    rows, cols = grad[0, 0].sum(1).nonzero().flatten(), grad[0, 0].sum(0).nonzero().flatten()
    assert ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))) == rf["c"].bounds(3, 4)


def test_a_negative_pad_crops_and_moves_the_start_inwards() -> None:
    """NASNet's shifted path: ZeroPad2d((-1, 1, -1, 1)) then every other pixel: input pixels
    1, 3, 5, ... (the last output pixel, on an odd input, is the zero pad)."""
    g = net("x = x -> pad([-1, 1, -1, 1]) as p\nreturn x -> avgpool(1, stride: 2) as s", "1, 9, 9")
    assert g["p"].type.shape[2:] == (9, 9) and g["s"].type.shape[2:] == (5, 5)
    rf = analyze(g)
    assert rf["p"].start == (1.0, 1.0) and rf["s"].jump == (2, 2)
    assert rf["s"].bounds(2, 3) == ((5, 5), (7, 7))


def test_fold_bn_never_folds_across_a_pad(torch1: Any) -> None:
    """conv -> pad -> bn: the border would get the BN's shift, which a folded conv cannot add;
    bn -> pad -> conv: the border would miss it."""
    result = check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 3, bias: false) as conv1 -> pad([1, 1, 0, 2]) -> bn as bn1
        return y -> bn as bn2 -> pad(1) -> conv(4, 1) as conv2
        """,
        notes=None,
    )
    assert len(result.notes) == 2 and not result.removed, result.notes
    for note, bn in zip(sorted(result.notes), ("bn1", "bn2"), strict=True):
        assert note.startswith(f"not folded: {bn}: ") and "pad" in note, note


PADDED = """
a = x -> pad([0, 1, 0, 1]) -> conv(6, 3, stride: 2) as conv1
b = x -> pad([1, 0, 0, 1], value: "-inf") -> maxpool(3, stride: 2)
c = x -> pad(1, value: -0.5) -> avgpool(3, stride: 2)
d = x -> pad([-1, 1, -1, 1]) -> avgpool(1, stride: 2)
return concat(a, b, c, d)
"""
"""Zero, -inf and another constant (the first two as timm's Conv2dSame / MaxPool2dSame on
10x10), and NASNet's shifted path: crop the first row and column, pad the last."""


def _reference(torch: Any, m: Any, x: Any) -> Any:
    import torch.nn.functional as F

    a = F.conv2d(F.pad(x, (0, 1, 0, 1)), m.conv1.weight, m.conv1.bias, stride=2)
    b = F.max_pool2d(F.pad(x, (1, 0, 0, 1), value=-math.inf), 3, 2)
    c = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), value=-0.5), 3, 2)
    d = F.avg_pool2d(torch.nn.ZeroPad2d((-1, 1, -1, 1))(x), 1, 2)
    assert torch.equal(d[:, :, :4, :4], x[:, :, 1::2, 1::2][:, :, :4, :4])
    return torch.cat([a, b, c, d], 1)


def test_torch_lowering_is_f_pad(torch1: Any) -> None:
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    g = net(PADDED, "3, 10, 10")
    m = to_torch(g).eval()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        out = m(x)
    assert out.shape == (2, 15, 5, 5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _reference(torch, m, x), rtol=0, atol=0)


@pytest.mark.parametrize("opset", [17, 21])
def test_onnx_runtime_computes_what_torch_computes(torch1: Any, opset: int) -> None:
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import assert_valid, ort_run, rel_err, sample, torch_run

    from graphcnn.backends.to_onnx import to_onnx

    g = net(PADDED, "3, 10, 10")
    model = to_onnx(g, opset=opset)
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert len(pads) == 4 and all(len(n.input) == 3 for n in pads)
    assert_valid(model, g)
    x = sample(g)
    (ours,) = ort_run(model, x)
    (ref,) = torch_run(torch1, g, None, x)
    assert rel_err(ours, ref) < 1e-6


def test_onnx_round_trip_keeps_every_pad() -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    g = net(PADDED, "3, 10, 10")
    back, _ = from_onnx(to_onnx(g))
    want = [dict(n.attrs) for n in g if n.op is Op.PAD]
    assert [dict(n.attrs) for n in back if n.op is Op.PAD] == want
    assert want[1]["value"] == -math.inf and want[2]["value"] == -0.5


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_torch_exported_padding_imports_as_pad(torch1: Any, exporter: str) -> None:
    """``nn.ZeroPad2d`` (also NASNet's cropping one) and ``F.pad(..., value=-inf)`` as
    torch.onnx.export writes them."""
    onnx = pytest.importorskip("onnx")
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    import io

    import torch.nn.functional as F

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_torch import to_torch

    torch = torch1

    class Padded(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pad = torch.nn.ZeroPad2d((0, 1, 2, 0))
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
            self.shift = torch.nn.ZeroPad2d((-1, 1, -1, 1))

        def forward(self, x: Any) -> Any:
            y = self.conv(self.pad(x))
            return F.max_pool2d(F.pad(self.shift(y), (1, 0, 0, 1), value=-math.inf), 2)

    m = Padded().eval()
    x = torch.randn(1, 3, 11, 11)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(m, (x,), f, dynamo=True, optimize=False)
        else:
            torch.onnx.export(m, (x,), f, opset_version=17, dynamo=False)
    g, w = from_onnx(onnx.load_from_string(f.getvalue()))
    pads = [dict(n.attrs) for n in g if n.op is Op.PAD]
    assert pads == [
        {"pads": (0, 1, 2, 0), "value": 0.0},
        {"pads": (-1, 1, -1, 1), "value": 0.0},
        {"pads": (1, 0, 0, 1), "value": -math.inf},
    ]
    with torch.no_grad():
        torch.testing.assert_close(to_torch(g, w).eval()(x), m(x))


@pytest.mark.parametrize(("size", "k", "s"), [(9, 3, 2), (10, 3, 2), (11, 3, 1), (8, 2, 2)])
def test_minus_infinity_pad_then_max_pool_is_timms_max_pool_2d_same(
    torch1: Any, size: int, k: int, s: int
) -> None:
    timm_same = pytest.importorskip("timm.layers.pool2d_same")
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    # TensorFlow's SAME: the total padding of one axis, the smaller half first
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    lo, hi = total // 2, total - total // 2
    g = net(
        f'return x -> pad([{lo}, {hi}, {lo}, {hi}], value: "-inf") -> maxpool({k}, stride: {s})',
        f"2, {size}, {size}",
    )
    x = -torch.rand(1, 2, size, size) - 1.0  # all negative: a zero border would win the max
    with torch.no_grad():
        ours = to_torch(g).eval()(x)
        ref = timm_same.MaxPool2dSame(k, s)(x)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def _onnx_pad(onnx: Any, pads: list[int], mode: str = "constant", value: float = 0.0) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Pad", ["x", "pads", "v"], ["y"], name="the_pad", mode=mode)
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[
            numpy_helper.from_array(np.asarray(pads, np.int64), "pads"),
            numpy_helper.from_array(np.asarray(value, np.float32), "v"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_onnx_pad_of_a_hand_written_model_imports() -> None:
    onnx = pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx

    g, _ = from_onnx(_onnx_pad(onnx, [0, 0, 1, 2, 0, 0, 3, 4], value=-1.5))
    assert dict(pad_node(g).attrs) == {"pads": (2, 4, 1, 3), "value": -1.5}
    assert pad_node(g).type.shape[1:] == (3, 8, 10)
    nothing, _ = from_onnx(_onnx_pad(onnx, [0] * 8))  # all-zero pads: nothing to import
    assert [n.op for n in nothing] == [Op.INPUT]


@pytest.mark.parametrize(
    ("pads", "mode", "words"),
    [
        ([0, 0, 1, 1, 0, 0, 1, 1], "reflect", "mode 'reflect' is not supported"),
        ([0, 1, 1, 1, 0, 1, 1, 1], "constant", "pad the batch or the channels"),
        ([0, 0, 1, 1], "constant", "a begin and an end"),
    ],
)
def test_onnx_pads_the_ir_cannot_express_are_refused(
    pads: list[int], mode: str, words: str
) -> None:
    onnx = pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    with pytest.raises(OnnxImportError, match="'the_pad' \\(Pad\\)") as info:
        from_onnx(_onnx_pad(onnx, pads, mode))
    assert words in str(info.value)


@pytest.mark.slow
def test_timms_exported_nasnetalarge_imports_with_its_pads(torch1: Any) -> None:
    """torch.onnx.export of timm's nasnetalarge (at 96x96): Conv2dSame / MaxPool2dSame /
    AvgPool2dSame pads, traced at a fixed size, and the cropping ZeroPad2d((-1, 1, -1, 1)) all
    import as pad nodes, and the imported model computes what timm's does."""
    onnx = pytest.importorskip("onnx")
    timm = pytest.importorskip("timm")
    import io

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    m = timm.create_model("nasnetalarge").eval()
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), f, opset_version=17, dynamo=False)
    g, w = from_onnx(onnx.load_from_string(f.getvalue()))
    pads = {dict(n.attrs)["pads"] for n in g if n.op is Op.PAD}
    assert {(-1, 1, -1, 1), (0, 1, 0, 1), (2, 3, 2, 3)} <= pads  # crop, asymmetric SAME
    assert any(n.attrs["value"] == -math.inf for n in g if n.op is Op.PAD)  # MaxPool2dSame
    with torch.no_grad():
        ours, ref = to_torch(g, w).eval()(x), m(x)
    assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()
