"""The modern ops (issue 11, point 1; DropConnect of issue 12), through every stage.

hardsigmoid, gelu's tanh form, layer_norm (channels of NCHW, or the last axis), layer_scale (a
learned per-channel multiplier whose key is the block's own: ``features.1.0.layer_scale``),
scale (``x * 0.17``, ``0.5 * x``, ``x / 2``), permute, ``linear(last_dim: true)``, DropConnect
on conv/linear; the math built-ins. Shapes and errors, cost, the torch meaning (torchvision's
ConvNeXt block loads strictly), the ONNX model in ONNX Runtime at every opset and its import,
and the passes that must know them (remove_dropout, fold_bn).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.passes import check_pass

import graphcnn
from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Op

ALL_OPS = Path(__file__).resolve().parent / "data" / "all_ops.gcnn"

CNBLOCK = """
block cnblock(x, dim, ls = 1e-6) {
  seq "block" {
    y = x -> conv(dim, 7, pad: 3, groups: dim) -> permute([0, 2, 3, 1])
          -> layer_norm(axis: -1, eps: 1e-6) -> linear(4 * dim, last_dim: true) -> gelu
          -> linear(dim, last_dim: true) -> permute([0, 3, 1, 2])
  }
  return (y -> layer_scale(ls) as layer_scale -> drop_path(0.0) as stochastic_depth) + x
}
"""


def net(body: str, input: str = "8, 6, 6") -> Graph:
    body = textwrap.indent(textwrap.dedent(body).strip(), "  ")
    return graphcnn.compile_text(f"network t() {{\n  x = input({input})\n{body}\n}}\n")


def spec_error(body: str, input: str = "8, 6, 6") -> SpecError:
    with pytest.raises(SpecError) as info:
        net(body, input)
    return info.value


def only(g: Graph, op: Op) -> Any:
    (node,) = [n for n in g if n.op is op]
    return node


# ---- the language: tensor * number, layers, math built-ins -------------------------------------


@pytest.mark.parametrize(
    ("expr", "factor", "divide"),
    [
        ("x * 0.17", 0.17, False),
        ("0.5 * x", 0.5, False),
        ("x / 2", 2.0, True),
        ("x * 3", 3.0, False),
    ],
)
def test_a_tensor_times_or_over_a_number_is_a_scale_node(
    expr: str, factor: float, divide: bool
) -> None:
    node = only(net(f"return {expr}"), Op.SCALE)
    assert (node.attrs["factor"], node.attrs["divide"]) == (factor, divide)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("x / 0", "division of a tensor by zero"),
        ("x - 1", "'-' on tensor and int"),
        ("2 / x", "'/' on int and tensor"),
        ('x * "a"', "'*' on tensor and str"),
    ],
)
def test_bad_tensor_arithmetic_is_a_located_error(expr: str, message: str) -> None:
    err = spec_error(f"return {expr}")
    assert message in str(err)
    assert ":3:" in err.format()  # the line of the return statement


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("log(math_e)", 1.0),
        ("log(8, 2)", 3.0),
        ("exp(0)", 1.0),
        ("sqrt(16)", 4.0),
        ("floor(-1.5)", -2),
        ("abs(-3)", 3),
    ],
)
def test_math_builtins(expr: str, value: float) -> None:
    text = f"math_e = {math.e!r}\nk = {expr}\nnetwork t() {{ x = input(4, 4, 4)\n return x * k }}"
    g = graphcnn.compile_text(text)
    assert only(g, Op.SCALE).attrs["factor"] == pytest.approx(value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("log(0)", "log of 0: the argument must be > 0"),
        ("sqrt(-1)", "sqrt of -1: the argument must be >= 0"),
        ("exp(1000)", "exp of 1000 is out of range"),
        ("log(4, 1)", "log base must be > 0 and not 1"),
        ('floor("a")', "floor argument must be a number"),
    ],
)
def test_math_domain_errors_are_located_spec_errors(expr: str, message: str) -> None:
    err = spec_error(f"k = {expr}\nreturn x")
    assert message in str(err)
    assert ":3:" in err.format()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("layer_norm(axis: 2)", "axis must be 1 (the channels of [C, H, W]) or -1"),
        ("layer_norm(eps: 0)", "eps must be > 0"),
        ("permute([0, 1, 1, 2])", "not a permutation"),
        ("permute([1, 0, 2, 3])", "keeps the batch (axis 0) first"),
        ('gelu(approximate: "fast")', "approximate must be one of 'none', 'tanh'"),
        ("conv(8, 3, drop_connect: 1.0)", "drop_connect must be below 1"),
        ("linear(8)", "insert flatten"),
        ("flatten -> layer_scale", "layer_scale expects a [C, H, W] input"),
    ],
)
def test_bad_modern_layers_are_clear_errors(call: str, message: str) -> None:
    err = spec_error(f"return x -> {call}")
    assert message in err.format()


def test_shapes_and_parameter_keys() -> None:
    g = graphcnn.compile_text(
        CNBLOCK + "network t() { x = input(8, 6, 6)\n seq features { x = cnblock(x, 8) }\n"
        " return x -> layer_norm as ln -> layer_scale(0.5, flat: true) as gamma }"
    )
    keys = {f"{n.name}.{p.name}" if p.name else n.name: p.shape for n in g for p in n.params}
    assert keys["features.0.layer_scale"] == (8, 1, 1)  # torchvision's key: on the block
    assert keys["gamma"] == (8,)  # timm's flat gamma
    assert keys["ln.weight"] == keys["ln.bias"] == (8,)
    assert keys["features.0.block.2.weight"] == (8,)  # the LayerNorm at Sequential index 2
    assert keys["features.0.block.3.weight"] == (32, 8)  # nn.Linear(dim, 4 dim) at index 3
    assert g["features.0.block.1"].type.shape == ("N", 6, 6, 8)  # permute: channels-last
    assert g["features.0.block.3"].type.shape == ("N", 6, 6, 32)


# ---- cost, receptive field, peak memory -------------------------------------------------------


def test_cost_of_each_modern_op() -> None:
    from graphcnn.cost import CONVENTION, profile

    g = net(
        """
        y = x -> layer_norm as ln -> layer_norm(affine: false) as ln0 -> layer_scale as ls
        y = (y * 0.5) -> hardsigmoid -> permute([0, 2, 3, 1]) as p
        return y -> linear(4, last_dim: true, drop_connect: 0.5) as fc
        """
    )
    rows = {r.name: r.cost for r in profile(g).layers}
    e = 8 * 6 * 6
    assert (rows["ln"].flops, rows["ln"].params) == (7 * e, 16)
    assert (rows["ln0"].flops, rows["ln0"].params) == (5 * e, 0)
    assert (rows["ls"].flops, rows["ls"].params) == (e, 8)
    assert rows["scale"].flops == rows["hardsigmoid"].flops == e
    assert rows["p"].flops == 0
    assert (rows["fc"].macs, rows["fc"].flops) == (6 * 6 * 8 * 4, 2 * 6 * 6 * 8 * 4 + 6 * 6 * 4)
    plain = net("return x -> permute([0, 2, 3, 1]) -> linear(4, last_dim: true) as fc")
    assert profile(plain).totals.macs == rows["fc"].macs  # drop_connect costs the plain layer
    for word in ("layer_norm", "layer_scale", "scale", "drop_connect", "permute"):
        assert word in CONVENTION["flops"]


def test_receptive_field_through_a_channels_last_block() -> None:
    from graphcnn.analysis import receptive_field

    g = graphcnn.compile_text(
        CNBLOCK + "network t() { x = input(8, 16, 16)\n return cnblock(x, 8) as b }"
    )
    rf = receptive_field.analyze(g)
    assert rf["b.block.0"].size == (7, 7)
    assert rf["b.block.6"].size == (7, 7)  # permute, layer_norm, linear, gelu: per position
    assert rf["b.layer_scale"].size == (7, 7)


def test_peak_memory_saves_what_autograd_saves() -> None:
    from graphcnn.analysis.peak_memory import SAVED

    assert SAVED[Op.SCALE] == () and SAVED[Op.PERMUTE] == ()
    assert SAVED[Op.LAYER_SCALE] == SAVED[Op.HARDSIGMOID] == ("input",)
    assert SAVED[Op.LAYER_NORM] == ("input", "norm_stats")


def test_drop_connect_keeps_two_weight_sized_tensors_in_training() -> None:
    from graphcnn.analysis.peak_memory import analyze

    plain = net("return x -> flatten -> linear(16) as fc")
    dropped = net("return x -> flatten -> linear(16, drop_connect: 0.5) as fc")
    extra = (
        analyze(dropped, 4, training=True).saved_bytes
        - analyze(plain, 4, training=True).saved_bytes
    )
    assert extra == 2 * 16 * 288 * 4  # the mask and the masked weight, whatever the batch
    assert analyze(dropped, 4).peak_bytes == analyze(plain, 4).peak_bytes  # inference: plain


# ---- passes ----------------------------------------------------------------------------------


def test_remove_dropout_strips_drop_connect() -> None:
    check_pass(
        "remove_dropout",
        """
        y = x -> conv(4, 3, drop_connect: 0.3) as c1 -> relu -> dropout(0.2) as d
        return y -> flatten -> linear(5, drop_connect: 0.5) as fc
        """,
        """
        y = x -> conv(4, 3) as c1 -> relu
        return y -> flatten -> linear(5) as fc
        """,
        removed=["d"],
        rewritten=["c1", "fc"],
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("x -> conv(8, 1) as c -> layer_scale as ls -> bn as b -> relu", "follows layer_scale"),
        ("(x -> conv(8, 1) as c) * 0.5 -> bn as b -> relu", "follows scale scale"),
        ("x -> conv(8, 1) as c -> layer_norm as ln -> bn as b -> relu", "follows layer_norm ln"),
        ("x -> bn as b -> layer_scale as ls -> conv(8, 1) as c", "feeds layer_scale"),
        (
            "x -> bn as b -> permute([0, 2, 3, 1]) -> linear(8, last_dim: true) as c",
            "feeds permute",
        ),
        ("x -> conv(8, 1, drop_connect: 0.2) as c -> bn as b", "drops its weights in training"),
        (
            "x -> permute([0, 2, 3, 1]) -> linear(6, last_dim: true) as c -> bn as b",
            "c is a channels-last linear",
        ),
    ],
)
def test_fold_bn_never_folds_across_or_into_the_new_ops(body: str, reason: str) -> None:
    result = check_pass("fold_bn", f"return {body}", None, notes=None)
    assert len(result.notes) == 1 and reason in result.notes[0], result.notes


def test_fold_bn_still_folds_next_to_them() -> None:
    check_pass(
        "fold_bn",
        "return x -> conv(8, 1, bias: false) as c -> bn as b -> layer_scale as ls",
        "return x -> conv(8, 1, bias: true) as c -> layer_scale as ls",
        removed=["b"],
        rewritten=["c"],
        new_weights=True,
    )


# ---- PyTorch ---------------------------------------------------------------------------------


@pytest.fixture
def torch() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


def test_activations_match_torch_nn(torch: Any) -> None:
    from graphcnn.backends.to_torch import to_torch

    g = net('return (x -> hardsigmoid) + (x -> gelu(approximate: "tanh")) * 3')
    x = torch.randn(2, 8, 6, 6) * 4
    ref = torch.nn.Hardsigmoid()(x) + torch.nn.GELU(approximate="tanh")(x) * 3
    assert torch.allclose(to_torch(g).eval()(x), ref, atol=1e-6)


def test_torchvision_convnext_block_loads_strictly(torch: Any) -> None:
    tv = pytest.importorskip("torchvision.models.convnext")
    from graphcnn.backends.to_torch import to_torch

    block = tv.CNBlock(16, layer_scale=0.5, stochastic_depth_prob=0.0).eval()
    with torch.no_grad():
        block.layer_scale.uniform_(0.5, 1.5)
    g = graphcnn.compile_text(
        CNBLOCK + "network t() { x = input(16, 9, 9)\n return cnblock(x, 16) as b }"
    )
    ours = to_torch(g).eval()
    ours.b.load_state_dict(block.state_dict(), strict=True)
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        assert torch.allclose(ours(x), block(x), atol=1e-5)


@pytest.mark.slow
def test_torchvision_convnext_tiny_loads_strictly(torch: Any) -> None:
    tvm = pytest.importorskip("torchvision.models")
    from graphcnn.backends.to_torch import to_torch

    tv = tvm.convnext_tiny().eval()
    g = graphcnn.compile("convnext_tiny", input_shape=(3, 32, 32))  # the zoo's convnext.gcnn
    ours = to_torch(g).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out, ref = ours(x), tv(x)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_drop_connect_masks_weights_in_training_only(torch: Any) -> None:
    from graphcnn.backends.to_torch import to_torch

    g = net("return x -> flatten -> linear(16, drop_connect: 0.5) as fc")
    m = to_torch(g)
    x = torch.randn(4, 8, 6, 6)
    w, b = m.fc.weight.detach(), m.fc.bias.detach()
    m.eval()
    assert torch.allclose(m(x), x.flatten(1) @ w.T + b, atol=1e-5)  # inference: the plain layer
    m.train()
    torch.manual_seed(7)
    out = m(x)
    torch.manual_seed(7)
    mask = w.new_empty(w.shape).bernoulli_(0.5)
    assert 0.3 < float(mask.mean()) < 0.7
    assert torch.allclose(out, x.flatten(1) @ (w * mask / 0.5).T + b, atol=1e-5)
    conv = to_torch(net("return x -> conv(4, 3, drop_connect: 0.25) as c")).train()
    y1, y2 = conv(x), conv(x)
    assert not torch.allclose(y1, y2)  # a fresh mask each step


# ---- ONNX ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def allops() -> Graph:
    return graphcnn.compile(str(ALL_OPS))


def _weights(g: Graph) -> dict[str, Any]:
    """Seeded init, with every norm and layer scale moved off its trivial value."""
    from graphcnn.weights import init_weights, param_key

    w = init_weights(g, 0)
    rng = np.random.default_rng(1)
    for n in g:
        for p in n.params:
            key = param_key(n.name, p.name)
            if n.op in (Op.BATCH_NORM, Op.LAYER_NORM, Op.LAYER_SCALE):
                lo = 0.5 if p.name in ("", "weight", "running_var") else -0.5
                w[key] = rng.uniform(lo, lo + 1.0, p.shape).astype(np.float32)
    return w


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_all_ops_onnx_matches_torch_in_onnxruntime(opset: int, allops: Graph, torch: Any) -> None:
    pytest.importorskip("onnxruntime")
    from helpers.onnx_ref import ort_run, rel_err, sample, torch_run

    from graphcnn.backends.to_onnx import OPSETS, to_onnx

    assert opset in OPSETS
    w = _weights(allops)
    model = to_onnx(allops, w, opset=opset)
    types = {n.op_type for n in model.graph.node}
    assert {"LayerNormalization", "HardSigmoid", "Div", "MatMul"} <= types
    assert ("Gelu" in types) == (opset >= 20)
    x = sample(allops)
    (ref,) = torch_run(torch, allops, w, x)
    (out,) = ort_run(model, x)
    assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("opset", [17, 20])
def test_import_recovers_every_modern_op(opset: int) -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    g = net(
        """
        y = x -> layer_scale(0.3) as ls -> gelu(approximate: "tanh") -> hardsigmoid
        y = y -> permute([0, 2, 3, 1]) -> layer_norm(axis: -1) -> linear(4, last_dim: true)
        return y / 3 * 0.25
        """
    )
    w = _weights(g)
    back, bw = from_onnx(to_onnx(g, w, opset=opset))
    nodes = {n.op: n for n in back}
    assert nodes[Op.GELU].attrs["approximate"] == "tanh"
    assert nodes[Op.LINEAR].attrs["last_dim"] is True
    scales = sorted((n.attrs["divide"], n.attrs["factor"]) for n in back if n.op is Op.SCALE)
    assert scales == [(False, 0.25), (True, 3.0)]  # the division stays a division
    (ls,) = [n for n in back if n.op is Op.LAYER_SCALE]
    np.testing.assert_array_equal(bw[ls.name], w["ls"])
    assert {n.op for n in back} == {n.op for n in g}


def test_import_keeps_the_names_eps_and_channel_axis_of_to_onnxs_graphs() -> None:
    """layer_norm over NCHW channels (written Transpose -> LayerNormalization -> Transpose) comes
    back as one node, its float32 eps as the decimal it was; a channels-last linear's MatMul +
    Add keeps the layer's name (its weight is a transposed copy, ``fc.weight_t``)."""
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    g = net(
        """
        y = x -> conv(8, 1) as c -> layer_norm(eps: 1e-6) as ln -> layer_norm(affine: false) as l0
        return y -> permute([0, 2, 3, 1]) -> linear(4, last_dim: true) as fc -> layer_norm as l1
        """
    )
    w = _weights(g)
    back, bw = from_onnx(to_onnx(g, w))
    assert [(n.name, n.op, dict(n.attrs)) for n in back] == [
        (n.name, n.op, dict(n.attrs)) for n in g
    ]
    assert back["ln"].attrs["eps"] == 1e-6
    assert set(bw) == set(w)
    for k, v in w.items():
        np.testing.assert_array_equal(bw[k], v, err_msg=k)


