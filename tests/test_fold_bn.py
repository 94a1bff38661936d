"""fold_bn: inference batch norm folds into the neighbouring conv or linear layer.

Each test writes the graph before and the expected graph after in the spec language (as the
pass's docstring does), compares the pass's result with the compiled expectation, and lowers
both to PyTorch with the same non-trivial BN statistics to check that the outputs did not change.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.passes import (
    assert_same_outputs,
    check_pass,
    of_op,
    run_pass,
)
from helpers.specs import net
from helpers.weights import random_bn_weights

import graphcnn
from graphcnn.ir import Graph, Op
from graphcnn.passes import PassResult
from graphcnn.weights import init_weights

pytestmark = pytest.mark.usefixtures("torch1")


def fold(before: Graph, weights: dict[str, np.ndarray] | None = None) -> PassResult:
    return run_pass("fold_bn", before, weights)


# ---------------------------------------------------------------------------- after a layer


def test_conv_bn_without_bias_gets_a_bias() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        return y
        """,
        """
        y = x -> conv(16, 3, pad: 1, bias: true) as conv1 -> relu
        return y
        """,
        removed=["bn1"],
        rewritten=["conv1"],
        new_weights=True,
    )


def test_conv_with_bias_bn() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 3, stride: 2, bias: true) as conv1 -> bn(eps: 1e-3) as bn1 -> relu
        return y
        """,
        """
        y = x -> conv(8, 3, stride: 2, bias: true) as conv1 -> relu
        return y
        """,
        removed=["bn1"],
        rewritten=["conv1"],
        new_weights=True,
    )


def test_conv_bn_without_affine_parameters() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn(affine: false) as bn1
        return y
        """,
        """
        y = x -> conv(8, 3, pad: 1, bias: true) as conv1
        return y
        """,
        removed=["bn1"],
        rewritten=["conv1"],
        new_weights=True,
    )


def test_depthwise_conv_bn_folds() -> None:
    """After a grouped conv the fold is per output channel, so groups do not matter."""
    check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 1) as pw -> conv(8, 3, pad: 1, groups: 8, bias: false) as dw
              -> bn as bn1 -> relu6
        return y
        """,
        """
        y = x -> conv(8, 1) as pw -> conv(8, 3, pad: 1, groups: 8, bias: true) as dw -> relu6
        return y
        """,
        removed=["bn1"],
        rewritten=["dw"],
        new_weights=True,
    )


@pytest.mark.parametrize("bias", ["true", "false"])
def test_linear_bn1d(bias: str) -> None:
    """BatchNorm1d on [features] after a linear layer."""
    check_pass(
        "fold_bn",
        f"""
        y = x -> flatten -> linear(32, bias: {bias}) as fc1 -> bn as bn1 -> relu
              -> linear(10) as fc2
        return y
        """,
        """
        y = x -> flatten -> linear(32, bias: true) as fc1 -> relu -> linear(10) as fc2
        return y
        """,
        removed=["bn1"],
        rewritten=["fc1"],
        new_weights=True,
    )


def test_every_conv_bn_pair_of_a_block_folds() -> None:
    check_pass(
        "fold_bn",
        """
        a = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
              -> conv(8, 3, pad: 1, bias: false) as conv2 -> bn as bn2
        s = x -> conv(8, 1, bias: false) as down -> bn as down_bn
        return relu(a + s)
        """,
        """
        a = x -> conv(8, 3, pad: 1, bias: true) as conv1 -> relu
              -> conv(8, 3, pad: 1, bias: true) as conv2
        s = x -> conv(8, 1, bias: true) as down
        return relu(a + s)
        """,
        removed=["bn1", "bn2", "down_bn"],
        rewritten=["conv1", "conv2", "down"],
        new_weights=True,
    )


# --------------------------------------------------------------------------- before a layer


def test_bn_before_unpadded_1x1_conv_prefolds() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 3, pad: 1) as conv1 -> relu -> bn as bn1
              -> conv(16, 1, bias: false) as conv2
        return y
        """,
        """
        y = x -> conv(8, 3, pad: 1) as conv1 -> relu -> conv(16, 1, bias: true) as conv2
        return y
        """,
        removed=["bn1"],
        rewritten=["conv2"],
        new_weights=True,
    )


@pytest.mark.parametrize(
    "layer, folded",
    [
        ("conv(16, 1, stride: 2)", "conv(16, 1, stride: 2)"),
        ("conv(16, 3, bias: false)", "conv(16, 3, bias: true)"),
        ("conv(16, 3, dilation: 2, bias: false)", "conv(16, 3, dilation: 2, bias: true)"),
    ],
)
def test_bn_prefolds_into_any_unpadded_ungrouped_conv(layer: str, folded: str) -> None:
    check_pass(
        "fold_bn",
        f"""
        y = x -> relu -> bn as bn1 -> {layer} as conv2
        return y
        """,
        f"""
        y = x -> relu -> {folded} as conv2
        return y
        """,
        removed=["bn1"],
        rewritten=["conv2"],
        new_weights=True,
    )


