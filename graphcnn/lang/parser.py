"""Parse ``.gcnn`` text into an :class:`~graphcnn.lang.ast.Module` (lark, LALR, built once).

Holds the post-lexer that lets a statement continue over lines, the one place that builds the
lark parsers (a file's and one expression's) and syntax errors that say what was expected, and,
where the parser stopped at a Python habit (a comprehension, ``xs[i] = v``, ``+=``, ``def``), what
this language writes instead. The AST itself is built by
:class:`~graphcnn.lang.ast_builder.AstBuilder` while the parser reduces.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from graphcnn.errors import SOURCES, SpecError
from graphcnn.ir import SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.ast_builder import AstBuilder as _Build
from graphcnn.lang.ast_builder import check_nesting, clip_text

GRAMMAR = Path(__file__).with_name("grammar.lark")

_TOKEN_NAMES = {
    "_NL": "end of line",
    "$END": "end of file",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "ARROW": "'->'",
    "SEMICOLON": "';'",
}

_KEYWORDS = {
    "import",
    "block",
    "inline",
    "network",
    "model",
    "seq",
    "scope",
    "training",
    "for",
    "in",
    "if",
    "elif",
    "else",
    "return",
    "assert",
    "pass",
    "as",
    "or",
    "and",
    "not",
    "true",
    "false",
    "none",
}


class _Newlines:
    """Post-lexer: drop newlines inside (...) and [...], and before '->', 'as', 'else', 'elif'."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        pending: Token | None = None
        for tok in stream:
            if tok.type == "_NL":
                if depth == 0 and pending is None:
                    pending = tok
                continue
            if pending is not None:
                if tok.type not in ("ARROW", "AS", "ELSE", "ELIF"):
                    yield pending
                pending = None
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB") and depth:
                depth -= 1
            yield tok
        if pending is not None:
            yield pending


@functools.cache
def _lark(kind: str) -> Lark:
    """The LALR parser of a whole file (``"module"``) or of one expression (``"expr"``)."""
    # NOTE: lark hashes the options as given into the cache key; "start" stays unset for files.
    start = {"start": "expr"} if kind == "expr" else {}
    return Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        lexer="basic",
        postlex=_Newlines(),
        transformer=_BUILD,
        maybe_placeholders=True,
        **start,
        cache=_cache_path(kind),
    )


def _cache_path(kind: str) -> str | bool:
    """Lark's grammar-analysis cache (a pickle) in a private per-user folder, else no cache.

    Lark unpickles the cache, so a file another user could plant would run code as this user:
    the folder (``$XDG_CACHE_HOME/graphcnn``, default ``~/.cache/graphcnn``) is created 0700 and
    used only when it and its parent, and the cache file if present, are this user's and
    writable by no one else. Otherwise the grammar is analysed afresh (~0.1 s), nothing written.
    """
    import hashlib
    import os

    if not hasattr(os, "getuid"):
        return False
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(base) / "graphcnn"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return False
    digest = hashlib.sha256(GRAMMAR.read_bytes()).hexdigest()[:16]
    path = folder / f"lark-{kind}-{digest}.cache"
    safe = _private(folder.parent, True) and _private(folder, True) and _private(path, False)
    return str(path) if safe else False


def _private(path: Path, is_dir: bool) -> bool:
    """``path`` is this user's own (no symlink) and nobody else may write it; a missing file is."""
    import os
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return not is_dir
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.getuid() and not st.st_mode & 0o022


def parse(text: str, file: str = "<spec>") -> ast.Module:
    """Parse a whole spec file; raise :class:`SpecError` with location on malformed input."""
    SOURCES[file] = text
    _BUILD.file = file
    try:
        items = cast("list[ast.Item]", _lark("module").parse(text))
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file) from None
    except RecursionError:
        raise SpecError(
            "nesting too deep", SourceLoc(file, 1, 1), hint="split the expression into steps"
        ) from None
    return ast.Module(file, items)


