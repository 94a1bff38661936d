"""eliminate_identity: ``identity`` nodes, and reshapes/flattens to the same type, disappear.

Users are rewired to the input; nothing else changes.
"""

from __future__ import annotations

import pytest
from helpers.passes import check_pass

pytestmark = pytest.mark.usefixtures("torch1")


def test_identity_before_relu() -> None:
    """The docstring's example."""
    check_pass(
        "eliminate_identity",
        """
        y = x -> identity -> relu
        return y
        """,
        """
        y = x -> relu
        return y
        """,
        removed=["identity"],
    )


def test_reshape_and_flatten_to_the_same_type() -> None:
    check_pass(
        "eliminate_identity",
        """
        y = x -> flatten as f1 -> reshape([192]) as same -> flatten as f2 -> linear(10) as fc
        return y
        """,
        """
        y = x -> flatten as f1 -> linear(10) as fc
        return y
        """,
        removed=["same", "f2"],
    )


def test_chained_identities_and_an_identity_output() -> None:
    check_pass(
        "eliminate_identity",
        """
        a = x -> conv(4, 3) as conv1 -> identity as i1 -> identity as i2
        b = a -> relu -> identity as i3
        return a, b
        """,
        """
        a = x -> conv(4, 3) as conv1
        b = a -> relu
        return a, b
        """,
        removed=["i1", "i2", "i3"],
    )


def test_views_that_change_the_shape_stay() -> None:
    # only `same` ([3, 64] -> [3, 64]) is a no-op; the others reshape something
    result = check_pass(
        "eliminate_identity",
        """
        y = x -> reshape([3, 64]) as r1 -> flatten(start: 2) as same -> reshape([24, 8]) as r2
              -> flatten as f -> linear(10) as fc
        return y
        """,
        """
        y = x -> reshape([3, 64]) as r1 -> reshape([24, 8]) as r2 -> flatten as f
              -> linear(10) as fc
        return y
        """,
        removed=["same"],
    )
    assert [n.name for n in result.graph] == ["input", "r1", "r2", "f", "fc"]


def test_no_identity_no_change() -> None:
    body = """
        y = x -> conv(8, 3, pad: 1) as conv1 -> relu -> dropout(0.5) -> flatten -> linear(10)
        return y
        """
    check_pass("eliminate_identity", body)
