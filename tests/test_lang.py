"""The spec language, feature by feature: each test is a small spec and what it compiles to."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compile_text

import graphcnn
from graphcnn.ir import Op


def names(g: graphcnn.Graph) -> list[str]:
    return [n.name for n in g]


def out_shape(g: graphcnn.Graph) -> tuple[object, ...]:
    return g[g.outputs[0][1]].type.shape[1:]


def test_chain_reads_left_to_right_and_names_layers() -> None:
    g = compile_text("""
network net() {
  x = input(3, 32, 32)
  y = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  return y
}""")
    assert names(g) == ["input", "conv1", "bn1", "relu"]
    assert [n.op for n in g] == [Op.INPUT, Op.CONV2D, Op.BATCH_NORM, Op.RELU]
    assert g["conv1"].attrs["padding"] == (1, 1) and g["conv1"].attrs["bias"] is False
    assert out_shape(g) == (16, 32, 32)
    assert str(g["conv1"].loc) == "<spec>:4:12"


def test_chain_continues_on_lines_starting_with_arrow_and_inside_parentheses() -> None:
    g = compile_text("""
network net() {
  x = input(3, 8, 8)
  y = x -> conv(4, 3,
                pad: 1)
        -> relu   # a comment
  return y; pass
}""")
    assert names(g) == ["input", "conv", "relu"]


def test_seq_scopes_number_children_like_nn_sequential() -> None:
    g = compile_text("""
network net() {
  x = input(3, 8, 8)
  seq features {
    x = x -> conv(4, 3, pad: 1) -> relu -> maxpool(2)
    x = x + x          # functional: takes no index
    x = x -> conv(4, 1)
  }
  return x -> flatten -> linear(10) as fc
}""")
    assert names(g) == [
        "input",
        "features.0",
        "features.1",
        "features.2",
        "features.add",
        "features.3",
        "flatten",
        "fc",
    ]
    assert g.scopes["features"] == "seq"


def test_block_calls_open_scopes_named_by_as_index_or_block_name() -> None:
    g = compile_text("""
block unit(x, c) { return x -> conv(c, 1) as conv -> relu }
seq block pair(x, c) { return x -> conv(c, 1) -> bn }
network net() {
  x = input(3, 8, 8)
  x = unit(x, 4) as stem
  x = unit(x, 4)
  x = unit(x, 4)
  seq layer1 { x = x -> unit(4) -> pair(4) }
  return x
}""")
    assert names(g) == [
        "input",
        "stem.conv",
        "stem.relu",
        "unit.conv",
        "unit.relu",
        "unit_1.conv",
        "unit_1.relu",
        "layer1.0.conv",
        "layer1.0.relu",
        "layer1.1.0",
        "layer1.1.1",
    ]
    assert g.scopes["stem"] == "unit" and g.scopes["layer1.1"] == "pair"


def test_explicit_integer_names_move_the_seq_counter() -> None:
    g = compile_text("""
network net() {
  x = input(3, 8, 8)
  seq classifier { x = x -> flatten -> dropout -> linear(8) as 3 -> relu }
  return x
}""")
    assert names(g)[1:] == ["classifier.flatten", "classifier.0", "classifier.3", "classifier.4"]


def test_interpolated_names_loops_with_index_and_conditionals() -> None:
    g = compile_text("""
network net(widths = [4, 8, 16]) {
  x = input(3, 32, 32)
  for i, w in enumerate(widths) {
    stride = 2 if i > 0 else 1
    x = x -> conv(w, 3, stride: stride, pad: 1) as "conv{i + 1}"
    if w >= 16 { x = x -> relu6 } elif w == 8 { x = x -> relu } else { x = x -> sigmoid }
  }
  return x
}""")
    assert names(g) == ["input", "conv1", "sigmoid", "conv2", "relu", "conv3", "relu6"]
    assert out_shape(g) == (16, 8, 8)


def test_arithmetic_functions_and_make_divisible() -> None:
    g = compile_text("""
network net() {
  a = 7 // 2 + 7 % 3 * 2 ** 3 - min(4, 2) + max([1, 5]) + round(2.5) + ceil(1.2) + floor(1.8)
  c = make_divisible(32 * 0.75, 8) + make_divisible(17, 8) + int(3.9) + abs(-2) + len([1, 2])
  x = input(3, 8, 8) -> conv(a, 1) -> conv(c, 1) -> conv(sum([1, 2, 3]), 1)
  return x
}""")
    a = 7 // 2 + 7 % 3 * 2**3 - 2 + 5 + round(2.5) + 2 + 1
    c = 24 + 16 + 3 + 2 + 2
    convs = [n for n in g if n.op is Op.CONV2D]
    assert [n.attrs["out_channels"] for n in convs] == [a, c, 6]


def test_lists_tuples_indexing_slicing_and_unpacking() -> None:
    g = compile_text("""
