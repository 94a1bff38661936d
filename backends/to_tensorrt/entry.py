"""The backend's entry points: :func:`to_tensorrt` lowers a graph to a ready-to-run engine
(``graphcnn bench --backend tensorrt``), :func:`emit_engine` writes an engine and its manifest
(``graphcnn compile MODEL --target tensorrt``, through :func:`emit`). Both go through ONNX:
:func:`graphcnn.backends.to_onnx.to_onnx` with a dynamic batch ``N``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends import EmitOptions
from graphcnn.backends.to_tensorrt.build import build_engine
from graphcnn.backends.to_tensorrt.manifest import EngineCache, save_engine
from graphcnn.backends.to_tensorrt.options import default_batch_range, input_profiles
from graphcnn.backends.to_tensorrt.runner import TensorRTRunner
from graphcnn.backends.to_tensorrt.runtime import device_index, require_runtime
from graphcnn.ir import Graph

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]


def to_tensorrt(
    graph: Graph,
    weights: Mapping[str, Array] | None = None,
    batches: Sequence[int] | None = None,
    max_batch: int | None = None,
    half: str | None = None,
    device: int | str = 0,
    precision: str | None = None,
    workspace: int | None = None,
    cache: EngineCache | None = None,
) -> TensorRTRunner:
    """Lower ``graph`` (with ``weights``, else seeded init) to a ready-to-run engine.

    The batch range covers ``batches`` (min..max, tuned for the largest) or ``1..max_batch``;
    ``half`` ("fp16"/"bf16") picks that precision unless ``precision`` is given. This is the
    entry point of ``graphcnn bench --backend tensorrt``.
    """
    from graphcnn.backends.to_onnx import to_onnx

    index = device_index(device)
    require_runtime(index)
    if batches:
        lo, hi = min(batches), max(batches)
    else:
        lo, hi = 1, max_batch or default_batch_range(graph)[2]
    if precision is None:
        precision = half if half in ("fp16", "bf16") else "fp32"
    model = to_onnx(graph, weights)
    engine, manifest = build_engine(
        model.SerializeToString(), graph, precision, (lo, hi, hi), workspace, cache=cache,
        device=index,
    )  # fmt: skip
    return TensorRTRunner(engine, manifest, device=index)


def emit_engine(
    graph: Graph,
    weights: Any,
    out: str | Path,
    precision: str = "fp32",
    batch_range: Sequence[int] | None = None,
    workspace: int | None = None,
    timing_cache: str | Path | None = None,
    calibration: str | Path | None = None,
    opset: int = 17,
    echo: Callable[[str], Any] = print,
) -> tuple[list[Path], dict[str, Any]]:
    """What ``graphcnn compile MODEL --target tensorrt -o OUT`` does after compiling: lower to
    ONNX (dynamic batch), build (or reuse from the engine cache) and write OUT + its manifest.

    ``--int8`` calibrates on ``calibration`` (images folder or .npz; synthetic without).
    """
    from graphcnn.backends.to_onnx import check, to_onnx

    require_runtime()
    profiles = input_profiles(graph, batch_range)
    model = to_onnx(graph, weights, opset=opset)
    check(model, graph)
    samples = None
    if precision == "int8":
        from graphcnn.backends.quantize import CLI_MAX_SAMPLES, load_calibration

        samples = load_calibration(calibration, profiles[0].opt, CLI_MAX_SAMPLES)
        source = calibration or "synthetic images (a fallback only: pass --calibration)"
        echo(f"  INT8 calibration: {source}, {len(samples)} samples")
    cache = EngineCache() if EngineCache.enabled() else None
    engine, manifest = build_engine(
        model.SerializeToString(),
        graph,
        precision,
        profiles[0].batch_range,
        workspace,
        timing_cache,
        samples,
        cache=cache,
        log=echo,
    )
    files = save_engine(out, engine, manifest)
    lo, opt, hi = profiles[0].batch_range
    echo(
        f"{graph.name} -> TensorRT {manifest['tensorrt']} engine, {precision}, batch "
        f"{lo}:{opt}:{hi}, {manifest['gpu']} (sm {manifest['compute_capability']})"
        + (" [from the engine cache]" if manifest.get("from_cache") else "")
    )
    echo(f"wrote {files[0]} ({len(engine) / 1e6:.2f} MB) and its manifest {files[1]}")
    return files, manifest


def preflight() -> None:
    """``graphcnn compile --target tensorrt`` checks TensorRT and a GPU before any work."""
    require_runtime()


def emit(
    graph: Graph, weights: Any, out: Path, options: EmitOptions, echo: Callable[[str], Any]
) -> None:
    """The ``tensorrt`` target of ``graphcnn compile`` (``graphcnn.backends.TARGETS``)."""
    precision = "int8" if options.int8 else "fp16" if options.fp16 else "fp32"
    emit_engine(
        graph,
        weights,
        out,
        precision,
        options.batch_range,
        options.workspace,
        options.timing_cache,
        options.calibration,
        options.opset,
        echo=echo,
    )