def parse_expr(text: str, loc: SourceLoc | None = None) -> ast.Expr:
    """Parse one expression (``--set`` values and ``{...}`` in strings)."""
    file = loc.file if loc else "<expr>"
    saved = _BUILD.file
    _BUILD.file = file
    try:
        expr = cast("ast.Expr", _lark("expr").parse(text))
        check_nesting(expr)
        return expr
    except UnexpectedInput as e:
        where = loc or SourceLoc(file, e.line, e.column)
        raise SpecError(f"invalid expression {text!r}", where) from None
    finally:
        _BUILD.file = saved


_BUILD = _Build(parse_expr)

_OPERATORS = {
    "PLUS",
    "MINUS",
    "STAR",
    "SLASH",
    "DSLASH",
    "PERCENT",
    "POW",
    "COMP",
    "IN",
    "OR",
    "AND",
    "IF",
    "AS",
    "ARROW",
    "LSQB",
    "LPAR",
    "__ANON_0",
}


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> SpecError:
    loc = SourceLoc(file, max(e.line, 1), max(e.column, 1))
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream is not None else "?"
        return SpecError(f"unexpected character {ch!r}", loc, _char_hint(ch))
    if isinstance(e, (UnexpectedToken, UnexpectedEOF)):
        tok = getattr(e, "token", None)
        structural = [t for t in e.expected if t not in _OPERATORS]
        expected = sorted({_TOKEN_NAMES.get(t, _pretty(t)) for t in structural})
        if len(structural) < len(e.expected):
            expected.append("an operator")
        at_end = tok is None or tok.type == "$END"
        got = (
            "end of file"
            if at_end or tok is None
            else ("end of line" if tok.type == "_NL" else repr(clip_text(str(tok))))
        )
        if at_end:
            loc = SourceLoc(file, max(text.count("\n"), 1), 1)
        pos = e.pos_in_stream if e.pos_in_stream is not None else len(text)
        shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
        message = f"unexpected {got}; expected {shown}"
        habit = None if at_end or tok is None else _python_habit(tok, text, pos, set(e.expected))
        if habit is not None:
            return SpecError(habit[0] or message, loc, habit[1])
        hint = _unclosed(text, pos)
        if hint is None and tok is not None and str(tok) in _KEYWORDS:
            hint = f"{str(tok)!r} is a keyword and cannot be used as a name"
        return SpecError(message, loc, hint)
    return SpecError(str(e), loc)


_LOOP = "for v in xs { ys = ys + [f(v)] }"

_PY_STATEMENTS = {
    "def": "a function is a block: block name(x, c) { return x -> conv(c, 3) }",
    "class": "a network is declared with: network name(params) { ... }",
    "while": "loops run over a list or a range: for i in range(n) { ... }",
    "lambda": "a function is a block: block name(x, c) { return x -> conv(c, 3) }",
}
"""Python statement words that are names here, and what this language writes instead."""


def _python_habit(tok: Token, text: str, pos: int, expected: set[str]) -> tuple[str, str] | None:
    """A Python habit the parser stopped at: (a message, or "" for the parser's, and a hint)."""
    line = text[text.rfind("\n", 0, pos) + 1 : pos].rstrip(" \t")
    first = line.split(maxsplit=1)[0] if line.split() else ""
    opened = _open_brackets(text, pos)
    inner = opened[-1][0] if opened else ""
    if tok.type == "FOR" and inner in "([" and inner:
        return (
            "a comprehension ('[... for ...]') is Python, not .gcnn",
            "build the list with a loop: " + _comprehension_loop(text, opened[-1][2], pos),
        )
    if tok.type == "EQUAL":
        op = re.search(r"(\*\*|//|[-+*/%])$", line)
        if op and not line[: op.start()].rstrip().endswith("]"):
            o = op.group(1)
            named = re.search(r"([A-Za-z_]\w*)\s*$", line[: op.start()])
            x = named.group(1) if named else "x"
            return (
                f"'{o}=' is Python, not .gcnn",
                f"write the operation out: {x} = {x} {o} ... (a name is assigned, never updated)",
            )
        if inner == "(":
            return "", "keyword arguments are written name: value, e.g. conv(64, 3, stride: 2)"
        if first in ("if", "elif", "assert"):
            return "", "'=' assigns; compare with '==', e.g. if stride == 1 { ... }"
        if re.search(r"\](\s*(\*\*|//|[-+*/%]))?$", line) and not inner:
            item = re.search(r"([A-Za-z_]\w*)\[([^\[\]]+)\]$", line)
            rest = text[pos + 1 : (text.find("\n", pos) + 1 or len(text) + 1) - 1]
            value = re.split(r"[;#]", rest)[0].strip()
            xs, i = item.groups() if item else ("xs", "i")
            v = value if item and value and "=" not in value else "v"
            return (
                "an item of a list cannot be assigned: lists never change in place",
                f"build a new list and assign the name: {xs} = {xs}[:{i}] + [{v}] + "
                f"{xs}[{i} + 1:] (or build it in a loop: ys = [] then {_LOOP})",
            )
        return (
            "",
            "only names are assigned (x = expr, a, b = expr); "
            "keyword arguments are written name: value",
        )
    if tok.type == "NAME" and first == "import" and line.strip() == "import":
        name = str(tok)
        return "", f'import takes a quoted file name: import "{name}.gcnn"'
    if tok.type == "COLON" and "LBRACE" in expected:
        return (
            "",
            "a body is in braces, not after ':' and an indent: if c { ... }, for v in xs { ... }",
        )
    if first in _PY_STATEMENTS and line.strip() == first:
        return f"{first!r} is Python, not .gcnn", _PY_STATEMENTS[first]
    return None


