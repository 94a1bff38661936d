"""Runtime values of the spec language besides numbers, strings, booleans, lists and tuples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphcnn.ir import TensorType
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


def show(v: Any) -> str:
    """A value as the spec language would write it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
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
