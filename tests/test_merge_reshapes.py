"""merge_reshapes: consecutive flatten/reshape nodes become one view of the original.

The second view is rewritten to read the first one's input (a ``flatten`` with start 1 stays a
``flatten``; anything else becomes a ``reshape`` to the same output shape) and the first goes,
when the first view has no other user.
"""

from __future__ import annotations

from pass_helpers import (
    assert_same_graph,
    assert_same_outputs,
    net,
    random_bn_weights,
    run_pass,
    torch_single_thread,
)

torch_single_thread()

INPUT = "64, 7, 7"


def check(
    before_body: str, after_body: str, removed: list[str], rewritten: list[str], input: str = INPUT
) -> None:
    before = net(before_body, input)
    weights = random_bn_weights(before)
    result = run_pass("merge_reshapes", before, weights)
    assert_same_graph(result.graph, net(after_body, input))
    assert result.removed == removed and result.rewritten == rewritten
    assert result.weights is None
    assert_same_outputs(before, weights, result.graph, weights)


def test_reshape_then_flatten() -> None:
    """The docstring's example."""
    check(
        """
        y = x -> reshape([64, 49]) -> flatten -> linear(10) as fc
        return y
        """,
        """
        y = x -> flatten -> linear(10) as fc
        return y
        """,
        removed=["reshape"],
        rewritten=["flatten"],
    )


def test_flatten_then_reshape() -> None:
    check(
        """
        y = x -> relu -> flatten as f -> reshape([-1, 49]) as r
        return y
        """,
        """
        y = x -> relu -> reshape([64, 49]) as r
        return y
        """,
        removed=["f"],
        rewritten=["r"],
    )


def test_flatten_from_dim_2_becomes_a_reshape() -> None:
    check(
        """
        y = x -> reshape([8, 8, 49]) as r -> flatten(start: 2) as f
        return y
        """,
        """
        y = x -> reshape([8, 392]) as f
        return y
        """,
        removed=["r"],
        rewritten=["f"],
    )


def test_chain_of_three_views_ending_in_flatten() -> None:
    check(
        """
        y = x -> reshape([64, 49]) as v1 -> reshape([-1, 7, 7]) as v2 -> flatten as v3
              -> linear(10) as fc
        return y
        """,
        """
        y = x -> flatten as v3 -> linear(10) as fc
        return y
        """,
        removed=["v1", "v2"],
        rewritten=["v2", "v3"],
    )


def test_chain_of_three_views_ending_in_reshape() -> None:
    check(
        """
        y = x -> relu -> flatten as v1 -> reshape([49, 64]) as v2 -> reshape([7, -1]) as v3
        return y
        """,
        """
        y = x -> relu -> reshape([7, 448]) as v3
        return y
        """,
        removed=["v1", "v2"],
        rewritten=["v2", "v3"],
    )


def test_a_view_with_another_user_is_kept() -> None:
    """``v1`` also feeds a relu: it must stay, and so the chain is not merged through it."""
    body = """
        v = x -> reshape([64, 49]) as v1
        a = v -> flatten as v2
        b = v -> relu -> flatten as v3
        return a + b
        """
    before = net(body, INPUT)
    result = run_pass("merge_reshapes", before)
    assert result.removed == [] and result.rewritten == []
    assert_same_graph(result.graph, net(body, INPUT))


def test_views_after_other_ops_are_untouched() -> None:
    body = """
        y = x -> conv(8, 1) as conv1 -> flatten as f -> relu -> reshape([8, 49]) as r
        return y
        """
    result = run_pass("merge_reshapes", net(body, INPUT))
    assert result.removed == [] and result.rewritten == []
    assert_same_graph(result.graph, net(body, INPUT))


def test_a_returned_view_is_kept() -> None:
    before = net(
        """
        v = x -> reshape([64, 49]) as v1
        f = v -> flatten as v2
        return f, v
        """,
        INPUT,
    )
    weights = random_bn_weights(before)
    result = run_pass("merge_reshapes", before, weights)
    assert "v1" in result.graph.nodes
    assert_same_outputs(before, weights, result.graph, weights)
