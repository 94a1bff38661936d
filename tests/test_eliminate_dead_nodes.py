"""eliminate_dead_nodes: nodes no graph output depends on are removed, with their weights.

Graph inputs always stay: they are the graph's signature.
"""

from __future__ import annotations

import pytest
from helpers.passes import check_pass, run_pass
from helpers.specs import net

pytestmark = pytest.mark.usefixtures("torch1")


def test_unused_branch_is_removed_with_its_weights() -> None:
    """The docstring's example."""
    result = check_pass(
        "eliminate_dead_nodes",
        """
        a = x -> conv(8, 3)
        b = x -> conv(8, 1)
        return a
        """,
        """
        a = x -> conv(8, 3)
        return a
        """,
        removed=["conv_1"],
        new_weights=True,
    )
    assert result.weights is not None
    assert sorted(result.weights) == ["conv.bias", "conv.weight"]


def test_dead_subgraph_with_internal_fanout() -> None:
    check_pass(
        "eliminate_dead_nodes",
        """
        y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        d = y -> conv(8, 1) as dead1
        e = d -> bn as dead_bn
        f = concat(d, e) -> relu -> conv(4, 1) as dead2
        return y -> global_avgpool -> flatten -> linear(10) as fc
        """,
        """
        y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        return y -> global_avgpool -> flatten -> linear(10) as fc
        """,
        removed={"dead1", "dead_bn", "concat", "relu_1", "dead2"},
        new_weights=True,
    )


def test_unused_inputs_are_kept() -> None:
    """A second input nothing reads is still part of the signature; nodes computed from it
    alone are dead."""
    before = net(
        """
        unused = input(3, 4, 4) as unused
        z = unused -> relu
        return x -> relu
        """
    )
    result = run_pass("eliminate_dead_nodes", before)
    assert result.removed == ["relu"]
    assert [n.name for n in result.graph.inputs] == ["input", "unused"]
    assert [n.name for n in result.graph] == ["input", "unused", "relu_1"]


def test_training_outputs_are_live() -> None:
    """An auxiliary head is a graph output: this pass keeps it (remove_training_outputs
    drops it)."""
    check_pass(
        "eliminate_dead_nodes",
        """
        y = x -> conv(4, 3) as conv1
        training { aux = y -> flatten -> linear(5) as aux_fc }
        return y -> flatten -> linear(10) as fc, aux
        """,
    )


def test_nothing_dead_no_change() -> None:
    check_pass(
        "eliminate_dead_nodes",
        """
        a = x -> conv(8, 3) as conv1
        b = x -> conv(8, 3) as conv2
        return relu(a + b)
        """,
    )
