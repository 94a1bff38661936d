"""ONNX import of the CNNs users export (issue "graphcnn import on real models"): torchvision's and
timm's, random weights, eval mode, exported by both of torch's exporters (``dynamo=False``,
opset 17, and ``dynamo=True``, opset 18), checked by ``tools/onnx_families.py``:

- params equal torch's count (less what the exporter folded: a folded batch norm's weight and
  bias, plus the bias it leaves on its conv), MACs equal forward hooks on the torch model's
  ``Conv2d``/``Linear`` modules, and ONNX Runtime on ``to_onnx`` of the imported graph computes
  what it computes on the original export and what torch computes (1e-4);
- weight keys are the ``state_dict`` keys, also where the exporter renamed the folded weight;
- a transformer is refused with a message naming attention's ops.

The fast subset runs small models at 64 px; the rest is ``slow`` (the survey itself, with every
model of the issue: ``tools/onnx_families.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torchvision")

import numpy as np  # noqa: E402
from helpers.onnx_ref import ort_run, rel_err  # noqa: E402
from helpers.tools import load_tool  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from graphcnn.backends.from_onnx import OnnxImportError, from_onnx  # noqa: E402
from graphcnn.backends.to_onnx import to_onnx  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402


def model(nodes: list[Any], inits: dict[str, Any], shape: list[int], opset: int = 18) -> Any:
    """A one-input, one-output (``y``) model, as an exporter writes it (static batch)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    import onnx

    return onnx.shape_inference.infer_shapes(m)


def rnd(*shape: int) -> Any:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def same(m: Any, shape: list[int]) -> tuple[Graph, dict[str, Any]]:
    """Import ``m``; ONNX Runtime computes the same on ``to_onnx`` of it."""
    g, w = from_onnx(m)
    x = rnd(*shape)
    assert rel_err(ort_run(to_onnx(g, w), x)[0], ort_run(m, x)[0]) < 1e-5
    return g, w


def ops(g: Graph) -> list[str]:
    return [str(n.op) for n in g if n.op is not Op.INPUT]


def test_asymmetric_conv_and_max_pool_pads_become_a_pad_node() -> None:
    """TF "same" padding the dynamo exporter moved into Conv/MaxPool (timm's Conv2dSame):
    a pad node (zeros; -inf before a max pool), then the window without padding; the folded
    conv weight (``onnx::Conv_7``) is named by its module."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "onnx::Conv_7"], ["c"], "/conv_dw/Conv", pads=[0, 0, 1, 1], strides=[2, 2]
        ),
        helper.make_node(
            "MaxPool", ["c"], ["y"], "/pool/MaxPool", kernel_shape=[3, 3], strides=[2, 2],
            pads=[1, 0, 2, 1],
        ),
    ]  # fmt: skip
    g, w = same(model(nodes, {"onnx::Conv_7": rnd(4, 3, 3, 3)}, [1, 3, 9, 9]), [1, 3, 9, 9])
    assert ops(g) == ["pad", "conv2d", "pad", "max_pool2d"]
    pads = [n for n in g if n.op is Op.PAD]
    assert [n.attrs["pads"] for n in pads] == [(0, 1, 0, 1), (0, 1, 1, 2)]
    assert [n.attrs["value"] for n in pads] == [0.0, -float("inf")]
    assert list(w) == ["conv_dw.weight"]
    assert all(n.attr_pair("padding") == (0, 0) for n in g if n.op in (Op.CONV2D, Op.MAX_POOL))


@pytest.mark.parametrize("ceil", [0, 1])
def test_asymmetric_average_pool_counting_the_border_is_a_pad_node(ceil: int) -> None:
    """count_include_pad=1: the zeros count, so zeros first and an unpadded pool is exact."""
    n = helper.make_node(
        "AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 2],
        count_include_pad=1, ceil_mode=ceil,
    )  # fmt: skip
    g, _ = same(model([n], {}, [1, 3, 8, 9]), [1, 3, 8, 9])
    assert ops(g) == ["pad", "avg_pool2d"]
    (pad,) = [n for n in g if n.op is Op.PAD]
    assert pad.attrs["pads"] == (1, 2, 0, 1) and pad.attrs["value"] == 0.0


def test_asymmetric_average_pool_not_counting_the_border_is_refused() -> None:
    n = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1])
    with pytest.raises(OnnxImportError, match="asymmetric padding") as info:
        from_onnx(model([n], {}, [1, 3, 8, 8]))
    assert "count_include_pad=0" in str(info.value)
    assert "count_include_pad=True" in (info.value.hint or "")


def test_gelu_as_the_dynamo_exporter_writes_it() -> None:
    """x * (0.5 * (1 + erf(x / sqrt 2))): torchvision ConvNeXt's nn.GELU, dynamo=True."""
    nodes = [
        helper.make_node("Div", ["x", "r2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]),
        helper.make_node("Mul", ["half", "a"], ["h"]),
        helper.make_node("Mul", ["x", "h"], ["y"]),
    ]
    inits = {"r2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5)}
    g, _ = same(model(nodes, inits, [1, 8]), [1, 8])
    assert ops(g) == ["gelu"]


def _as_strided(indices: Any) -> Any:
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "flat"], ["f"]),
        helper.make_node("Gather", ["f", "idx"], ["y"], axis=0),
    ]
    inits = {"axes": np.array([-1, -2]), "flat": np.array([-1]), "idx": indices}
    return model(nodes, inits, [1, 6, 4, 4])


