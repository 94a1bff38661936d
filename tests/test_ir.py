"""The IR: immutable nodes in topological order, ``verify``, ``users``, ``inference``, ``dump``
and the networkx view.

Each ``verify`` test starts from a graph the compiler produced (which verifies) and breaks exactly
one invariant with ``Node.replace``, then checks that the error names the offending node.
"""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType

import pytest

import graphcnn
from graphcnn.ir import Graph, IRError, Node, Op, ParamDecl, TensorType, freeze

SPEC = """
network net() {
  x = input(3, 8, 8)
  y = x -> conv(4, 3, pad: 1) as conv -> relu as relu
  z = y -> conv(4, 1, bias: false) as proj -> bn as bn
  s = y + z
  training { aux = s -> global_avgpool as aux_pool -> flatten as aux_flat -> linear(2) as aux_fc }
  out = s -> global_avgpool as pool -> flatten -> linear(10) as fc
  return out, aux
}
"""

ORDER = [
    "input",
    "conv",
    "relu",
    "proj",
    "bn",
    "add",
    "aux_pool",
    "aux_flat",
    "aux_fc",
    "pool",
    "flatten",
    "fc",
]
TRAINING = ["aux_pool", "aux_flat", "aux_fc"]


@pytest.fixture
def g() -> Graph:
    return graphcnn.compile_text(SPEC, name="net.gcnn")


def with_node(graph: Graph, node: Node) -> Graph:
    """A copy of ``graph`` with ``node`` put in place of the node of the same name."""
    out = graph.copy()
    out.nodes[node.name] = node
    return out


def broken(graph: Graph) -> IRError:
    with pytest.raises(IRError) as err:
        graph.verify()
    return err.value


# --------------------------------------------------------------------------- structure


def test_compiled_graph_is_in_topological_order_and_verifies(g: Graph) -> None:
    assert [n.name for n in g] == ORDER
    assert [n.name for n in g if n.training_only] == TRAINING
    assert g.outputs == [("out", "fc"), ("aux", "aux_fc")]  # named after the returned variables
    assert [n.name for n in g.inputs] == ["input"]
    g.verify()


