"""The ``graphcnn analyze`` report: where a network spends its compute, memory and time.

:func:`analyze` combines the analyses of one graph into an :class:`Analysis` (one JSON object via
:meth:`Analysis.to_json`; the CLI renders it as tables, ``graphcnn.cli.render``):

- the ``top`` layers and blocks (scope prefix of ``depth`` name components) by MACs, params,
  activation memory and estimated time, each with its roofline bound (``graphcnn.analysis.roofline``
  on a ``graphcnn.analysis.devices`` profile);
- the bottleneck advisor's rewrites with exact before/after params and MACs, one conv at a time
  (``graphcnn.analysis.advise_bottlenecks``) and whole Inception-style modules
  (``graphcnn.analysis.advise_modules``);
- the receptive field of the output, and of every node in JSON
  (``graphcnn.analysis.receptive_field``);
- peak activation memory by liveness for inference and for training at the batch, against the
  naive sum of all activations (``graphcnn.analysis.peak_memory``).

The graph is analysed as an inference graph (training-only nodes are left out of the rankings);
training memory is measured on ``training_graph`` (the graph before an inference pipeline) when
given, else on ``graph``. Batch: ``batch``, else the graph's concrete batch, else 1 (a symbolic
``N`` counts as 1). ``dtype`` retypes every floating-point tensor of the graph before any
analysis, so bytes (activations, weights, memory peaks, bytes moved) are those of that dtype;
params and MACs do not depend on it. One cost profile is shared by all analyses.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from graphcnn.analysis import (
    advise_bottlenecks,
    advise_modules,
    peak_memory,
    receptive_field,
    roofline,
)
from graphcnn.analysis.advise_bottlenecks import Suggestion
from graphcnn.analysis.devices import DeviceProfile, get_device
from graphcnn.analysis.peak_memory import MemoryReport
from graphcnn.analysis.receptive_field import ReceptiveField
from graphcnn.analysis.roofline import LayerTime
from graphcnn.cost import CONVENTION, LayerCost, profile
from graphcnn.ir import DTYPE_BYTES, Graph, TensorType
from graphcnn.util import gc_paused

METRICS: tuple[str, ...] = ("macs", "params", "activation_bytes", "time_s")
"""What layers and blocks are ranked by."""

METRIC_LABELS = {
    "macs": "MACs",
    "params": "params",
    "activation_bytes": "act mem",
    "time_s": "est. time",
}

FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16"})

TIME_MODEL = (
    "roofline per layer: max(flops / peak_flops[dtype], bytes_moved / mem_bandwidth), "
    "bytes_moved = inputs + output + weights in dtype, views free; blocks and totals add "
    "layer times; a lower bound (no launch overheads, caches or fusion; see "
    "graphcnn.analysis.roofline)"
)


@dataclass(slots=True)
class Row:
    """One layer or block: its cost (graphcnn.cost) and roofline estimate (not frozen: cheap)."""

    name: str
    op: str
    output: tuple[int, ...]
    params: int
    macs: int
    flops: int
    activation_bytes: int
    weight_bytes: int
    bytes_moved: int
    compute_s: float
    memory_s: float
    time_s: float
    bound: str
    layers: int = 1

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_moved if self.bytes_moved else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "output": list(self.output),
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "weight_bytes": self.weight_bytes,
            "bytes_moved": self.bytes_moved,
            "intensity": round(self.intensity, 3),
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "time_s": self.time_s,
            "bound": self.bound,
            "layers": self.layers,
        }


@dataclass
class Analysis:
    """Everything ``graphcnn analyze`` reports about one graph."""

    model: str
    input: tuple[int, ...]
    batch: int
    dtype: str
    device: DeviceProfile
    depth: int
    top: int
    nodes: int
    totals: Row
    top_layers: dict[str, list[Row]]
    """Metric (:data:`METRICS`) -> the ``top`` layers by it, largest first (zeros left out)."""
    top_blocks: dict[str, list[Row]]
    suggestions: list[Suggestion]
    output: str
    """The node of the graph's first inference output."""
    receptive_fields: dict[str, ReceptiveField] | None
    """Every node's receptive field; None when it could not be computed (see ``notes``)."""
    memory_inference: MemoryReport
    memory_training: MemoryReport
    pipeline: str = "none"
    last_feature_map: str | None = None
    """The last inference node with a spatial output larger than 1x1 (before global pooling)."""
    notes: list[str] = field(default_factory=list)

    @property
    def receptive_field(self) -> ReceptiveField | None:
        """The receptive field of :attr:`output`."""
        return None if self.receptive_fields is None else self.receptive_fields[self.output]

    def to_json(self) -> dict[str, Any]:
        def ranked(table: dict[str, list[Row]]) -> dict[str, list[dict[str, Any]]]:
            return {m: [r.to_json() for r in rows] for m, rows in table.items()}

        rfs = self.receptive_fields
        return {
            "model": self.model,
            "input": list(self.input),
            "batch": self.batch,
            "dtype": self.dtype,
            "device": self.device.to_json(),
            "ridge_flop_per_byte": self.device.ridge(self.dtype),
            "pipeline": self.pipeline,
            "nodes": self.nodes,
            "depth": self.depth,
            "top": self.top,
            "totals": self.totals.to_json(),
            "top_layers": ranked(self.top_layers),
            "top_blocks": ranked(self.top_blocks),
            "suggestions": [s.to_json() for s in self.suggestions],
            "receptive_field": None
            if rfs is None
            else {
                "output": self.output,
                "field": _rf_json(rfs[self.output]),
                "last_feature_map": self.last_feature_map,
                "layers": {name: _rf_json(rf) for name, rf in rfs.items()},
            },
            "memory": {
                "inference": _memory_json(self.memory_inference),
                "training": _memory_json(self.memory_training),
            },
            "notes": list(self.notes),
            "convention": {**CONVENTION, "time": TIME_MODEL},
        }


