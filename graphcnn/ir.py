"""The typed IR: an SSA graph of small immutable nodes kept in topological order.

A :class:`Node` produces exactly one tensor. It names its inputs by node name, carries frozen
attributes, its output :class:`TensorType`, the parameters it declares (shapes only: the core never
allocates weights), a hierarchical scope name (``layer1.0.conv1``), the spec location that produced
it and a ``training_only`` mark. Multi-output operations are expressed as several single-output
nodes (``split`` has one node per chunk), which keeps every consumer a plain name reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from graphcnn.ops import GroupOp, Op
from graphcnn.shapes import ShapeError, infer_node
from graphcnn.types import (
    DTYPE_BYTES,
    AttrValue,
    Dim,
    ParamDecl,
    SourceLoc,
    TensorType,
    attr_float,
    attr_int,
    attr_ints,
    attr_pair,
    freeze,
)

if TYPE_CHECKING:
    import networkx


@dataclass(frozen=True, slots=True)
class Node:
    """One SSA value: ``name = op(inputs) {attrs} -> type``."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    attrs: Mapping[str, AttrValue]
    type: TensorType
    params: tuple[ParamDecl, ...] = ()
    loc: SourceLoc | None = None
    training_only: bool = False

    def attr_int(self, key: str) -> int:
        """The integer attribute ``key`` (see :func:`attr_int`)."""
        return attr_int(self.attrs, key)

    def attr_pair(self, key: str) -> tuple[int, int]:
        """The ``(h, w)`` attribute ``key`` (see :func:`attr_pair`)."""
        return attr_pair(self.attrs, key)

    def replace(self, **changes: Any) -> Node:
        if "attrs" in changes:
            changes["attrs"] = freeze(changes["attrs"])
        return replace(self, **changes)

    @property
    def num_params(self) -> int:
        return sum(p.numel for p in self.params if p.trainable)

    @property
    def scope(self) -> str:
        """The enclosing scope (``layer1.0`` for ``layer1.0.conv1``)."""
        return self.name.rpartition(".")[0]


class IRError(Exception):
    """An IR invariant does not hold; names the first offending node."""

    def __init__(self, message: str, node: str | None = None, loc: SourceLoc | None = None):
        super().__init__(message)
        self.node = node
        self.loc = loc


