"""Shape inference: PyTorch's window arithmetic, and one shape rule per op.

``conv_out`` is checked three ways: against a brute-force reference that literally slides the
window over the padded input, against torch itself on tiny tensors, and on the sizes of well-known
networks. Every rule in ``SHAPE_RULES`` then gets one positive case and its error cases; attributes
are built by the spec language's own ``LAYERS[name].attrs`` so they are exactly what a spec makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcnn
from graphcnn.cost import COST_RULES
from graphcnn.errors import SpecError
from graphcnn.ir import Dim, Op, ParamDecl, TensorType
from graphcnn.lang.builtins import LAYERS, REQUIRED
from graphcnn.shapes import MAX_NUMEL, SHAPE_RULES, ShapeError, conv_out, infer_node


def t(*sample: int, batch: Dim = "N") -> TensorType:
    """A tensor type from its per-sample shape: ``t(64, 56, 56)`` is ``f32[N,64,56,56]``."""
    return TensorType((batch, *sample))


def attrs(layer: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The node attributes the spec call ``layer(*args, **kwargs)`` produces."""
    spec = LAYERS[layer]
    bound = dict(zip([p for p, _ in spec.params], args, strict=False))
    bound.update(kwargs)
    for name, default in spec.params:
        bound.setdefault(name, default)
        assert bound[name] is not REQUIRED, f"{layer} needs {name}"
    return spec.attrs(bound)


def split_attrs(sizes: tuple[int, ...], index: int, axis: int = 1) -> dict[str, Any]:
    """``split`` nodes are made by the interpreter: one node per chunk."""
    return {"axis": axis, "sizes": sizes, "index": index}


def input_attrs(*shape: int) -> dict[str, Any]:
    return {"shape": shape, "batch": "N", "dtype": "float32"}


# --------------------------------------------------------------------------- window arithmetic


