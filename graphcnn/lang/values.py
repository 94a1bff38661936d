"""Runtime values of the spec language besides numbers, strings, booleans, lists and tuples,
and a loaded spec file's top-level names (:class:`LoadedModule`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from graphcnn.errors import SpecError
from graphcnn.ir import SourceLoc, TensorType
from graphcnn.lang import ast


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor produced by a node of the graph under construction."""

    node: str
    type: TensorType
    training_only: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    """A ``block`` or ``network`` definition, with the globals of the file that defines it."""

    defn: ast.BlockDef
    globals: dict[str, Any]

    @property
    def name(self) -> str:
        return self.defn.name


@dataclass(frozen=True, slots=True)
class Model:
    """``model NAME = network(args)``: a network with bound arguments."""

    defn: ast.ModelDef
    network: Block
    globals: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A built-in layer used as a value (``act = relu6``), callable later."""

    name: str


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str


@dataclass
class LoadedModule:
    """The top-level names of a spec file and of everything it imports."""

    path: str
    globals: dict[str, Any] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    """Networks and models defined in this file itself, in source order."""

    def target(self, name: str | None) -> Block | Model:
        """The network or model to compile: ``name``, or the file's only/last one."""
        if name is None:
            if not self.targets:
                raise SpecError(
                    f"{self.path} defines no network",
                    SourceLoc(self.path, 1, 1),
                    "add: network name(...) { x = input(3, 224, 224) ... }",
                )
            name = self.targets[-1]
        value = self.globals.get(name)
        if not isinstance(value, (Block, Model)) or (
            isinstance(value, Block) and not value.defn.network
        ):
            nets = [
                n
                for n, v in self.globals.items()
                if isinstance(v, Model) or (isinstance(v, Block) and v.defn.network)
            ]
            close = difflib.get_close_matches(name, nets, n=3)
            raise SpecError(
                f"no network or model named {name!r} in {self.path}",
                None,
                f"did you mean {', '.join(close)}?"
                if close
                else f"available: {', '.join(nets) or 'none'}",
            )
        return value


SHOW_LIMIT = 200
"""The most characters of a value an error message shows."""


def show(v: Any, limit: int = SHOW_LIMIT) -> str:
    """A value as the spec language would write it, cut to about ``limit`` characters."""
    out: list[str] = []
    _show(v, out, [limit], 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit] + "..."


def _show(v: Any, out: list[str], budget: list[int], depth: int) -> None:
    # NOTE: stops as soon as the budget is spent, so a huge or deeply shared value costs nothing.
    if budget[0] <= 0:
        return
    if isinstance(v, (list, tuple)):
        if depth > 20:
            piece = "[...]" if isinstance(v, list) else "(...)"
            out.append(piece)
            budget[0] -= len(piece)
            return
        out.append("[" if isinstance(v, list) else "(")
        budget[0] -= 1
        for i, x in enumerate(v):
            if budget[0] <= 0:
                return
            if i:
                out.append(", ")
                budget[0] -= 2
            _show(x, out, budget, depth + 1)
        out.append("]" if isinstance(v, list) else ("," if len(v) == 1 else "") + ")")
        budget[0] -= 1
        return
    piece = _scalar(v)
    out.append(piece)
    budget[0] -= len(piece)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, Tensor):
        return f"tensor %{v.node} [{', '.join(str(d) for d in v.type.shape[1:])}]"
    if isinstance(v, Block):
        return f"{'network' if v.defn.network else 'block'} {v.name}"
    if isinstance(v, Model):
        return f"model {v.defn.name}"
    if isinstance(v, (LayerRef, FunctionRef)):
        return v.name
    return str(v)


def type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    for t, name in (
        (int, "int"),
        (float, "float"),
        (str, "string"),
        (list, "list"),
        (tuple, "tuple"),
        (Tensor, "tensor"),
        (Block, "block"),
        (Model, "model"),
        (LayerRef, "layer"),
        (FunctionRef, "function"),
    ):
        if isinstance(v, t):
            return name
    return "none" if v is None else type(v).__name__
