"""ONNX import (issue "ONNX lowering, ONNX import, ..."): backends/from_onnx/, op by op.

Single ops and patterns (built with ``onnx.helper``), checked against ONNX Runtime on the
re-emitted model; errors; the ``graphcnn import`` command; no torch in the importer. Whole models
(the zoo round trip, torchvision's exports): tests/test_from_onnx_models.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402
from conftest import REPO  # noqa: E402
from helpers.onnx_ref import rel_err, sample  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.from_onnx import OnnxImportError, from_onnx  # noqa: E402
from graphcnn.backends.to_onnx import to_onnx  # noqa: E402
from graphcnn.cli import main  # noqa: E402
from graphcnn.cost import profile  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402
from graphcnn.weights import init_weights  # noqa: E402

TOL = 1e-5  # max |ours - reference| / max |reference|, float32


def ort_run(model: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The first output of ``model`` (a file or a ModelProto) in ONNX Runtime itself, as the
    reference for hand-built models."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    data = model if isinstance(model, (str, Path)) else model.SerializeToString()
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]  # type: ignore[no-any-return]


def make_model(
    nodes: list[Any],
    inits: dict[str, np.ndarray[Any, Any]],
    in_shape: list[Any],
    out_name: str = "y",
    opset: int = 17,
    out_shape: list[Any] | None = None,
) -> Any:
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    try:  # fill in the output's shape, as exporters do
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - some error tests build models inference rejects
        return model


def const(name: str, values: Any, dtype: Any = np.float32) -> Any:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(values, dtype))
    )


def check_same(model: Any, batch: int = 2) -> tuple[Graph, dict[str, Any]]:
    """Import ``model``; the re-emitted IR computes what ONNX Runtime computes on it."""
    g, w = from_onnx(model)
    x = sample(g, batch)
    assert rel_err(ort_run(to_onnx(g, w), x), ort_run(model, x)) < TOL
    return g, w


def rnd(*shape: int, seed: int = 1) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ops(g: Graph) -> list[str]:
    return [str(n.op) for n in g if n.op is not Op.INPUT]


def test_conv_bn_relu6_pool_gemm_with_torch_names() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "features.0.weight", "features.0.bias"], ["c"],
                         name="/features/features.0/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2], group=1),
        helper.make_node("BatchNormalization", ["c", "features.1.weight", "features.1.bias",
                         "features.1.running_mean", "features.1.running_var"], ["b"],
                         name="/features/features.1/BatchNormalization", epsilon=1e-3,
                         momentum=0.99),
        const("lo", 0.0), const("hi", 6.0),
        helper.make_node("Clip", ["b", "lo", "hi"], ["r"], name="/features/features.2/Clip"),
        helper.make_node("MaxPool", ["r"], ["m"], name="/pool/MaxPool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        helper.make_node("AveragePool", ["m"], ["a"], name="/avg/AveragePool",
                         kernel_shape=[2, 2], strides=[1, 1], count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["a"], ["p"], name="/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm",
                         transB=1),
    ]  # fmt: skip
    inits = {
        "features.0.weight": rnd(8, 3, 3, 3),
        "features.0.bias": rnd(8),
        "features.1.weight": rnd(8) + 1,
        "features.1.bias": rnd(8),
        "features.1.running_mean": rnd(8),
        "features.1.running_var": np.abs(rnd(8)) + 0.5,
        "fc.weight": rnd(5, 8),
        "fc.bias": rnd(5),
    }
    g, w = check_same(make_model(nodes, inits, ["N", 3, 17, 17]))
    assert [n.name for n in g] == [
        "x", "features.0", "features.1", "features.2", "pool", "avg", "gap", "flatten", "fc"
    ]  # fmt: skip
    assert ops(g) == [
        "conv2d", "batch_norm", "relu6", "max_pool2d", "avg_pool2d", "global_avg_pool",
        "flatten", "linear",
    ]  # fmt: skip
    assert set(w) == set(inits)
    assert dict(g["features.1"].attrs) == {"eps": 1e-3, "momentum": 0.01, "affine": True}
    assert g["pool"].attrs["ceil_mode"] is True
    assert g["avg"].attrs["count_include_pad"] is True
    assert g.inputs[0].type.shape == ("N", 3, 17, 17)


def test_gemm_forms_fold_into_linear_weights() -> None:
    """transB=0 (weight transposed), alpha/beta (scaled into weight and bias), MatMul + Add."""
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=0, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["mm"], name="/head/MatMul"),
        helper.make_node("Add", ["mm", "b2"], ["y"], name="/head/Add"),
    ]
    inits = {"w1": rnd(6, 4), "b1": rnd(4), "w2": rnd(4, 3), "b2": rnd(3)}
    g, w = check_same(make_model(nodes, inits, ["N", 6]))
    assert ops(g) == ["linear", "relu", "linear"]
    assert g["head"].attrs["bias"] is True
    np.testing.assert_allclose(w["head.weight"], inits["w2"].T)
    np.testing.assert_allclose(w["h.weight"], 0.5 * inits["w1"].T)
    np.testing.assert_allclose(w["h.bias"], 2.0 * inits["b1"])


def test_activation_patterns() -> None:
    """silu = x*Sigmoid(x); hardswish = HardSwish and x*HardSigmoid(x); gelu = the erf form."""
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"], name="/act1/Sigmoid"),
        helper.make_node("Mul", ["x", "s"], ["silu"], name="/act1/Mul"),
        helper.make_node("HardSwish", ["silu"], ["hs"], name="/act2/HardSwish"),
        helper.make_node("HardSigmoid", ["hs"], ["hsig"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["hsig", "hs"], ["hs2"]),
        # torch's legacy erf gelu: x * 0.5 * (1 + erf(x / sqrt 2)), in two associations
        const("sqrt2", 1.4142135381698608), const("one", 1.0), const("half", 0.5),
        helper.make_node("Div", ["hs2", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["hs2", "e1"], ["p"]),
        helper.make_node("Mul", ["p", "half"], ["g1"]),
        helper.make_node("Mul", ["g1", "half"], ["xh"]),
        const("inv", 0.7071067690849304),
        helper.make_node("Mul", ["g1", "inv"], ["d2"]),
        helper.make_node("Erf", ["d2"], ["e2"]),
        helper.make_node("Add", ["one", "e2"], ["e21"]),
        helper.make_node("Mul", ["e21", "xh"], ["g2"]),
        helper.make_node("Tanh", ["g2"], ["t"]),
        helper.make_node("Sigmoid", ["t"], ["y"]),
    ]  # fmt: skip
    g, _ = check_same(make_model(nodes, {}, ["N", 4, 5, 5]))
    assert ops(g) == ["silu", "hardswish", "hardswish", "gelu", "gelu", "tanh", "sigmoid"]
    assert [n.name for n in g][1:3] == ["act1", "act2"]


def test_gelu_op_of_opset_20() -> None:
    nodes = [helper.make_node("Gelu", ["x"], ["y"])]
    g, _ = check_same(make_model(nodes, {}, ["N", 4, 3, 3], opset=20))
    assert ops(g) == ["gelu"]


def test_dynamic_batch_shape_computations_are_folded() -> None:
    """x.view(x.size(0), -1) as torch emits it: Shape -> Gather -> Unsqueeze -> Concat."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        const("zero", 0, np.int64),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        const("ax", [0], np.int64),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        const("minus1", [-1], np.int64),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["f"]),
        # a channel count computed from the shape: C // 2
        const("one", 1, np.int64),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        const("two", 2, np.int64),
        helper.make_node("Div", ["c", "two"], ["half"]),
        helper.make_node("Unsqueeze", ["half", "ax"], ["half1"]),
        helper.make_node("Concat", ["n1", "half1", "minus1"], ["shape2"], axis=0),
        helper.make_node("Reshape", ["f", "shape2"], ["y"]),
    ]
    g, _ = check_same(make_model(nodes, {}, ["batch", 4, 3, 3]))
    assert ops(g) == ["flatten", "reshape"]
    assert g[g.outputs[0][1]].type.shape == ("N", 2, 18)