def test_bn1d_before_linear_prefolds() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> flatten -> relu -> bn as bn1 -> linear(10, bias: false) as fc
        return y
        """,
        """
        y = x -> flatten -> relu -> linear(10, bias: true) as fc
        return y
        """,
        removed=["bn1"],
        rewritten=["fc"],
        new_weights=True,
    )


# ------------------------------------------------------------------------------- refusals


def check_refused(body: str, bn: str, *words: str, input: str = "3, 8, 8") -> str:
    """The graph is left as it was, with one note ``not folded: <bn>: <reason>``."""
    result = check_pass("fold_bn", body, notes=None, input=input)
    assert len(result.notes) == 1, result.notes
    note = result.notes[0]
    assert note.startswith(f"not folded: {bn}: "), note
    reason = note.removeprefix(f"not folded: {bn}: ")
    for word in words:
        assert word in reason, f"{word!r} not in the reason {reason!r}"
    return reason


def test_bn_after_concat_is_refused() -> None:
    """DenseNet: ``concat -> bn -> relu -> conv`` has no layer on either side of the BN."""
    check_refused(
        """
        a = x -> conv(4, 3, pad: 1) as conv_a
        b = x -> conv(4, 3, pad: 1) as conv_b
        y = concat(a, b, x) -> bn as norm1 -> relu -> conv(8, 1) as conv1
        return y
        """,
        "norm1",
        "concat",
    )


def test_bn_before_padded_conv_is_refused() -> None:
    reason = check_refused(
        """
        y = x -> relu -> bn as bn1 -> conv(8, 3, pad: 1) as conv2
        return y
        """,
        "bn1",
        "padded conv conv2",
    )
    assert reason == "precedes the padded conv conv2 (the padding would miss the shift)"


def test_why_bn_before_padded_conv_cannot_fold() -> None:
    """The docstring's NOTE, demonstrated: pushing the shift through a padded conv's weights
    is right in the interior but wrong on the border, where the conv sees padding zeros."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((1, 4, 6, 6)))
    w = torch.from_numpy(rng.standard_normal((5, 4, 3, 3)))
    s = torch.from_numpy(rng.uniform(0.5, 1.5, 4))
    t = torch.from_numpy(rng.normal(0, 0.5, 4))
    ref = F.conv2d(x * s.view(1, -1, 1, 1) + t.view(1, -1, 1, 1), w, padding=1)
    naive = F.conv2d(
        x, w * s.view(1, -1, 1, 1), (w * t.view(1, -1, 1, 1)).sum((1, 2, 3)), padding=1
    )
    diff = (ref - naive).abs()
    assert diff[..., 1:-1, 1:-1].max() < 1e-12  # interior: the pre-fold is exact
    assert diff[..., 0, :].min() > 1e-6  # every border output is off


def test_bn_before_grouped_conv_is_refused() -> None:
    check_refused(
        """
        y = x -> conv(8, 3, pad: 1) as conv1 -> relu -> bn as bn1 -> conv(8, 1, groups: 2) as conv2
        return y
        """,
        "bn1",
        "grouped conv conv2",
    )


def test_bn_after_conv_with_two_users_is_refused() -> None:
    check_refused(
        """
        y = x -> conv(8, 3, pad: 1) as conv1
        a = y -> bn as bn1 -> relu
        return a + y
        """,
        "bn1",
        "conv1 has 2 uses",
    )


def test_preactivation_bn_relu_conv_is_refused() -> None:
    """Pre-activation ResNet: ``(a + b) -> bn -> relu -> conv``: an activation follows the BN."""
    check_refused(
        """
        s = x -> conv(3, 3, pad: 1) as conv0
        y = (s + x) -> bn as bn1 -> relu -> conv(8, 3, pad: 1) as conv1
        return y
        """,
        "bn1",
        "add",
        "relu",
    )


def test_a_layer_absorbs_one_bn_per_run() -> None:
    """``bn -> conv1x1 -> bn``: the first BN pre-folds into the conv; the second is refused
    (and noted) rather than folded a second time into the already rewritten conv."""
    result = check_pass(
        "fold_bn",
        """
        y = x -> relu -> bn as bn0 -> conv(8, 1, bias: false) as conv1 -> bn as bn1 -> relu
        return y
        """,
        """
        y = x -> relu -> conv(8, 1, bias: true) as conv1 -> bn as bn1 -> relu
        return y
        """,
        removed=["bn0"],
        rewritten=["conv1"],
        notes=None,
        new_weights=True,
    )
    assert len(result.notes) == 1 and result.notes[0].startswith("not folded: bn1: ")
    assert "conv1" in result.notes[0]
    assert of_op(result.graph, Op.BATCH_NORM) == ["bn1"]


