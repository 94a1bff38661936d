"""The lark transformer that builds :mod:`graphcnn.lang.ast` nodes while the LALR parser reduces.

Each grammar rule has one method here; tokens become source locations, string literals are
unquoted, and ``"layer{i + 1}"`` is split into text and expressions (parsed by the callback the
parser hands in). Python's ``True``/``False``/``None`` are answered with the lowercase literals.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable
from typing import Any

from lark import Token, Transformer, v_args

from graphcnn.errors import SpecError
from graphcnn.ir import SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.builtins import MAX_INT

PYTHON_LITERALS = {"True": "true", "False": "false", "None": "none"}
"""Python's spellings of the literals, answered with this language's (lowercase) ones."""


class AstBuilder(Transformer[Token, Any]):
    """Builds AST nodes while the LALR parser reduces (no intermediate lark Tree)."""

    def __init__(self, parse_expr: Callable[[str, SourceLoc], ast.Expr]) -> None:
        super().__init__()
        self.file = "<spec>"
        self._parse_expr = parse_expr

    def _loc(self, tok: Any) -> SourceLoc:
        if isinstance(tok, Token):
            return SourceLoc(self.file, tok.line or 0, tok.column or 0)
        loc: SourceLoc = tok.loc
        return loc

    # items
    @v_args(inline=True)
    def import_stmt(self, kw: Token, path: Token) -> ast.Import:
        return ast.Import(_unquote(path, self._loc(path)), self._loc(kw))

    def block_def(self, c: list[Any]) -> ast.BlockDef:
        mode = c[0].type if c[0].type in ("SEQ", "INLINE") else None
        _, name, params, body = c[1:] if mode else c
        return ast.BlockDef(
            str(name),
            params or [],
            body,
            self._loc(name),
            seq=mode == "SEQ",
            inline=mode == "INLINE",
        )

    @v_args(inline=True)
    def network_def(self, kw: Token, name: Token, params: Any, body: Any) -> ast.BlockDef:
        return ast.BlockDef(str(name), params or [], body, self._loc(name), network=True)

    @v_args(inline=True)
    def model_def(self, kw: Token, name: Token, net: Token, args: Any) -> ast.ModelDef:
        pos, kw_ = _split_args(args or [])
        return ast.ModelDef(str(name), str(net), pos, kw_, self._loc(name))

    @v_args(inline=True)
    def const_def(self, name: Token, value: Any) -> ast.ConstDef:
        return ast.ConstDef(str(name), value, self._loc(name))

    def params(self, c: list[Any]) -> list[ast.Param]:
        return c

    def param(self, c: list[Any]) -> ast.Param:
        return ast.Param(str(c[0]), c[1] if len(c) > 1 else None, self._loc(c[0]))

    def body(self, c: list[Any]) -> list[Any]:
        return c

    # statements
    def assign(self, c: list[Any]) -> ast.Assign:
        return ast.Assign([str(t) for t in c[:-1]], c[-1], self._loc(c[0]))

    @v_args(inline=True)
    def expr_stmt(self, value: Any) -> ast.ExprStmt:
        return ast.ExprStmt(value, _loc_of(value))

    def for_stmt(self, c: list[Any]) -> ast.For:
        return ast.For([str(t) for t in c[1:-3]], c[-2], c[-1], self._loc(c[0]))

    def if_stmt(self, c: list[Any]) -> ast.If:
        branches, orelse, i = [], None, 0
        while i < len(c):
            kw = c[i].type
            if kw == "ELSE":
                orelse = c[i + 1]
                break
            branches.append((c[i + 1], c[i + 2]))
            i += 3
        return ast.If(branches, orelse, self._loc(c[0]))

    def return_stmt(self, c: list[Any]) -> ast.Return:
        return ast.Return([v for v in c[1:] if v is not None], self._loc(c[0]))

    @v_args(inline=True)
    def scope_stmt(self, kw: Token, name: Any, body: Any) -> ast.Scope:
        return ast.Scope(kw.type == "SEQ", name, body, self._loc(kw))

    @v_args(inline=True)
    def training_stmt(self, kw: Token, body: Any) -> ast.Training:
        return ast.Training(body, self._loc(kw))

    def assert_stmt(self, c: list[Any]) -> ast.Assert:
        return ast.Assert(c[1], c[2] if len(c) > 2 else None, self._loc(c[0]))

    @v_args(inline=True)
    def pass_stmt(self, kw: Token) -> ast.Pass:
        return ast.Pass(self._loc(kw))

    # expressions
    @v_args(inline=True)
    def cond(self, then: Any, kw: Token, test: Any, kw2: Token, other: Any) -> ast.Cond:
        return ast.Cond(then, test, other, self._loc(kw))

    def chain(self, c: list[Any]) -> ast.Chain:
        links = [x for x in c[1:] if not isinstance(x, Token)]
        return ast.Chain(c[0], links, self._loc(c[1]))

    def link(self, c: list[Any]) -> ast.Call:
        name, args, alias = c
        pos, kw = _split_args(args or [])
        return ast.Call(str(name), pos, kw, alias, self._loc(name))

    def call(self, c: list[Any]) -> ast.Call:
        name, args, alias = c
        pos, kw = _split_args(args)
        return ast.Call(str(name), pos, kw, alias, self._loc(name))

    def call_args(self, c: list[Any]) -> list[Any]:
        return [a for a in c if a is not None]

    @v_args(inline=True)
    def kwarg(self, name: Token, value: Any) -> tuple[str, Any, SourceLoc]:
        return (str(name), value, self._loc(name))

    @v_args(inline=True)
    def alias(self, kw: Token, name: Any) -> Any:
        return name

    @v_args(inline=True)
    def name_expr(self, tok: Token) -> Any:
        if tok.type == "STRING":
            return self.string(tok)
        if tok.type == "INT":
            return ast.Const(_int_literal(tok, self._loc(tok)), self._loc(tok))
        return ast.Const(str(tok), self._loc(tok))

    def _binary(self, c: list[Any]) -> Any:
        left = c[0]
        for i in range(1, len(c), 2):
            left = ast.BinOp(str(c[i]), left, c[i + 1], self._loc(c[i]))
        return left

    arith = term = _binary

    @v_args(inline=True)
    def power(self, base: Any, op: Token, exp: Any) -> ast.BinOp:
        return ast.BinOp("**", base, exp, self._loc(op))

    def comparison(self, c: list[Any]) -> ast.Compare:
        rest = [(str(c[i]), c[i + 1]) for i in range(1, len(c), 2)]
        return ast.Compare(c[0], rest, self._loc(c[1]))

    def or_test(self, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("or", c[::2], self._loc(c[1]))

    def and_test(self, c: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("and", c[::2], self._loc(c[1]))

    @v_args(inline=True)
    def not_test(self, kw: Token, operand: Any) -> ast.Unary:
        return ast.Unary("not", operand, self._loc(kw))

    @v_args(inline=True)
    def neg(self, op: Token, operand: Any) -> Any:
        if isinstance(operand, ast.Const) and isinstance(operand.value, (int, float)):
            return ast.Const(-operand.value, self._loc(op))
        return ast.Unary("-", operand, self._loc(op))

    @v_args(inline=True)
    def index(self, value: Any, idx: Any) -> ast.Index:
        return ast.Index(value, idx, _loc_of(value))

    @v_args(inline=True)
    def slice(self, value: Any, start: Any, stop: Any) -> ast.Slice:
        return ast.Slice(value, start, stop, _loc_of(value))

    @v_args(inline=True)
    def int(self, tok: Token) -> ast.Const:
        return ast.Const(_int_literal(tok, self._loc(tok)), self._loc(tok))

    @v_args(inline=True)
    def float(self, tok: Token) -> ast.Const:
        value = float(tok)
        if not math.isfinite(value):
            raise SpecError(
                f"number {clip_text(str(tok))} is too large",
                self._loc(tok),
                "numbers are 64-bit floats",
            )
        return ast.Const(value, self._loc(tok))

    @v_args(inline=True)
    def string(self, tok: Token) -> ast.Const | ast.FString:
        loc = self._loc(tok)
        text = _unquote(tok, loc)
        if "{" not in text:
            return ast.Const(text, loc)
        return ast.FString(_interpolate(text, loc, self._parse_expr), loc)

    @v_args(inline=True)
    def true(self, tok: Token) -> ast.Const:
        return ast.Const(True, self._loc(tok))

    @v_args(inline=True)
    def false(self, tok: Token) -> ast.Const:
        return ast.Const(False, self._loc(tok))

    @v_args(inline=True)
    def none(self, tok: Token) -> ast.Const:
        return ast.Const(None, self._loc(tok))

    @v_args(inline=True)
    def var(self, tok: Token) -> ast.Var:
        name = str(tok)
        if name in PYTHON_LITERALS:
            raise SpecError(
                f"unknown name {name!r}",
                self._loc(tok),
                f"did you mean {PYTHON_LITERALS[name]}? The literals are lowercase: true, false, "
                "none",
            )
        return ast.Var(name, self._loc(tok))

    def list(self, c: list[Any]) -> ast.ListExpr:
        items = [x for x in c[1:] if x is not None]
        return ast.ListExpr(items, self._loc(c[0]))

    def tuple(self, c: builtins.list[Any]) -> ast.ListExpr:
        items = [x for x in c if x is not None]
        return ast.ListExpr(items, _loc_of(items[0]), tuple=True)

    def start(self, c: builtins.list[Any]) -> builtins.list[Any]:
        for item in c:
            check_nesting(item)
        return c


def check_nesting(node: Any) -> None:
    """Refuse a definition or expression nested deeper than the evaluator may recurse."""
    where = ast.too_deep(node)
    if where is not None:
        raise SpecError(
            f"nested more than {ast.MAX_NESTING} levels deep",
            where,
            "split the expression or the block into named steps",
        )


def clip_text(text: str, n: int = 24) -> str:
    """``text``, or its first ``n`` characters and its length (for error messages)."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text):,} characters)"


