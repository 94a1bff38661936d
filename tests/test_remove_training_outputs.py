"""remove_training_outputs: auxiliary heads, everything training-only and their weights go.

A node is training-only when created in a ``training { }`` block or computed from such a node;
the pass drops those nodes, the graph outputs they produce and their weights.
"""

from __future__ import annotations

import pytest
from helpers.passes import assert_same_graph, check_pass, run_pass
from helpers.specs import net
from helpers.weights import random_bn_weights

import graphcnn
from graphcnn.weights import check_weights

pytestmark = pytest.mark.usefixtures("torch1")

BEFORE = """
    y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
    training {
      aux = y -> conv(4, 1) as aux1_conv -> relu -> flatten -> linear(6) as aux1_fc
    }
    aux_soft = aux -> softmax
    logits = y -> global_avgpool -> flatten as flat -> linear(10) as fc
    return logits, aux_soft, aux
    """

AFTER = """
    y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
    logits = y -> global_avgpool -> flatten as flat -> linear(10) as fc
    return logits
    """


def test_aux_head_its_outputs_and_its_weights_are_dropped() -> None:
    # computed from a training-only node outside the block: training-only too
    before = net(BEFORE)
    assert before["softmax"].training_only and not before["fc"].training_only
    # the head's weights go, the others are the caller's; eval mode never ran the head: the
    # logits are unchanged
    check_pass(
        "remove_training_outputs",
        BEFORE,
        AFTER,
        removed={"aux1_conv", "relu_1", "flatten", "aux1_fc", "softmax"},
        new_weights=True,
    )


def test_without_weights() -> None:
    result = run_pass("remove_training_outputs", net(BEFORE))
    assert result.weights is None
    assert_same_graph(result.graph, net(AFTER))


def test_googlenet_aux_heads_and_their_weights() -> None:
    g = graphcnn.compile("googlenet", input_shape=(3, 64, 64))
    weights = random_bn_weights(g)
    result = run_pass("remove_training_outputs", g, weights)
    assert [o for o, _ in g.outputs] != [o for o, _ in result.graph.outputs]
    assert len(result.graph.outputs) == 1
    assert not any(n.training_only for n in result.graph)
    assert {n.split(".")[0] for n in result.removed} == {"aux1", "aux2"}
    assert result.weights is not None
    check_weights(result.graph, result.weights)
    assert not [k for k in result.weights if k.startswith(("aux1.", "aux2."))]
    p0, p1 = graphcnn.profile(g), graphcnn.profile(result.graph)
    assert p1.totals == p0.totals and p1.training_only.params == 0


def test_no_training_nodes_no_change() -> None:
    check_pass("remove_training_outputs", AFTER)
