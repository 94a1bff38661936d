"""The ``upsample`` op: upsampling by a whole factor per spatial axis, through every stage.

``x -> upsample(s)`` (or ``upsample([sh, sw])``) is ``nn.Upsample(scale_factor=s,
mode="nearest")`` / ``F.interpolate(x, scale_factor=s, mode="nearest")``: output pixel
``(i, j)`` copies input pixel ``(i // sh, j // sw)``. ``upsample(s, mode: "bilinear"
[, align_corners: true])`` is ``mode="bilinear"`` (segmentation heads, FPNs). Shapes and errors,
cost, the receptive field against a brute-force gradient, the torch meaning, ONNX Runtime, and
the import of ONNX ``Resize`` from both of torch's exporters (HRNet's fuse layers, a DeepLab
head).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest
from helpers.specs import net

from graphcnn.analysis import peak_memory
from graphcnn.analysis.receptive_field import ReceptiveFieldError, analyze
from graphcnn.cost import CONVENTION, profile
from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Op


def up_nodes(g: Graph) -> list[Any]:
    return [n for n in g if n.op is Op.UPSAMPLE]


def test_one_integer_scales_both_axes_and_a_pair_each() -> None:
    (node,) = up_nodes(net("return x -> upsample(2)", "4, 3, 5"))
    assert dict(node.attrs) == {"scale": (2, 2)}
    assert node.type.shape[1:] == (4, 6, 10) and node.params == ()
    (node,) = up_nodes(net("return x -> upsample(scale: [1, 3])", "4, 3, 5"))
    assert node.type.shape[1:] == (4, 3, 15)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("return x -> upsample(0)", ["scale"]),
        ("return x -> upsample([2, 2, 2])", ["integer or a pair", "got [2, 2, 2]"]),
        ("return x -> upsample(1.5)", ["scale"]),
        ("return x -> flatten -> upsample(2)", ["upsample expects a [C, H, W] input"]),
    ],
)
def test_bad_scales_are_spec_errors_with_the_location(body: str, words: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        net(body, "4, 6, 8")
    text = str(info.value)
    for word in words:
        assert word in text, text
    assert ":3:" in text  # the line of the upsample call (line 2 is the input)


def test_an_upsample_costs_no_arithmetic_and_counts_its_output() -> None:
    assert "upsample (nearest) 0" in CONVENTION["flops"]
    g = net("return x -> upsample([2, 3])", "4, 6, 8")
    (row,) = profile(g, batch=3).layers
    assert (row.cost.macs, row.cost.flops, row.cost.params) == (0, 0, 0)
    assert row.cost.activation_bytes == 3 * 4 * 12 * 24 * 4


def test_peak_memory_saves_nothing_for_an_upsample() -> None:
    g = net("return x -> conv(4, 1) as c -> upsample(2) as u -> relu", "4, 6, 8")
    report = peak_memory.analyze(g, 1, training=True)
    # conv saves its input, relu its output; the upsample's backward needs only sizes
    assert report.saved_bytes == 4 * 6 * 8 * 4 + 4 * 12 * 16 * 4


def _seen(torch: Any, y: Any, x: Any, i: int, j: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Brute force: the input rows and columns output pixel (i, j) depends on."""
    (grad,) = torch.autograd.grad(y[0, 0, i, j], x, retain_graph=True)
    rows, cols = grad[0, 0].sum(1).nonzero().flatten(), grad[0, 0].sum(0).nonzero().flatten()
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def test_receptive_field_keeps_the_size_and_divides_the_jump(torch: Any) -> None:
    """stride-2 conv, 2x upsample, 3x3 conv (HRNet's fuse, then a block): the upsample keeps
    each pixel's field (pixel i copies pixel i // 2, so pixels 0, 2, 4, ... are exact); the
    conv after it sees two source pixels from every output pixel, so its size is exact."""
    import torch.nn.functional as F

    g = net(
        "x = x -> conv(1, 3, stride: 2, pad: 1) as a -> upsample(2) as u\n"
        "return x -> conv(1, 3, pad: 1) as c",
        "1, 16, 16",
    )
    rf = analyze(g)
    assert (rf["a"].size, rf["a"].jump) == ((3, 3), (2, 2))
    assert (rf["u"].size, rf["u"].jump, rf["u"].start) == ((3, 3), (1, 1), rf["a"].start)
    assert (rf["c"].size, rf["c"].jump) == ((5, 5), (1, 1))

    x = torch.ones(1, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    u = F.interpolate(F.conv2d(x, w, stride=2, padding=1), scale_factor=2, mode="nearest")
    c = F.conv2d(u, w, padding=1)
    for i in range(3, 13):  # interior pixels: the brute force sees no clipping at the image
        (top, bottom), (left, right) = _seen(torch, u, x, i, i)
        assert (bottom - top + 1, right - left + 1) == rf["u"].size
        if i % 2 == 0:
            assert ((top, bottom), (left, right)) == rf["u"].bounds(i, i)
        (top, bottom), (left, right) = _seen(torch, c, x, i, i + 1)
        assert (bottom - top + 1, right - left + 1) == rf["c"].size
        # the nominal grid: a true centre is at most (s - 1) * jump off
        seen = ((top, bottom), (left, right))
        for (lo, hi), (want, _) in zip(seen, rf["c"].bounds(i, i + 1), strict=True):
            assert abs(lo - want) <= 1 and hi - lo + 1 == 5


def test_a_scale_that_does_not_divide_the_jump_is_refused() -> None:
    g = net("return x -> upsample(2) as u", "1, 8, 8")
    with pytest.raises(ReceptiveFieldError, match="u: upsample by 2x2 of a grid of jump 1x1"):
        analyze(g)


UPSAMPLED = """
a = x -> conv(4, 3, stride: 2, pad: 1) as down -> upsample(2)
b = x -> conv(4, 3, stride: 4, pad: 1) as down4 -> upsample([4, 4])
c = x -> conv(4, 1) as tall -> avgpool([2, 1]) -> upsample([2, 1])
return concat(a + b, c)
"""
"""HRNet's fuse (a strided branch upsampled back and added) and an upsample of one axis."""


def _reference(torch: Any, m: Any, x: Any) -> Any:
    import torch.nn.functional as F

    def rep(v: Any, sh: int, sw: int) -> Any:
        return v.repeat_interleave(sh, dim=2).repeat_interleave(sw, dim=3)

    a = rep(F.conv2d(x, m.down.weight, m.down.bias, stride=2, padding=1), 2, 2)
    b = rep(F.conv2d(x, m.down4.weight, m.down4.bias, stride=4, padding=1), 4, 4)
    c = rep(F.avg_pool2d(F.conv2d(x, m.tall.weight, m.tall.bias), (2, 1)), 2, 1)
    return torch.cat([a + b, c], 1)


def test_torch_lowering_is_nearest_interpolation(torch1: Any) -> None:
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    m = to_torch(net(UPSAMPLED, "3, 8, 8")).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = m(x)
        assert out.shape == (2, 8, 8, 8)
        torch.testing.assert_close(out, _reference(torch, m, x), rtol=0, atol=0)
        up = torch.nn.Upsample(scale_factor=2, mode="nearest")  # the meaning HRNet relies on
        want = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        torch.testing.assert_close(up(x), want, rtol=0, atol=0)


@pytest.mark.parametrize("opset", [17, 21])
def test_onnx_runtime_computes_what_torch_computes(torch1: Any, opset: int) -> None:
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import assert_valid, ort_run, rel_err, sample, torch_run

    from graphcnn.backends.to_onnx import to_onnx

    g = net(UPSAMPLED, "3, 8, 8")
    model = to_onnx(g, opset=opset)
    assert [n.op_type for n in model.graph.node].count("Resize") == 3
    assert_valid(model, g)
    x = sample(g)
    (ours,) = ort_run(model, x)
    (ref,) = torch_run(torch1, g, None, x)
    assert rel_err(ours, ref) < 1e-6


def test_onnx_round_trip_keeps_every_upsample() -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    g = net(UPSAMPLED, "3, 8, 8")
    back, _ = from_onnx(to_onnx(g))
    assert [dict(n.attrs) for n in up_nodes(back)] == [
        {"scale": (2, 2)},
        {"scale": (4, 4)},
        {"scale": (2, 1)},
    ]


def exported(torch: Any, m: Any, x: Any, exporter: str) -> tuple[Graph, dict[str, Any]]:
    """``m`` exported by torch's ``exporter`` ("torchscript": opset 17, "dynamo": 18; skipped
    without onnx or onnxscript), then imported."""
    onnx = pytest.importorskip("onnx")
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    from graphcnn.backends.from_onnx import from_onnx

    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(m, (x,), f, dynamo=True, opset_version=18)
        else:
            torch.onnx.export(m, (x,), f, opset_version=17, dynamo=False)
    return from_onnx(onnx.load_from_string(f.getvalue()))


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_torch_exported_upsample_imports(torch1: Any, exporter: str) -> None:
    """``nn.Upsample(scale_factor=2)`` and ``F.interpolate(scale_factor=(1, 3))`` as
    torch.onnx.export writes them (Resize with constant scales)."""
    import torch.nn.functional as F

    from graphcnn.backends.to_torch import to_torch

    torch = torch1

    class Fuse(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")
            self.same = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x: Any) -> Any:
            y = self.same(x) + self.up(self.down(x))
            return F.interpolate(y, scale_factor=(1, 3), mode="nearest")

    m = Fuse().eval()
    x = torch.randn(1, 3, 6, 6)
    g, w = exported(torch, m, x, exporter)
    assert [dict(n.attrs) for n in up_nodes(g)] == [{"scale": (2, 2)}, {"scale": (1, 3)}]
    with torch.no_grad():
        torch.testing.assert_close(to_torch(g, w).eval()(x), m(x))


def _resize(onnx: Any, shape: list[int], scales: list[float] | None, **attrs: Any) -> Any:
    """A one-Resize model of a [1, 2, 3, 4] input; ``sizes`` from ``shape`` when no scales."""
    from onnx import TensorProto, helper, numpy_helper

    if scales is not None:
        inits = [numpy_helper.from_array(np.asarray(scales, np.float32), "scales")]
        inputs = ["x", "", "scales"]
    else:
        inits = [numpy_helper.from_array(np.asarray(shape, np.int64), "sizes")]
        inputs = ["x", "", "", "sizes"]
    node = helper.make_node("Resize", inputs, ["y"], name="the_resize", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


TORCH_NEAREST = {
    "mode": "nearest",
    "coordinate_transformation_mode": "asymmetric",
    "nearest_mode": "floor",
}


def test_onnx_resize_by_sizes_imports_and_runs_as_in_onnx_runtime() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import ort_run

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    model = _resize(onnx, [1, 2, 6, 12], None, **TORCH_NEAREST)
    g, _ = from_onnx(model)
    assert [dict(n.attrs) for n in up_nodes(g)] == [{"size": (6, 12)}]
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    (want,) = ort_run(model, x)
    (ours,) = ort_run(to_onnx(g), x)
    np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize(
    ("scales", "attrs", "words"),
    [
        (
            [1, 1, 2, 2],
            {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
            ["mode 'linear' with coordinate_transformation_mode 'asymmetric'", "'half_pixel'"],
        ),
        ([1, 1, 2, 2], {"mode": "cubic"}, ["mode 'cubic'"]),
        ([1, 1, 2, 2], {"mode": "linear", "exclude_outside": 1}, ["exclude_outside"]),
        ([1, 1, 2, 2], {"mode": "nearest"}, ["coordinate_transformation_mode 'half_pixel'"]),
        ([1, 1, 2, 2], {**TORCH_NEAREST, "nearest_mode": "ceil"}, ["nearest_mode 'ceil'"]),
        ([1, 1, 1.5, 2], TORCH_NEAREST, ["scales [1.5, 2.0]", "give no whole output size"]),
        ([1, 2, 2, 2], TORCH_NEAREST, ["resize the batch or the channels"]),
        ([1, 1, 2, 2], {**TORCH_NEAREST, "antialias": 1}, ["antialias"]),
    ],
)
def test_resizes_the_ir_cannot_express_are_refused(
    scales: list[float], attrs: dict[str, Any], words: list[str]
) -> None:
    onnx = pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    shape = [1, int(2 * scales[1]), int(3 * scales[2]), int(4 * scales[3])]
    with pytest.raises(OnnxImportError) as info:
        from_onnx(_resize(onnx, shape, scales, **attrs))
    text = str(info.value)
    assert "the_resize" in text
    for word in words:
        assert word in text, text


# ------------------------------------------------------------------------------------ bilinear
def test_bilinear_is_a_mode_with_align_corners_and_nearest_keeps_its_attrs() -> None:
    (node,) = up_nodes(net('return x -> upsample(2, mode: "bilinear")', "4, 3, 5"))
    assert dict(node.attrs) == {"scale": (2, 2), "mode": "bilinear", "align_corners": False}
    assert node.type.shape[1:] == (4, 6, 10) and node.params == ()
    body = 'return x -> upsample([1, 3], mode: "bilinear", align_corners: true)'
    (node,) = up_nodes(net(body, "4, 3, 5"))
    assert dict(node.attrs) == {"scale": (1, 3), "mode": "bilinear", "align_corners": True}
    (node,) = up_nodes(net('return x -> upsample(2, mode: "nearest")', "4, 3, 5"))
    assert dict(node.attrs) == {"scale": (2, 2)}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('return x -> upsample(2, mode: "bicubic")', ["mode must be one of", "'bilinear'"]),
        ("return x -> upsample(2, align_corners: true)", ["align_corners is an option of"]),
        ('return x -> upsample(2, mode: "bilinear", align_corners: 1)', ["true or false"]),
    ],
)
def test_bad_bilinear_options_are_spec_errors(body: str, words: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        net(body, "4, 6, 8")
    text = str(info.value)
    for word in words:
        assert word in text, text
    assert ":3:" in text


def test_a_bilinear_upsample_costs_eight_flops_per_output_element() -> None:
    assert "upsample (bilinear) 8/element" in CONVENTION["flops"]
    g = net('return x -> upsample([2, 3], mode: "bilinear")', "4, 6, 8")
    (row,) = profile(g, batch=3).layers
    assert (row.cost.macs, row.cost.flops, row.cost.params) == (0, 3 * 8 * 4 * 12 * 24, 0)
    assert row.cost.activation_bytes == 3 * 4 * 12 * 24 * 4


def test_peak_memory_saves_nothing_for_a_bilinear_upsample() -> None:
    g = net('return x -> conv(4, 1) as c -> upsample(2, mode: "bilinear") -> relu', "4, 6, 8")
    report = peak_memory.analyze(g, 1, training=True)
    assert report.saved_bytes == 4 * 6 * 8 * 4 + 4 * 12 * 16 * 4


@pytest.mark.parametrize("corners", [False, True])
@pytest.mark.parametrize("s", [2, 3, 4])
def test_bilinear_receptive_field_against_the_gradient(torch: Any, s: int, corners: bool) -> None:
    """A stride-s conv then a bilinear s-x upsample: every output pixel sees at most two
    neighbouring source pixels' fields (``size_in + jump_in``), and most see exactly that; the
    nominal window holds what each pixel sees, within one source pixel (``jump_in``)."""
    import torch.nn.functional as F

    flag = "true" if corners else "false"
    g = net(
        f"return x -> conv(1, 3, stride: {s}, pad: 1) as a\n"
        f'  -> upsample({s}, mode: "bilinear", align_corners: {flag}) as u',
        "1, 48, 48",
    )
    rf = analyze(g)
    assert rf["u"].size == (rf["a"].size[0] + s, rf["a"].size[1] + s)
    assert rf["u"].jump == (1, 1)
    x = torch.ones(1, 1, 48, 48, dtype=torch.float64, requires_grad=True)
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    u = F.interpolate(
        F.conv2d(x, w, stride=s, padding=1), scale_factor=s, mode="bilinear", align_corners=corners
    )
    full = 0
    for i in range(6, 40):  # interior pixels: no clipping at the image
        (top, bottom), (left, right) = _seen(torch, u, x, i, i + 1)
        assert bottom - top + 1 <= rf["u"].size[0] and right - left + 1 <= rf["u"].size[1]
        full += bottom - top + 1 == rf["u"].size[0]
        for (lo, hi), (want_lo, want_hi) in zip(
            ((top, bottom), (left, right)), rf["u"].bounds(i, i + 1), strict=True
        ):
            assert want_lo - s <= lo and hi <= want_hi + s
    assert full >= 34 // 2


BILINEAR = """
a = x -> conv(4, 3, stride: 2, pad: 1) as down -> upsample(2, mode: "bilinear")
b = x -> conv(4, 3, stride: 4, pad: 1) as down4
      -> upsample(4, mode: "bilinear", align_corners: true)
c = x -> conv(4, 1) as tall -> avgpool([2, 1]) -> upsample([2, 1], mode: "bilinear")
return concat(a + b, c)
"""


def test_bilinear_torch_lowering_is_interpolate(torch1: Any) -> None:
    import torch.nn.functional as F

    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    m = to_torch(net(BILINEAR, "3, 8, 8")).eval()
    x = torch.randn(2, 3, 8, 8)

    def up(v: Any, s: Any, corners: bool = False) -> Any:
        return F.interpolate(v, scale_factor=s, mode="bilinear", align_corners=corners)

    with torch.no_grad():
        a = up(F.conv2d(x, m.down.weight, m.down.bias, stride=2, padding=1), 2)
        b = up(F.conv2d(x, m.down4.weight, m.down4.bias, stride=4, padding=1), 4, True)
        c = up(F.avg_pool2d(F.conv2d(x, m.tall.weight, m.tall.bias), (2, 1)), (2.0, 1.0))
        torch.testing.assert_close(m(x), torch.cat([a + b, c], 1), rtol=0, atol=0)


@pytest.mark.parametrize("opset", [17, 21])
def test_bilinear_onnx_runtime_computes_what_torch_computes(torch1: Any, opset: int) -> None:
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import assert_valid, ort_run, rel_err, sample, torch_run

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    g = net(BILINEAR, "3, 8, 8")
    model = to_onnx(g, opset=opset)
    modes = [
        (n.op_type, [a.s.decode() for a in n.attribute if a.name == "mode"])
        for n in model.graph.node
        if n.op_type == "Resize"
    ]
    assert modes == [("Resize", ["linear"])] * 3
    assert_valid(model, g)
    x = sample(g)
    (ours,) = ort_run(model, x)
    (ref,) = torch_run(torch1, g, None, x)
    assert rel_err(ours, ref) < 1e-6
    back, _ = from_onnx(model)  # and back: the same attributes
    assert [dict(n.attrs) for n in up_nodes(back)] == [dict(n.attrs) for n in up_nodes(g)]


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_torch_exported_bilinear_head_imports(torch1: Any, exporter: str) -> None:
    """A segmentation head as torchvision's DeepLab/FCN/LR-ASPP write it: bilinear
    ``F.interpolate`` to the input's size (``size=``), an ASPP pooling branch upsampled from
    1x1, and ``align_corners=True``; imported, it computes what torch computes."""
    import torch.nn.functional as F

    from graphcnn.backends.to_torch import to_torch

    torch = torch1

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.project = torch.nn.Conv2d(16, 5, 1)

        def forward(self, x: Any) -> Any:
            f = self.backbone(x)
            pooled = F.interpolate(self.pool(f), size=f.shape[-2:], mode="bilinear")
            y = self.project(torch.cat([f, pooled], 1))
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)

    m = Head().eval()
    x = torch.randn(1, 3, 32, 24)
    g, w = exported(torch, m, x, exporter)
    assert [dict(n.attrs) for n in up_nodes(g)] == [
        {"size": (4, 3), "mode": "bilinear", "align_corners": False},
        {"size": (32, 24), "mode": "bilinear", "align_corners": False},
        {"scale": (2, 2), "mode": "bilinear", "align_corners": True},
    ]
    with torch.no_grad():
        torch.testing.assert_close(to_torch(g, w).eval()(x), m(x), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ to a size
SIZED = """
a = x -> conv(4, 3, stride: 2, pad: 1) as down -> upsample(size: [7, 9]) as near
b = x -> conv(4, 3, stride: 2, pad: 1) as down2 -> upsample(size: [7, 9], mode: "bilinear") as bil
c = x -> conv(4, 3, stride: 4, pad: 1) as down4
      -> upsample(size: [7, 9], mode: "bilinear", align_corners: true) as corners
return concat(a + b, c)
"""
"""Resizes to a size that is no whole multiple (5x5 -> 7x9, 3x3 -> 7x9): LR-ASPP's 33 -> 65."""


def test_a_size_resizes_to_it_and_one_of_scale_or_size_is_required() -> None:
    g = net(SIZED, "3, 9, 10")
    assert [(dict(n.attrs), n.type.shape[1:]) for n in up_nodes(g)] == [
        ({"size": (7, 9)}, (4, 7, 9)),
        ({"size": (7, 9), "mode": "bilinear", "align_corners": False}, (4, 7, 9)),
        ({"size": (7, 9), "mode": "bilinear", "align_corners": True}, (4, 7, 9)),
    ]
    (row,) = [r for r in profile(g, batch=1).layers if r.name == "bil"]
    assert (row.cost.macs, row.cost.flops) == (0, 8 * 4 * 7 * 9)
    for body, words in [
        ("return x -> upsample(2, size: [4, 4])", "not both"),
        ("return x -> upsample", "not neither"),
        ("return x -> upsample(size: [0, 4])", "size must be >= 1"),
    ]:
        with pytest.raises(SpecError, match=words):
            net(body, "4, 6, 8")


def test_receptive_field_of_a_size_is_a_scale_when_whole_else_the_whole_map() -> None:
    g = net(
        "return x -> conv(1, 3, stride: 2, pad: 1) as a -> upsample(size: [8, 6]) as u", "1, 8, 6"
    )
    h = net("return x -> conv(1, 3, stride: 2, pad: 1) as a -> upsample(2) as u", "1, 8, 6")
    assert analyze(g)["u"] == analyze(h)["u"]
    sized = net(SIZED, "3, 9, 10")
    rf = analyze(sized)
    # 5x5 -> 7x9: no grid; every output pixel is taken to see all of the 5x5 map's field
    a = rf["down"]
    (top, _), (left, _) = a.bounds(0, 0)
    (_, bottom), (_, right) = a.bounds(4, 4)
    assert rf["near"].whole == ((top, bottom), (left, right))  # the 5x5 map's field
    assert rf["near"].bounds(6, 8) == ((top, bottom), (left, right))
    assert rf["near"].jump == (2 * 5 // 7, 1)  # floor(jump_in * n / out), at least 1


def test_sized_torch_onnx_and_back(torch1: Any) -> None:
    """torch's F.interpolate(size=...), ONNX Runtime on our Resize (sizes from the input's
    shape, batch kept dynamic), and the import of that Resize: the same outputs."""
    pytest.importorskip("onnxruntime")
    import torch.nn.functional as F
    from helpers.onnx_ref import assert_valid, ort_run, rel_err, sample, torch_run

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    g = net(SIZED, "3, 9, 10")
    m = to_torch(g).eval()
    x = torch.randn(2, 3, 9, 10)
    with torch.no_grad():
        a = F.interpolate(m.down(x), size=(7, 9), mode="nearest")
        b = F.interpolate(m.down2(x), size=(7, 9), mode="bilinear", align_corners=False)
        c = F.interpolate(m.down4(x), size=(7, 9), mode="bilinear", align_corners=True)
        torch.testing.assert_close(m(x), torch.cat([a + b, c], 1), rtol=0, atol=0)
    for opset in (17, 21):
        model = to_onnx(g, opset=opset)
        assert_valid(model, g)
        xs = sample(g)
        (ours,) = ort_run(model, xs)
        (ref,) = torch_run(torch, g, None, xs)
        assert rel_err(ours, ref) < 1e-6
        back, _ = from_onnx(model)
        assert [dict(n.attrs) for n in up_nodes(back)] == [dict(n.attrs) for n in up_nodes(g)]


@pytest.mark.parametrize(
    ("shape", "scales", "want"),
    [
        ([1, 2, 5, 7], None, {"size": (5, 7)}),  # sizes: 3x4 -> 5x7
        ([1, 2, 6, 6], [1, 1, 2, 1.5], {"size": (6, 6)}),  # 4 * 1.5 = 6 exactly
    ],
)
def test_onnx_resize_to_a_size_imports(
    shape: list[int], scales: list[float] | None, want: dict[str, Any]
) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import ort_run

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    for attrs, extra in [
        (TORCH_NEAREST, {}),
        ({"mode": "linear"}, {"mode": "bilinear", "align_corners": False}),
    ]:
        model = _resize(onnx, shape, scales, **attrs)
        g, _ = from_onnx(model)
        assert [dict(n.attrs) for n in up_nodes(g)] == [{**want, **extra}]
        x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
        (ref,) = ort_run(model, x)
        (ours,) = ort_run(to_onnx(g), x)
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