def test_static_batch_is_kept() -> None:
    g, _ = check_same(make_model([helper.make_node("Flatten", ["x"], ["y"])], {}, [3, 2, 4, 4]), 3)
    assert g.inputs[0].type.shape == (3, 2, 4, 4)
    assert ops(g) == ["flatten"]


def test_channel_shuffle_split_slice_concat() -> None:
    """ShuffleNet as torch exports it: Split/Slice along channels, Reshape-Transpose-Reshape."""
    nodes = [
        const("sizes", [3, 5], np.int64),
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1),
        const("st", [1], np.int64), const("en", [2**62], np.int64), const("ax", [1], np.int64),
        helper.make_node("Slice", ["b", "st", "en", "ax"], ["bs"]),
        helper.make_node("Relu", ["bs"], ["br"]),
        const("st2", [0], np.int64), const("en2", [1], np.int64),
        helper.make_node("Slice", ["b", "st2", "en2", "ax"], ["bt"]),
        helper.make_node("Concat", ["a", "br", "bt"], ["cat"], axis=-3),
        const("grouped", [-1, 2, 4, 5, 5], np.int64),
        helper.make_node("Reshape", ["cat", "grouped"], ["r1"], name="/stage/Reshape"),
        helper.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4],
                         name="/stage/Transpose"),
        const("flat", [-1, 8, 5, 5], np.int64),
        helper.make_node("Reshape", ["t", "flat"], ["y"], name="/stage/Reshape_1"),
    ]  # fmt: skip
    g, _ = check_same(make_model(nodes, {}, ["N", 8, 5, 5]))
    assert ops(g) == ["split", "split", "split", "relu", "split", "concat", "channel_shuffle"]
    assert g["stage"].attrs["groups"] == 2
    assert [dict(n.attrs) for n in g if n.op is Op.SPLIT][:2] == [
        {"axis": 1, "sizes": (3, 5), "index": 0},
        {"axis": 1, "sizes": (3, 5), "index": 1},
    ]


