"""``graphcnn compile MODEL --target torch``: writes the generated module source to OUT and its
weights beside it (``<stem>.safetensors``), atomically, and reports what it wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphcnn.backends import EmitOptions
from graphcnn.backends.to_torch.source import generate_source
from graphcnn.cost import profile
from graphcnn.ir import Graph
from graphcnn.units import si
from graphcnn.weights import Weights, save_safetensors, write_atomic


def emit(
    graph: Graph, weights: Weights, out: Path, options: EmitOptions, echo: Callable[[str], Any]
) -> None:
    """Write OUT (Python source of class ``options.class_name``) and OUT's stem + .safetensors."""
    wpath = out.with_suffix(".safetensors")
    source = generate_source(graph, options.class_name, wpath.name)
    meta = {"graphcnn.model": graph.name, "graphcnn.origin": options.origin}
    save_safetensors(weights, wpath, meta)
    write_atomic(out, source)
    t = profile(graph).totals
    echo(f"{graph.name}: {len(graph)} nodes, {t.params:,} params, {t.macs / 1e9:.3f} GMACs")
    echo(f"wrote {out} ({source.count(chr(10))} lines, class {options.class_name})")
    echo(f"wrote {wpath} ({si(wpath.stat().st_size, 'B')}, {options.origin})")
