"""What a picture of a network shows: one box per node (or per scope), its cost, the edges.

:func:`diagram` reads a graph and its cost profile (``graphcnn.cost``) and, when the colour is
``time`` or ``bound``, the roofline estimate on a device (``graphcnn.analysis.roofline``). At
``depth=None`` every node is a box; at ``depth=N`` the nodes are grouped by scope prefix of N
name components, as ``Profile.at_depth`` groups them (``layer1.0.conv1`` is in ``layer1`` at
depth 1), and a box adds its members' costs. An edge joins two boxes when a node of one feeds a
node of the other. The graph input is a box of its own.

A box is training-only (drawn dashed) when all its nodes are (auxiliary heads); its time and
bound are then None, as the roofline estimate covers the inference forward pass only. Views
(``flatten``, ``reshape``, ...) take no time: their bound is None too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from graphcnn.analysis import roofline
from graphcnn.analysis.devices import DeviceProfile, get_device
from graphcnn.cost import LayerCost, profile
from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, Op

COLORS: tuple[str, ...] = ("macs", "params", "memory", "time", "bound")
"""What a box's colour can show: ``memory`` is its output activation bytes (``act mem`` of
``graphcnn analyze``), ``time`` the roofline estimate, ``bound`` compute- or memory-bound."""

COLOR_LABELS = {
    "macs": "MACs",
    "params": "params",
    "memory": "activation memory",
    "time": "estimated time",
    "bound": "roofline bound",
}


class DrawError(GraphcnnError):
    """A picture cannot be made: a bad option, or a missing optional library."""


def save(path: str | Path, data: str | bytes) -> Path:
    """Write a picture atomically (never half a file); an unwritable path: :class:`DrawError`."""
    from graphcnn.weights import write_atomic

    out = Path(path)
    try:
        write_atomic(out, data)
    except OSError as e:
        raise DrawError(
            f"cannot write {out}: {e.strerror or e}", "choose a writable folder for the picture"
        ) from None
    return out


@dataclass(slots=True)
class Box:
    """One node, or one scope at some depth, with its summed cost."""

    name: str
    op: str
    output: tuple[int, ...]
    params: int = 0
    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    weight_bytes: int = 0
    time_s: float | None = None
    bound: str | None = None
    training_only: bool = False
    loc: str = ""
    """Spec location (file:line:col) of the node, or of a scope's first node."""
    layers: int = 1

    def value(self, color: str) -> float:
        """The number ``color`` shows (``bound`` has none: 0)."""
        if color == "macs":
            return float(self.macs)
        if color == "params":
            return float(self.params)
        if color == "memory":
            return float(self.activation_bytes)
        if color == "time":
            return self.time_s or 0.0
        return 0.0


@dataclass
class Diagram:
    """Boxes in graph order and the edges between them (pairs of box names)."""

    model: str
    depth: int | None
    color: str
    boxes: list[Box]
    edges: list[tuple[str, str]]
    device: str | None = None
    dtype: str = "float32"
    batch: int = 1
    notes: list[str] = field(default_factory=list)


def _key(name: str, depth: int | None) -> str:
    if depth is None or name.count(".") < depth:
        return name
    return ".".join(name.split(".")[:depth])


def diagram(
    graph: Graph,
    depth: int | None = None,
    color: str = "macs",
    device: DeviceProfile | str = "cpu",
    dtype: str = "float32",
    batch: int | None = None,
) -> Diagram:
    """The boxes and edges of ``graph`` at ``depth`` (None: every node), coloured by ``color``.

    ``device`` and ``dtype`` are read only for ``color`` ``time`` or ``bound``
    (``graphcnn.analysis.devices.get_device`` names; ``cpu`` is measured once and cached).
    """
    if color not in COLORS:
        raise DrawError(f"unknown colour {color!r}", f"choose one of: {', '.join(COLORS)}")
    if depth is not None and depth < 1:
        raise DrawError(f"depth must be >= 1, got {depth}", "omit --depth to draw every node")
    p = profile(graph, batch)
    costs: dict[str, LayerCost] = {row.name: row for row in p.layers}
    times: dict[str, roofline.LayerTime] = {}
    dev_name = None
    if color in ("time", "bound"):
        dev = get_device(device) if isinstance(device, str) else device
        dev.peak(dtype)
        dev_name = dev.name
        times = {t.name: t for t in roofline.analyze(graph, dev, dtype, p.batch, profile=p)}

    boxes: dict[str, Box] = {}
    members: dict[str, list[str]] = {}
    group_of: dict[str, str] = {}
    for node in graph:
        key = _key(node.name, depth)
        group_of[node.name] = key
        members.setdefault(key, []).append(node.name)
        box = boxes.get(key)
        if box is None:
            box = boxes[key] = Box(key, "", (), training_only=True, layers=0)
            box.loc = str(node.loc) if node.loc else ""
        box.layers += 1
        box.training_only = box.training_only and node.training_only
        box.output = node.type.sample_shape
        c = costs.get(node.name)
        if c is not None:
            k = c.cost
            box.params += k.params
            box.macs += k.macs
            box.flops += k.flops
            box.activation_bytes += k.activation_bytes
            box.weight_bytes += k.weight_bytes
        t = times.get(node.name)
        if t is not None and node.op is not Op.INPUT:
            box.time_s = (box.time_s or 0.0) + t.time_s
    for key, box in boxes.items():
        names = members[key]
        box.op = (
            str(graph[names[0]].op)
            if len(names) == 1 and names[0] == key
            else graph.scopes.get(key, "scope")
        )
        if times and not box.training_only:
            box.bound = _bound([times[n] for n in names if n in times])
    edges: dict[tuple[str, str], None] = {}
    for node in graph:
        dst = group_of[node.name]
        for i in node.inputs:
            src = group_of[i]
            if src != dst:
                edges[(src, dst)] = None
    return Diagram(
        graph.name,
        depth,
        color,
        list(boxes.values()),
        list(edges),
        dev_name,
        dtype,
        p.batch,
    )


def _bound(rows: list[roofline.LayerTime]) -> str | None:
    """The bound accounting for more of the rows' time (as ``roofline.aggregate``); None if 0."""
    compute = sum(r.time_s for r in rows if r.bound == "compute")
    memory = sum(r.time_s for r in rows if r.bound == "memory")
    if compute + memory <= 0:
        return None
    return "compute" if compute >= memory else "memory"
