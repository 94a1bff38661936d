"""What the ONNX model says about the spec: node and initializer names are the IR scope names,
doc strings the spec locations; the batch is the symbol ``N`` through every node, or static; and
``check()`` refuses a model that disagrees with the IR.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers.onnx_ref import (  # noqa: E402
    TOL,
    assert_valid,
    dims,
    rel_err,
    sample,
    torch_run,
)
from helpers.weights import random_bn_weights  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.ort_engine import EngineError, OrtEngine  # noqa: E402
from graphcnn.backends.to_onnx import OnnxError, check, to_onnx  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402


@pytest.fixture(scope="module")
def resnet18() -> tuple[Graph, Any]:
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    return g, to_onnx(g)


def test_node_and_initializer_names_are_ir_scope_names(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    nodes = {n.name: n for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    assert nodes["layer1.0.conv1"].op_type == "Conv"
    assert list(nodes["layer1.0.conv1"].input)[1:] == ["layer1.0.conv1.weight"]
    assert nodes["layer1.0.bn1"].op_type == "BatchNormalization"
    assert nodes["fc"].op_type == "Gemm"
    assert {"layer1.0.conv1.weight", "fc.weight", "fc.bias", "bn1.running_mean"} <= inits
    assert len(nodes) == len(model.graph.node)  # node names are unique
    assert len(inits) == len(model.graph.initializer)
    params = {f"{n.name}.{p.name}" for n in g for p in n.params}
    assert params <= inits
    # every initializer is an IR parameter or a constant of one IR node (prefixed by its name)
    assert all(i in params or i.rpartition(".")[0] in g.nodes for i in inits)
    # every IR node is an ONNX node output of the same name
    outputs = {o for n in model.graph.node for o in n.output}
    assert {n.name for n in g if n.op is not Op.INPUT} <= outputs


def test_doc_strings_carry_the_spec_location(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    by_name = {n.name: n for n in model.graph.node}
    assert by_name["layer1.0.conv1"].doc_string.startswith("resnet.gcnn:")
    for ir in g:
        if ir.op is Op.INPUT:
            continue
        assert by_name[ir.name].doc_string == str(ir.loc), ir.name
        assert ".gcnn:" in by_name[ir.name].doc_string
    assert model.producer_name == "graphcnn"
    assert "resnet18" in model.doc_string


def test_batch_is_dynamic_n_by_default(resnet18: tuple[Graph, Any]) -> None:
    _, model = resnet18
    assert dims(model.graph.input[0]) == ["N", 3, 64, 64]
    assert dims(model.graph.output[0]) == ["N", 1000]
    eng = OrtEngine(model, device="cpu", threads=1)
    for b in (1, 3):
        assert eng.run(np.zeros((b, 3, 64, 64), np.float32))[0].shape == (b, 1000)


def test_symbolic_batch_propagates_through_every_node(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    assert_valid(model, g, symbolic_batch_everywhere=True)


def test_symbolic_batch_survives_channel_shuffle() -> None:
    g = graphcnn.compile("shufflenet_v2_x0_5", input_shape=(3, 64, 64))
    assert_valid(to_onnx(g), g, symbolic_batch_everywhere=True)


def test_static_batch_fixes_the_batch_dim(torch1: Any) -> None:
    g = graphcnn.compile("shufflenet_v2_x0_5", input_shape=(3, 64, 64))
    w = random_bn_weights(g)
    model = to_onnx(g, w, static_batch=3)
    assert_valid(model, g, batch=3)
    assert dims(model.graph.input[0]) == [3, 3, 64, 64]
    assert dims(model.graph.output[0]) == [3, 1000]
    eng = OrtEngine(model, device="cpu", threads=1)
    x = sample(g, batch=3)
    (ref,) = torch_run(torch1, g, w, x)
    assert rel_err(eng.run(x)[0], ref) <= TOL
    with pytest.raises(
        EngineError, match=r"input shape \[2, 3, 64, 64\], expected \[3, 3, 64, 64\]"
    ):
        eng.run(sample(g, batch=2))


def test_check_rejects_a_model_that_disagrees_with_the_ir(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    conv = next(n for n in bad.graph.node if n.name == "layer1.0.conv1")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [0, 0, 0, 0]
    with pytest.raises(OnnxError):
        check(bad, g)
