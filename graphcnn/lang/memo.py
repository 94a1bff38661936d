"""What compilations of one loaded spec share: parsed overrides, shape rule results, block calls.

A search compiles one spec thousands of times with different parameters, and one network calls
the same block with the same arguments many times (ResNet's identical units). Everything here is
a pure function of its key, so a hit gives exactly what running the rule or the block gives:

- ``shapes``: a node's output type and parameters by its op, attributes and input types (shape
  rules are pure). Attribute values are canonical per layer (an integer attribute is always an
  ``int``, a real one a ``float``), so equal keys are equal nodes up to ``-0.0 == 0.0``, which no
  rule tells apart. Each entry also keeps the node's cost per batch size for ``search``.
- ``blocks``: what a block call added (nodes, scopes, counters) and returned, by the block, the
  call depth, the training mode and its arguments (tensors by type and by which arguments are
  the same tensor). A block sees only its arguments and the file's constants, and its scope is
  new, so a replay renames the recorded nodes into the new scope and the recorded external
  inputs to the new arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphcnn.ir import Graph, Node, ParamDecl, SourceLoc, TensorType
from graphcnn.lang import ast
from graphcnn.lang.values import Block, FunctionRef, LayerRef, Tensor

MAX_MEMO = 50_000
"""Entries a :class:`Memo` table keeps before it starts over."""
MAX_RECORDED = 200_000
"""Nodes the recorded block calls of a :class:`Memo` may hold before they start over."""

ShapeKey = tuple[Any, ...]
"""A node's op, attributes (as ``(name, value)`` pairs) and input types."""


class Shaped:
    """A shape rule's result for one :data:`ShapeKey`, and the node's cost by batch size."""

    __slots__ = ("costs", "out", "params", "times")

    def __init__(self, out: TensorType, params: tuple[ParamDecl, ...]):
        self.out = out
        self.params = params
        self.costs: dict[int, tuple[int, int, int]] = {}
        self.times: dict[tuple[int, str, str], tuple[float, float]] = {}
        """Roofline (compute_s, memory_s) by (batch, device name, dtype)."""


@dataclass(frozen=True, slots=True)
class ScopeState:
    """A scope as a block call left it: path relative to the call's scope, and its names."""

    rel: str
    kind: str | None
    """What ``Graph.scopes`` says of it (None: the call's own scope, entered by the caller)."""
    seq: bool
    counter: int
    names: frozenset[str]
    auto: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One block call: its nodes (names relative to its scope), scopes, counters and result."""

    path: str
    nodes: tuple[tuple[Node, Shaped | None], ...]
    scopes: tuple[ScopeState, ...]
    steps: int
    work: int
    where: SourceLoc | None
    value: Any
    external: dict[str, int]
    """Node name of each tensor argument of the recorded call -> its argument index."""
    keep: tuple[Any, ...]
    """The objects the key names by identity (blocks), kept alive while the key is used."""


@dataclass
class Memo:
    """Tables shared by the compilations of one loaded module (see the module docstring).

    ``keys`` maps the node names of the latest compilation (``graph``) to their
    :class:`Shaped` entries, so a caller costing that graph (``search.candidate.totals``) costs
    each distinct node once.
    """

    share_shapes: bool = True
    """Off for a lone compilation (``compile_module`` without a memo): its shape rules run once
    per node, the linear work ``tests/test_scaling.py`` counts; block replays still share."""
    exprs: dict[tuple[str, str], ast.Expr] = field(default_factory=dict)
    shapes: dict[ShapeKey, Shaped] = field(default_factory=dict)
    blocks: dict[tuple[Any, ...], Recorded] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    """Layer and scope names (``as`` strings) already found valid."""
    keys: dict[str, Shaped] = field(default_factory=dict)
    graph: Graph | None = None
    recorded: int = 0
    """Nodes held by ``blocks``."""

    def start(self) -> None:
        """Begin a compilation: forget the last one's keys, and any table past its limit."""
        self.keys.clear()
        self.graph = None
        for table in (self.exprs, self.shapes, self.blocks, self.names):
            if len(table) > MAX_MEMO:
                table.clear()
        if self.recorded > MAX_RECORDED:
            self.blocks.clear()
        if not self.blocks:
            self.recorded = 0

    def remember(self, key: tuple[Any, ...], rec: Recorded) -> None:
        self.blocks[key] = rec
        self.recorded += len(rec.nodes)


class Unshareable(Exception):
    """An argument a block call cannot be keyed by (the call simply runs)."""


def signature(value: Any, tensors: list[Tensor], keep: list[Any]) -> Any:
    """A hashable stand-in for an argument: equal exactly when the block would see the same
    value, tensors by type, training mark and which earlier tensor argument they repeat."""
    t = type(value)
    if t is int or t is str or t is bool or value is None:
        return (t, value)
    if t is float:
        return (t, value.hex())  # -0.0 and 0.0 differ, as a spec could tell them apart
    if t is Tensor:
        same = next((i for i, x in enumerate(tensors) if x.node == value.node), len(tensors))
        tensors.append(value)
        return (t, value.type, value.training_only, same)
    if t is list or t is tuple:
        return (t, tuple([signature(v, tensors, keep) for v in value]))
    if t is LayerRef or t is FunctionRef:
        return value
    if t is Block:
        keep.append(value)
        return (t, id(value))
    raise Unshareable


def rename(value: Any, old: str, new: str, args: list[Tensor], external: dict[str, int]) -> Any:
    """A recorded result for the new call: tensors made in the call move from scope ``old`` to
    ``new``; tensors the call was given become the new call's arguments."""
    t = type(value)
    if t is Tensor:
        i = external.get(value.node)
        if i is not None:
            return args[i]
        return Tensor(new + value.node[len(old) :], value.type, value.training_only)
    if t is list or t is tuple:
        return t([rename(v, old, new, args, external) for v in value])
    return value