def _rf_json(rf: ReceptiveField) -> dict[str, list[Any]]:
    whole = [None if w is None else list(w) for w in rf.whole]
    return {"size": list(rf.size), "jump": list(rf.jump), "start": list(rf.start), "whole": whole}


def _memory_json(m: MemoryReport) -> dict[str, Any]:
    return {
        "peak_bytes": m.peak_bytes,
        "peak_at": m.peak_at,
        "live_at_peak": list(m.live_at_peak),
        "naive_bytes": m.naive_bytes,
        "weight_bytes": m.weight_bytes,
        "batch": m.batch,
        "training": m.training,
    }


def retype(graph: Graph, dtype: str) -> Graph:
    """``graph`` with every floating-point tensor (and the input's ``dtype``) in ``dtype``.

    Returns ``graph`` itself when nothing changes. Parameters take their node's dtype in the cost
    model, so weights change size too; integer tensors are left alone.
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    if all(n.type.dtype == dtype or n.type.dtype not in FLOAT_DTYPES for n in graph):
        return graph
    g = graph.copy()
    for name, n in graph.nodes.items():
        if n.type.dtype == dtype or n.type.dtype not in FLOAT_DTYPES:
            continue
        changes: dict[str, Any] = {"type": TensorType(n.type.shape, dtype)}
        if "dtype" in n.attrs:
            changes["attrs"] = {**n.attrs, "dtype": dtype}
        g.nodes[name] = n.replace(**changes)
    return g


def _row(c: LayerCost, t: LayerTime) -> Row:
    k = c.cost
    return Row(
        c.name,
        c.op,
        c.output,
        k.params,
        k.macs,
        k.flops,
        k.activation_bytes,
        k.weight_bytes,
        t.bytes,
        t.compute_s,
        t.memory_s,
        t.time_s,
        t.bound,
        t.layers,
    )


def _ranked(rows: Sequence[Row], top: int) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for metric in METRICS:
        get: Callable[[Row], float] = attrgetter(metric)
        out[metric] = [r for r in heapq.nlargest(top, rows, key=get) if get(r) > 0]
    return out


def analyze(
    graph: Graph,
    device: DeviceProfile | str = "cpu",
    dtype: str = "float32",
    top: int = 5,
    depth: int = 1,
    batch: int | None = None,
    training_graph: Graph | None = None,
    pipeline: str = "none",
    remeasure: bool = False,
    reduction: int | None = None,
) -> Analysis:
    """Assemble the report for ``graph`` (see the module docstring).

    ``device``: a profile or a name for ``graphcnn.analysis.devices.get_device``
    (``remeasure`` applies to ``cpu``). ``pipeline`` only labels the report: run it first
    (:func:`graphcnn.passes.apply_pipeline`). ``reduction``: the advisor's 1x1 reduction width
    (default: half the input channels, at most 64).
    """
    with gc_paused():  # many small acyclic objects: full collections would make this superlinear
        return _analyze(
            graph, device, dtype, top, depth, batch, training_graph, pipeline, remeasure, reduction
        )


def _analyze(
    graph: Graph,
    device: DeviceProfile | str,
    dtype: str,
    top: int,
    depth: int,
    batch: int | None,
    training_graph: Graph | None,
    pipeline: str,
    remeasure: bool,
    reduction: int | None,
) -> Analysis:
    if top < 1 or depth < 1:
        raise ValueError("top and depth must be >= 1")
    dev = get_device(device, remeasure) if isinstance(device, str) else device
    dev.peak(dtype)  # an unsupported dtype fails before any work
    graph = retype(graph, dtype)
    p = profile(graph, batch)
    b = p.batch

    times = roofline.analyze(graph, dev, dtype, b, profile=p)
    costs = [r for r in p.layers if not r.training_only]
    layers = [_row(c, t) for c, t in zip(costs, times, strict=True)]
    block_costs = {r.name: r for r in p.at_depth(depth) if not r.training_only}
    blocks = [_row(block_costs[t.name], t) for t in roofline.aggregate(times, depth, graph.scopes)]
    whole = roofline.total(times, graph.name)
    t = p.totals
    totals = Row(
        graph.name,
        "graph",
        p.input,
        t.params,
        t.macs,
        t.flops,
        t.activation_bytes,
        t.weight_bytes,
        whole.bytes,
        whole.compute_s,
        whole.memory_s,
        whole.time_s,
        whole.bound,
        whole.layers,
    )

    notes: list[str] = []
    outputs = [n for _, n in graph.outputs if not graph[n].training_only]
    output = outputs[0] if outputs else next(reversed(graph.nodes))
    rfs: dict[str, ReceptiveField] | None
    try:
        rfs = receptive_field.analyze(graph)
    except receptive_field.ReceptiveFieldError as e:
        rfs = None
        notes.append(f"receptive field: {e}")
    train = retype(training_graph, dtype) if training_graph is not None else graph
    if training_graph is not None:
        notes.append("training memory: the graph before the pipeline")
    return Analysis(
        graph.name,
        p.input,
        b,
        dtype,
        dev,
        depth,
        top,
        len(graph),
        totals,
        _ranked(layers, top),
        _ranked(blocks, top),
        advise_bottlenecks.analyze(graph, top, reduction, b, p)
        + advise_modules.analyze(graph, top, reduction, b, p),
        output,
        rfs,
        peak_memory.analyze(graph, b, False),
        peak_memory.analyze(train, b, True),
        pipeline,
        _last_feature_map(graph),
        notes,
    )


def _last_feature_map(graph: Graph) -> str | None:
    for node in reversed(graph.nodes.values()):
        shape = node.type.shape
        if not node.training_only and len(shape) == 4 and (shape[2] != 1 or shape[3] != 1):
            return node.name
    return None