cfg = [(16, 1), (24, 2), (32, 2)]
network net() {
  x = input(3, 32, 32)
  for c, s in cfg[1:] { x = x -> conv(c, 3, stride: s, pad: 1) }   # unpacks each tuple
  a, b = split(x, 2)
  k = (3, 5)
  return concat(a -> conv(8, k[0], pad: 1), b -> conv(8, k[-1], pad: 2))
}""")
    assert out_shape(g) == (16, 8, 8)
    splits = [n for n in g if n.op is Op.SPLIT]
    assert [n.attrs["index"] for n in splits] == [0, 1]
    assert all(n.type.shape[1] == 16 for n in splits)


def test_shape_queries_decide_projections() -> None:
    spec = """
block res(x, c, stride = 1) {
  y = x -> conv(c, 3, stride: stride, pad: 1)
  s = x
  if stride != 1 or channels(x) != c { s = x -> conv(c, 1, stride: stride) as proj }
  return y + s
}
network net(c = 8, stride = 1) {
  x = input(8, 16, 16)
  assert height(x) == width(x) and shape(x) == (8, 16, 16), "square input"
  return res(x, c, stride: stride) as r
}"""
    assert "r.proj" not in names(compile_text(spec))
    g = compile_text(spec, params={"c": 16, "stride": 2})
    assert "r.proj" in names(g) and out_shape(g) == (16, 8, 8)


def test_layers_and_blocks_are_values() -> None:
    g = compile_text("""
block act_block(x, act) { return x -> act }
block apply(x, f, c) { return f(x, c) }
block widen(x, c) { return x -> conv(c, 1) as conv }
network net(a = hardswish) {
  x = input(3, 8, 8)
  x = act_block(x, a)
  return apply(x, widen, 5)
}""")
    assert [n.op for n in g][1:] == [Op.HARDSWISH, Op.CONV2D]
    assert names(g)[-1] == "apply.widen.conv"


def test_defaults_may_refer_to_earlier_parameters() -> None:
    g = compile_text("""
