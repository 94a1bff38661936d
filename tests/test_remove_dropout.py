"""remove_dropout: dropout and stochastic depth (drop_path) vanish from an inference graph.

Both are inverted (kept activations are scaled by 1/(1-p) while training), so at inference they
are exactly the identity: users are rewired to the input and no weight changes.
"""

from __future__ import annotations

import pytest
from helpers.passes import check_pass, of_op

from graphcnn.ir import Op

pytestmark = pytest.mark.usefixtures("torch1")


def test_dropout_between_linear_layers() -> None:
    """The docstring's example (smaller layers)."""
    check_pass(
        "remove_dropout",
        """
        y = x -> flatten -> linear(64) as fc1 -> relu -> dropout(0.5) -> linear(10) as fc2
        return y
        """,
        """
        y = x -> flatten -> linear(64) as fc1 -> relu -> linear(10) as fc2
        return y
        """,
        removed=["dropout"],
    )


def test_drop_path_on_a_residual_branch() -> None:
    check_pass(
        "remove_dropout",
        """
        b = x -> conv(3, 3, pad: 1) as conv1 -> drop_path(0.2) as stochastic_depth
        return relu(x + b)
        """,
        """
        b = x -> conv(3, 3, pad: 1) as conv1
        return relu(x + b)
        """,
        removed=["stochastic_depth"],
    )


def test_consecutive_dropouts_and_a_dropout_output() -> None:
    """Chains collapse to the first non-dropout input; a returned dropout returns its input."""
    check_pass(
        "remove_dropout",
        """
        a = x -> conv(4, 3) as conv1 -> dropout(0.1) as d1 -> dropout(0.3) as d2 -> relu
        b = a -> dropout(0.5) as d3
        return a, b
        """,
        """
        a = x -> conv(4, 3) as conv1 -> relu
        b = a
        return a, b
        """,
        removed=["d1", "d2", "d3"],
    )


def test_dropout_inside_a_training_head_goes_too() -> None:
    result = check_pass(
        "remove_dropout",
        """
        y = x -> conv(4, 3) as conv1 -> relu
        training { aux = y -> flatten -> dropout(0.7) as drop -> linear(5) as aux_fc }
        return y -> flatten -> linear(10) as fc, aux
        """,
        """
        y = x -> conv(4, 3) as conv1 -> relu
        training { aux = y -> flatten -> linear(5) as aux_fc }
        return y -> flatten -> linear(10) as fc, aux
        """,
        removed=["drop"],
    )
    assert result.graph["aux_fc"].inputs == ("flatten",)
    assert result.graph["aux_fc"].training_only


def test_no_dropout_no_change() -> None:
    """Nothing stochastic: not even an activation or a pool is touched."""
    body = """
        y = x -> conv(8, 3, pad: 1) as conv1 -> bn -> relu -> maxpool(2) -> flatten
              -> linear(10) as fc -> softmax
        return y
        """
    result = check_pass("remove_dropout", body)
    assert not of_op(result.graph, Op.DROPOUT, Op.DROP_PATH)
