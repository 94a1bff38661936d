"""Every class of malformed spec gets one located, explained error (and the CLI exits 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import spec_error

import graphcnn
from graphcnn.cli import main
from graphcnn.errors import GraphcnnError


def where(err: graphcnn.SpecError) -> tuple[int, int]:
    assert err.loc is not None
    return err.loc.line, err.loc.col


# ---- syntax -----------------------------------------------------------------------------------


def test_unexpected_token_points_at_it_with_expected_tokens() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> conv(4, 3, stride = 2)\n  return x\n}")
    assert where(err) == (2, 43)
    assert "unexpected '='" in err.message and "')'" in err.message
    assert err.hint and "name: value" in err.hint
    text = err.format()
    assert text.startswith("<spec>:2:43: error:")
    assert "    2 |   x = input(3, 8, 8)" in text and text.splitlines()[2].endswith("^")


def test_unclosed_bracket_names_the_line_it_opened_on() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> conv(4, 3\n  return x\n}")
    assert where(err) == (3, 3) and err.hint == "the '(' opened on line 2 is not closed"


def test_unexpected_character_with_hint() -> None:
    err = spec_error("network n() { x = input(3, 8, 8) |> relu\n return x }")
    assert "unexpected character '|'" in err.message and err.hint and "'->'" in err.hint


def test_keyword_as_name() -> None:
    err = spec_error("network n(block = 1) { x = input(1, 1, 1)\n return x }")
    assert "'block'" in err.message


# ---- names and arguments ----------------------------------------------------------------------


def test_unknown_layer_suggests_the_nearest() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> cnov(4, 3)\n  return x\n}")
    assert err.message == "unknown name 'cnov'" and err.hint == "did you mean conv?"
    assert where(err) == (2, 25)


def test_unknown_variable_suggests_the_nearest() -> None:
    err = spec_error(
        "network n(width = 4) {\n  x = input(3, 8, 8) -> conv(widht, 3)\n  return x\n}"
    )
    assert "unknown name 'widht'" in err.message and "width" in (err.hint or "")


def test_unknown_keyword_argument() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> conv(4, 3, strde: 2)\n  return x\n}")
    assert err.message == "conv has no parameter 'strde'" and err.hint == "did you mean stride?"
    assert where(err) == (2, 36)


def test_wrong_argument_count() -> None:
    err = spec_error(
        "network n() {\n  x = input(3, 8, 8) -> conv(4, 3, 1, 1, 1, 1, true, 0, 9)\n  return x\n}"
    )
    assert "at most 8 positional" in err.message and "(out, k, stride" in (err.hint or "")
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> conv(4)\n  return x\n}")
    assert "missing argument 'k'" in err.message


def test_block_argument_errors_and_call_stack() -> None:
    err = spec_error("""block b(x, c) { return x -> conv(c, 3, groups: 5) }