def test_reduce_mean_squeeze_unsqueeze_softmax() -> None:
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=1),
        const("ax", [2, 3], np.int64),
        helper.make_node("Squeeze", ["m", "ax"], ["s"]),
        helper.make_node("ReduceMean", ["x"], ["m2"], axes=[-1, -2], keepdims=0),
        helper.make_node("Add", ["s", "m2"], ["sum"]),
        helper.make_node("Softmax", ["sum"], ["sm"]),
        helper.make_node("Unsqueeze", ["sm", "ax"], ["y"]),
    ]
    g, _ = check_same(make_model(nodes, {}, ["N", 6, 4, 4]))
    assert ops(g) == [
        "global_avg_pool", "flatten", "global_avg_pool", "flatten", "add", "softmax", "reshape"
    ]  # fmt: skip


def test_same_padding_that_is_symmetric_imports() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    ]
    g, _ = check_same(make_model(nodes, {"w": rnd(4, 2, 3, 3)}, ["N", 2, 6, 6]))
    assert g[g.outputs[0][1]].attrs["padding"] == (1, 1)


def test_dropout_identity_and_cast_are_skipped() -> None:
    nodes = [
        helper.make_node("Dropout", ["x"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Cast", ["i"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    g, _ = check_same(make_model(nodes, {}, ["N", 3, 2, 2]))
    assert ops(g) == ["relu"]


def test_lrn_and_bn_without_affine_parameters() -> None:
    nodes = [
        helper.make_node("LRN", ["x"], ["l"], size=3, alpha=1e-4, beta=0.75, bias=2.0),
        const("one", np.ones(4)), const("zero", np.zeros(4)),
        helper.make_node("BatchNormalization", ["l", "one", "zero", "mean", "var"], ["y"]),
    ]  # fmt: skip
    g, w = check_same(make_model(nodes, {"mean": rnd(4), "var": rnd(4) ** 2 + 1}, ["N", 4, 3, 3]))
    assert dict(g[g.outputs[0][1]].attrs) == {"eps": 1e-5, "momentum": 0.1, "affine": False}
    lrn = next(n for n in g if n.op is Op.LRN)
    assert dict(lrn.attrs) == {"size": 3, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    assert profile(g).totals.params == 0 and len(w) == 2


def test_model_bytes_and_names_of_unnamed_nodes() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["first"]), helper.make_node("Relu", ["first"], ["y"])]
    data = make_model(nodes, {}, ["N", 3]).SerializeToString()
    g, _ = from_onnx(data, name="tiny")
    assert g.name == "tiny"
    assert [n.name for n in g] == ["x", "first", "y"]


def test_weights_are_writable_copies() -> None:
    nodes = [helper.make_node("Gemm", ["x", "fc.weight"], ["y"], transB=1)]
    _, w = from_onnx(make_model(nodes, {"fc.weight": rnd(2, 3)}, ["N", 3]))
    assert w["fc.weight"].flags.writeable


# ---------------------------------------------------------------------------- errors


def test_unsupported_ops_are_listed_once_with_counts() -> None:
    nodes = [
        helper.make_node("Cos", ["x"], ["r1"]),
        helper.make_node("Cos", ["r1"], ["r2"]),
        helper.make_node("Elu", ["r2"], ["l"]),
        helper.make_node("Reshape", ["l", "seq_shape"], ["s"]),
        helper.make_node("LSTM", ["s", "W", "R"], ["", "h"], hidden_size=2),
        helper.make_node("Flatten", ["h"], ["y"]),
    ]
    inits = {
        "seq_shape": np.array([1, -1, 16], np.int64),
        "W": rnd(1, 8, 16),
        "R": rnd(1, 8, 2),
    }
    with pytest.raises(OnnxImportError) as info:
        from_onnx(make_model(nodes, inits, [1, 1, 8, 8]))
    assert info.value.message == "unsupported ONNX ops: Cos x2, Elu x1, LSTM x1"


def test_unsupported_custom_domain_op() -> None:
    node = helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft")
    model = make_model([node], {}, ["N", 3, 4, 4], out_shape=["N", 3, 4, 4])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(
        OnnxImportError, match=r"unsupported ONNX ops: com\.microsoft\.FusedConv x1"
    ):
        from_onnx(model)


def test_asymmetric_padding_is_a_clear_error() -> None:
    """Of an average pool (a conv or max pool gets a pad node: tests/test_from_onnx_families.py)."""
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                              pads=[0, 0, 1, 1], strides=[2, 2], name="stem")]  # fmt: skip
    with pytest.raises(
        OnnxImportError, match=r"'stem' \(AveragePool\): asymmetric padding \[0, 0, 1, 1\]"
    ):
        from_onnx(make_model(nodes, {}, ["N", 2, 8, 8]))
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                              auto_pad="SAME_UPPER")]  # fmt: skip
    with pytest.raises(OnnxImportError, match="asymmetric padding"):
        from_onnx(make_model(nodes, {}, ["N", 2, 7, 7]))


