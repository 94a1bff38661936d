"""Python habits in a spec get a located error that says what this language writes instead.

Covers the hints of graphcnn/lang/parser.py (comprehensions, index and augmented assignment,
'=' in a condition, ':' bodies, Python statement words, `import common`, attribute access) and
graphcnn/lang/ast_builder.py (`True`/`False`/`None`); docs/language.md, "Coming from Python".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compile_text, spec_error
from helpers.cli import invoke

from graphcnn.errors import SpecError


def net(*lines: str, params: str = "xs = [8, 16]") -> str:
    """A network whose body is ``lines`` (line 3 is the first of them) and returns ``x``."""
    body = "\n".join(f"  {line}" for line in lines)
    return f"network n({params}) {{\n  x = input(3, 8, 8)\n{body}\n  return x\n}}\n"


def where(err: SpecError) -> tuple[int, int]:
    assert err.loc is not None
    return err.loc.line, err.loc.col


def test_list_comprehension_says_how_to_write_the_loop() -> None:
    err = spec_error(net("ys = [w * 2 for w in xs]"))
    assert err.message == "a comprehension ('[... for ...]') is Python, not .gcnn"
    assert where(err) == (3, 15)  # the 'for'
    assert err.hint == (
        "build the list with a loop: ys = [] then for w in xs { ys = ys + [w * 2] }"
    )
    # the hint is a program that works
    fixed = net("ys = []", "for w in xs { ys = ys + [w * 2] }", "x = x -> conv(ys[1], 3)")
    assert compile_text(fixed)["conv"].type.shape[1] == 32


def test_comprehension_with_a_filter_over_lines_and_in_a_call() -> None:
    err = spec_error(net("ys = [conv(x, w, 3) for w in xs", "      if w > 8]"))
    assert where(err) == (3, 23)
    assert err.hint and err.hint.endswith(
        "ys = [] then for w in xs { if w > 8 { ys = ys + [conv(x, w, 3)] } }"
    )
    err = spec_error(net("n = sum(w for w in xs)"))
    assert (
        "comprehension" in err.message and err.hint and "for w in xs { ys = ys + [w] }" in err.hint
    )


@pytest.mark.parametrize(
    ("python", "ours"), [("True", "true"), ("False", "false"), ("None", "none")]
)
def test_python_literals_suggest_the_lowercase_ones(python: str, ours: str) -> None:
    err = spec_error(net(f"y = {python}"))
    assert err.message == f"unknown name {python!r}" and where(err) == (3, 7)
    assert err.hint and err.hint.startswith(f"did you mean {ours}?")


def test_python_literal_in_a_default_and_a_keyword_argument() -> None:
    err = spec_error(net("x = x -> conv(4, 3, bias: False)"))
    assert where(err) == (3, 29) and err.hint and "did you mean false?" in err.hint
    err = spec_error(net(params="bn = True"))
    assert where(err) == (1, 16) and err.hint and "did you mean true?" in err.hint


def test_set_value_with_a_python_literal() -> None:
    err = spec_error(net(), params={"xs": "True"})
    assert err.hint and "did you mean true?" in err.hint


def test_index_assignment_is_explained_not_a_keyword_argument() -> None:
    err = spec_error(net("xs[0] = 4"))
    assert err.message == "an item of a list cannot be assigned: lists never change in place"
    assert where(err) == (3, 9)
    assert err.hint and "xs = xs[:0] + [4] + xs[0 + 1:]" in err.hint
    assert "keyword" not in err.hint
    fixed = net("xs = xs[:0] + [4] + xs[0 + 1:]", "x = x -> conv(xs[0], 3)")
    assert compile_text(fixed)["conv"].type.shape[1] == 4
    err = spec_error(net("xs[1] += 4"))
    assert "an item of a list cannot be assigned" in err.message


def test_augmented_assignment() -> None:
    err = spec_error(net("c = 4", "c += 2"))
    assert err.message == "'+=' is Python, not .gcnn" and where(err) == (4, 6)
    assert err.hint and "c = c + ..." in err.hint
    assert "'//='" in spec_error(net("c = 4", "c //= 2")).message


def test_keyword_argument_with_equals_keeps_its_hint() -> None:
    err = spec_error(net("x = x -> conv(4, 3, stride = 2)"))
    assert err.hint == "keyword arguments are written name: value, e.g. conv(64, 3, stride: 2)"


def test_equals_in_a_condition() -> None:
    err = spec_error(net("if 1 = 1 { pass }"))
    assert where(err) == (3, 8) and err.hint and "compare with '=='" in err.hint


def test_colon_body_and_python_statement_words() -> None:
    err = spec_error(net("for i in range(2):", "  x = x"))
    assert where(err) == (3, 20) and err.hint and "braces" in err.hint
    err = spec_error("def f(x):\n  return x\n")
    assert err.message == "'def' is Python, not .gcnn" and err.hint and "block name(" in err.hint
    err = spec_error(net("while true { x = x }"))
    assert err.message == "'while' is Python, not .gcnn" and where(err) == (3, 9)


def test_import_without_quotes_and_attribute_access() -> None:
    err = spec_error("import common\nnetwork n() {\n  return input(1, 1, 1)\n}\n")
    assert (
        where(err) == (1, 8) and err.hint == 'import takes a quoted file name: import "common.gcnn"'
    )
    err = spec_error(net("c = x.shape"))
    assert where(err) == (3, 8) and err.hint and "shape(x)" in err.hint


def test_other_syntax_errors_keep_their_messages() -> None:
    err = spec_error(net("x = x -> conv(4, 3"))
    assert err.message.startswith("unexpected ") and err.hint == (
        "the '(' opened on line 3 is not closed"
    )
    err = spec_error("network n(block = 1) { x = input(1, 1, 1)\n return x }")
    assert err.hint == "'block' is a keyword and cannot be used as a name"


def test_cli_exit_code_location_and_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "habit.gcnn"
    spec.write_text(net("ys = [w * 2 for w in xs]"))
    r = invoke("check", str(spec), code=2)
    assert r.stderr.startswith(f"{spec}:3:15: error: a comprehension")
    assert "hint: build the list with a loop" in r.stderr and "Traceback" not in r.output
    spec.write_text(net(params="bn = True"))
    r = invoke("profile", str(spec), code=2)
    assert f"{spec}:1:16: error: unknown name 'True'" in r.stderr
