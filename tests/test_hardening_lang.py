"""Regression tests for the spec-language half of issue 10: every class of input the fuzzing
campaign broke (crashes, unlocated errors, hangs and memory blow-ups) now gets one located error,
exit code 2 and no traceback, and every CLI command answers bad paths and flags the same way.

Each spec runs through ``graphcnn check`` in-process (``tests/helpers/fuzz.py``), which also
judges the error: ``located`` means ``file:line:col: error:`` with line, column >= 1 and, when a
source line is quoted, the right one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.fuzz import Outcome, check_in_process

from graphcnn.cli.app import main
from graphcnn.errors import SOURCES, SpecError
from graphcnn.lang import state
from graphcnn.types import SourceLoc

NET = "network n() {{\n  x = input(3, 8, 8)\n{body}\n  return x\n}}\n"


def check(tmp_path: Path, text: str) -> Outcome:
    return check_in_process(text, str(tmp_path))


def located(tmp_path: Path, text: str, fragment: str, line: int | None = None) -> str:
    """Assert ``text`` fails with one located error containing ``fragment`` (on ``line``)."""
    out = check(tmp_path, text)
    assert out.kind == "located", out
    assert fragment in out.detail, out.detail
    if line is not None:
        assert f".gcnn:{line}:" in out.detail, out.detail
    return out.detail


# class 1: crashes with a traceback instead of a located error

OVERFLOW = [
    ("c = range(int(1e308))\n", "integer result exceeds"),
    ("c = make_divisible(2**4000, 8)\n", "integer result exceeds"),
    ("c = make_divisible(1e308 * 10, 8)\n", "number too large"),
    ("c = round(1e308)\n", "integer result exceeds"),
    ("c = int(1e300)\n", "integer result exceeds"),
    ("c = 1e308 * 10\n", "number too large"),
    ("c = 1e999\n", "too large"),
    ("c = 2.0 ** 5000\n", "number too large"),
    ("c = (-8) ** 0.5\n", "complex"),
    ("c = sqrt(-1)\n", "sqrt"),
    ("c = " + "7" * 5000 + "\n", "integer 7777"),
    ("c = 99999999999999999999\n", "too large"),
    ("c = [1, 2] * 99999999999999999999\n", "too large"),
]


@pytest.mark.parametrize(("text", "fragment"), OVERFLOW)
def test_huge_and_infinite_numbers(tmp_path: Path, text: str, fragment: str) -> None:
    located(tmp_path, text + NET.format(body=""), fragment, 1)


def test_int_literal_too_large_in_an_alias(tmp_path: Path) -> None:
    body = "  y = x -> conv(8, 3) as " + "9" * 5000
    located(tmp_path, NET.format(body=body), "is too large", 3)


DEEP = [
    ("c = " + "(1 + " * 3000 + "1" + ")" * 3000 + "\n", "nested more than"),
    ("c = " + "[" * 3000 + "1" + "]" * 3000 + "\n", "nested more than"),
    ("c = " + "max(" * 3000 + "1" + ")" * 3000 + "\n", "nested more than"),
    ("c = " + " + ".join(["1"] * 3000) + "\n", "nested more than"),
    ("c = " + "not " * 3000 + "true\n", "nested more than"),
    ("c = " + "1 if true else " * 3000 + "1\n", "nested more than"),
]


@pytest.mark.parametrize(
    ("text", "fragment"), DEEP, ids=["parens", "lists", "calls", "sum", "not", "cond"]
)
def test_deep_nesting_in_expressions(tmp_path: Path, text: str, fragment: str) -> None:
    located(tmp_path, text + NET.format(body=""), fragment, 1)


def test_deep_nesting_of_statements(tmp_path: Path) -> None:
    body = "if true {\n" * 500 + "}\n" * 500
    located(tmp_path, NET.format(body=body), "nested more than")


def test_deeply_nested_values_at_run_time(tmp_path: Path) -> None:
    body = "  y = 1\n  w = 1\n  for i in range(50000) { y = [y]\n w = [w] }\n  z = y == w"
    located(tmp_path, NET.format(body=body), "nests too deeply", 7)


def test_deep_set_expression_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "net.gcnn"
    spec.write_text("network n(c = 1) {\n  x = input(3, 8, 8)\n  return x\n}\n")
    deep = "(1 + " * 2000 + "1" + ")" * 2000
    r = CliRunner().invoke(main, ["check", str(spec), "--set", f"c=[{'[' * 500}1{']' * 500}]"])
    assert r.exit_code == 2 and "nested more than" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["check", str(spec), "--set", f"c={deep}"])
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.parametrize(
    "call",
    ["input(3)", "input()", "input(3, 8, 8, foo: 1)", "input(3, 8)"],
)
def test_input_with_wrong_arguments(tmp_path: Path, call: str) -> None:
    text = f"network n() {{\n  x = {call}\n  return x -> conv(8, 3)\n}}\n"
    assert check(tmp_path, text).kind == "located"


def test_input_in_a_top_level_constant(tmp_path: Path) -> None:
    located(tmp_path, "c = input(3, 8, 8)\n" + NET.format(body=""), "input() belongs", 1)


def test_unknown_dtype(tmp_path: Path) -> None:
    body = '  y = input(3, 8, 8, dtype: "float64")'
    text = 'network n() {\n  x = input(3, 8, 8, dtype: "float64")\n  return x\n}\n'
    located(tmp_path, text, 'unknown dtype "float64"', 2)
    located(tmp_path, NET.format(body=body).replace("  x = input(3, 8, 8)\n", ""), "dtype")


@pytest.mark.parametrize(
    "path", [".", "/tmp", "a" * 5000, "a\\u0000b", "/dev/null", "missing.gcnn"]
)
def test_import_of_something_that_is_not_a_spec_file(tmp_path: Path, path: str) -> None:
    path = path.replace("\\u0000", "\x00")
    located(tmp_path, f'import "{path}"\n' + NET.format(body=""), "import", 1)


def test_network_returning_an_empty_list(tmp_path: Path) -> None:
    text = "network n() {\n  x = input(3, 8, 8)\n  return []\n}\n"
    located(tmp_path, text, "returns an empty list", 1)


def test_numeric_layer_name_too_long(tmp_path: Path) -> None:
    body = '  y = x -> relu as "' + "1" * 5000 + '"'
    located(tmp_path, NET.format(body=body), "layer name of 5,000 characters is too long", 3)


# class 2: errors that are not located or not reported


def test_errors_on_empty_lists_are_located(tmp_path: Path) -> None:
    located(tmp_path, NET.format(body="  y = [1, 2][[]]"), "expected an integer, got list", 3)
    located(tmp_path, NET.format(body="  y = x -> conv(8, 3, [], 1)"), "conv", 3)


def test_positional_after_keyword_is_located(tmp_path: Path) -> None:
    detail = located(tmp_path, NET.format(body="  y = x -> conv(8, k: 3, [])"), "positional", 3)
    assert ":0:" not in detail


def test_interpolated_strings_quote_their_own_line(tmp_path: Path) -> None:
    text = 'network n() {\n  x = input(3, 8, 8)\n\n  return x -> conv(8, 3) as "c{zz}"\n}\n'
    detail = located(tmp_path, text, "unknown name 'zz'", 4)
    assert ".gcnn:4:32:" in detail  # the column of zz itself


def test_form_feed_does_not_shift_the_quoted_line(tmp_path: Path) -> None:
    text = "c = 1\n\x0cd = 2\ne = zz\n" + NET.format(body="")
    located(tmp_path, text, "unknown name", 3)


def test_imports_with_the_same_name_quote_their_own_lines(tmp_path: Path) -> None:
    """x/c.gcnn and y/c.gcnn are both imported as "c.gcnn": the error names the right one."""
    for sub, text in (("x", "block a(x) {\n  return x\n}\n"), ("y", "c = 1\nd = 2\ne = zz\n")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "lib.gcnn").write_text(
            f'import "c.gcnn"\nblock {sub}b(x) {{ return x }}\n'
        )
        (tmp_path / sub / "c.gcnn").write_text(text)
    spec = tmp_path / "main.gcnn"
    spec.write_text('import "x/lib.gcnn"\nimport "y/lib.gcnn"\n' + NET.format(body=""))
    r = CliRunner().invoke(main, ["check", str(spec)])
    assert r.exit_code == 2
    assert r.output.startswith(f"{tmp_path / 'y' / 'c.gcnn'}:3:5: error: unknown name 'zz'")
    assert "    3 | e = zz" in r.output


@pytest.mark.parametrize(
    "loc",
    [
        SourceLoc("f.gcnn", 99, 1),
        SourceLoc("f.gcnn", 0, 0),
        SourceLoc("f.gcnn", -3, -3),
        SourceLoc("f.gcnn", 1, 10**6),
        SourceLoc("never-read.gcnn", 1, 1),
    ],
)
def test_format_never_raises(loc: SourceLoc) -> None:
    SOURCES["f.gcnn"] = "x = 1\n" + "y" * 100_000 + "\n"
    text = SpecError("boom", loc, "a hint", ["in network n"]).format()
    assert text.startswith(f"{loc}: error: boom") and "a hint" in text
    assert all(len(line) < 300 for line in text.splitlines())


def test_long_lines_are_quoted_around_the_column(tmp_path: Path) -> None:
    text = "c = [" + "1, " * 20_000 + "zz]\n" + NET.format(body="")
    detail = located(tmp_path, text, "unknown name")
    assert len(detail) < 400


# class 3: hangs and memory blow-ups: every bound is checked before the work


HANGS = [
    ("  y = [0] * 1000000 * 1000000", "list of more than 1,000,000 items"),
    ('  s = "ab"\n  for i in range(100) { s = s + s }', "string of more than"),
    ("  for i in range(1000000) { for j in range(1000000) { } }", "more than 1,000,000 steps"),
    ("  for i in range(1000000) { y = range(1000000) }", "list items in total"),
    ("  y = range(1000000)\n  for i in range(1000) { z = y[0:] }", "list items in total"),
    ("  y = range(1000000)\n  for i in range(1000) { z = 5 in y }", "list items in total"),
    (
        "  y = [1]\n  w = [1]\n  for i in range(80) { y = [y, y]\n w = [w, w] }\n  z = y == w",
        "list items in total",
    ),
    ("  y = [1]\n  for i in range(300) { y = [y, y] }\n  z = y + 1", "cannot add list"),
    ("  y = [1]\n  for i in range(300) { y = [y, y] }\n  z = str(y)", "1,000,000 characters"),
    ('  y = range(1000000)\n  z = "{y}{y}"', "string of more than"),
]


@pytest.mark.parametrize(("body", "fragment"), HANGS)
def test_runaway_work_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, fragment: str
) -> None:
    # NOTE: a smaller work budget keeps the test quick; the bound is the same code path.
    monkeypatch.setattr(state, "MAX_WORK", 3_000_000)
    located(tmp_path, NET.format(body=body), fragment)


@pytest.mark.parametrize(
    "text",
    [
        NET.format(body="  y = range(1000000) + 1"),
        NET.format(body="  assert false, range(1000000)"),
        NET.format(body="  y = [1]\n  for i in range(300) { y = [y, y] }\n  assert false, y"),
        "c = 1 1" + "1" * 5000 + "\n",
        NET.format(body='  y = x -> relu as "' + "a-" * 5000 + '"'),
    ],
    ids=["binop", "assert", "assert-shared", "syntax", "layer-name"],
)
def test_error_messages_show_huge_values_briefly(tmp_path: Path, text: str) -> None:
    out = check(tmp_path, text)
    assert out.kind == "located" and len(out.detail) < 400, out


def test_python_api_passes_long_values_whole() -> None:
    """Messages cut values short; the Python API's arguments (spelled as spec text) are not."""
    from graphcnn.api import compile_text

    body = "  for w in widths { x = x -> conv(w, 1) }"
    spec = NET.format(body=body).replace("n()", "n(widths)")
    g = compile_text(spec, params={"widths": [4] * 300})
    assert len(g) == 301