def sliding_windows(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """How many windows PyTorch places along one axis, by enumerating the placements.

    The padded input covers positions ``[-p, size + p)``; placement ``i`` starts at ``-p + i * s``
    and spans ``d * (k - 1) + 1`` positions. Without ``ceil_mode`` a window must fit entirely.
    With ``ceil_mode`` the last window may run past the right padded edge by less than a stride,
    but it must not *start* in the right padding (it must start inside the left padding or the
    input). Both conditions matter: "starts before the right padding" alone would place 6 windows
    of size 3, stride 1 on a 6-wide input where PyTorch places 4.
    """
    span = d * (k - 1) + 1
    right_edge = size + p + (s - 1 if ceil else 0)
    count, start = 0, -p
    while start + span <= right_edge:
        if not ceil or start < size:
            count += 1
        start += s
    return count


@st.composite
def windows(draw: st.DrawFn, max_size: int = 64) -> dict[str, Any]:
    """One axis of a conv or pool: ceil mode only with pooling's padding limit (p <= k // 2)."""
    ceil = draw(st.booleans())
    k = draw(st.integers(1, 7))
    p = draw(st.integers(0, k // 2 if ceil else 4))
    return {
        "size": draw(st.integers(1, max_size)),
        "k": k,
        "s": draw(st.integers(1, 5)),
        "p": p,
        "d": draw(st.integers(1, 3)),
        "ceil": ceil,
    }


@settings(max_examples=400, deadline=None)
@given(windows())
def test_conv_out_counts_the_windows_pytorch_places(w: dict[str, Any]) -> None:
    expected = sliding_windows(**w)
    got = conv_out(w["size"], w["k"], w["s"], w["p"], w["d"], w["ceil"])
    # A window that does not fit gives 0 placements; conv_out reports it as a size < 1.
    assert max(got, 0) == expected


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "d", "ceil", "out", "where"),
    [
        (224, 7, 2, 3, 1, False, 112, "ResNet stem conv"),
        (112, 3, 2, 1, 1, False, 56, "ResNet stem max pool"),
        (112, 3, 2, 0, 1, True, 56, "GoogLeNet max pool, ceil mode"),
        (55, 3, 2, 0, 1, False, 27, "AlexNet max pool"),
        (28, 3, 1, 2, 2, False, 28, "dilated 3x3 keeps the size with pad = dilation"),
        (5, 2, 2, 0, 1, True, 3, "ceil mode adds a partial last window"),
        (5, 2, 2, 1, 1, True, 3, "ceil mode drops a last window starting in the right padding"),
        (2, 3, 2, 0, 1, True, 1, "ceil mode: a window larger than the input still fits once"),
        (4, 5, 1, 0, 1, False, 0, "window larger than the input: no placement"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_conv_out_known_sizes(
    size: int, k: int, s: int, p: int, d: int, ceil: bool, out: int, where: str
) -> None:
    assert max(conv_out(size, k, s, p, d, ceil), 0) == out
    assert sliding_windows(size, k, s, p, d, ceil) == out


# --------------------------------------------------------------------------- against torch


TORCH_EXAMPLES = settings(max_examples=80, deadline=None)


def _torch_shape(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, ...] | None:
    """torch's output shape, or None where torch refuses the configuration."""
    try:
        return tuple(fn(*args, **kwargs).shape)
    except RuntimeError:
        return None


def _our_shape(op: Op, node_attrs: dict[str, Any], x: TensorType) -> tuple[int, ...] | None:
    try:
        return tuple(int(d) for d in infer_node(op, node_attrs, [x])[0].shape)
    except ShapeError:
        return None


@st.composite
def small_2d(draw: st.DrawFn, ceil_ok: bool, dilation_ok: bool) -> dict[str, Any]:
    """Independent H and W axes for a tiny torch tensor.

    Padding is now and then one past pooling's limit, and windows sometimes do not fit, so that
    the errors are compared too (torch refuses exactly where the shape rules do).
    """
    out: dict[str, Any] = {"size": [], "k": [], "s": [], "p": [], "d": []}
    for _ in range(2):
        k = draw(st.integers(1, 5))
        out["size"].append(draw(st.integers(1, 12)))
        out["k"].append(k)
        out["s"].append(draw(st.integers(1, 4)))
        out["p"].append(draw(st.integers(0, k // 2)) + draw(st.sampled_from([0, 0, 0, 0, 1])))
        out["d"].append(draw(st.integers(1, 2)) if dilation_ok else 1)
    out["ceil"] = draw(st.booleans()) if ceil_ok else False
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


@TORCH_EXAMPLES
@given(small_2d(ceil_ok=False, dilation_ok=True), st.sampled_from([1, 2, 4]))
def test_conv_shape_matches_torch(torch: Any, w: dict[str, Any], groups: int) -> None:
    x = torch.zeros(1, 4, *w["size"])
    weight = torch.zeros(8, 4 // groups, *w["k"])
    expected = _torch_shape(
        torch.nn.functional.conv2d, x, weight, None, w["s"], w["p"], w["d"], groups
    )
    a = attrs("conv", 8, w["k"], stride=w["s"], pad=w["p"], dilation=w["d"], groups=groups)
    assert _our_shape(Op.CONV2D, a, t(4, *w["size"], batch=1)) == expected


@TORCH_EXAMPLES
@given(small_2d(ceil_ok=True, dilation_ok=True))
def test_max_pool_shape_matches_torch(torch: Any, w: dict[str, Any]) -> None:
    expected = _torch_shape(
        torch.nn.functional.max_pool2d,
        torch.zeros(1, 2, *w["size"]),
        w["k"],
        w["s"],
        w["p"],
        w["d"],
        ceil_mode=w["ceil"],
    )
    a = attrs("maxpool", w["k"], stride=w["s"], pad=w["p"], dilation=w["d"], ceil=w["ceil"])
    assert _our_shape(Op.MAX_POOL, a, t(2, *w["size"], batch=1)) == expected


@TORCH_EXAMPLES
@given(small_2d(ceil_ok=True, dilation_ok=False))
def test_avg_pool_shape_matches_torch(torch: Any, w: dict[str, Any]) -> None:
    expected = _torch_shape(
        torch.nn.functional.avg_pool2d,
        torch.zeros(1, 2, *w["size"]),
        w["k"],
        w["s"],
        w["p"],
        ceil_mode=w["ceil"],
    )
    a = attrs("avgpool", w["k"], stride=w["s"], pad=w["p"], ceil=w["ceil"])
    assert _our_shape(Op.AVG_POOL, a, t(2, *w["size"], batch=1)) == expected


# --------------------------------------------------------------------------- every rule


def test_every_op_has_a_shape_rule_and_a_cost_rule() -> None:
    ops = set(Op)
    assert ops - set(SHAPE_RULES) == set(), "ops without a shape rule"
    assert ops - set(COST_RULES) == set(), "ops without a cost rule"
    assert set(SHAPE_RULES) == set(COST_RULES) == ops


@dataclass(frozen=True)
class Case:
    """``op(inputs) {attrs}`` gives ``out`` (per-sample shape) and declares ``params``."""

    op: Op
    attrs: dict[str, Any]
    inputs: tuple[tuple[int, ...], ...]
    out: tuple[int, ...]
    params: tuple[ParamDecl, ...] = ()


def _w(*shape: int) -> ParamDecl:
    return ParamDecl("weight", shape)


def _b(c: int) -> ParamDecl:
    return ParamDecl("bias", (c,))


BN_BUFFERS = (ParamDecl("running_mean", (8,), False), ParamDecl("running_var", (8,), False))

POSITIVE = {
    "input": Case(Op.INPUT, input_attrs(3, 224, 224), (), (3, 224, 224)),
    "conv": Case(
        Op.CONV2D,
        attrs("conv", 16, 3, stride=2, pad=1),
        ((8, 32, 32),),
        (16, 16, 16),
        (_w(16, 8, 3, 3), _b(16)),
    ),
    "conv grouped, no bias": Case(
        Op.CONV2D,
        attrs("conv", 16, 3, pad=1, groups=4, bias=False),
        ((8, 7, 7),),
        (16, 7, 7),
        (_w(16, 2, 3, 3),),
    ),
    "conv depthwise, asymmetric": Case(
        Op.CONV2D,
        attrs("conv", 8, (1, 3), pad=(0, 1), groups=8, bias=False),
        ((8, 5, 6),),
        (8, 5, 6),
        (_w(8, 1, 1, 3),),
    ),
    "conv dilated": Case(
        Op.CONV2D,
        attrs("conv", 4, 3, pad=2, dilation=2, bias=False),
        ((4, 9, 9),),
        (4, 9, 9),
        (_w(4, 4, 3, 3),),
    ),
    "linear": Case(Op.LINEAR, attrs("linear", 10), ((128,),), (10,), (_w(10, 128), _b(10))),
    "bn": Case(Op.BATCH_NORM, attrs("bn"), ((8, 4, 4),), (8, 4, 4), (_w(8), _b(8), *BN_BUFFERS)),
    "bn on features, not affine": Case(
        Op.BATCH_NORM, attrs("bn", affine=False), ((8,),), (8,), BN_BUFFERS
    ),
    "lrn": Case(Op.LRN, attrs("lrn", 5), ((8, 4, 4),), (8, 4, 4)),
    **{
        op.value: Case(op, attrs(op.value), ((8, 4, 4),), (8, 4, 4))
        for op in (Op.RELU, Op.RELU6, Op.SIGMOID, Op.TANH, Op.SILU, Op.HARDSWISH, Op.GELU)
    },
    "maxpool": Case(
        Op.MAX_POOL, attrs("maxpool", 3, stride=2, pad=1), ((8, 112, 112),), (8, 56, 56)
    ),
    "maxpool ceil": Case(
        Op.MAX_POOL, attrs("maxpool", 3, stride=2, ceil=True), ((8, 112, 112),), (8, 56, 56)
    ),
    "avgpool": Case(Op.AVG_POOL, attrs("avgpool", 2), ((8, 7, 7),), (8, 3, 3)),
    "avgpool ceil": Case(Op.AVG_POOL, attrs("avgpool", 2, ceil=True), ((8, 7, 7),), (8, 4, 4)),
    "adaptive_avgpool": Case(
        Op.ADAPTIVE_AVG_POOL, attrs("adaptive_avgpool", (2, 3)), ((8, 7, 7),), (8, 2, 3)
    ),
    "global_avgpool": Case(Op.GLOBAL_AVG_POOL, attrs("global_avgpool"), ((8, 7, 7),), (8, 1, 1)),
    "pad (left, right, top, bottom)": Case(
        Op.PAD, attrs("pad", [1, 2, 3, 0], value="-inf"), ((8, 7, 7),), (8, 10, 10)
    ),
    "upsample (H by 2, W by 3)": Case(
        Op.UPSAMPLE, attrs("upsample", [2, 3]), ((8, 7, 5),), (8, 14, 15)
    ),
    "dropout": Case(Op.DROPOUT, attrs("dropout"), ((10,),), (10,)),
    "drop_path": Case(Op.DROP_PATH, attrs("drop_path", 0.2), ((8, 4, 4),), (8, 4, 4)),
    "add": Case(Op.ADD, {}, ((8, 4, 4), (8, 4, 4)), (8, 4, 4)),
    "mul by a channel gate": Case(Op.MUL, {}, ((8, 4, 4), (8, 1, 1)), (8, 4, 4)),
    "mul, gate first": Case(Op.MUL, {}, ((8, 1, 1), (8, 4, 4)), (8, 4, 4)),
    "concat": Case(Op.CONCAT, attrs("concat"), ((8, 4, 4), (16, 4, 4), (1, 4, 4)), (25, 4, 4)),
    "split": Case(Op.SPLIT, split_attrs((8, 16), 1), ((24, 4, 4),), (16, 4, 4)),
    "channel_shuffle": Case(
        Op.CHANNEL_SHUFFLE, attrs("channel_shuffle", 4), ((8, 4, 4),), (8, 4, 4)
    ),
    "flatten": Case(Op.FLATTEN, attrs("flatten"), ((8, 4, 4),), (128,)),
    "flatten from H": Case(Op.FLATTEN, attrs("flatten", start=2), ((8, 4, 4),), (8, 16)),
    "reshape": Case(Op.RESHAPE, attrs("reshape", [-1, 2, 4]), ((8, 4, 4),), (16, 2, 4)),
    "softmax": Case(Op.SOFTMAX, attrs("softmax"), ((10,),), (10,)),
    "identity": Case(Op.IDENTITY, attrs("identity"), ((8, 4, 4),), (8, 4, 4)),
    "hardsigmoid": Case(Op.HARDSIGMOID, attrs("hardsigmoid"), ((8, 4, 4),), (8, 4, 4)),
    "leaky_relu": Case(Op.LEAKY_RELU, attrs("leaky_relu", 0.2), ((8, 4, 4),), (8, 4, 4)),
    "layer_norm": Case(Op.LAYER_NORM, attrs("layer_norm"), ((8, 4, 4),), (8, 4, 4), (_w(8), _b(8))),
    "layer_norm last": Case(
        Op.LAYER_NORM, attrs("layer_norm", axis=-1), ((4, 5, 8),), (4, 5, 8), (_w(8), _b(8))
    ),
    "layer_scale": Case(
        Op.LAYER_SCALE, attrs("layer_scale"), ((8, 4, 4),), (8, 4, 4), (ParamDecl("", (8, 1, 1)),)
    ),
    "scale": Case(Op.SCALE, attrs("scale", 0.5), ((10,),), (10,)),
    "permute": Case(Op.PERMUTE, attrs("permute", [0, 2, 3, 1]), ((8, 4, 5),), (4, 5, 8)),
    "linear last_dim": Case(
        Op.LINEAR, attrs("linear", 6, last_dim=True), ((4, 5, 8),), (4, 5, 6), (_w(6, 8), _b(6))
    ),
}


def test_every_shape_rule_has_a_positive_case() -> None:
    assert {c.op for c in POSITIVE.values()} == set(SHAPE_RULES)


@pytest.mark.parametrize("case", POSITIVE.values(), ids=POSITIVE.keys())
def test_shape_rule(case: Case) -> None:
    out, params = infer_node(case.op, case.attrs, [t(*s) for s in case.inputs])
    assert out == t(*case.out)
    assert params == case.params


def test_rules_keep_the_batch_and_dtype() -> None:
    x = TensorType((8, 3, 32, 32), "float16")
    out, _ = infer_node(Op.CONV2D, attrs("conv", 4, 3), [x])
    assert out == TensorType((8, 4, 30, 30), "float16")


@dataclass(frozen=True)
class Bad:
    """``op(inputs) {attrs}`` fails; the message contains every string in ``says``."""

    op: Op
    attrs: dict[str, Any]
    inputs: tuple[TensorType, ...]
    says: tuple[str, ...]
    hint: str | None = None


ERRORS = {
    "conv groups do not divide the input channels": Bad(
        Op.CONV2D,
        attrs("conv", 12, 1, groups=3),
        (t(8, 4, 4),),
        ("groups=3 does not divide the input channels (8)",),
        "divisors of 8 near 3: 1, 2, 4",
    ),
    "conv groups do not divide the output channels": Bad(
        Op.CONV2D,
        attrs("conv", 6, 1, groups=4),
        (t(8, 4, 4),),
        ("groups=4 does not divide the output channels (6)",),
        "divisors of 6",
    ),
    "conv window larger than the padded input": Bad(
        Op.CONV2D,
        attrs("conv", 8, 5),
        (t(3, 3, 3),),
        ("window 5x5 does not fit the padded input 3x3", "[3, 3, 3]"),
    ),
    "dilated conv window larger than the padded input": Bad(
        Op.CONV2D,
        attrs("conv", 8, 3, dilation=(1, 3), pad=(0, 1)),
        (t(3, 6, 4),),
        ("window 3x7 does not fit the padded input 6x6",),
    ),
    "conv on features": Bad(Op.CONV2D, attrs("conv", 8, 1), (t(10),), ("expects a [C, H, W]",)),
    "maxpool window larger than the input": Bad(
        Op.MAX_POOL, attrs("maxpool", 4), (t(8, 3, 3),), ("window 4x4 does not fit",)
    ),
    "maxpool padding more than half the kernel": Bad(
        Op.MAX_POOL,
        attrs("maxpool", 3, pad=2),
        (t(8, 9, 9),),
        ("padding 2x2 is more than half the kernel 3x3",),
        "padding <= kernel // 2",
    ),
    "avgpool padding more than half the kernel (one axis)": Bad(
        Op.AVG_POOL,
        attrs("avgpool", (2, 4), pad=(2, 1)),
        (t(8, 9, 9),),
        ("padding 2x1 is more than half the kernel 2x4",),
    ),
    "linear on a [C, H, W] input": Bad(
        Op.LINEAR,
        attrs("linear", 10),
        (t(8, 4, 4),),
        ("linear expects a [features] input, got [8, 4, 4]",),
        "flatten",
    ),
    "bn on a rank-3 input": Bad(Op.BATCH_NORM, attrs("bn"), (t(8, 4),), ("[8, 4]",)),
    "lrn on features": Bad(Op.LRN, attrs("lrn", 5), (t(10),), ("expects a [C, H, W]",)),
    "adaptive pool on features": Bad(
        Op.ADAPTIVE_AVG_POOL, attrs("adaptive_avgpool", 1), (t(10),), ("expects a [C, H, W]",)
    ),
    "add shapes differ": Bad(
        Op.ADD,
        {},
        (t(64, 56, 56), t(128, 28, 28)),
        ("add: [64, 56, 56] vs [128, 28, 28]",),
        "projection",
    ),
    "mul does not broadcast": Bad(
        Op.MUL, {}, (t(8, 4, 4), t(4, 1, 1)), ("[8, 4, 4] vs [4, 1, 1] do not broadcast",)
    ),
    "concat spatial sizes differ": Bad(
        Op.CONCAT,
        attrs("concat"),
        (t(8, 4, 4), t(8, 2, 2)),
        ("concat: [8, 4, 4] vs [8, 2, 2] differ outside axis 1",),
    ),
    "concat ranks differ": Bad(Op.CONCAT, attrs("concat"), (t(8, 4, 4), t(8)), ("[8]",)),
    "split sizes do not add up": Bad(
        Op.SPLIT,
        split_attrs((8, 8), 0),
        (t(24, 4, 4),),
        ("sizes [8, 8] do not add up to 24", "[24, 4, 4]"),
    ),
    "split with an empty chunk": Bad(
        Op.SPLIT, split_attrs((24, 0), 0), (t(24, 4, 4),), ("sizes [24, 0]",)
    ),
    "channel_shuffle groups do not divide the channels": Bad(
        Op.CHANNEL_SHUFFLE,
        attrs("channel_shuffle", 3),
        (t(8, 4, 4),),
        ("groups=3 does not divide the channels (8)",),
        "divisors of 8",
    ),
    "reshape by a non-integral -1": Bad(
        Op.RESHAPE,
        attrs("reshape", [-1, 2]),
        (t(3, 5, 5),),
        ("[3, 5, 5] (75 elements) cannot be viewed as [-1, 2]", "75 is not a multiple of 2"),
    ),
    "reshape to another size": Bad(
        Op.RESHAPE, attrs("reshape", [100]), (t(8, 4, 4),), ("(128 elements) vs [100] (100)",)
    ),
    "reshape with two -1": Bad(
        Op.RESHAPE, attrs("reshape", [-1, -1]), (t(8, 4, 4),), ("at most one -1",)
    ),
    "flatten start out of range": Bad(
        Op.FLATTEN, attrs("flatten", start=4), (t(8, 4, 4),), ("start_dim 4 out of range",)
    ),
    "softmax axis out of range": Bad(
        Op.SOFTMAX, attrs("softmax", axis=2), (t(10),), ("axis 2 out of range",)
    ),
    "input too large": Bad(
        Op.INPUT, input_attrs(3, 1_000_000, 1_000_000), (), ("too large", "limit 1e+12")
    ),
    "conv output too large": Bad(
        Op.CONV2D,
        attrs("conv", 2_000_000, 1),
        (t(3, 1000, 1000),),
        ("2e+12 elements",),
        "check the input size",
    ),
    "concat output too large": Bad(
        Op.CONCAT, attrs("concat"), (t(600_000, 1000, 1000), t(600_000, 1000, 1000)), ("too large",)
    ),
    "add takes two inputs": Bad(Op.ADD, {}, (t(8),), ("add takes 2 input(s), got 1",)),
    "concat needs an input": Bad(Op.CONCAT, attrs("concat"), (), ("at least one input",)),
    "batch sizes differ": Bad(
        Op.ADD, {}, (t(8, batch=2), t(8, batch=3)), ("different batch sizes ['2', '3']",)
    ),
}


@pytest.mark.parametrize("bad", ERRORS.values(), ids=ERRORS.keys())
def test_shape_error(bad: Bad) -> None:
    with pytest.raises(ShapeError) as err:
        infer_node(bad.op, bad.attrs, list(bad.inputs))
    for text in bad.says:
        assert text in str(err.value)
    if bad.hint is not None:
        assert err.value.hint is not None and bad.hint in err.value.hint


def test_the_size_limit_is_inclusive() -> None:
    """A tensor of exactly MAX_NUMEL elements per sample is allowed, one more is not."""
    assert MAX_NUMEL == 10**12
    out, _ = infer_node(Op.INPUT, input_attrs(1, 1_000_000, 1_000_000), [])
    assert out.sample_numel == MAX_NUMEL
    with pytest.raises(ShapeError, match="too large"):
        infer_node(Op.CONCAT, attrs("concat"), [out, out])


def test_spec_shape_errors_point_at_the_layer_call() -> None:
    """The language front end turns a ShapeError into a SpecError at the offending call."""
    spec = (
        "network net() {\n  x = input(8, 4, 4)\n  y = x -> conv(12, 1, groups: 3)\n  return y\n}\n"
    )
    with pytest.raises(SpecError) as err:
        graphcnn.compile_text(spec, name="bad.gcnn")
    assert err.value.loc is not None
    assert (err.value.loc.file, err.value.loc.line) == ("bad.gcnn", 3)
    assert re.search(r"conv: groups=3 does not divide the input channels \(8\)", str(err.value))
    assert err.value.hint is not None and "divisors of 8" in err.value.hint


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.integers(1, 6), min_size=1, max_size=4),
    st.integers(1, 3),
)
def test_split_then_concat_gives_back_the_input(c: int, sizes: list[int], hw: int) -> None:
    """Splitting into chunks and concatenating them again restores the shape (any axis)."""
    x = t(sum(sizes) * c, hw, hw)
    parts = tuple(s * c for s in sizes)
    chunks = [infer_node(Op.SPLIT, split_attrs(parts, i), [x])[0] for i in range(len(parts))]
    assert [ch.shape[1] for ch in chunks] == list(parts)
    assert infer_node(Op.CONCAT, attrs("concat"), chunks)[0] == x


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_reshape_keeps_the_element_count(shape: list[int], data: st.DataObject) -> None:
    x = t(*shape)
    target = data.draw(st.permutations(shape))
    target[data.draw(st.integers(0, len(target) - 1))] = -1
    out, _ = infer_node(Op.RESHAPE, attrs("reshape", target), [x])
    assert out.sample_numel == x.sample_numel
    assert infer_node(Op.FLATTEN, attrs("flatten"), [out])[0] == t(x.sample_numel)
