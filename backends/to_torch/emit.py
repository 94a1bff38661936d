"""``graphcnn compile MODEL --target torch``: writes the generated module source to OUT and its
weights beside it, and reports what it wrote.

The pair stays consistent under a kill at any moment: the weights go to a file named by their
content (``<stem>.<sha256[:8]>.safetensors``, written atomically, first), the source that names
them and their full sha256 is renamed over OUT last, and only then are older weights of OUT
removed. A reader sees the old source with the old weights or the new source with the new
ones, and ``Model()`` checks the sha256 before loading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphcnn.backends import EmitOptions
from graphcnn.backends.to_torch.source import generate_source
from graphcnn.cost import profile
from graphcnn.ir import Graph
from graphcnn.units import si
from graphcnn.weights import Weights, safetensors_bytes, write_atomic


def emit(
    graph: Graph, weights: Weights, out: Path, options: EmitOptions, echo: Callable[[str], Any]
) -> None:
    """Write OUT (Python source of class ``options.class_name``) and its weights beside it."""
    import hashlib

    meta = {"graphcnn.model": graph.name, "graphcnn.origin": options.origin}
    data = safetensors_bytes(weights, meta)
    digest = hashlib.sha256(data).hexdigest()
    wpath = weights_path(out, digest)
    source = generate_source(graph, options.class_name, wpath.name, digest)
    write_atomic(wpath, data)
    write_atomic(out, source)
    stale = re.compile(re.escape(out.stem) + r"\.[0-9a-f]{8}\.safetensors")
    for old in out.parent.iterdir():
        if old != wpath and stale.fullmatch(old.name):
            old.unlink(missing_ok=True)
    t = profile(graph).totals
    echo(f"{graph.name}: {len(graph)} nodes, {t.params:,} params, {t.macs / 1e9:.3f} GMACs")
    echo(f"wrote {out} ({source.count(chr(10))} lines, class {options.class_name})")
    echo(f"wrote {wpath} ({si(wpath.stat().st_size, 'B')}, {options.origin})")


def weights_path(out: Path, digest: str) -> Path:
    """Where OUT's weights go: ``<stem>.<sha256[:8]>.safetensors`` beside it."""
    return out.with_name(f"{out.stem}.{digest[:8]}.safetensors")