def test_conv_returned_as_output_is_not_folded() -> None:
    check_refused(
        """
        y = x -> conv(8, 3, pad: 1, bias: false) as conv1
        z = y -> bn as bn1
        return z, y
        """,
        "bn1",
        "conv1 has 2 uses",
        "graph output",
    )


def test_bn_returned_as_output_is_not_prefolded() -> None:
    check_refused(
        """
        a = x -> relu -> bn as bn1
        b = a -> conv(8, 1) as conv2
        return b, a
        """,
        "bn1",
        "graph output",
    )


# --------------------------------------------------------------------- arithmetic and dtypes


def test_fold_runs_in_float64() -> None:
    """A BN with a tiny variance (s ~ 300) and a mean close to the conv bias: computing
    ``b * s + t`` in float32 loses most digits to cancellation; the pass computes in float64
    and rounds once, so its result equals a float64 reference rounded to float32."""
    before = net(
        """
        y = x -> conv(8, 3, pad: 1, bias: true) as conv1 -> bn as bn1
        return y
        """
    )
    rng = np.random.default_rng(7)
    w = init_weights(before, seed=3)
    w["conv1.bias"] = (10.0 + rng.uniform(-1, 1, 8)).astype(np.float32)
    w["bn1.running_mean"] = (w["conv1.bias"] + rng.uniform(-1e-3, 1e-3, 8)).astype(np.float32)
    w["bn1.running_var"] = np.full(8, 1e-6, np.float32)
    w["bn1.weight"] = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    w["bn1.bias"] = rng.normal(0, 0.5, 8).astype(np.float32)

    result = fold(before, w)
    assert result.weights is not None
    got_w, got_b = result.weights["conv1.weight"], result.weights["conv1.bias"]
    assert got_w.dtype == np.float32 and got_b.dtype == np.float32

    f64 = {k: v.astype(np.float64) for k, v in w.items()}
    s = f64["bn1.weight"] / np.sqrt(f64["bn1.running_var"] + 1e-5)
    ref_w = f64["conv1.weight"] * s[:, None, None, None]
    ref_b = (f64["conv1.bias"] - f64["bn1.running_mean"]) * s + f64["bn1.bias"]
    np.testing.assert_array_equal(got_w, ref_w.astype(np.float32))
    np.testing.assert_allclose(got_b, ref_b, rtol=1e-6, atol=1e-6 * np.abs(ref_b).max())

    # the test has teeth: the same formula in float32 misses the reference by far more
    f32 = {k: v.astype(np.float32) for k, v in w.items()}
    s32 = f32["bn1.weight"] / np.sqrt(f32["bn1.running_var"] + np.float32(1e-5))
    b32 = f32["conv1.bias"] * s32 + (f32["bn1.bias"] - f32["bn1.running_mean"] * s32)
    assert np.abs(b32 - ref_b).max() > 100 * np.abs(got_b - ref_b).max()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_weights_keep_their_dtype(dtype: str) -> None:
    before = net(
        """
        y = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
              -> bn as bn2 -> conv(4, 1) as conv2 -> flatten -> linear(10) as fc -> bn as bn3
        return y
        """
    )
    weights = random_bn_weights(before, dtype=dtype)
    result = fold(before, weights)
    assert result.removed == ["bn1", "bn2", "bn3"]
    assert result.weights is not None
    assert {str(v.dtype) for v in result.weights.values()} == {dtype}
    assert result.weights["conv1.bias"].dtype == np.dtype(dtype)
    if dtype != "float16":  # torch's CPU conv has no float16 kernel on every build
        assert_same_outputs(
            before, weights, result.graph, result.weights, tol=1e-5 if dtype == "float32" else 1e-12
        )


def test_without_weights_only_the_graph_changes() -> None:
    """Profiling an inference graph needs no weights: the conv declares its new bias."""
    before = net(
        """
        y = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        return y
        """
    )
    result = fold(before)
    assert result.weights is None
    conv = result.graph["conv1"]
    assert conv.attrs["bias"] is True
    assert [(p.name, p.shape) for p in conv.params] == [("weight", (16, 3, 3, 3)), ("bias", (16,))]
    p0, p1 = graphcnn.profile(before).totals, graphcnn.profile(result.graph).totals
    assert p1.params == p0.params - 2 * 16 + 16  # BN gamma/beta gone, conv bias added
    assert p1.macs == p0.macs


def test_no_batch_norm_is_no_change() -> None:
    check_pass(
        "fold_bn",
        """
        y = x -> conv(8, 3, pad: 1) -> relu
        return y
        """,
    )
