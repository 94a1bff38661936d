"""ONNX node metadata (backends/to_onnx/metadata.py): every node carries its cost and spec
location in ``metadata_props`` (what Netron shows), and the model still passes the full checker
and loads in ONNX Runtime."""

from __future__ import annotations

import pytest

import graphcnn

onnx = pytest.importorskip("onnx")


def props(node: object) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}  # type: ignore[attr-defined]


def test_nodes_carry_cost_and_spec_location() -> None:
    from graphcnn.backends.to_onnx import check, to_onnx

    g = graphcnn.compile("resnet18")
    model = to_onnx(g)
    check(model, g)
    rows = {r.name: r for r in graphcnn.profile(g).layers}
    nodes = {n.name: n for n in model.graph.node}
    conv = props(nodes["layer1.0.conv1"])
    assert conv["graphcnn.macs"] == str(rows["layer1.0.conv1"].cost.macs) == "115605504"
    assert conv["graphcnn.params"] == "36864"
    assert conv["graphcnn.flops"] == str(rows["layer1.0.conv1"].cost.flops)
    assert conv["graphcnn.output"] == "64x56x56"
    assert (
        conv["graphcnn.spec"] == str(g["layer1.0.conv1"].loc) == nodes["layer1.0.conv1"].doc_string
    )
    for name, node in nodes.items():
        if name in rows:
            assert props(node)["graphcnn.macs"] == str(rows[name].cost.macs), name
    top = props(model)
    assert top["graphcnn.macs"] == str(graphcnn.profile(g).totals.macs)
    assert top["graphcnn.cost_batch"] == "1"


def test_helper_nodes_name_their_layer_and_ort_accepts_them() -> None:
    ort = pytest.importorskip("onnxruntime")
    from graphcnn.backends.to_onnx import check, to_onnx

    g = graphcnn.compile_text(
        "network net() {\n x = input(3, 16, 16)\n"
        " return x -> conv(8, 3) as conv -> silu as act -> flatten\n}\n"
    )
    model = to_onnx(g)
    check(model, g)
    nodes = {n.name: n for n in model.graph.node}
    helper = props(nodes["act.sigmoid"])
    assert helper["graphcnn.part_of"] == "act"
    assert helper["graphcnn.spec"] == str(g["act"].loc)
    assert props(nodes["act"])["graphcnn.op"] == "silu"
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
