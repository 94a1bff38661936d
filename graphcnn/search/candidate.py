"""The exact cost of a candidate, and the limits that reject it before anything trains.

:class:`Evaluator` loads the spec once (parse, imports, constants) and compiles each candidate
from that loaded module with its own parameter overrides; its cost is the cost model's exact
params, MACs and FLOPs (``graphcnn.cost.profile``), plus, with a device, the roofline estimate
of one inference pass (``graphcnn.analysis.roofline``) and, with ``measure="ort"``, the
measured ONNX Runtime median latency. Costs are cached by the spec-side values (parameters and
resolution): training hyperparameters do not change them, so a search over ``lr`` and ``width``
compiles each width once.

:class:`Limits` are upper bounds; a candidate is accepted when every value is ``<=`` its limit
and rejected, with the reasons, otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphcnn.errors import GraphcnnError
from graphcnn.units import fmt_time

SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
MEASURES = ("ort",)
_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kKMGT]?)\s*$")
_SECONDS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(s|ms|us)\s*$")


class SearchError(GraphcnnError):
    """A search cannot start: bad options, a bad objective, an incompatible stored study."""


def parse_count(text: str, option: str) -> int:
    """``300M`` -> 300,000,000 (suffixes k/K, M, G, T)."""
    m = _COUNT.match(text)
    if not m:
        raise SearchError(
            f"{option}: expected a count such as 300M, 5M or 1.5G, got {text!r}",
            "suffixes: K (thousand), M (million), G (billion), T",
        )
    return round(float(m.group(1)) * SI[m.group(2)])


def parse_seconds(text: str, option: str) -> float:
    """``2ms`` -> 0.002 (units s, ms, us)."""
    m = _SECONDS.match(text)
    if not m:
        raise SearchError(
            f"{option}: expected a time such as 2ms, 150us or 0.5s, got {text!r}",
            "units: s, ms, us",
        )
    return float(m.group(1)) * TIME[m.group(2)]


@dataclass(frozen=True)
class Cost:
    """Exact cost of one candidate (latency: roofline estimate, and measured if asked)."""

    params: int
    macs: int
    flops: int
    latency_s: float | None = None
    measured_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": self.params, "macs": self.macs, "flops": self.flops}
        if self.latency_s is not None:
            out["latency_s"] = self.latency_s
        if self.measured_s is not None:
            out["measured_s"] = self.measured_s
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cost:
        return cls(
            int(obj["params"]),
            int(obj["macs"]),
            int(obj["flops"]),
            obj.get("latency_s"),
            obj.get("measured_s"),
        )

    def latency(self) -> float | None:
        """The latency a limit is checked against: measured when there is one."""
        return self.measured_s if self.measured_s is not None else self.latency_s


@dataclass(frozen=True)
class Limits:
    max_macs: int | None = None
    max_params: int | None = None
    max_latency_s: float | None = None

    def violations(self, cost: Cost) -> list[str]:
        """Why ``cost`` is rejected (empty: accepted). A value equal to its limit is accepted."""
        out = []
        if self.max_macs is not None and cost.macs > self.max_macs:
            out.append(f"MACs {cost.macs:,} > {self.max_macs:,}")
        if self.max_params is not None and cost.params > self.max_params:
            out.append(f"params {cost.params:,} > {self.max_params:,}")
        latency = cost.latency()
        if self.max_latency_s is not None and latency is not None and latency > self.max_latency_s:
            out.append(f"latency {fmt_time(latency)} > {fmt_time(self.max_latency_s)}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "max_macs": self.max_macs,
            "max_params": self.max_params,
            "max_latency_s": self.max_latency_s,
        }


def load_spec(spec: str) -> tuple[Any, str | None]:
    """A zoo model name or a spec path -> (loaded module, network name or None)."""
    from graphcnn.lang.loader import resolve

    return resolve(spec)


def compile_with(
    module: Any,
    network: str | None,
    params: Mapping[str, Any],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    memo: Any = None,
) -> Any:
    """Compile a loaded module with parameter overrides (values, or spec expressions as text).

    Numbers and booleans are bound as they are, strings are parsed as spec expressions (once per
    ``memo``, a :class:`graphcnn.lang.memo.Memo` shared by the compilations of one module) and
    other values (lists) as the spec text :func:`graphcnn.lang.values.show` writes for them.
    """
    from graphcnn.lang.interp import Options, compile_module
    from graphcnn.lang.values import show
    from graphcnn.util import gc_paused

    overrides = {
        k: v if isinstance(v, str) or type(v) in (int, float, bool) else show(v)
        for k, v in params.items()
    }
    opts = Options(input_shape=input_shape, batch="N" if batch is None else batch)
    with gc_paused():
        return compile_module(module, network, overrides, opts, memo)


class Evaluator:
    """Compiles and costs candidates of one spec, loaded once."""

    def __init__(
        self,
        spec: str,
        network: str | None = None,
        fixed: Mapping[str, str] | None = None,
        input_shape: tuple[int, ...] | None = None,
        batch: int | None = None,
        device: str | None = None,
        dtype: str = "float32",
        measure: str | None = None,
    ) -> None:
        from graphcnn.lang.memo import Memo
        from graphcnn.lang.values import Model

        if measure is not None and measure not in MEASURES:
            raise SearchError(f"unknown --measure {measure!r}", f"one of {', '.join(MEASURES)}")
        self.module, default = load_spec(spec)
        self.network = network or default
        self.fixed = dict(fixed or {})
        self.batch = batch
        self.device, self.dtype, self.measure = device, dtype, measure
        target = self.module.target(self.network)
        block = target.network if isinstance(target, Model) else target
        self.params = [p.name for p in block.defn.params]
        self.memo = Memo()
        base = compile_with(self.module, self.network, self.fixed, input_shape, batch, self.memo)
        self.input_shape: tuple[int, ...] = input_shape or tuple(
            int(d) for d in base.inputs[0].type.shape[1:]
        )
        self.name = base.name
        self._input = input_shape
        self._device: Any = None
        self._cache: dict[tuple[Any, ...], Cost] = {}
        self.compiled = 0

    def graph(self, values: Mapping[str, Any], resolution: int | None = None) -> Any:
        """The IR graph of one candidate (``values`` override the network's parameters)."""
        shape = self._input
        if resolution is not None:
            shape = (self.input_shape[0], resolution, resolution)
        params = {**self.fixed, **values}
        self.compiled += 1
        return compile_with(self.module, self.network, params, shape, self.batch, self.memo)

    def cost(self, values: Mapping[str, Any], resolution: int | None = None) -> Cost:
        """Exact cost of one candidate; a spec error (e.g. a shape mismatch) propagates."""
        key = (tuple(sorted((k, repr(v)) for k, v in values.items())), resolution)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        g = self.graph(values, resolution)
        latency = measured = None
        params, macs, flops = totals(g, self.memo)
        if self.device is not None:
            latency = self._roofline(g)
        if self.measure == "ort":
            measured = measure_ort(g)
        cost = Cost(params, macs, flops, latency, measured)
        self._cache[key] = cost
        return cost

    def _roofline(self, g: Any) -> float:
        from graphcnn.analysis.devices import get_device

        if self._device is None:
            self._device = get_device(self.device or "cpu")
        return roofline_time(g, self._device, self.dtype, self.memo)


def _inference_nodes(graph: Any, memo: Any) -> tuple[int, Iterator[tuple[Any, Any]]]:
    """(batch, the inference nodes with their memo entry or None): what ``profile`` walks."""
    from graphcnn.ops import Op

    inputs = graph.inputs
    b = inputs[0].type.shape[0] if inputs else 1
    keys = memo.keys if memo is not None and memo.graph is graph else {}
    walk = (
        (node, keys.get(node.name))
        for node in graph
        if node.op is not Op.INPUT and not node.training_only
    )
    return (b if isinstance(b, int) else 1), walk


def totals(graph: Any, memo: Any = None) -> tuple[int, int, int]:
    """``profile(graph).totals``' params, MACs and FLOPs, without building per-layer rows.

    The same per-node rule (``graphcnn.cost.node_cost``) over the same nodes (inference only,
    the input excluded); ``tests/test_search.py`` checks it against ``profile``. With the
    :class:`graphcnn.lang.memo.Memo` that compiled ``graph``, a node costs once per shape key.
    """
    from graphcnn.cost import node_cost

    batch, walk = _inference_nodes(graph, memo)
    nodes = graph.nodes
    params = macs = flops = 0
    for node, shaped in walk:
        known = shaped.costs.get(batch) if shaped is not None else None
        if known is None:
            c = node_cost(node, [nodes[i].type for i in node.inputs], batch)
            known = (c.params, c.macs, c.flops)
            if shaped is not None:
                shaped.costs[batch] = known
        params += known[0]
        macs += known[1]
        flops += known[2]
    return params, macs, flops


def roofline_time(graph: Any, device: Any, dtype: str = "float32", memo: Any = None) -> float:
    """``roofline.total(roofline.analyze(graph, device, dtype)).time_s`` without the per-layer
    rows: the same per-layer rule and the same summation order (compute-bound layers, then
    memory-bound ones), so the same float; ``tests/test_search.py`` checks it. With the memo
    that compiled ``graph``, a layer's time is computed once per shape key."""
    from graphcnn.analysis.roofline import VIEWS, moved_bytes
    from graphcnn.cost import node_cost
    from graphcnn.ir import DTYPE_BYTES

    batch, walk = _inference_nodes(graph, memo)
    peak, bandwidth, width = device.peak(dtype), device.mem_bandwidth, DTYPE_BYTES[dtype]
    tkey = (batch, device.name, dtype)
    nodes = graph.nodes
    compute_t = memory_t = 0.0
    for node, shaped in walk:
        known = shaped.times.get(tkey) if shaped is not None else None
        if known is None:
            if str(node.op) in VIEWS:
                known = (0.0, 0.0)
            else:
                ins = [nodes[i].type for i in node.inputs]
                c = node_cost(node, ins, batch)
                in_bytes = sum(t.sample_numel * t.itemsize for t in ins) * batch
                moved = moved_bytes(
                    in_bytes + c.activation_bytes + c.weight_bytes, node.type.itemsize, width
                )
                known = (c.flops / peak, moved / bandwidth)
            if shaped is not None:
                shaped.times[tkey] = known
        if known[0] >= known[1]:
            compute_t += known[0]
        else:
            memory_t += known[1]
    return compute_t + memory_t


def measure_ort(graph: Any, repeat: int = 20, min_time: float = 0.05) -> float:
    """Median latency (s) of one batch-1 inference of ``graph`` in ONNX Runtime on the CPU."""
    import numpy as np

    from graphcnn.backends.ort_engine import OrtEngine
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.bench.timing import summarize, time_calls

    engine = OrtEngine(to_onnx(graph), device="cpu")
    shape = graph.inputs[0].type.shape[1:]
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
    session, names, name = engine.session, engine.output_names, engine.input_name
    samples = time_calls(lambda: session.run(names, {name: x}), 3, repeat, min_time)
    return summarize(samples).p50