def _comprehension_loop(text: str, start: int, pos: int) -> str:
    """``ys = [f(v) for v in xs if c]`` written as this language's loop (generic if unclear)."""
    head = text[text.rfind("\n", 0, start) + 1 : start]
    target = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*", head)
    name = target.group(1) if target else "ys"
    depth, end = 1, pos
    while end < len(text) and depth:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text[end], 0)
        end += 1
    item = " ".join(text[start + 1 : pos].split())
    m = re.fullmatch(
        r"for\s+(.+?)\s+in\s+(.+?)(?:\s+if\s+(.+))?", " ".join(text[pos : end - 1].split())
    )
    if not item or m is None or depth:
        return f"ys = [] then {_LOOP}"
    add = f"{name} = {name} + [{item}]"
    if m.group(3):
        add = f"if {m.group(3)} {{ {add} }}"
    return f"{name} = [] then for {m.group(1)} in {m.group(2)} {{ {add} }}"


def _open_brackets(text: str, pos: int) -> list[tuple[str, int, int]]:
    """The brackets still open at ``pos``, innermost last: (bracket, its line, its offset)."""
    stack: list[tuple[str, int, int]] = []
    line, in_str, in_comment = 1, False, False
    for i, ch in enumerate(text[:pos]):
        if ch == "\n":
            line += 1
            in_comment = False
        elif in_comment:
            continue
        elif ch == '"':
            in_str = not in_str
        elif in_str:
            continue
        elif ch == "#":
            in_comment = True
        elif ch in "([":
            stack.append((ch, line, i))
        elif ch in ")]" and stack:
            stack.pop()
    return stack


def _unclosed(text: str, pos: int) -> str | None:
    """If a bracket opened on an earlier line is still open at ``pos``, say where."""
    stack = _open_brackets(text, pos)
    line = text.count("\n", 0, pos) + 1
    if stack and stack[-1][1] < line:
        ch, where, _ = stack[-1]
        return f"the {ch!r} opened on line {where} is not closed"
    return None


def _pretty(term: str) -> str:
    if term.isupper() and term.lower() in _KEYWORDS:
        return f"'{term.lower()}'"
    return {
        "PLUS": "'+'",
        "MINUS": "'-'",
        "STAR": "'*'",
        "SLASH": "'/'",
        "COMP": "a comparison",
        "POW": "'**'",
        "DSLASH": "'//'",
        "PERCENT": "'%'",
        "IN": "'in'",
    }.get(term, term)


def _char_hint(ch: str) -> str | None:
    if ch == "'":
        return "strings use double quotes"
    if ch == "|":
        return "chain operators with '->', e.g. x -> conv(64, 3) -> bn -> relu"
    if ch == "=":
        return "keyword arguments use ':', e.g. conv(64, 3, stride: 2)"
    if ch == ".":
        return (
            "values have no attributes or methods: use functions and operators, "
            "e.g. channels(x), shape(x), xs + [v] (not xs.append(v))"
        )
    return None