network n() {
  x = input(4, 8, 8)
  return b(x, 10)
}""")
    assert "groups=5 does not divide the input channels (4)" in err.message
    assert err.stack == ("in block b, called from network n at <spec>:4:10", "in network n")
    err = spec_error("block b(x, c) { return x }\nnetwork n() { x = input(1, 1, 1)\n return b(x) }")
    assert "block b is missing argument 'c'" in err.message


def test_unknown_zoo_model_suggests_the_nearest() -> None:
    with pytest.raises(GraphcnnError) as info:
        graphcnn.compile("resnet05")
    assert "resnet50" in (info.value.hint or "")


def test_unknown_network_and_set_key(tmp_path: Path) -> None:
    spec = tmp_path / "a.gcnn"
    spec.write_text("network net(width = 4) { x = input(1, 4, 4) -> conv(width, 1)\n return x }")
    with pytest.raises(GraphcnnError, match="no network or model named 'nte'"):
        graphcnn.compile(spec, "nte")
    with pytest.raises(GraphcnnError, match="no parameter 'widht'"):
        graphcnn.compile(spec, params={"widht": 3})


def test_duplicate_layer_names() -> None:
    err = spec_error("""network n() {
  x = input(3, 8, 8)
  for i in range(2) { x = x -> conv(3, 1) as c }
  return x
}""")
    assert "layer name 'c' is already used" in err.message and "{i}" in (err.hint or "")


# ---- values and shapes ------------------------------------------------------------------------


def test_non_integral_channel_count() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> conv(32 * 0.75 / 2, 3)\n  return x\n}")
    assert "out must be an integer, got 12.0" in err.message
    assert "make_divisible" in (err.hint or "")


def test_non_integral_output_sizes() -> None:
    err = spec_error("network n() {\n  x = input(3, 8, 8) -> reshape([5, -1])\n  return x\n}")
    assert "not a multiple of 5" in err.message
    err = spec_error("network n() {\n  a, b = split(input(3, 8, 8), 2)\n  return a\n}")
    assert "2 equal parts do not divide 3" in err.message


def test_window_larger_than_input() -> None:
    err = spec_error("network n() {\n  x = input(3, 4, 4) -> conv(8, 7)\n  return x\n}")
    assert "window 7x7 does not fit the padded input 4x4" in err.message


def test_groups_not_dividing_channels() -> None:
    err = spec_error("network n() {\n  x = input(6, 8, 8) -> conv(8, 3, groups: 4)\n  return x\n}")
    assert "groups=4 does not divide the input channels (6)" in err.message
    assert "divisors of 6" in (err.hint or "")


def test_shape_mismatch_in_add_names_both_shapes_and_the_call_site() -> None:
    err = spec_error("""block basic(x, c, stride = 1) {
  y = x -> conv(c, 3, stride: stride, pad: 1)
  return y + x
}
network resnet18() {
  x = input(64, 56, 56)
  return basic(x, 128, stride: 2)
}""")
    assert err.message == "add: [128, 28, 28] vs [64, 56, 56]" and where(err) == (3, 12)
    assert err.stack[0] == "in block basic, called from network resnet18 at <spec>:7:10"
    assert "projection" in (err.hint or "")


def test_shape_mismatch_in_concat() -> None:
    err = spec_error("""network n() {
  x = input(3, 8, 8)
  return concat(x -> conv(4, 1), x -> conv(4, 3))
}""")
    assert "concat: [4, 8, 8] vs [4, 6, 6] differ outside axis 1" in err.message


def test_tensor_arithmetic_and_truth_errors() -> None:
    assert "tensors support +" in (
        spec_error("network n() { x = input(1, 2, 2)\n return x + 1 }").hint or ""
    )
    assert (
        "no truth value"
        in spec_error("network n() { x = input(1, 2, 2)\n if x { pass }\n return x }").message
    )


# ---- runaway specs fail fast ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,message",
    [
        (
            "for i in range(1000000000) { x = x -> relu }",
            "range of 1,000,000,000 elements exceeds the limit of 1,000,000",
        ),
        (
            "for i in range(1000) { for j in range(1000) { for k in range(10) { y = 1 } } }",
            "more than 1,000,000 steps",
        ),
        ("y = 2 ** 100000", "exceeds 1e+18"),
        ("y = [0] * 1000000000", "more than 1,000,000 items"),
        ("x = x -> conv(100000, 3, pad: 1)", "too large (limit 1e+12)"),
    ],
)
def test_runaway_specs_fail_fast(body: str, message: str) -> None:
    """The bound is hit before the work is done: the error names the bound (10x fewer steps than
    the loops would take, a range or list refused before it is built, 1e18 for integers, 1e12
    elements per tensor) at the statement that would run away. Checked without a clock."""
    err = spec_error(f"network n() {{\n  x = input(3, 4096, 4096)\n  {body}\n  return x\n}}")
    assert message in err.message
    assert where(err)[0] == 3


def test_recursion_is_bounded_and_the_stack_collapsed() -> None:
    err = spec_error("block f(x) { return f(x) }\nnetwork n() { x = input(1, 1, 1)\n return f(x) }")
    assert "nested deeper than 64" in err.message
    assert any("more time(s)" in line for line in err.stack) and len(err.stack) < 6


def test_deeply_nested_expression_is_an_error_not_a_crash() -> None:
    text = "network n() { y = " + "(" * 50000 + "1" + ")" * 50000 + "\n return y }"
    with pytest.raises(GraphcnnError):
        graphcnn.compile_text(text)


def test_import_cycles(tmp_path: Path) -> None:
    (tmp_path / "a.gcnn").write_text('import "b.gcnn"\n')
    (tmp_path / "b.gcnn").write_text('import "a.gcnn"\n')
    with pytest.raises(GraphcnnError, match="import cycle: a.gcnn -> b.gcnn -> a.gcnn"):
        graphcnn.compile(tmp_path / "a.gcnn")


def test_missing_import_and_structure_errors(tmp_path: Path) -> None:
    assert "cannot find imported file" in spec_error('import "nope.gcnn"\n').message
    assert "does not return" in spec_error("network n() { x = input(1, 1, 1) }").message
    assert "returns int 1, not a tensor" in spec_error("network n() { return 1 }").message
    assert (
        "belongs in the network body"
        in spec_error(
            "block b(x) { return input(1, 1, 1) }\nnetwork n() { x = input(1, 1, 1)\n return b(x) }"
        ).message
    )


# ---- the CLI: one message, exit code 2, no traceback ------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "network n() {\n  x = input(3, 8, 8) -> conv(4, 3, stride = 2)\n  return x\n}",
        "network n() {\n  x = input(3, 8, 8) -> cnov(4, 3)\n  return x\n}",
        "block f(x) { return f(x) }\nnetwork n() { x = input(1, 1, 1)\n return f(x) }",
        "network n() {\n  for i in range(1000000000) { pass }\n}",
    ],
)
def test_cli_reports_spec_errors_with_exit_code_2(tmp_path: Path, spec: str) -> None:
    path = tmp_path / "bad.gcnn"
    path.write_text(spec)
    for cmd in (["check"], ["profile", "--json"], ["dump"]):
        result = CliRunner().invoke(main, [*cmd, str(path)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and f"{path}:" in result.output
        assert result.output.count("error:") == 1


def test_cli_bad_options_exit_2() -> None:
    for args in (
        ["profile", "resnet18", "--input", "3x0x4"],
        ["profile", "resnet18", "--set", "x"],
        ["profile", "no_such_model"],
        ["check", "/no/such/file.gcnn"],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args


def test_a_parameter_hiding_a_builtin_layer_is_explained() -> None:
    err = spec_error(
        "network n(dropout = 0.2) {\n  x = input(1, 2, 2) -> dropout(0.5)\n  return x\n}"
    )
    assert "'dropout' is a float 0.2, not a layer" in err.message
    assert "hides the built-in dropout" in (err.hint or "")


def test_definitions_may_not_repeat() -> None:
    err = spec_error("block q(x) { return x }\nblock q(x) { return x }\n")
    assert err.message == "'q' is defined twice in <spec>" and "<spec>:1:7" in (err.hint or "")


def test_inline_blocks_cannot_be_named() -> None:
    err = spec_error(
        "inline block f(x) { return x }\nnetwork n() { x = input(1, 1, 1)\n return f(x) as g }"
    )
    assert "opens no scope" in err.message