@pytest.mark.parametrize(
    ("cut", "match"),
    [(0.5, "not a valid ONNX file"), (0.0, "is empty"), (None, "no such file")],
)
def test_truncated_empty_or_missing_file(cut: float | None, match: str, tmp_path: Path) -> None:
    g = graphcnn.compile("lenet5")
    data = to_onnx(g).SerializeToString()
    path = tmp_path / "lenet5.onnx"
    if cut is not None:
        path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(OnnxImportError, match=match):
        from_onnx(path)


def test_garbage_file() -> None:
    with pytest.raises(OnnxImportError, match="cannot read ONNX model"):
        from_onnx(b"\xff\xfe this is not protobuf")


def test_structurally_invalid_model_is_reported_by_the_checker() -> None:
    model = make_model([helper.make_node("Relu", ["undefined"], ["y"])], {}, ["N", 3])
    with pytest.raises(OnnxImportError, match="reads 'undefined', which nothing in the graph"):
        from_onnx(model)


def test_other_conversion_errors_name_the_node() -> None:
    cases = [
        ([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2, 3], name="tr")], "'tr'"),
        ([helper.make_node("Erf", ["x"], ["y"])], "Erf has no IR counterpart"),
        ([helper.make_node("HardSigmoid", ["x"], ["y"])], "HardSigmoid has no IR counterpart"),
        ([helper.make_node("Flatten", ["x"], ["y"], axis=2)], "merges the batch"),
        ([helper.make_node("Clip", ["x", "", "hi"], ["y"])], r"Clip\(None, 3.0\)"),
    ]  # fmt: skip
    for nodes, match in cases:
        inits = {"hi": np.array(3.0, np.float32)} if nodes[0].op_type == "Clip" else {}
        with pytest.raises(OnnxImportError, match=match):
            from_onnx(make_model(nodes, inits, ["N", 3, 4, 5]))


