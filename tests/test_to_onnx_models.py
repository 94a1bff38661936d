"""Every zoo model lowers to a valid ONNX model that computes what the PyTorch lowering does.

``to_onnx`` passes ``onnx.checker`` (full check) and strict ONNX shape inference without warnings,
every IR node's shape (batch dim included) is what ONNX infers, and ONNX Runtime (CPU) computes
what the PyTorch lowering computes, max|diff| / max|ref| <= 1e-4 in float32, with and without the
``inference`` pipeline (BN folded), with non-trivial batch-norm statistics. Reduced input sizes
where the architecture allows (adaptive pools with non-dividing sizes are an OnnxError, tested
too).
"""

from __future__ import annotations

from typing import Any

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers.onnx_ref import (  # noqa: E402
    TOL,
    ZOO,
    assert_valid,
    lowerable,
    ort_run,
    reduced,
    rel_err,
    sample,
    torch_run,
)
from helpers.weights import random_bn_weights  # noqa: E402
from helpers.zoo import zoo_params  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_onnx import OnnxError, to_onnx  # noqa: E402
from graphcnn.ir import Op  # noqa: E402
from graphcnn.passes import optimize  # noqa: E402
from graphcnn.weights import init_weights  # noqa: E402


@pytest.mark.slow
def test_reduced_sizes_are_reduced_where_the_architecture_allows() -> None:
    """Only models whose adaptive pool (or spec) needs it run at their own size."""
    full = {
        n
        for n in ZOO
        if reduced(n).inputs[0].type.shape == graphcnn.compile(n).inputs[0].type.shape
    }
    vgg = {n for n in ZOO if n.startswith("vgg")}
    assert full == vgg | {"alexnet", "googlenet_paper", "inception_v3", "lenet5"}, full


@pytest.mark.parametrize("name", zoo_params(ZOO))
def test_zoo_model_is_valid_and_matches_torch(name: str, torch1: Any) -> None:
    g = reduced(name)
    w = random_bn_weights(g)
    x = sample(g)
    (ref,) = torch_run(torch1, g, w, x)
    for pipeline in ("none", "inference"):
        g2, w2, _ = optimize(g, w, pipeline)
        assert w2 is not None
        model = to_onnx(g2, w2)
        assert_valid(model, g2)
        bns = sum(n.op is Op.BATCH_NORM for n in g2.inference())
        assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == bns
        if pipeline == "inference":
            assert sum(n.op_type == "Dropout" for n in model.graph.node) == 0
        (out,) = ort_run(model, x)
        err = rel_err(out, ref)
        assert err <= TOL, f"{name} ({pipeline}): {err:.2e}"


def test_inference_pipeline_folds_batch_norm_into_the_onnx_model() -> None:
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    plain = to_onnx(g)
    g2, w2, _ = optimize(g, init_weights(g), "inference")
    folded = to_onnx(g2, w2)
    assert sum(n.op_type == "BatchNormalization" for n in plain.graph.node) == 20
    assert sum(n.op_type == "BatchNormalization" for n in folded.graph.node) == 0
    assert {n.name for n in folded.graph.node if n.op_type == "Conv"} == {
        n.name for n in plain.graph.node if n.op_type == "Conv"
    }
    assert len(folded.graph.initializer) < len(plain.graph.initializer)


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("alexnet", 64),
        pytest.param("vgg11", 96, marks=pytest.mark.slow),
        pytest.param("vgg16", 160, marks=pytest.mark.slow),
    ],
)
def test_non_dividing_adaptive_pool_is_a_clear_onnx_error(name: str, size: int) -> None:
    g = graphcnn.compile(name, input_shape=(3, size, size))
    assert not lowerable(g)
    with pytest.raises(OnnxError) as info:
        to_onnx(g)
    msg = info.value.format()
    assert "adaptive_avgpool" in msg and "(node avgpool, " in msg
    assert f"{'alexnet' if name == 'alexnet' else 'vgg'}.gcnn:" in msg  # the node's spec location
    assert "hint:" in msg
