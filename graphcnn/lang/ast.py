"""Syntax tree of a spec file. Built by the parser's transformer, walked by the interpreter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphcnn.ir import SourceLoc


@dataclass(slots=True)
class Const:
    value: Any
    loc: SourceLoc


@dataclass(slots=True)
class FString:
    """A string with ``{expr}`` interpolations: alternating literal text and expressions."""

    parts: list[str | Expr]
    loc: SourceLoc


@dataclass(slots=True)
class Var:
    name: str
    loc: SourceLoc


@dataclass(slots=True)
class Call:
    name: str
    args: list[Expr]
    kwargs: list[tuple[str, Expr, SourceLoc]]
    alias: Expr | None
    loc: SourceLoc


@dataclass(slots=True)
class Chain:
    """``head -> link -> link``: each link is a Call whose first argument is the value so far."""

    head: Expr
    links: list[Call]
    loc: SourceLoc


@dataclass(slots=True)
class BinOp:
    op: str
    left: Expr
    right: Expr
    loc: SourceLoc


@dataclass(slots=True)
class Compare:
    first: Expr
    rest: list[tuple[str, Expr]]
    loc: SourceLoc


@dataclass(slots=True)
class BoolOp:
    op: str  # "and" | "or"
    values: list[Expr]
    loc: SourceLoc


@dataclass(slots=True)
class Unary:
    op: str  # "-" | "not"
    operand: Expr
    loc: SourceLoc


@dataclass(slots=True)
class Cond:
    then: Expr
    test: Expr
    other: Expr
    loc: SourceLoc


@dataclass(slots=True)
class Index:
    value: Expr
    index: Expr
    loc: SourceLoc


@dataclass(slots=True)
class Slice:
    value: Expr
    start: Expr | None
    stop: Expr | None
    loc: SourceLoc


@dataclass(slots=True)
class ListExpr:
    items: list[Expr]
    loc: SourceLoc
    tuple: bool = False


Expr = (
    Const
    | FString
    | Var
    | Call
    | Chain
    | BinOp
    | Compare
    | BoolOp
    | Unary
    | Cond
    | Index
    | Slice
    | ListExpr
)


@dataclass(slots=True)
class Assign:
    targets: list[str]
    value: Expr
    loc: SourceLoc


@dataclass(slots=True)
class ExprStmt:
    value: Expr
    loc: SourceLoc


@dataclass(slots=True)
class For:
    """``for a in xs`` binds each item; ``for a, b in xs`` unpacks each item (Python semantics)."""

    targets: list[str]
    iterable: Expr
    body: list[Stmt]
    loc: SourceLoc


@dataclass(slots=True)
class If:
    branches: list[tuple[Expr, list[Stmt]]]
    orelse: list[Stmt] | None
    loc: SourceLoc


@dataclass(slots=True)
class Return:
    values: list[Expr]
    loc: SourceLoc


@dataclass(slots=True)
class Scope:
    seq: bool
    name: Expr
    body: list[Stmt]
    loc: SourceLoc


@dataclass(slots=True)
class Training:
    body: list[Stmt]
    loc: SourceLoc


@dataclass(slots=True)
class Assert:
    test: Expr
    message: Expr | None
    loc: SourceLoc


@dataclass(slots=True)
class Pass:
    loc: SourceLoc


Stmt = Assign | ExprStmt | For | If | Return | Scope | Training | Assert | Pass


@dataclass(slots=True)
class Param:
    name: str
    default: Expr | None
    loc: SourceLoc


@dataclass(slots=True)
class BlockDef:
    """A ``block`` (sub-graph function) or a ``network`` (a block that is a whole model)."""

    name: str
    params: list[Param]
    body: list[Stmt]
    loc: SourceLoc
    seq: bool = False
    network: bool = False
    inline: bool = False
    """An inline block opens no scope: its layers are named as if written at the call site."""


@dataclass(slots=True)
class ModelDef:
    """``model resnet18 = resnet(layers: [2, 2, 2, 2])``: a network with bound arguments."""

    name: str
    network: str
    args: list[Expr]
    kwargs: list[tuple[str, Expr, SourceLoc]]
    loc: SourceLoc


@dataclass(slots=True)
class Import:
    path: str
    loc: SourceLoc


@dataclass(slots=True)
class ConstDef:
    name: str
    value: Expr
    loc: SourceLoc


Item = Import | BlockDef | ModelDef | ConstDef


@dataclass(slots=True)
class Module:
    path: str
    items: list[Item] = field(default_factory=list)
