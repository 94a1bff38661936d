"""The ONNX Runtime backends: ``ort`` runs the deployment ONNX model in :class:`OrtEngine` (all
graph optimisations, the run's intra-op threads); ``ort-int8`` runs that model statically
quantised (QDQ, calibrated on the given data or, as a fallback, on synthetic images)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.bench.runner import Context, Runner, first_output, onnx_model
from graphcnn.bench.torch_runners import torch_to_numpy

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]


def _ort_runner(name: str, dtype: str, model: Any, ctx: Context) -> Runner:
    from graphcnn.backends.ort_engine import OrtEngine

    engine = OrtEngine(model, device=ctx.device, threads=ctx.threads)
    detail: dict[str, Any] = {"providers": engine.providers, "threads": ctx.threads}
    if ctx.device == "cuda":
        import torch

        def prepare_cuda(x: Array) -> Any:
            return torch.from_numpy(x).to("cuda")

        return Runner(name, dtype, prepare_cuda, engine.run_torch, torch_to_numpy, detail=detail)
    session, names, input_name = engine.session, engine.output_names, engine.input_name

    def prepare(x: Array) -> Any:
        engine.check(x.shape, str(x.dtype))  # validated once; the timed call is the bare run
        return x

    return Runner(
        name,
        dtype,
        prepare,
        lambda x: session.run(names, {input_name: x}),
        lambda y: first_output(y),
        detail=detail,
    )


def setup_ort(ctx: Context) -> Runner:
    return _ort_runner("ort", "float32", onnx_model(ctx), ctx)


def setup_ort_int8(ctx: Context) -> Runner:
    import tempfile

    from graphcnn.backends.quantize import (
        CLI_MAX_SAMPLES,
        SYNTHETIC_SAMPLES,
        load_calibration,
        quantize_int8,
        synthetic_calibration,
    )

    if ctx.calibration is None:
        calib = synthetic_calibration(ctx.shape, SYNTHETIC_SAMPLES, ctx.seed)
        source = f"synthetic ({SYNTHETIC_SAMPLES} smooth random images, seed {ctx.seed})"
    else:
        calib = load_calibration(ctx.calibration, ctx.shape, CLI_MAX_SAMPLES, ctx.seed)
        source = f"{ctx.calibration} ({len(calib)} samples)"
    ctx.calibration_source = source
    with tempfile.TemporaryDirectory(prefix="graphcnn-bench-") as tmp:
        path = quantize_int8(onnx_model(ctx), Path(tmp) / "model.int8.onnx", calib)
        runner = _ort_runner("ort-int8", "int8", path, ctx)
    runner.detail.update(
        calibration=source,
        scheme="QDQ, int8 per-channel weights, uint8 activations, minmax",
    )
    return runner