@pytest.mark.parametrize(
    ("net", "fragment"),
    [
        ("x = input(3, 1000000000, 1000000000)", "too large"),
        ("x = input(1000000000) -> linear(1000000000)", "parameter weight"),
        ("x = input(999999999989, 1, 1) -> conv(8, 1, groups: 3)", "does not divide"),
        ("x = input(3, 8, 8) -> conv(10000000, 1) -> conv(10000000, 1)", "too large"),
    ],
)
def test_absurd_sizes_fail_fast(tmp_path: Path, net: str, fragment: str) -> None:
    located(tmp_path, f"network n() {{\n  {net}\n  return x\n}}\n", fragment, 2)


def test_node_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphcnn.lang import interp

    monkeypatch.setattr(interp, "MAX_NODES", 50)
    body = "  for i in range(100) { x = x -> relu }"
    located(tmp_path, NET.format(body=body), "graph exceeds 50 nodes", 3)


# the CLI: paths that are not spec files get one error and exit code 2 (tests/test_cli_robustness.py
# walks every command with unknown flags, missing, unreadable and garbage files; these are the
# paths whose checks could raise: too long for the file system, a FIFO, a directory)


COMMANDS = [
    ["check"],
    ["dump"],
    ["profile"],
    ["analyze"],
    ["compile", "-o", "out.onnx"],
    ["bench"],
    ["draw", "-o", "out.svg"],
    ["train"],
]