def test_a_graph_ending_in_a_scale_imports() -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx

    back, _ = from_onnx(to_onnx(net("return (x -> relu) * 0.5")))
    assert [n.op for n in back] == [Op.INPUT, Op.RELU, Op.SCALE]


def _onnx_model(nodes: list[Any], inits: dict[str, Any]) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_hardsigmoid_outside_hardswish_imports_as_hardsigmoid() -> None:
    onnx = pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx

    nodes = [
        onnx.helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, name="hs"),
        onnx.helper.make_node("Relu", ["h"], ["y"]),
    ]
    back, _ = from_onnx(_onnx_model(nodes, {}))
    assert [n.op for n in back] == [Op.INPUT, Op.HARDSIGMOID, Op.RELU]


def test_a_pattern_part_that_is_no_op_still_fails_naming_it() -> None:
    onnx = pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    nodes = [
        onnx.helper.make_node("Mul", ["x", "c"], ["s"]),
        onnx.helper.make_node("Erf", ["s"], ["e"], name="erf"),
        onnx.helper.make_node("Relu", ["e"], ["y"]),
    ]
    c = np.array([1 / math.sqrt(2)], np.float32)
    with pytest.raises(OnnxImportError, match="'erf', which only converts as part of a pattern"):
        from_onnx(_onnx_model(nodes, {"c": c}))


def test_torch_exported_convnext_block_imports_and_computes_the_same(torch: Any) -> None:
    """torch.onnx.export's ConvNeXt block: LayerNormalization, MatMul on channels-last, Mul
    by the (C, 1, 1) layer scale, Transpose: layer_norm, linear(last_dim), layer_scale,
    permute."""
    pytest.importorskip("onnx")
    tv = pytest.importorskip("torchvision.models.convnext")
    import io
    import warnings

    import onnx

    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_torch import to_torch

    block = tv.CNBlock(16, layer_scale=0.5, stochastic_depth_prob=0.0).eval()
    with torch.no_grad():
        block.layer_scale.uniform_(0.5, 1.5)
    x = torch.randn(2, 16, 9, 9)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(block, x, f, opset_version=17, dynamo=False)
    g, w = from_onnx(onnx.load_from_string(f.getvalue()))
    ops = {n.op for n in g}
    assert {Op.LAYER_NORM, Op.LAYER_SCALE, Op.PERMUTE, Op.LINEAR} <= ops
    with torch.no_grad():
        assert torch.allclose(to_torch(g, w).eval()(x), block(x), atol=1e-5)