@dataclass
class Graph:
    """Nodes in topological order (insertion order of ``nodes``), with named inputs and outputs."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    """(output name, node name) pairs; outputs of training-only nodes exist only in training."""
    scopes: dict[str, str] = field(default_factory=dict)
    """Scope path -> the block that created it (``inception3a`` -> ``inception``)."""
    _users: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise IRError(f"duplicate node name {node.name!r}", node.name, node.loc)
        self.nodes[node.name] = node
        self._users = None
        return node

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op is Op.INPUT]

    def users(self, name: str) -> list[str]:
        """Names of the nodes that consume ``name`` (computed once per graph version)."""
        if self._users is None:
            users: dict[str, list[str]] = {n: [] for n in self.nodes}
            for node in self.nodes.values():
                for i in node.inputs:
                    users[i].append(node.name)
            self._users = users
        return self._users[name]

    def is_output(self, name: str) -> bool:
        """Whether ``name`` is a graph output (a use that :meth:`users` does not list)."""
        return any(n == name for _, n in self.outputs)

    def uses(self, name: str) -> int:
        """Consumers of ``name``: node users plus graph outputs. A value with one use and no
        output role can be rewritten freely."""
        return len(self.users(name)) + sum(1 for _, n in self.outputs if n == name)

    def copy(self) -> Graph:
        return Graph(self.name, dict(self.nodes), list(self.outputs), dict(self.scopes))

    def inference(self) -> Graph:
        """This graph without its training-only nodes and outputs."""
        g = Graph(self.name, scopes=dict(self.scopes))
        g.nodes = {k: n for k, n in self.nodes.items() if not n.training_only}
        g.outputs = [(o, n) for o, n in self.outputs if n in g.nodes]
        return g

    def rewrite(
        self,
        replace: Mapping[str, Node] | None = None,
        remove: Mapping[str, str | None] | None = None,
    ) -> Graph:
        """A new graph in one O(n) sweep: swap nodes, drop nodes, redirect their uses.

        ``replace[name]`` takes the place of node ``name`` (same position). ``remove[name]`` drops
        node ``name`` and points its users (and graph outputs) at the given node instead; None
        means it must have no users left. Redirects chain (a -> b -> c) and the result keeps
        topological order because a redirect only ever points at an earlier node.
        """
        replace = replace or {}
        remove = remove or {}

        def target(name: str) -> str:
            seen = 0
            while name in remove:
                nxt = remove[name]
                if nxt is None or seen > len(remove):
                    raise IRError(f"%{name} is removed but still used", name)
                name, seen = nxt, seen + 1
            return name

        g = Graph(self.name, scopes=dict(self.scopes))
        for name, node in self.nodes.items():
            if name in remove:
                continue
            node = replace.get(name, node)
            inputs = tuple(target(i) for i in node.inputs)
            g.nodes[name] = node if inputs == node.inputs else node.replace(inputs=inputs)
        g.outputs = [(o, target(n)) for o, n in self.outputs]
        return g

    def verify(self) -> None:
        """Check the invariants in O(nodes + edges); raise :class:`IRError` on the first failure."""
        seen: dict[str, Node] = {}
        for node in self.nodes.values():
            for i in node.inputs:
                src = seen.get(i)
                if src is None:
                    why = "is defined later" if i in self.nodes else "does not exist"
                    raise IRError(f"{node.name}: input %{i} {why}", node.name, node.loc)
                if src.training_only and not node.training_only:
                    raise IRError(
                        f"{node.name}: inference node consumes training-only %{i}",
                        node.name,
                        node.loc,
                    )
            if node.op is Op.INPUT and node.inputs:
                raise IRError(f"{node.name}: input node has inputs", node.name, node.loc)
            try:
                expected, params = infer_node(
                    node.op, node.attrs, [seen[i].type for i in node.inputs]
                )
            except ShapeError as e:
                raise IRError(f"{node.name}: {e}", node.name, node.loc) from None
            if expected != node.type:
                raise IRError(
                    f"{node.name}: stored type {node.type} but {node.op} infers {expected}",
                    node.name,
                    node.loc,
                )
            if params != node.params:
                raise IRError(f"{node.name}: parameter declarations are stale", node.name, node.loc)
            seen[node.name] = node
        if not self.outputs:
            raise IRError("graph has no outputs")
        for out, name in self.outputs:
            if name not in self.nodes:
                raise IRError(f"output {out!r} refers to missing node %{name}")

    def to_networkx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph`` with one vertex per node (attribute ``node``) and data edges."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for node in self.nodes.values():
            g.add_node(node.name, node=node, op=str(node.op))
            for i in node.inputs:
                g.add_edge(i, node.name)
        return g

    def dump(self) -> str:
        """Readable text form: one line per node, with type, attributes, params and location."""
        lines = [f"graph {self.name} {{"]
        for n in self.nodes.values():
            args = ", ".join(f"%{i}" for i in n.inputs)
            attrs = ", ".join(f"{k}={_fmt(v)}" for k, v in n.attrs.items())
            text = f"  %{n.name}: {n.type} = {n.op}({args})"
            if attrs:
                text += f" {{{attrs}}}"
            if n.params:
                text += (
                    " ["
                    + ", ".join(
                        f"{p.name}{'' if p.trainable else '*'}:{'x'.join(map(str, p.shape))}"
                        for p in n.params
                    )
                    + "]"
                )
            if n.training_only:
                text += " training_only"
            if n.loc:
                text += f"  # {n.loc}"
            lines.append(text)
        outs = ", ".join(f"{o}=%{n}" for o, n in self.outputs)
        lines.append(f"  return {outs}")
        lines.append("}")
        return "\n".join(lines)


def _fmt(v: AttrValue) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(_fmt(x) for x in v) + ")"
    if isinstance(v, str):
        return repr(v)
    return str(v).lower() if isinstance(v, bool) else str(v)


__all__ = [
    "DTYPE_BYTES",
    "AttrValue",
    "Dim",
    "Graph",
    "GroupOp",
    "IRError",
    "Node",
    "Op",
    "ParamDecl",
    "SourceLoc",
    "TensorType",
    "attr_float",
    "attr_int",
    "attr_ints",
    "attr_pair",
    "freeze",
]
