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


MAX_NESTING = 100
"""Deepest nesting of expressions and statements in one definition (the evaluator recurses)."""


def _children(node: Any) -> list[Any]:
    """The syntax-tree nodes directly inside ``node`` (in lists, pairs and keyword triples)."""
    out: list[Any] = []
    for name in node.__slots__:
        value = getattr(node, name)
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, (list, tuple)):
                stack.extend(v)
            elif hasattr(v, "__slots__") and hasattr(v, "loc") and not isinstance(v, SourceLoc):
                out.append(v)
    return out


def too_deep(root: Any, limit: int = MAX_NESTING) -> SourceLoc | None:
    """Where ``root``'s tree first nests deeper than ``limit`` (None if it does not).

    Iterative, so a tree of any depth is measured without recursion."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            loc: SourceLoc = node.loc
            return loc
        stack.extend((child, depth + 1) for child in _children(node))
    return None


def relocate(root: Any, line: int, col: int) -> None:
    """Shift the locations in ``root``'s tree, parsed from text that starts at (line, col)."""
    stack = [root]
    while stack:
        node = stack.pop()
        loc = getattr(node, "loc", None)
        if isinstance(loc, SourceLoc):
            node.loc = SourceLoc(loc.file, line + loc.line - 1, col + loc.col - 1)
        for name in node.__slots__:
            value = getattr(node, name)
            if name == "kwargs":
                node.kwargs = [
                    (k, v, SourceLoc(kl.file, line + kl.line - 1, col + kl.col - 1))
                    for k, v, kl in value
                ]
        stack.extend(_children(node))
