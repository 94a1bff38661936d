"""``graphcnn compile MODEL --target onnx``: lowers, checks and writes the model atomically, reports
its nodes and size, and with ``--int8`` also writes the quantised model beside it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphcnn.backends import EmitOptions
from graphcnn.backends.quantize import emit_int8
from graphcnn.backends.to_onnx.files import check, save
from graphcnn.backends.to_onnx.lowering import to_onnx
from graphcnn.cost import profile
from graphcnn.ir import Graph
from graphcnn.units import si
from graphcnn.weights import Weights


def emit(
    graph: Graph, weights: Weights, out: Path, options: EmitOptions, echo: Callable[[str], Any]
) -> None:
    """Write OUT (the checked ONNX model; its ``.data`` file above 2 GB), and with
    ``options.int8`` OUT's stem + .int8.onnx."""
    static_batch = options.static_batch
    model = to_onnx(graph, weights, opset=options.opset, static_batch=static_batch)
    serialized = check(model, graph)
    files = save(model, out, serialized)
    t = profile(graph.inference()).totals
    ops = Counter(n.op_type for n in model.graph.node)
    size = sum(f.stat().st_size for f in files)
    batch = static_batch if static_batch is not None else "N (dynamic)"
    echo(
        f"{graph.name} -> ONNX opset {options.opset}, batch {batch}, input "
        f"{'x'.join(str(d) for d in graph.inputs[0].type.shape[1:])}"
    )
    echo(
        f"  {len(model.graph.node)} nodes: " + ", ".join(f"{op} {n}" for op, n in ops.most_common())
    )
    echo(f"  {t.params:,} params, {t.macs / 1e9:.3f} GMACs, weights: {options.origin}")
    echo(f"  passes: {options.pipeline}; checked: onnx.checker (full) + strict shape inference")
    echo(f"wrote {', '.join(str(f) for f in files)} ({si(size, 'B')})")
    if options.int8:
        emit_int8(out, options.calibration, echo=echo)
