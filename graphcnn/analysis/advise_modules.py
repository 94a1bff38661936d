"""advise_modules: the Inception lesson for a whole module, all branches rewritten at once.

An analysis beside :mod:`.advise_bottlenecks` (which prices one convolution at a time). A
*module* is a ``concat`` whose inputs are parallel branches from one source tensor ``x``: each
branch is a chain of single-input nodes that only it uses. The combined rewrite is the one the
Inception paper made of its naive module::

    concat(x -> conv(128, 1),               concat(x -> conv(128, 1),
           x -> conv(192, 3, pad: 1),   ->         x -> conv(64, 1) -> conv(192, 3, pad: 1),
           x -> conv(96, 5, pad: 2),               x -> conv(64, 1) -> conv(96, 5, pad: 2),
           x -> maxpool(3, stride: 1))             x -> maxpool(3, stride: 1) -> conv(64, 1))

* a 1x1 conv to ``r`` channels in front of every k x k conv (k >= 3, ungrouped, at least
  ``MIN_CHANNELS`` input channels) that is the first conv of its branch (a branch that already
  starts with a 1x1 conv is left alone);
* a 1x1 projection to ``r`` channels after a pooling branch that has no conv (the pool passes
  all of ``x``'s channels to the concat; the projection narrows the concat, and so every layer
  after it).

``r`` is the ``reduction`` argument, else ``min(C_in // 2, 64)`` (as the single rewrites). The
prices are exact: the rewritten graph is built node by node, every node's type and parameters
are inferred again (so the layers after a narrower concat are priced at their new width) and
the graph is profiled. A module whose rewrite does not fit the rest of the graph (a residual add
that needs the old width) is not advised. On the lecture's naive module (256x28x28 in; 1x1-128,
3x3-192, 5x5-96, 3x3 max pool) the module costs 854,196,224 MACs before and 271,351,808 after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphcnn.analysis.advise_bottlenecks import (
    MIN_CHANNELS,
    Counts,
    Suggestion,
    conv_spec,
    default_reduction,
)
from graphcnn.cost import Profile
from graphcnn.cost import profile as make_profile
from graphcnn.ir import AttrValue, Graph, GroupOp, Node, Op, freeze
from graphcnn.shapes import ShapeError, infer_node

POOLS = frozenset({Op.MAX_POOL, Op.AVG_POOL})


@dataclass(frozen=True)
class _Module:
    """A concat and its branches (each a chain from the shared source, source excluded)."""

    concat: Node
    source: str
    branches: tuple[tuple[Node, ...], ...]


def _branch(graph: Graph, end: str) -> tuple[str, tuple[Node, ...]] | None:
    """Walk back from ``end`` through single-input nodes used only by this chain."""
    chain: list[Node] = []
    name = end
    while True:
        node = graph[name]
        if len(node.inputs) != 1 or node.op is Op.INPUT or graph.uses(name) != 1:
            return name, tuple(reversed(chain))
        chain.append(node)
        name = node.inputs[0]


def modules(graph: Graph) -> list[_Module]:
    """Every inference concat whose inputs are two or more branches from one source."""
    found = []
    for node in graph:
        if node.op is not Op.CONCAT or node.training_only or len(node.inputs) < 2:
            continue
        walked = [_branch(graph, i) for i in node.inputs]
        sources = {w[0] for w in walked if w is not None}
        if len(sources) == 1 and all(w is not None for w in walked):
            branches = tuple(w[1] for w in walked if w is not None)
            found.append(_Module(node, sources.pop(), branches))
    return found


def _first_conv(branch: Sequence[Node]) -> Node | None:
    return next((n for n in branch if n.op is Op.CONV2D), None)


def _plan(graph: Graph, m: _Module, reduction: int | None) -> tuple[dict[str, int], dict[str, int]]:
    """(convs to reduce, pools to project): node name -> width ``r``."""
    cin = int(graph[m.source].type.shape[1])
    r = reduction if reduction is not None else default_reduction(cin)
    reduce: dict[str, int] = {}
    project: dict[str, int] = {}
    if not 1 <= r < cin or cin < MIN_CHANNELS:
        return reduce, project
    for branch in m.branches:
        conv = _first_conv(branch)
        if conv is not None:
            k = conv.attr_pair("kernel")
            if k[0] == k[1] >= 3 and conv.attr_int("groups") == 1:
                reduce[conv.name] = r
        elif branch and branch[0].op in POOLS:
            project[branch[-1].name] = r
    return reduce, project


def _conv1x1(name: str, src: str, width: int, bias: bool, like: Node) -> Node:
    """A 1x1 conv node; its type is a placeholder until :func:`_rewrite` infers it."""
    attrs: dict[str, AttrValue] = {
        "out_channels": width,
        "kernel": (1, 1),
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "groups": 1,
        "bias": bias,
    }
    return Node(name, Op.CONV2D, (src,), freeze(attrs), like.type, (), like.loc)


def _rewrite(graph: Graph, reduce: dict[str, int], project: dict[str, int]) -> Graph | None:
    """The graph with the 1x1s inserted and every type inferred again; None if it breaks."""
    out = Graph(graph.name, scopes=dict(graph.scopes))
    renamed: dict[str, str] = {}

    def add(node: Node) -> None:
        inputs = tuple(renamed.get(i, i) for i in node.inputs)
        t, params = infer_node(node.op, node.attrs, [out[i].type for i in inputs])
        out.add(node.replace(inputs=inputs, type=t, params=params))

    try:
        for node in graph:
            if node.name in reduce:
                bias = bool(node.attrs["bias"])
                reducer = _conv1x1(
                    f"{node.name}_reduce", node.inputs[0], reduce[node.name], bias, node
                )
                add(reducer)
                add(node.replace(inputs=(reducer.name,)))
                continue
            add(node)
            if node.name in project:
                proj = _conv1x1(f"{node.name}_proj", node.name, project[node.name], True, node)
                add(proj)
                renamed[node.name] = proj.name
    except ShapeError:
        return None
    out.outputs = [(o, renamed.get(n, n)) for o, n in graph.outputs]
    return out


def _module_counts(p: Profile, names: set[str]) -> Counts:
    rows = [r for r in p.layers if r.name in names]
    return Counts(sum(r.cost.params for r in rows), sum(r.cost.macs for r in rows))


def _spec(node: Node) -> str:
    if node.op is Op.CONV2D:
        return conv_spec(node)
    if node.op in POOLS:
        k, s, pad = (node.attr_pair(a) for a in ("kernel", "stride", "padding"))
        args = [str(k[0]), f"stride: {s[0]}"] + ([f"pad: {pad[0]}"] if pad != (0, 0) else [])
        return f"{'maxpool' if node.op is Op.MAX_POOL else 'avgpool'}({', '.join(args)})"
    return {Op.BATCH_NORM: "bn"}.get(node.op, str(node.op))


def _branch_spec(
    rewritten: Graph, branch: Sequence[Node], reduce: dict[str, int], project: dict[str, int]
) -> str:
    """``x -> conv(64, 1) -> conv(192, 3, pad: 1)``: the branch's convs and pools after the
    rewrite (batch norms and activations between them are left out of the snippet)."""
    chain: list[Node] = []
    for node in branch:
        if node.name in reduce:
            chain.append(rewritten[f"{node.name}_reduce"])
        chain.append(rewritten[node.name])
        if node.name in project:
            chain.append(rewritten[f"{node.name}_proj"])
    shown = [n for n in chain if n.op in GroupOp.MACS | POOLS]
    return " -> ".join(["x", *(_spec(n) for n in shown)])


def analyze(
    graph: Graph,
    top: int = 5,
    reduction: int | None = None,
    batch: int | None = None,
    profile: Profile | None = None,
) -> list[Suggestion]:
    """The combined rewrite of the ``top`` modules that save the most MACs, most first."""
    p = profile if profile is not None else make_profile(graph, batch)
    model = Counts(p.totals.params, p.totals.macs)
    found: list[Suggestion] = []
    for m in modules(graph):
        reduce, project = _plan(graph, m, reduction)
        if not reduce:
            continue
        rewritten = _rewrite(graph, reduce, project)
        if rewritten is None:
            continue
        q = make_profile(rewritten, p.batch)
        before_names = {n.name for b in m.branches for n in b}
        added = {f"{n}_reduce" for n in reduce} | {f"{n}_proj" for n in project}
        after_names = before_names | added
        before, after = _module_counts(p, before_names), _module_counts(q, after_names)
        if after.macs >= before.macs:
            continue
        branches = [_branch_spec(rewritten, b, reduce, project) for b in m.branches]
        r = next(iter(reduce.values()))
        convs = ", ".join(
            f"{graph[n].attr_pair('kernel')[0]}x{graph[n].attr_pair('kernel')[0]} {n}"
            for n in reduce
        )
        text = (
            f"Inception (module): every branch at once: 1x1 reductions to {r} channels in front "
            f"of {convs}"
            + (
                f" and a 1x1 projection to {r} after the pool {', '.join(project)}"
                if project
                else ""
            )
            + f"; module MACs x{after.macs / before.macs:.3f}, model MACs "
            f"x{q.totals.macs / model.macs:.3f}"
        )
        found.append(
            Suggestion(
                m.concat.scope or m.concat.name,
                "inception_module",
                text,
                before,
                after,
                model,
                Counts(q.totals.params, q.totals.macs),
                "concat(" + ", ".join(branches) + ")",
                tuple(rewritten[n] for n in sorted(added)),
            )
        )
    found.sort(key=lambda s: s.layer_after.macs - s.layer_before.macs)
    return found[:top]


__all__ = ["analyze", "modules"]
