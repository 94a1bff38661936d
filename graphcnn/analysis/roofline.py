"""roofline: estimated time of every layer on a device, and whether compute or memory bounds it.

An analysis (it never changes the graph). The model is the classic roofline, one layer at a time::

    compute_s = flops / peak_flops[dtype]
    memory_s  = bytes / mem_bandwidth
    time_s    = max(compute_s, memory_s)
    bound     = "compute" if compute_s >= memory_s else "memory"

``flops`` are the cost model's FLOPs (``graphcnn.cost.CONVENTION``: 2 per MAC, plus bias, BN,
activation, pooling and elementwise work) and ``bytes`` are what the layer must move at least
once: its input tensors + its output tensor + its parameters and buffers (``LayerCost``'s
``input_bytes + activation_bytes + weight_bytes``), converted to ``dtype`` (a float32 graph
analysed as float16 moves half the bytes). Activations scale with the batch, weights do not: they
are read once per batch, which is why large batches make convolutions compute-bound. A layer is
compute-bound when its intensity (flops / bytes) is above the device's ridge point
``peak / bandwidth``.

Pure views move nothing and cost nothing: ``flatten``, ``reshape``, ``identity``, ``split`` and
the inference no-ops ``dropout`` and ``drop_path`` get 0 bytes and 0 time. ``concat`` and
``channel_shuffle`` copy, so they count. Training-only nodes (auxiliary heads) are left out: the
estimate is for an inference forward pass.

Blocks (:func:`aggregate`, by scope prefix of ``depth`` name components, as
``Profile.at_depth``) add their layers' times: layers run one after the other, so a block's time
is the sum of per-layer maxima, not the max of summed flops and bytes. A block is marked by the
bound that accounts for more of its time.

Limits: this is a lower bound on time, not a prediction. It assumes every layer reaches the peak
rate (small layers do not: kernel launch and loop overheads, tile quantisation, low occupancy),
that each tensor crosses memory exactly once (no cache reuse across layers, no re-reads for lack
of cache), no overlap between layers and no fusion (a conv + relu pair really moves its
intermediate tensor only once when fused). Elementwise FLOPs are charged at the same peak as
matrix FLOPs (on a GPU they do not run on the tensor cores; they are memory-bound anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from graphcnn.analysis.devices import DeviceProfile, get_device
from graphcnn.cost import Profile
from graphcnn.cost import profile as make_profile
from graphcnn.ir import DTYPE_BYTES, Graph, GroupOp

Bound = Literal["compute", "memory"]

VIEWS = frozenset(str(op) for op in GroupOp.INFERENCE_VIEW)
"""Ops that only re-label memory (or are no-ops at inference): 0 bytes moved, 0 time."""


@dataclass(slots=True)
class LayerTime:
    """Roofline estimate of one layer, or of a block aggregated at some depth.

    A plain (not frozen) dataclass: frozen ones cost several times more to create, and a large
    graph makes one per node.
    """

    name: str
    op: str
    macs: int
    flops: int
    bytes: int
    """Bytes moved at least once: inputs + output + parameters and buffers, in the dtype."""
    compute_s: float
    memory_s: float
    time_s: float
    """max(compute_s, memory_s) for a layer; the sum of its layers' times for a block."""
    bound: Bound
    layers: int = 1

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (0 for a layer that moves nothing)."""
        return self.flops / self.bytes if self.bytes else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "op": self.op,
            "macs": self.macs,
            "flops": self.flops,
            "bytes": self.bytes,
            "intensity": round(self.intensity, 3),
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "time_s": self.time_s,
            "bound": self.bound,
            "layers": self.layers,
        }


def moved_bytes(moved: int, itemsize: int, width: int) -> int:
    """Bytes a layer moves (inputs + output + weights, counted at ``itemsize``) in a dtype of
    ``width`` bytes: the one conversion :func:`analyze` and the search's fast path share."""
    return moved if itemsize == width else moved * width // itemsize


def analyze(
    graph: Graph,
    device: DeviceProfile | str,
    dtype: str = "float32",
    batch: int | None = None,
    profile: Profile | None = None,
) -> list[LayerTime]:
    """Per-layer roofline times of ``graph``'s inference nodes, in graph order.

    ``device`` is a profile or a name (``graphcnn.analysis.devices.get_device``). ``batch``
    defaults to the graph's concrete batch, else 1. ``profile`` reuses an existing
    ``graphcnn.cost.profile`` of ``graph`` at that batch instead of computing one.
    """

    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    dev = get_device(device) if isinstance(device, str) else device
    peak, bandwidth = dev.peak(dtype), dev.mem_bandwidth
    width = DTYPE_BYTES[dtype]
    p = profile if profile is not None else make_profile(graph, batch)
    nodes = graph.nodes
    out: list[LayerTime] = []
    append = out.append
    for row in p.layers:
        if row.training_only:
            continue
        c = row.cost
        if row.op in VIEWS:
            append(LayerTime(row.name, row.op, c.macs, c.flops, 0, 0.0, 0.0, 0.0, "memory"))
            continue
        moved = moved_bytes(
            row.input_bytes + c.activation_bytes + c.weight_bytes,
            nodes[row.name].type.itemsize,
            width,
        )
        compute_s = c.flops / peak
        memory_s = moved / bandwidth
        bound: Bound = "compute" if compute_s >= memory_s else "memory"
        time_s = compute_s if bound == "compute" else memory_s
        append(
            LayerTime(row.name, row.op, c.macs, c.flops, moved, compute_s, memory_s, time_s, bound)
        )
    return out


def _merge(name: str, op: str, rows: list[LayerTime]) -> LayerTime:
    compute_time = sum(r.time_s for r in rows if r.bound == "compute")
    memory_time = sum(r.time_s for r in rows if r.bound == "memory")
    return LayerTime(
        name,
        op,
        sum(r.macs for r in rows),
        sum(r.flops for r in rows),
        sum(r.bytes for r in rows),
        sum(r.compute_s for r in rows),
        sum(r.memory_s for r in rows),
        compute_time + memory_time,
        "compute" if compute_time >= memory_time and compute_time > 0 else "memory",
        sum(r.layers for r in rows),
    )


def aggregate(
    times: list[LayerTime], depth: int, scopes: Mapping[str, str] | None = None
) -> list[LayerTime]:
    """Layer times summed by scope prefix of ``depth`` name components, in first-seen order.

    ``scopes`` (``Graph.scopes``) names the block that made a scope (``inception3a`` ->
    ``inception``) for the ``op`` column; a group of one layer keeps the layer's row.
    """
    if depth < 1:
        raise ValueError("depth must be >= 1")
    groups: dict[str, list[LayerTime]] = {}
    for row in times:
        key = row.name if row.name.count(".") < depth else ".".join(row.name.split(".")[:depth])
        groups.setdefault(key, []).append(row)
    scopes = scopes or {}
    return [
        rows[0]
        if len(rows) == 1 and rows[0].name == key
        else _merge(key, scopes.get(key, "scope"), rows)
        for key, rows in groups.items()
    ]


def total(times: list[LayerTime], name: str = "total") -> LayerTime:
    """All layers together: the estimated time of one inference forward pass."""
    return _merge(name, "graph", times)


__all__ = ["VIEWS", "Bound", "LayerTime", "aggregate", "analyze", "moved_bytes", "total"]