def _special_paths(tmp_path: Path) -> dict[str, tuple[str, str]]:
    folder = tmp_path / "a folder é"
    folder.mkdir()
    fifo = tmp_path / "fifo ü.gcnn"
    os.mkfifo(fifo)
    binary = tmp_path / "binary ü.gcnn"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    return {
        "directory": (str(folder), "it is a directory"),
        "fifo": (str(fifo), "it is not a regular file"),
        "too long": ("a" * 5000 + ".gcnn", "File name too long"),
        "binary": (str(binary), "cannot read"),
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_cli_special_paths(tmp_path: Path, command: list[str]) -> None:
    for what, (path, fragment) in _special_paths(tmp_path).items():
        r = CliRunner().invoke(main, [command[0], path, *command[1:]])
        assert r.exit_code == 2, (what, r.output)
        assert fragment in r.output and r.output.count("error") == 1, (what, r.output)
        assert "Traceback" not in r.output, (what, r.output)


def test_cli_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    spec = tmp_path / "my nets ü" / "ネット 1.gcnn"
    spec.parent.mkdir()
    spec.write_text(NET.format(body="  y = zz"))
    r = CliRunner().invoke(main, ["check", str(spec)])
    assert r.exit_code == 2 and f"{spec}:3:7: error: unknown name 'zz'" in r.output


def test_internal_errors_are_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import graphcnn.api

    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(graphcnn.api, "resolve", broken)
    monkeypatch.delenv("GRAPHCNN_DEBUG", raising=False)
    r = CliRunner().invoke(main, ["check", "resnet18"])
    assert r.exit_code == 1
    assert "internal error: ZeroDivisionError: a bug" in r.output and "Traceback" not in r.output