def test_node_is_immutable_and_replace_makes_a_new_one(g: Graph) -> None:
    conv = g["conv"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        conv.attrs["groups"] = 2  # type: ignore[index]

    wider = conv.replace(attrs={**conv.attrs, "out_channels": 8})
    assert wider is not conv
    assert wider.attrs["out_channels"] == 8 and conv.attrs["out_channels"] == 4
    assert isinstance(wider.attrs, MappingProxyType), "replace freezes new attributes"
    assert (wider.name, wider.op, wider.inputs, wider.loc) == (
        conv.name,
        conv.op,
        conv.inputs,
        conv.loc,
    )
    assert g["conv"] is conv, "the graph still holds the original"


def test_node_properties(g: Graph) -> None:
    bn = g["bn"]
    assert bn.scope == ""
    assert bn.num_params == 8, "weight and bias; running statistics are buffers"
    assert [(p.name, p.trainable) for p in bn.params] == [
        ("weight", True),
        ("bias", True),
        ("running_mean", False),
        ("running_var", False),
    ]
    assert (
        Node("layer1.0.conv1", Op.IDENTITY, (), freeze({}), TensorType(("N", 1))).scope
        == "layer1.0"
    )


def test_users_lists_consumers_in_order(g: Graph) -> None:
    assert g.users("input") == ["conv"]
    assert g.users("relu") == ["proj", "add"]
    assert g.users("add") == ["aux_pool", "pool"]
    assert g.users("fc") == []


def test_users_follows_added_nodes(g: Graph) -> None:
    assert g.users("fc") == []
    g.add(Node("probs", Op.SOFTMAX, ("fc",), freeze({"axis": 1}), g["fc"].type))
    assert g.users("fc") == ["probs"]


def test_add_refuses_a_duplicate_name(g: Graph) -> None:
    with pytest.raises(IRError, match="duplicate node name 'relu'"):
        g.add(g["relu"])


def test_copy_is_independent(g: Graph) -> None:
    c = g.copy()
    c.nodes.pop("fc")
    c.outputs.clear()
    assert "fc" in g.nodes and len(g.outputs) == 2


def test_inference_drops_training_only_nodes_and_outputs(g: Graph) -> None:
    inf = g.inference()
    assert [n.name for n in inf] == [n for n in ORDER if n not in TRAINING]
    assert inf.outputs == [o for o in g.outputs if o[1] == "fc"]
    assert inf.scopes == g.scopes
    inf.verify()
    assert len(g) == len(ORDER), "the training graph is unchanged"


# --------------------------------------------------------------------------- verify


def test_verify_input_defined_later(g: Graph) -> None:
    nodes = dict(g.nodes)
    relu = nodes.pop("relu")
    g.nodes = {"relu": relu, **nodes}
    err = broken(g)
    assert str(err) == "relu: input %conv is defined later"
    assert (err.node, err.loc) == ("relu", relu.loc)


def test_verify_missing_input(g: Graph) -> None:
    err = broken(with_node(g, g["relu"].replace(inputs=("nowhere",))))
    assert str(err) == "relu: input %nowhere does not exist"
    assert err.node == "relu"


def test_verify_stale_type(g: Graph) -> None:
    stale = g["conv"].replace(type=TensorType(("N", 4, 4, 4)))
    err = broken(with_node(g, stale))
    assert err.node == "conv"
    assert str(err) == "conv: stored type f32[N,4,4,4] but conv2d infers f32[N,4,8,8]"


def test_verify_stale_params(g: Graph) -> None:
    conv = g["conv"]
    err = broken(with_node(g, conv.replace(params=conv.params[:1])))
    assert (str(err), err.node) == ("conv: parameter declarations are stale", "conv")


def test_verify_stale_params_after_an_attribute_change(g: Graph) -> None:
    """Changing an attribute without re-running its rule is caught too (bias=false keeps the
    bias ParamDecl)."""
    conv = g["conv"]
    err = broken(with_node(g, conv.replace(attrs={**conv.attrs, "bias": False})))
    assert "parameter declarations are stale" in str(err)


def test_verify_inference_node_consuming_a_training_only_node(g: Graph) -> None:
    err = broken(with_node(g, g["relu"].replace(training_only=True)))
    assert str(err) == "proj: inference node consumes training-only %relu"
    assert err.node == "proj"


def test_training_only_nodes_may_consume_each_other_and_inference_nodes(g: Graph) -> None:
    assert g["aux_pool"].training_only and not g["add"].training_only
    g.verify()


def test_verify_input_node_with_inputs(g: Graph) -> None:
    g.add(g["input"].replace(name="input2", inputs=("relu",)))
    assert str(broken(g)) == "input2: input node has inputs"


def test_verify_no_outputs(g: Graph) -> None:
    g.outputs = []
    assert str(broken(g)) == "graph has no outputs"


def test_verify_output_of_a_missing_node(g: Graph) -> None:
    g.outputs.append(("extra", "gone"))
    assert str(broken(g)) == "output 'extra' refers to missing node %gone"


def test_verify_reports_a_node_whose_rule_fails_as_an_ir_error(g: Graph) -> None:
    """A shape rule's ShapeError becomes an IRError naming the node and its location."""
    conv = g["conv"]
    err = broken(with_node(g, conv.replace(attrs={**conv.attrs, "groups": 3})))
    assert (err.node, err.loc) == ("conv", conv.loc)
    assert str(err).startswith("conv: ") and "groups=3 does not divide" in str(err)


def test_verify_reports_a_wrong_input_count_as_an_ir_error(g: Graph) -> None:
    err = broken(with_node(g, g["fc"].replace(inputs=("flatten", "flatten"))))
    assert err.node == "fc" and "takes 1 input(s), got 2" in str(err)


# --------------------------------------------------------------------------- views


def test_dump_shows_every_node_with_type_params_and_location(g: Graph) -> None:
    text = g.dump()
    lines = text.splitlines()
    assert lines[0] == "graph net {" and lines[-1] == "}"
    assert lines[-2] == "  return out=%fc, aux=%aux_fc"
    for node, line in zip(g, lines[1:-2], strict=True):
        assert line.startswith(f"  %{node.name}: {node.type} = {node.op}(")
        assert node.loc is not None and line.endswith(
            f"  # net.gcnn:{node.loc.line}:{node.loc.col}"
        )
        assert ("training_only" in line) == node.training_only
    conv = lines[1 + ORDER.index("conv")]
    assert "%conv: f32[N,4,8,8] = conv2d(%input)" in conv
    assert "kernel=(3,3)" in conv and "bias=true" in conv
    assert "[weight:4x3x3x3, bias:4]" in conv
    assert "running_mean*:4" in lines[1 + ORDER.index("bn")], "buffers are starred"
    assert "= add(%relu, %bn)" in lines[1 + ORDER.index("add")]
    assert re.search(r"# net\.gcnn:4:\d+$", conv)


def test_networkx_view_is_a_dag_with_one_vertex_per_node(g: Graph) -> None:
    nx = pytest.importorskip("networkx")
    d = g.to_networkx()
    assert d.number_of_nodes() == len(g)
    assert set(d.edges) == {(i, n.name) for n in g for i in n.inputs}
    assert d.number_of_edges() == sum(len(n.inputs) for n in g)
    assert nx.is_directed_acyclic_graph(d)
    position = {name: k for k, name in enumerate(g.nodes)}
    assert all(position[a] < position[b] for a, b in d.edges), "edges point forward"
    assert d.nodes["conv"]["node"] is g["conv"]
    assert d.nodes["conv"]["op"] == "conv2d"
    assert d.graph["name"] == "net"


def test_param_decl_counts() -> None:
    assert ParamDecl("weight", (64, 3, 7, 7)).numel == 9408
    assert ParamDecl("running_mean", (64,), trainable=False).numel == 64
