"""Parse ``.gcnn`` text into an :class:`~graphcnn.lang.ast.Module` (lark, LALR, built once).

Holds the post-lexer that lets a statement continue over lines, the one place that builds the
lark parsers (a file's and one expression's) and syntax errors that say what was expected. The
AST itself is built by :class:`~graphcnn.lang.ast_builder.AstBuilder` while the parser reduces.
"""

from __future__ import annotations

import functools
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
        hint = _unclosed(text, pos)
        if hint is None and tok is not None:
            if tok.type == "EQUAL":
                hint = "keyword arguments are written name: value, e.g. conv(64, 3, stride: 2)"
            elif str(tok) in _KEYWORDS:
                hint = f"{str(tok)!r} is a keyword and cannot be used as a name"
        shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
        return SpecError(f"unexpected {got}; expected {shown}", loc, hint)
    return SpecError(str(e), loc)


def _unclosed(text: str, pos: int) -> str | None:
    """If a bracket opened on an earlier line is still open at ``pos``, say where."""
    stack: list[tuple[str, int]] = []
    line, in_str, in_comment = 1, False, False
    for ch in text[:pos]:
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
            stack.append((ch, line))
        elif ch in ")]" and stack:
            stack.pop()
    if stack and stack[-1][1] < line:
        ch, where = stack[-1]
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
    return None