def test_in_order_gather_of_a_flattened_tensor_is_a_view() -> None:
    """ReduceMean -> Reshape [-1] -> Gather(0..C-1 as [1, C, 1, 1]): the dynamo exporter's
    as_strided after torchvision ConvNeXt's adaptive pool."""
    g, _ = same(_as_strided(np.arange(6).reshape(1, 6, 1, 1)), [1, 6, 4, 4])
    assert ops(g) == ["global_avg_pool"]
    with pytest.raises(OnnxImportError, match="Gather of an activation"):
        from_onnx(_as_strided(np.arange(6)[::-1].reshape(1, 6, 1, 1).copy()))


def test_attention_is_refused_naming_its_ops() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "t"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "x"], ["y"]),
    ]
    with pytest.raises(OnnxImportError) as info:
        from_onnx(model(nodes, {}, [1, 4, 8]))
    assert "attention is not supported: MatMul between two activations x2" in str(info.value)
    assert "Softmax over tokens x1" in str(info.value)


F = load_tool("onnx_families")


def _dynamo() -> list[Any]:
    """The marks of a dynamo-exporter case: skipped where onnxscript is missing."""
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return [pytest.mark.skip(reason="the dynamo exporter needs onnxscript")]
    return []


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The small models' exports, shared by this module's tests and removed after them."""
    folder = tmp_path_factory.mktemp("exports")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def assert_imports(r: Any) -> None:
    assert r.status not in ("refused", "error", "export-failed"), r.message
    assert r.params == r.params_expected
    assert r.macs == r.macs_expected
    assert r.err_roundtrip < F.TOL and r.err_torch < F.TOL, (r.err_roundtrip, r.err_torch)
    assert r.status == "ok"


def state_dict_keys(name: str) -> tuple[set[str], set[str]]:
    """The model's state_dict keys (without BN's counters) and its convs' ``<path>.bias``."""
    import torch

    m = F.build(name)
    keys = {k for k in m.state_dict() if not k.endswith("num_batches_tracked")}
    convs = {f"{p}.bias" for p, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d)}
    return keys, convs


SLOW_MARK = pytest.mark.slow
FAST = [
    *(pytest.param(name, "legacy", id=f"{name}-legacy") for name in
      ("resnet18", "mobilenet_v3_small", "tm:tf_efficientnet_b0", "tm:regnetx_002",
       "tm:cspdarknet53", "seg:lraspp_mobilenet_v3_large")),
    pytest.param("tm:tf_efficientnet_b0", "dynamo", marks=_dynamo(), id="tf_effnet-dynamo"),
    pytest.param("tm:regnetx_002", "dynamo", marks=_dynamo(), id="regnetx_002-dynamo"),
    pytest.param("resnet18", "dynamo", marks=[*_dynamo(), SLOW_MARK], id="resnet18-dynamo"),
    pytest.param(
        "mobilenet_v3_small", "dynamo", marks=[*_dynamo(), SLOW_MARK], id="mobilenet_v3-dynamo"
    ),
    pytest.param(
        "seg:lraspp_mobilenet_v3_large", "dynamo", marks=[*_dynamo(), SLOW_MARK], id="lraspp-dynamo"
    ),
]  # fmt: skip
"""timm's tf_efficientnet pads asymmetrically (a Pad node; the dynamo exporter moves it into
the Conv), regnetx_002's and mobilenet_v3's blocks nest modules deeply, cspdarknet53 is made of
LeakyRelu; LR-ASPP (torchvision's segmentation) upsamples bilinearly to sizes read off its
activations' shapes."""