block b(x, c, mid = c // 2) { return x -> conv(mid, 1) -> conv(c, 1) }
network net() { x = input(8, 4, 4); return b(x, 8) }""")
    assert [n.type.shape[1] for n in g if n.op is Op.CONV2D] == [4, 8]


def test_training_blocks_mark_auxiliary_heads() -> None:
    g = compile_text("""
network net() {
  x = input(3, 8, 8) -> conv(4, 3, pad: 1) as stem
  training { aux = x -> global_avgpool -> flatten -> linear(10) as aux_fc }
  y = x -> global_avgpool -> flatten -> linear(10) as fc
  return y, aux
}""")
    assert g["aux_fc"].training_only and not g["fc"].training_only
    assert [o for o, _ in g.outputs] == ["y", "aux"]  # named after the returned variables
    p = graphcnn.profile(g)
    assert p.training_only.params == 4 * 10 + 10
    assert p.totals.params == (3 * 9 * 4 + 4) + (4 * 10 + 10)  # stem + fc; aux_fc apart
    assert len(g.inference()) == len(g) - 3


def test_models_bind_network_arguments_and_set_overrides(tmp_path: Path) -> None:
    spec = tmp_path / "m.gcnn"
    spec.write_text("""
network plain(width = 8, classes = 10) {
  x = input(3, 16, 16) -> conv(width, 3) -> global_avgpool -> flatten
  return x -> linear(classes) as fc
}
model tiny = plain(width: 4)
model wide = plain(width: 32, classes: 100)
""")
    assert graphcnn.compile(spec, "tiny")["fc"].type.shape[1:] == (10,)
    assert graphcnn.compile(spec)["fc"].type.shape[1:] == (100,)  # last target
    g = graphcnn.compile(spec, "wide", params={"classes": "7", "width": 2})
    assert g["fc"].params[0].shape == (7, 2)
    g = graphcnn.compile(spec, "plain", input_shape=(3, 64, 64), batch=4)
    assert g["input"].type.shape == (4, 3, 64, 64)


def test_imports_resolve_next_to_the_file_then_in_the_zoo(tmp_path: Path) -> None:
    (tmp_path / "lib.gcnn").write_text(
        "block cbr(x, c) { return x -> conv(c, 3, pad: 1) -> relu }\n"
    )
    (tmp_path / "net.gcnn").write_text("""
import "lib.gcnn"
import "common.gcnn"   # from the zoo: squeeze_excite
network net() {
  x = input(3, 8, 8) -> cbr(16) as stem
  return squeeze_excite(x, 4) as se
}""")
    g = graphcnn.compile(tmp_path / "net.gcnn")
    assert "stem.conv" in names(g) and "se.fc1" in names(g)


def test_ops_cover_the_seed_architectures() -> None:
    g = compile_text("""
network net() {
  x = input(3, 32, 32)
  x = x -> conv(12, 3, pad: 2, dilation: 2, groups: 3) -> lrn(5) -> tanh -> silu -> gelu
  x = x -> maxpool(3, stride: 2, ceil: true)
        -> avgpool(3, stride: 1, pad: 1, count_include_pad: false)
  x = channel_shuffle(x, 3) -> dropout(0.2) -> drop_path(0.1) -> identity
  x = x -> adaptive_avgpool((2, 2)) -> reshape([12, 4]) -> flatten -> linear(10) -> softmax
  return x
}""")
    assert {n.op for n in g} >= {
        Op.LRN,
        Op.TANH,
        Op.SILU,
        Op.GELU,
        Op.MAX_POOL,
        Op.AVG_POOL,
        Op.CHANNEL_SHUFFLE,
        Op.DROPOUT,
        Op.DROP_PATH,
        Op.IDENTITY,
        Op.ADAPTIVE_AVG_POOL,
        Op.RESHAPE,
        Op.SOFTMAX,
    }
    assert out_shape(g) == (10,)
    g.verify()


def test_no_host_language_code_can_run() -> None:
    from conftest import spec_error

    for expr in ('__import__("os")', 'open("/etc/passwd")', 'eval("1")', "exec"):
        err = spec_error(f"network n() {{ y = {expr}\n x = input(1, 1, 1)\n return x }}")
        assert "unknown name" in err.message


@pytest.mark.parametrize(
    "literal,value",
    [
        ("1_000", 1000),
        ("1e-3", 1e-3),
        (".5", 0.5),
        ('"a\\"b"', 'a"b'),
        ("true", True),
        ("none", None),
    ],
)
def test_literals(literal: str, value: object) -> None:
    from graphcnn.lang.interp import Interpreter
    from graphcnn.lang.parser import parse_expr

    assert Interpreter().eval(parse_expr(literal), {}) == value


def test_for_unpacks_items_and_enumerate_gives_the_index() -> None:
    g = compile_text("""
network net() {
  x = input(3, 8, 8)
  for i, c in enumerate([4, 8]) { x = x -> conv(c, 1) as "conv{i}" }
  for c, k in [(4, 1), (2, 3)] { x = x -> conv(c, k, pad: k // 2) }
  return x
}""")
    assert [n.attrs["out_channels"] for n in g if n.op is Op.CONV2D] == [4, 8, 4, 2]
    assert names(g)[1:3] == ["conv0", "conv1"]


def test_for_unpacking_mismatch_suggests_enumerate() -> None:
    from conftest import spec_error

    err = spec_error(
        "network n() {\n  x = input(1, 2, 2)\n  for i, c in [4, 8] { pass }\n  return x\n}"
    )
    assert "cannot unpack int 4" in err.message and "enumerate" in (err.hint or "")


def test_inline_blocks_name_layers_as_if_written_at_the_call_site() -> None:
    g = compile_text("""
inline block conv_bn(x, c) { return x -> conv(c, 1, bias: false) -> bn }
network net() {
  x = input(3, 8, 8)
  seq branch { x = x -> conv_bn(4) -> relu -> conv_bn(8) }
  return x
}""")
    assert names(g)[1:] == [f"branch.{i}" for i in range(5)]
    assert "branch" in g.scopes and "branch.0" not in g.scopes


def test_as_may_start_a_continuation_line() -> None:
    g = compile_text(
        "network n() {\n  x = input(1, 2, 2) -> conv(4, 1, bias: false)\n"
        "      as first\n  return x\n}"
    )
    assert names(g) == ["input", "first"]


def test_model_may_share_its_networks_name() -> None:
    g = compile_text(
        """
network a(n = 1) { x = input(1, 4, 4) -> conv(n, 1) as c
  return x }
model a = a()
model b = a(n: 2)
""",
        network="b",
    )
    assert g["c"].type.shape[1] == 2
