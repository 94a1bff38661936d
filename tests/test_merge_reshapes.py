"""merge_reshapes: consecutive flatten/reshape nodes become one view of the original.

The second view is rewritten to read the first one's input (a ``flatten`` with start 1 stays a
``flatten``; anything else becomes a ``reshape`` to the same output shape) and the first goes,
when the first view has no other user.
"""

from __future__ import annotations

import pytest
from helpers.passes import check_pass

pytestmark = pytest.mark.usefixtures("torch1")

INPUT = "64, 7, 7"


def test_reshape_then_flatten() -> None:
    """The docstring's example."""
    check_pass(
        "merge_reshapes",
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
        input=INPUT,
    )


def test_flatten_then_reshape() -> None:
    check_pass(
        "merge_reshapes",
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
        input=INPUT,
    )


def test_flatten_from_dim_2_becomes_a_reshape() -> None:
    check_pass(
        "merge_reshapes",
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
        input=INPUT,
    )


def test_chain_of_three_views_ending_in_flatten() -> None:
    check_pass(
        "merge_reshapes",
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
        input=INPUT,
    )


def test_chain_of_three_views_ending_in_reshape() -> None:
    check_pass(
        "merge_reshapes",
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
        input=INPUT,
    )


def test_a_view_with_another_user_is_kept() -> None:
    """``v1`` also feeds a relu: it must stay, and so the chain is not merged through it."""
    body = """
        v = x -> reshape([64, 49]) as v1
        a = v -> flatten as v2
        b = v -> relu -> flatten as v3
        return a + b
        """
    check_pass("merge_reshapes", body, input=INPUT)


def test_views_after_other_ops_are_untouched() -> None:
    body = """
        y = x -> conv(8, 1) as conv1 -> flatten as f -> relu -> reshape([8, 49]) as r
        return y
        """
    check_pass("merge_reshapes", body, input=INPUT)


def test_a_returned_view_is_kept() -> None:
    result = check_pass(
        "merge_reshapes",
        """
        v = x -> reshape([64, 49]) as v1
        f = v -> flatten as v2
        return f, v
        """,
        input=INPUT,
    )
    assert "v1" in result.graph.nodes