@pytest.mark.parametrize(("name", "exporter"), FAST)
def test_exported_model_imports_exactly(name: str, exporter: str, cache: Path) -> None:
    """Batch norms folded by the exporter: the imported convs carry them as biases, named by
    their module (``onnx::Conv_123`` -> ``<module>.bias``; timm's Conv2dSame pads first)."""
    r = F.check(name, exporter, cache)
    assert_imports(r)
    keys, conv_biases = state_dict_keys(name)
    assert set(r.keys) <= keys | conv_biases, sorted(set(r.keys) - keys - conv_biases)
    assert any(k in conv_biases - keys for k in r.keys)  # some batch norm was folded


@pytest.mark.parametrize(
    "exporter", ["legacy", pytest.param("dynamo", marks=[*_dynamo(), SLOW_MARK])]
)
def test_kept_batch_norms_import_with_state_dict_keys(exporter: str, cache: Path) -> None:
    """``training=PRESERVE`` / ``optimize=False``: every parameter and buffer by its key
    (torchvision's RegNet: ``trunk_output.block1.block1-0.proj.0.weight``)."""
    name = "regnet_x_400mf"
    r = F.check(name, exporter, cache, keep_bn=True)
    assert_imports(r)
    keys, _ = state_dict_keys(name)
    assert set(r.keys) == keys
    assert "trunk_output.block1.block1-0.proj.0.weight" in r.keys


def test_transformer_is_refused_naming_attention(cache: Path) -> None:
    r = F.check("tm:vit_tiny_patch16_224", "legacy", cache, size=224)
    assert r.status == "refused"
    assert "attention is not supported" in r.message
    assert "MatMul between two activations x24" in r.message
    assert "Softmax over tokens x12" in r.message


def test_attention_error_names_the_ops(cache: Path) -> None:
    """The error itself, with its hint (what ``graphcnn import`` prints)."""
    path = cache / "tm_vit_tiny_patch16_224-legacy-fold-224.onnx"
    if not path.exists():
        F.check("tm:vit_tiny_patch16_224", "legacy", cache, size=224)
    with pytest.raises(OnnxImportError, match="attention") as info:
        from_onnx(path)
    assert "transformers" in (info.value.hint or "")


SLOW = [
    "resnext50_32x4d", "densenet121", "googlenet", "inception_v3", "squeezenet1_1",
    "mobilenet_v2", "mnasnet0_5", "shufflenet_v2_x0_5", "efficientnet_b0", "regnet_y_400mf",
    "convnext_tiny", "tm:resnet50d", "tm:seresnext26d_32x4d", "tm:mobilenetv3_large_100",
    "tm:convnext_atto", "tm:ghostnet_100", "tm:dla34", "tm:dpn68", "tm:res2net50_26w_4s",
    "tm:rexnet_100", "tm:selecsls42b", "tm:regnety_002", "tm:densenet121", "tm:cspresnet50",
    "tm:nasnetalarge", "tm:hrnet_w18_small", "tm:inception_v4", "tm:inception_resnet_v2",
    "seg:fcn_resnet50", "seg:deeplabv3_resnet50",
]  # fmt: skip


SLOW_DYNAMO = [
    "squeezenet1_1", "shufflenet_v2_x0_5", "convnext_tiny", "tm:convnext_atto",
    "tm:ghostnet_100", "tm:dla34", "tm:cspdarknet53", "tm:hrnet_w18_small",
    "seg:deeplabv3_mobilenet_v3_large",
]  # fmt: skip
"""The dynamo exporter takes 5-20 s a model: a few families (torchvision's ConvNeXt: its
as_strided gather and its gelu form)."""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "exporter"),
    [(name, "legacy") for name in SLOW]
    + [pytest.param(name, "dynamo", marks=_dynamo()) for name in SLOW_DYNAMO],
)
def test_family_imports_exactly(name: str, exporter: str, tmp_path: Path) -> None:
    """Each export in the test's own folder (removed when it passes: up to 0.9 GB a model)."""
    assert_imports(F.check(name, exporter, tmp_path))