def test_symbolic_spatial_size_is_an_error() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {}, ["N", 3, "H", "W"])
    with pytest.raises(OnnxImportError, match="dimension 2 is 'H'; only the batch may be dynamic"):
        from_onnx(model)


# ------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    path.write_bytes(to_onnx(g).SerializeToString())
    return path


def test_cli_import_json_and_weights(resnet_file: Path, tmp_path: Path) -> None:
    from graphcnn.weights import load_safetensors

    out = tmp_path / "w.safetensors"
    res = CliRunner().invoke(main, ["import", str(resnet_file), "--json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    t = profile(g).totals
    assert (data["totals"]["params"], data["totals"]["macs"]) == (t.params, t.macs)
    assert data["nodes"] == len(g) and data["ops"]["conv2d"] == 20
    assert data["input"] == [3, 64, 64] and data["weights_file"] == str(out)
    w = load_safetensors(out)
    assert set(w) == set(init_weights(g))


def test_cli_import_table_and_dump(resnet_file: Path) -> None:
    res = CliRunner().invoke(main, ["import", str(resnet_file), "--depth", "1"])
    assert res.exit_code == 0, res.output
    assert "11,689,512 params" in res.output.splitlines()[0]
    assert "layer1" in res.output and "conv2d 20" in res.output
    res = CliRunner().invoke(main, ["import", str(resnet_file), "--dump"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("graph resnet18 {") and "%layer1.0.conv1" in res.output


def test_cli_import_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08")
    res = CliRunner().invoke(main, ["import", str(bad)])
    assert res.exit_code == 2
    assert "error: " in res.output and "Traceback" not in res.output
    model = make_model([helper.make_node("Cos", ["x"], ["y"])], {}, ["N", 3, 4, 4])
    path = tmp_path / "cos.onnx"
    path.write_bytes(model.SerializeToString())
    res = CliRunner().invoke(main, ["import", str(path)])
    assert res.exit_code == 2
    assert "error: unsupported ONNX ops: Cos x1" in res.output


def test_importer_never_imports_torch() -> None:
    code = textwrap.dedent("""
        import sys
        import graphcnn
        import graphcnn.backends.from_onnx as fo
        assert "onnx" not in sys.modules  # imported lazily
        from graphcnn.backends.to_onnx import to_onnx
        for name in ("lenet5", "shufflenet_v2_x0_5", "efficientnet_b0"):
            g, w = fo.from_onnx(to_onnx(graphcnn.compile(name, input_shape=None)))
            g.verify()
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
