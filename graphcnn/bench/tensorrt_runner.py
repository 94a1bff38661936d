"""The TensorRT backend: one engine per batch size built from the deployment ONNX model by
:mod:`graphcnn.backends.to_tensorrt` (imported lazily), and :func:`tensorrt_unavailable`, every
reason it cannot run here (no CUDA GPU, wrong device, missing package, module or API)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from graphcnn.bench.options import HALF_TYPES
from graphcnn.bench.runner import Context, Runner, Skip, onnx_model, short_error
from graphcnn.bench.torch_runners import torch_to_numpy
from graphcnn.errors import GraphcnnError

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _tensorrt_module() -> tuple[Any, list[str]]:
    """(graphcnn.backends.to_tensorrt or None, why it cannot be used: package, API)."""
    reasons: list[str] = []
    try:
        mod = importlib.import_module("graphcnn.backends.to_tensorrt")
    except ImportError as e:
        mod = None
        reasons.append(f"graphcnn.backends.to_tensorrt is not available ({short_error(e)})")
    require = getattr(mod, "require_tensorrt", None)
    if callable(require):
        try:
            require()
        except GraphcnnError as e:
            reasons.append(e.message)
    else:
        try:
            import tensorrt  # noqa: F401
        except ImportError as e:
            reasons.append(f"the tensorrt package does not import ({short_error(e)})")
    if mod is not None:
        missing = [a for a in ("build_engine", "TensorRTRunner") if not hasattr(mod, a)]
        if missing:
            reasons.append(f"graphcnn.backends.to_tensorrt has no {' or '.join(missing)}")
            mod = None
    return mod, reasons


def tensorrt_unavailable(device: str, half: str | None = None) -> str | None:
    """Why the tensorrt backend cannot run on ``device`` here (every reason, joined), or None."""
    reasons: list[str] = []
    if not _cuda_available():
        reasons.append("no CUDA GPU (torch.cuda.is_available() is False)")
    elif device != "cuda":
        reasons.append("TensorRT runs on the GPU: use --device cuda")
    mod, more = _tensorrt_module()
    reasons += more
    if mod is not None and half is not None:
        if half not in getattr(mod, "PRECISIONS", ("fp32", "fp16")):
            reasons.append(f"to_tensorrt builds no {half} engines")
    return "; ".join(reasons) if reasons else None


def setup_tensorrt(ctx: Context) -> Runner:
    """One engine per batch size (``b:b:b`` profiles, like torch-compile's static shapes), built
    from the deployment ONNX model in the untimed check call; the engine cache is used when
    to_tensorrt enables it."""
    import torch

    why = tensorrt_unavailable(ctx.device, ctx.half)
    if why:
        raise Skip(why)
    mod, _ = _tensorrt_module()
    precision = ctx.half or "fp32"
    model = onnx_model(ctx).SerializeToString()
    cache_cls = getattr(mod, "EngineCache", None)
    cache = cache_cls() if cache_cls is not None and cache_cls.enabled() else None
    engines: dict[int, Any] = {}
    detail: dict[str, Any] = {"precision": precision, "profiles": "b:b:b per batch"}

    def prepare(x: Array) -> Any:
        b = len(x)
        if b not in engines:
            engine, manifest = mod.build_engine(model, ctx.deploy_graph, precision, (b, b, b),
                                                cache=cache)  # fmt: skip
            engines[b] = mod.TensorRTRunner(engine, manifest)
            detail.update(tensorrt=manifest.get("tensorrt"), gpu=manifest.get("gpu"))
        return torch.from_numpy(x).to("cuda")

    def forward(x: Any) -> Any:
        return engines[x.shape[0]](x)

    dtype = HALF_TYPES.get(precision, "float32")
    return Runner(
        "tensorrt", dtype, prepare, forward, torch_to_numpy, torch.cuda.synchronize, detail=detail
    )