def _int_literal(tok: Token, loc: SourceLoc) -> int:
    digits = str(tok).replace("_", "")
    if len(digits) > len(str(MAX_INT)) or int(digits) > MAX_INT:
        raise SpecError(
            f"integer {clip_text(digits)} is too large",
            loc,
            f"integers are limited to {MAX_INT:.0e} in magnitude",
        )
    return int(digits)


def _loc_of(node: Any) -> SourceLoc:
    loc: SourceLoc = node.loc
    return loc


def _split_args(args: list[Any]) -> tuple[list[Any], list[tuple[str, Any, SourceLoc]]]:
    pos = [a for a in args if not isinstance(a, tuple)]
    kw = [a for a in args if isinstance(a, tuple)]
    first_kw = next((i for i, a in enumerate(args) if isinstance(a, tuple)), len(args))
    if any(not isinstance(a, tuple) for a in args[first_kw:]):
        raise SpecError(
            "positional argument after a keyword argument",
            _loc_of(args[-1]) if not isinstance(args[-1], tuple) else args[-1][2],
            "put positional arguments first: conv(64, 3, stride: 2)",
        )
    return pos, kw


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(tok: Token, loc: SourceLoc) -> str:
    body = str(tok)[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _interpolate(
    text: str, loc: SourceLoc, parse_expr: Callable[[str, SourceLoc], ast.Expr]
) -> list[str | ast.Expr]:
    """Split ``"layer{i + 1}"`` into literal text and parsed expressions."""
    parts: list[str | ast.Expr] = []
    pos = 0
    for m in re.finditer(r"\{([^{}]*)\}", text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        # NOTE: the text is unescaped, so columns after an escape are off by one; lines are right.
        start = SourceLoc(loc.file, loc.line, loc.col + 1 + m.start(1))
        expr = parse_expr(m.group(1), start)
        ast.relocate(expr, start.line, start.col)
        parts.append(expr)
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts
