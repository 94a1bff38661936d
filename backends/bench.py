"""Benchmark backends on the same inputs: what ``graphcnn bench MODEL`` runs.

:func:`run_bench` lowers one graph to several execution backends, checks every backend's output
against the PyTorch eager reference on the same input, then times it per batch size:

``torch``
    PyTorch eager: the module :func:`graphcnn.backends.to_torch.to_torch` builds from the graph
    *as compiled* (no passes), in eval mode under ``torch.inference_mode()``. Float32; on
    ``cuda`` with ``half`` ("fp16"/"bf16") it runs in that dtype in channels_last memory format
    (:func:`prepare_torch_module` / :func:`prepare_torch_input`, the hook of the GPU path).
``torch-compile``
    The same module through ``torch.compile`` (default mode, inductor, ``dynamic=False``: one
    static specialisation per batch size, compiled in the untimed check call). If compilation
    fails the eager module is measured instead, with status ``fallback`` and the reason.
``ort``
    The ONNX model :func:`graphcnn.backends.to_onnx.to_onnx` emits for the graph after the
    pipeline (``inference`` by default), in ONNX Runtime (:class:`OrtEngine`, all graph
    optimisations, ``threads`` intra-op threads).
``ort-int8``
    That model statically quantised (:func:`graphcnn.backends.quantize.quantize_int8`: QDQ,
    per-channel int8 weights, uint8 activations), calibrated on ``calibration`` (a folder of
    images or an .npz, at most 256 samples) or, without it, on 64 synthetic images (a fallback:
    see the quantize module).
``tensorrt``
    :mod:`graphcnn.backends.to_tensorrt` (imported lazily): ``build_engine`` on the deployment
    ONNX model, one engine per batch size (profile ``b:b:b``; fp32, or the ``half`` precision),
    built untimed before the check call, run by ``TensorRTRunner`` on CUDA tensors. Only on ``cuda``
    with the ``tensorrt`` package importable; otherwise the backend is *skipped* with every
    missing prerequisite as the reason (also when that module is missing or lacks that API).

Inputs are smooth synthetic images (:func:`graphcnn.backends.quantize.synthetic_calibration`,
seed ``seed + 1``, so never the int8 calibration samples, which use ``seed``); batch ``b`` uses
the first ``b`` of them, so every backend sees the same input. Weights: ``weights`` or
:func:`graphcnn.weights.init_weights` with ``seed``; the pipeline rewrites them (e.g. fold_bn)
for the deployment backends (ort, ort-int8, tensorrt).

Correctness, before timing: the first output (the logits) of each backend against the float32
eager module on the same device: ``max_abs_error``, ``max_abs_reference``, ``rel_error`` (their
ratio) and ``top1_agreement`` (share of samples with the same arg-max). A measurement whose
``rel_error`` exceeds :data:`TOLERANCES` for its dtype is *flagged* (``accuracy.ok`` false), and
still timed and reported.

Timing: ``warmup`` untimed calls, then one sample per call (wall clock, ``time.perf_counter``,
CUDA synchronised) until there are at least ``repeat`` samples *and* ``min_time`` seconds have
passed (at most :data:`MAX_SAMPLES`); the cyclic GC is off while timing. Latency percentiles
interpolate linearly between order statistics (numpy's default, :func:`percentile`); with few
samples p99 is close to the maximum. Throughput is ``batch / p50``; the speed-up is torch
eager's p50 over the backend's at the same batch; achieved GFLOP/s is the model's FLOPs per batch
(:func:`graphcnn.cost.profile` of the graph as compiled, the same count for every backend) over
p50, and ``peak_fraction`` divides that by the device's peak float32 rate
(:mod:`graphcnn.devices`: ``cpu`` measured with numpy, all cores; on cuda the ``h100-sxm``
profile for an H100 SXM, its float16/bfloat16 rate with ``half``; else unknown). int8 runs are
compared with the float32 peak too (no int8 peak is measured).

``BenchResult.to_json()`` keys: ``model``, ``input``, ``device``, ``half``, ``threads``,
``pipeline``, ``seed``, ``warmup``, ``repeat``, ``min_time_s``, ``calibration``,
``flops_per_sample``, ``peak_flops``, ``peak_source``, ``backends`` (name, status, reason, dtype,
setup_s, detail), ``results`` (one per backend and batch: backend, batch, status, reason,
dtype, latency_ms {samples, mean, min, p50, p90, p99, max}, throughput, speedup, gflops,
peak_fraction, first_call_s, accuracy {max_abs_error, max_abs_reference, rel_error,
top1_agreement, n, tolerance, ok}, flagged) and ``environment`` (versions, CPU, load average
before and after).

Nothing heavy is imported at module level: numpy, torch, onnx, onnxruntime, matplotlib and
tensorrt are imported where they are used.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from rich.console import RenderableType

    from graphcnn.ir import Graph

    Array = np.ndarray[Any, Any]

BACKENDS: tuple[str, ...] = ("torch", "torch-compile", "ort", "ort-int8", "tensorrt")
"""Every backend :func:`run_bench` knows, in display order."""
DEFAULT_BACKENDS: tuple[str, ...] = ("torch", "ort", "ort-int8")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
HALF_TYPES: dict[str, str] = {"fp16": "float16", "bf16": "bfloat16"}
DEFAULT_WARMUP = 3
DEFAULT_REPEAT = 10
DEFAULT_MIN_TIME = 1.0
"""Seconds of timed calls per measurement, at least (besides ``repeat`` samples)."""
MAX_SAMPLES = 10_000
TOLERANCES: dict[str, float] = {
    "float32": 1e-3,
    "float16": 2e-2,
    "bfloat16": 6e-2,
    "int8": 0.25,
}
"""Largest accepted ``max|y - ref| / max|ref|`` of the logits, by the backend's arithmetic."""
PROGRESS_INTERVAL_S = 0.1

ProgressFn = Callable[[str, float, float], None]
"""``progress(description, completed, total)``: how far :func:`run_bench` got."""


class BenchError(GraphcnnError):
    """Bad benchmark arguments (unknown backend, batch, device...), or a missing dependency."""


class _Skip(Exception):
    """A backend cannot run here (missing GPU, package or module): skipped, with the reason."""


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-call wall-clock times, in seconds."""

    samples: int
    mean: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    def to_json(self) -> dict[str, float | int]:
        """Milliseconds (rounded to ns), plus the sample count."""
        ms = {k: round(getattr(self, k) * 1e3, 6) for k in ("mean", "min", "p50", "p90", "p99")}
        return {"samples": self.samples, **ms, "max": round(self.max * 1e3, 6)}


def summarize(samples: Sequence[float]) -> LatencyStats:
    """Count, mean, min, p50/p90/p99 (see :func:`percentile`) and max of ``samples``."""
    if not samples:
        raise ValueError("no samples to summarize")
    return LatencyStats(
        samples=len(samples),
        mean=sum(samples) / len(samples),
        min=min(samples),
        p50=percentile(samples, 50),
        p90=percentile(samples, 90),
        p99=percentile(samples, 99),
        max=max(samples),
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Accuracy:
    """A backend's logits against the float32 eager reference on the same input."""

    max_abs_error: float
    max_abs_reference: float
    rel_error: float
    top1_agreement: float
    n: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.rel_error <= self.tolerance  # NaN compares false: flagged

    def to_json(self) -> dict[str, Any]:
        return {
            "max_abs_error": _finite(self.max_abs_error),
            "max_abs_reference": _finite(self.max_abs_reference),
            "rel_error": _finite(self.rel_error),
            "top1_agreement": self.top1_agreement,
            "n": self.n,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def _finite(x: float) -> float | None:
    """JSON has no NaN/inf: those become null (the measurement is flagged anyway)."""
    return x if math.isfinite(x) else None


def compare(y: Array, ref: Array, tolerance: float) -> Accuracy:
    """:class:`Accuracy` of output ``y`` against ``ref`` (same shape; [N, ...] logits)."""
    import numpy as np

    a = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    b = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if a.shape != b.shape:
        raise BenchError(f"output shape {list(b.shape)} differs from the reference {list(a.shape)}")
    with np.errstate(invalid="ignore"):
        err = float(np.abs(a - b).max()) if a.size else 0.0
        scale = float(np.abs(a).max()) if a.size else 0.0
    if math.isnan(err) or not np.isfinite(b).all():
        err = math.nan
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    agree = float((a.argmax(axis=1) == b.argmax(axis=1)).mean()) if a.size else 1.0
    return Accuracy(err, scale, rel, agree, int(len(a)), tolerance)


@dataclass
class Measurement:
    """One backend at one batch size: latency, derived rates and the error check."""

    backend: str
    batch: int
    status: str
    """``ok``, ``fallback`` (torch-compile measured eager), ``skipped`` or ``failed``."""
    reason: str | None = None
    dtype: str = "float32"
    latency: LatencyStats | None = None
    accuracy: Accuracy | None = None
    flops: int = 0
    """Model FLOPs of one batch (the same for every backend)."""
    peak_flops: float | None = None
    first_call_s: float | None = None
    """The untimed check call (includes torch.compile's compilation)."""
    speedup: float | None = None

    @property
    def measured(self) -> bool:
        return self.latency is not None

    @property
    def flagged(self) -> bool:
        return self.accuracy is not None and not self.accuracy.ok

    @property
    def throughput(self) -> float | None:
        """Images per second at the median latency."""
        return self.batch / self.latency.p50 if self.latency else None

    @property
    def gflops(self) -> float | None:
        return self.flops / self.latency.p50 / 1e9 if self.latency and self.flops else None

    @property
    def peak_fraction(self) -> float | None:
        if self.latency is None or not self.flops or not self.peak_flops:
            return None
        return self.flops / self.latency.p50 / self.peak_flops

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None, nd: int = 4) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "backend": self.backend,
            "batch": self.batch,
            "status": self.status,
            "reason": self.reason,
            "dtype": self.dtype,
            "latency_ms": self.latency.to_json() if self.latency else None,
            "throughput": r(self.throughput, 3),
            "speedup": r(self.speedup),
            "gflops": r(self.gflops, 3),
            "peak_fraction": r(self.peak_fraction, 5),
            "flops": self.flops,
            "first_call_s": r(self.first_call_s),
            "accuracy": self.accuracy.to_json() if self.accuracy else None,
            "flagged": self.flagged,
        }


@dataclass
class BackendInfo:
    """How a backend was set up, or why it was not."""

    name: str
    status: str
    """``ready``, ``fallback``, ``skipped`` or ``failed``."""
    reason: str | None = None
    dtype: str = "float32"
    setup_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "dtype": self.dtype,
            "setup_s": None if self.setup_s is None else round(self.setup_s, 3),
            "detail": self.detail,
        }


@dataclass
class BenchResult:
    """Everything :func:`run_bench` measured; :meth:`to_json` is ``graphcnn bench --json``."""

    model: str
    input: tuple[int, ...]
    device: str
    half: str | None
    threads: int | None
    pipeline: str
    seed: int
    warmup: int
    repeat: int
    min_time: float
    calibration: str
    flops_per_sample: int
    peak_flops: float | None
    peak_source: str
    backends: list[BackendInfo]
    measurements: list[Measurement]
    environment: dict[str, Any] = field(default_factory=dict)

    def measurement(self, backend: str, batch: int) -> Measurement | None:
        return next(
            (m for m in self.measurements if m.backend == backend and m.batch == batch), None
        )

    def backend(self, name: str) -> BackendInfo | None:
        return next((b for b in self.backends if b.name == name), None)

    @property
    def batches(self) -> list[int]:
        return sorted({m.batch for m in self.measurements})

    @property
    def flagged(self) -> list[Measurement]:
        return [m for m in self.measurements if m.flagged]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": list(self.input),
            "device": self.device,
            "half": self.half,
            "threads": self.threads,
            "pipeline": self.pipeline,
            "seed": self.seed,
            "warmup": self.warmup,
            "repeat": self.repeat,
            "min_time_s": self.min_time,
            "calibration": self.calibration,
            "flops_per_sample": self.flops_per_sample,
            "peak_flops": self.peak_flops,
            "peak_source": self.peak_source,
            "backends": [b.to_json() for b in self.backends],
            "results": [m.to_json() for m in self.measurements],
            "environment": self.environment,
        }


# --------------------------------------------------------------------------- argument checks


def parse_backends(names: Iterable[str]) -> list[str]:
    """Backend names from items that may hold comma lists, deduplicated, in the given order.

    :class:`BenchError` names every unknown one and lists the valid ones.
    """
    out: list[str] = []
    unknown: list[str] = []
    for item in names:
        for name in (p.strip().lower() for p in item.split(",")):
            if not name:
                continue
            if name not in BACKENDS:
                unknown.append(name)
            elif name not in out:
                out.append(name)
    if unknown:
        raise BenchError(
            f"unknown backend{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}",
            f"valid backends: {', '.join(BACKENDS)}",
        )
    return out


def parse_batches(items: Iterable[str | int]) -> list[int]:
    """Batch sizes from ints or comma lists (``"1,8,32"``), deduplicated, sorted."""
    out: set[int] = set()
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                b = int(part)
            except ValueError:
                b = 0
            if b < 1:
                raise BenchError(
                    f"batch sizes must be positive integers, got {part!r}", "e.g. --batch 1,8,32"
                )
            out.add(b)
    if not out:
        raise BenchError("no batch size given", "e.g. --batch 1,8,32")
    return sorted(out)


# --------------------------------------------------------------------------- backends


@dataclass
class _Runner:
    """A ready backend: ``prepare`` the input once, then ``forward`` it (timed) + ``sync``."""

    name: str
    dtype: str
    prepare: Callable[[Array], Any]
    forward: Callable[[Any], Any]
    to_numpy: Callable[[Any], Array]
    sync: Callable[[], None] = lambda: None
    fallback: Callable[[Any], Any] | None = None
    """torch-compile: the eager forward to use if compiling fails."""
    fallback_reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Context:
    graph: Graph
    weights: Mapping[str, Array]
    deploy_graph: Graph
    deploy_weights: Mapping[str, Array]
    device: str
    half: str | None
    threads: int | None
    batches: list[int]
    seed: int
    calibration: str | Path | None
    shape: tuple[int, int, int]
    ref_module: Any = None
    onnx_model: Any = None
    calibration_source: str = ""


def _first(out: Any) -> Any:
    """The first output (the logits) of a module or session result."""
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out


def _torch_to_numpy(y: Any) -> Array:
    return _first(y).detach().float().cpu().numpy()  # type: ignore[no-any-return]


def prepare_torch_module(module: torch.nn.Module, device: str, half: str | None) -> Any:
    """The GPU path's hook: the module on ``device``; with ``half`` in that dtype, channels_last."""
    import torch

    module = module.to(device)
    if half is not None:
        module = module.to(dtype=getattr(torch, HALF_TYPES[half])).to(
            memory_format=torch.channels_last
        )
    return module.eval()


def prepare_torch_input(x: Array, device: str, half: str | None) -> Any:
    """A numpy batch as the tensor :func:`prepare_torch_module`'s module takes."""
    import torch

    t = torch.from_numpy(x).to(device)
    if half is not None:
        t = t.to(getattr(torch, HALF_TYPES[half])).contiguous(memory_format=torch.channels_last)
    return t


def _torch_sync(device: str) -> Callable[[], None]:
    if device != "cuda":
        return lambda: None
    import torch

    return torch.cuda.synchronize


def _inference(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    import torch

    def run(x: Any) -> Any:
        with torch.inference_mode():
            return fn(x)

    return run


def _reference_module(ctx: _Context) -> Any:
    if ctx.ref_module is None:
        from graphcnn.backends.to_torch import to_torch

        ctx.ref_module = prepare_torch_module(to_torch(ctx.graph, ctx.weights), ctx.device, None)
    return ctx.ref_module


def _setup_torch(ctx: _Context) -> _Runner:
    import copy

    module = _reference_module(ctx)
    if ctx.half is not None:
        module = prepare_torch_module(copy.deepcopy(module), ctx.device, ctx.half)
    dtype = HALF_TYPES[ctx.half] if ctx.half else "float32"
    return _Runner(
        "torch",
        dtype,
        lambda x: prepare_torch_input(x, ctx.device, ctx.half),
        _inference(module),
        _torch_to_numpy,
        _torch_sync(ctx.device),
        detail={"graph": "as compiled (no passes)", "memory_format": _memory_format(ctx)},
    )


def _memory_format(ctx: _Context) -> str:
    return "channels_last" if ctx.half else "contiguous"


def _setup_torch_compile(ctx: _Context) -> _Runner:
    import copy

    import torch

    eager = _reference_module(ctx)
    if ctx.half is not None:
        eager = prepare_torch_module(copy.deepcopy(eager), ctx.device, ctx.half)
    dtype = HALF_TYPES[ctx.half] if ctx.half else "float32"
    runner = _Runner(
        "torch-compile",
        dtype,
        lambda x: prepare_torch_input(x, ctx.device, ctx.half),
        _inference(eager),
        _torch_to_numpy,
        _torch_sync(ctx.device),
        fallback=_inference(eager),
        detail={"mode": "default", "backend": "inductor", "dynamic": False},
    )
    try:
        compiled = torch.compile(eager, dynamic=False)
    except Exception as e:  # noqa: BLE001 - torch.compile raises many kinds (RuntimeError, ...)
        runner.fallback_reason = f"torch.compile failed: {_short(e)}"
        return runner
    runner.forward = _inference(compiled)
    return runner


def _onnx_model(ctx: _Context) -> Any:
    if ctx.onnx_model is None:
        from graphcnn.backends.to_onnx import check, to_onnx

        model = to_onnx(ctx.deploy_graph, ctx.deploy_weights)
        check(model, ctx.deploy_graph)
        ctx.onnx_model = model
    return ctx.onnx_model


def _ort_runner(name: str, dtype: str, model: Any, ctx: _Context) -> _Runner:
    from graphcnn.backends.ort_engine import OrtEngine

    engine = OrtEngine(model, device=ctx.device, threads=ctx.threads)
    detail: dict[str, Any] = {"providers": engine.providers, "threads": ctx.threads}
    if ctx.device == "cuda":
        import torch

        def prepare_cuda(x: Array) -> Any:
            return torch.from_numpy(x).to("cuda")

        return _Runner(name, dtype, prepare_cuda, engine.run_torch, _torch_to_numpy, detail=detail)
    session, names, input_name = engine.session, engine.output_names, engine.input_name

    def prepare(x: Array) -> Any:
        engine.check(x.shape, str(x.dtype))  # validated once; the timed call is the bare run
        return x

    return _Runner(
        name,
        dtype,
        prepare,
        lambda x: session.run(names, {input_name: x}),
        lambda y: _first(y),
        detail=detail,
    )


def _setup_ort(ctx: _Context) -> _Runner:
    return _ort_runner("ort", "float32", _onnx_model(ctx), ctx)


def _setup_ort_int8(ctx: _Context) -> _Runner:
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
        path = quantize_int8(_onnx_model(ctx), Path(tmp) / "model.int8.onnx", calib)
        runner = _ort_runner("ort-int8", "int8", path, ctx)
    runner.detail.update(
        calibration=source,
        scheme="QDQ, int8 per-channel weights, uint8 activations, minmax",
    )
    return runner


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
        reasons.append(f"graphcnn.backends.to_tensorrt is not available ({_short(e)})")
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
            reasons.append(f"the tensorrt package does not import ({_short(e)})")
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


def _setup_tensorrt(ctx: _Context) -> _Runner:
    """One engine per batch size (``b:b:b`` profiles, like torch-compile's static shapes), built
    from the deployment ONNX model in the untimed check call; the engine cache is used when
    to_tensorrt enables it."""
    import torch

    why = tensorrt_unavailable(ctx.device, ctx.half)
    if why:
        raise _Skip(why)
    mod, _ = _tensorrt_module()
    precision = ctx.half or "fp32"
    model = _onnx_model(ctx).SerializeToString()
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
    return _Runner(
        "tensorrt", dtype, prepare, forward, _torch_to_numpy, torch.cuda.synchronize, detail=detail
    )


_SETUP: dict[str, Callable[[_Context], _Runner]] = {
    "torch": _setup_torch,
    "torch-compile": _setup_torch_compile,
    "ort": _setup_ort,
    "ort-int8": _setup_ort_int8,
    "tensorrt": _setup_tensorrt,
}


def _short(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception, bounded (torch's messages run to pages)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- timing


def time_calls(
    call: Callable[[], Any],
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    min_time: float = DEFAULT_MIN_TIME,
    max_samples: int = MAX_SAMPLES,
    tick: Callable[[int], None] | None = None,
) -> list[float]:
    """Per-call seconds: ``warmup`` untimed calls, then at least ``repeat`` timed calls and
    ``min_time`` seconds of them (at most ``max_samples`` calls). ``call`` must finish its work
    (synchronise a GPU) before it returns. The cyclic GC is off meanwhile."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    last = start = time.perf_counter()
    try:
        while len(samples) < repeat or (
            time.perf_counter() - start < min_time and len(samples) < max_samples
        ):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            samples.append(t1 - t0)
            if tick is not None and t1 - last >= PROGRESS_INTERVAL_S:
                tick(len(samples))
                last = t1
    finally:
        if was_enabled:
            gc.enable()
    return samples


# --------------------------------------------------------------------------- the benchmark


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from graphcnn.devices import _cpu_model, _nproc

    def v(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "torch": v("torch"),
        "onnxruntime": v("onnxruntime-gpu") or v("onnxruntime"),
        "onnx": v("onnx"),
        "cpu_model": _cpu_model(),
        "nproc": _nproc(),
        "loadavg_before": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _peak(device: str, half: str | None) -> tuple[float | None, str]:
    """The device's peak FLOP/s for the run's float type, and where it comes from."""
    from graphcnn.devices import get_device

    if device == "cpu":
        dev = get_device("cpu")
        return dev.peak("float32"), "cpu float32, measured (numpy GEMM, all cores): " + (
            dev.description
        )
    import torch

    name = torch.cuda.get_device_name()
    if "H100" in name and "PCIE" not in name.upper():
        dev = get_device("h100-sxm")
        dtype = HALF_TYPES[half] if half else "float32"
        return dev.peak(dtype), f"h100-sxm {dtype} datasheet ({name})"
    return None, f"no peak rate known for {name}"


def run_bench(
    graph: Graph,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    batches: Sequence[int] = (1,),
    *,
    weights: Mapping[str, Array] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    half: str | None = None,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    min_time: float = DEFAULT_MIN_TIME,
    pipeline: str = "inference",
    seed: int = 0,
    calibration: str | Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    peak_flops: float | None = None,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Check and time ``backends`` on ``graph`` at each batch size (see the module docstring).

    ``graph``: compiled with a symbolic batch (or a concrete one equal to every batch size).
    ``peak_flops`` overrides the device's peak rate; ``tolerances`` overrides entries of
    :data:`TOLERANCES`. Backends that cannot run are skipped (missing GPU or package) or
    failed (an error while building or running them), each with its reason; the others are
    measured. ``torch.set_num_threads`` is restored afterwards.
    """
    names = parse_backends(backends)
    if not names:
        raise BenchError("no backend given", f"valid backends: {', '.join(BACKENDS)}")
    sizes = parse_batches(batches)
    if device not in DEVICES:
        raise BenchError(f"unknown device {device!r}", f"valid devices: {', '.join(DEVICES)}")
    if half is not None:
        if half not in HALF_TYPES:
            raise BenchError(f"unknown half type {half!r}", f"choose {' or '.join(HALF_TYPES)}")
        if device != "cuda":
            raise BenchError("half precision (fp16/bf16) is for --device cuda")
    if threads is not None and threads < 1:
        raise BenchError(f"threads must be >= 1, got {threads}")
    if warmup < 0 or repeat < 1 or min_time < 0:
        raise BenchError("need warmup >= 0, repeat >= 1 and min_time >= 0")
    tol = {**TOLERANCES, **(tolerances or {})}
    if len(graph.inputs) != 1:
        raise BenchError(
            f"bench needs a network with one input, {graph.name} has {len(graph.inputs)}"
        )
    in_type = graph.inputs[0].type
    static = in_type.shape[0]
    if isinstance(static, int) and any(b != static for b in sizes):
        raise BenchError(
            f"{graph.name} has a fixed batch of {static}; cannot run batch sizes "
            f"{', '.join(map(str, sizes))}",
            "compile it with a symbolic batch (no --batch at compile time)",
        )
    chw = tuple(int(d) for d in in_type.shape[1:])
    if len(chw) != 3:
        raise BenchError(f"bench needs an image input [N, C, H, W], got {list(in_type.shape)}")
    shape = (chw[0], chw[1], chw[2])

    from graphcnn.cost import profile

    env = _environment()
    flops_per_sample = profile(graph.inference(), batch=1).totals.flops
    result = BenchResult(
        model=graph.name,
        input=shape,
        device=device,
        half=half,
        threads=threads,
        pipeline=pipeline,
        seed=seed,
        warmup=warmup,
        repeat=repeat,
        min_time=min_time,
        calibration="",
        flops_per_sample=flops_per_sample,
        peak_flops=peak_flops,
        peak_source="given" if peak_flops else "",
        backends=[],
        measurements=[],
        environment=env,
    )

    try:
        import torch
    except ImportError:
        raise BenchError(
            "bench needs PyTorch (the eager reference every backend is checked against)",
            "pip install 'graphcnn[torch]'",
        ) from None
    if device == "cuda" and not torch.cuda.is_available():
        why = "CUDA is not available here (torch.cuda.is_available() is False)"
        for name in names:
            result.backends.append(BackendInfo(name, "skipped", why))
            for b in sizes:
                result.measurements.append(Measurement(name, b, "skipped", why))
        env["loadavg_after"] = _loadavg()
        return result
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    if peak_flops is None:
        result.peak_flops, result.peak_source = _peak(device, half)

    total = len(names) + 1 + len(names) * len(sizes)
    done = 0.0

    def report(text: str, step: float = 0.0) -> None:
        if progress is not None:
            progress(text, done + step, total)

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        from graphcnn.passes import optimize

        from graphcnn.weights import init_weights

        report("preparing weights and passes")
        w = dict(weights) if weights is not None else init_weights(graph, seed)
        deploy, deploy_w, _ = optimize(graph, w, pipeline)
        assert deploy_w is not None
        ctx = _Context(
            graph, w, deploy, deploy_w, device, half, threads, sizes, seed, calibration, shape
        )
        ref_forward = _inference(_reference_module(ctx))
        ref_sync = _torch_sync(device)
        env["torch_threads"] = torch.get_num_threads()
        done += 1

        runners: dict[str, _Runner] = {}
        for name in names:
            report(f"setting up {name}")
            t0 = time.perf_counter()
            info = BackendInfo(name, "ready")
            try:
                runner = _SETUP[name](ctx)
                runners[name] = runner
                info.dtype, info.detail = runner.dtype, runner.detail
                if runner.fallback_reason:
                    info.status, info.reason = "fallback", runner.fallback_reason
            except _Skip as e:
                info.status, info.reason = "skipped", str(e)
            except Exception as e:  # noqa: BLE001 - any backend error is reported, not raised
                info.status, info.reason = "failed", _short(e)
            info.setup_s = time.perf_counter() - t0
            result.backends.append(info)
            done += 1
        result.calibration = ctx.calibration_source or (
            "not used" if "ort-int8" not in names else ""
        )

        from graphcnn.backends.quantize import synthetic_calibration

        inputs = synthetic_calibration(shape, max(sizes), seed + 1)
        for b in sizes:
            x = inputs[:b]
            ref_in = prepare_torch_input(x, device, None)
            ref = _torch_to_numpy(ref_forward(ref_in))
            ref_sync()
            for name in names:
                info = next(i for i in result.backends if i.name == name)
                ready = runners.get(name)
                m = Measurement(name, b, "ok", dtype=info.dtype, peak_flops=result.peak_flops)
                m.flops = flops_per_sample * b
                if ready is None:
                    m.status, m.reason = info.status, info.reason
                    result.measurements.append(m)
                    done += 1
                    continue
                report(f"{name} batch {b}: checking")
                try:
                    _measure(ready, info, m, x, ref, tol, warmup, repeat, min_time, report)
                except Exception as e:  # noqa: BLE001
                    m.status, m.reason = "failed", _short(e)
                    m.latency = None
                result.measurements.append(m)
                done += 1
        _speedups(result)
        report("done")
    finally:
        torch.set_num_threads(old_threads)
        env["loadavg_after"] = _loadavg()
    return result


def _measure(
    runner: _Runner,
    info: BackendInfo,
    m: Measurement,
    x: Array,
    ref: Array,
    tol: Mapping[str, float],
    warmup: int,
    repeat: int,
    min_time: float,
    report: Callable[[str, float], None],
) -> None:
    inp = runner.prepare(x)
    t0 = time.perf_counter()
    try:
        y = runner.forward(inp)
        runner.sync()
    except Exception as e:
        if runner.fallback is None or runner.forward is runner.fallback:
            raise
        runner.fallback_reason = f"torch.compile failed: {_short(e)}"
        runner.forward = runner.fallback
        info.status, info.reason = "fallback", runner.fallback_reason
        y = runner.forward(inp)
        runner.sync()
    m.first_call_s = time.perf_counter() - t0
    m.accuracy = compare(runner.to_numpy(y), ref, tol.get(runner.dtype, TOLERANCES["float32"]))
    if runner.fallback_reason:
        m.status, m.reason = "fallback", runner.fallback_reason
    del y
    fwd, sync = runner.forward, runner.sync

    def call() -> None:
        fwd(inp)
        sync()

    label = f"{runner.name} batch {m.batch}"
    report(f"{label}: timing", 0.0)

    def tick(n: int) -> None:
        report(f"{label}: timing ({n} calls)", min(0.99, n / max(repeat, 1)))

    m.latency = summarize(time_calls(call, warmup, repeat, min_time, tick=tick))


def _speedups(result: BenchResult) -> None:
    for m in result.measurements:
        base = result.measurement("torch", m.batch)
        if m.latency and base is not None and base.latency:
            m.speedup = base.latency.p50 / m.latency.p50


# --------------------------------------------------------------------------- output


def _ms(x: float) -> str:
    return f"{x * 1e3:.3f}" if x < 0.01 else f"{x * 1e3:.2f}" if x < 1 else f"{x * 1e3:.1f}"


def render(result: BenchResult) -> list[RenderableType]:
    """The rich table and the notes below it (``graphcnn bench`` without ``--json``)."""
    from rich.table import Table
    from rich.text import Text

    dtype = HALF_TYPES[result.half] if result.half else "float32"
    threads = (
        f"{result.threads} thread{'s' if result.threads > 1 else ''}"
        if result.threads
        else "default threads"
    )
    title = (
        f"{result.model}: input {'x'.join(map(str, result.input))}, {result.device} ({threads}), "
        f"{dtype}, pipeline {result.pipeline}"
    )
    table = Table(title=title, title_justify="left")
    cols = (
        "backend",
        "batch",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "img/s",
        "speed-up",
        "GFLOP/s",
        "% peak",
        "max error",
        "top-1",
    )
    for i, col in enumerate(cols):
        table.add_column(col, justify="left" if i == 0 else "right")
    for m in result.measurements:
        if m.latency is None:
            continue
        lat = m.latency
        acc = m.accuracy
        err: Text | str = "-"
        top1 = "-"
        if acc is not None:
            text = f"{acc.rel_error:.1e}" if math.isfinite(acc.rel_error) else "nan"
            err = Text(text + " FLAGGED", style="bold red") if m.flagged else Text(text)
            top1 = f"{100 * acc.top1_agreement:.0f}% of {acc.n}"
        name = m.backend + (" (eager fallback)" if m.status == "fallback" else "")
        table.add_row(
            Text(name + ("" if m.dtype in ("float32", "int8") else f" ({m.dtype})")),
            str(m.batch),
            _ms(lat.p50),
            _ms(lat.p90),
            _ms(lat.p99),
            f"{m.throughput:,.1f}" if m.throughput else "-",
            f"{m.speedup:.2f}x" if m.speedup else "-",
            f"{m.gflops:,.1f}" if m.gflops else "-",
            f"{100 * m.peak_fraction:.1f}%" if m.peak_fraction else "-",
            err,
            top1,
        )
    out: list[RenderableType] = [table]
    for b in result.backends:
        if b.status in ("skipped", "failed", "fallback"):
            style = {"skipped": "yellow", "failed": "bold red", "fallback": "yellow"}[b.status]
            out.append(Text(f"{b.status} {b.name}: {b.reason}", style=style))
    for m in result.measurements:
        info = result.backend(m.backend)
        if m.status == "failed" and info is not None and info.status != "failed":
            out.append(Text(f"failed {m.backend} batch {m.batch}: {m.reason}", style="bold red"))
    for m in result.flagged:
        acc = m.accuracy
        assert acc is not None
        out.append(
            Text(
                f"FLAGGED {m.backend} batch {m.batch}: max |y - ref| / max |ref| = "
                f"{acc.rel_error:.3g} > tolerance {acc.tolerance:g} for {m.dtype}",
                style="bold red",
            )
        )
    peak = f"{result.peak_flops / 1e9:,.1f} GFLOP/s" if result.peak_flops else "unknown"
    env = result.environment
    notes = [
        f"reference: torch eager float32; error = max|y - ref| / max|ref| of the logits; "
        f"tolerances: {', '.join(f'{k} {v:g}' for k, v in TOLERANCES.items())}",
        f"FLOPs/sample {result.flops_per_sample:,} (graph as compiled); peak {peak} "
        f"({result.peak_source}); int8 rows are compared with the float32 peak too",
        f"timing: {result.warmup} warm-up calls, then >= {result.repeat} calls and "
        f">= {result.min_time:g} s per row; img/s = batch / p50; speed-up vs torch eager p50",
        f"load average before {env.get('loadavg_before')} after {env.get('loadavg_after')} "
        f"on {env.get('nproc')} CPUs: shared machines are noisy, compare rows of one run",
    ]
    if result.calibration and result.calibration != "not used":
        notes.insert(1, f"int8 calibration: {result.calibration}")
    out += [Text(n, style="dim") for n in notes]
    return out


def plot(result: BenchResult, path: str | Path) -> Path:
    """A bar chart of throughput per backend per batch size, written atomically as PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib", "pip install 'graphcnn[plot]' (or pip install matplotlib)"
        ) from None
    import io

    from graphcnn.weights import write_atomic

    rows = [m for m in result.measurements if m.latency is not None]
    batches = sorted({m.batch for m in rows})
    names = [n for n in BACKENDS if any(m.backend == n for m in rows)]
    fig = Figure(figsize=(max(6.0, 1.0 + 1.1 * max(1, len(batches)) * max(1, len(names)) / 2), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys = [], []
        flagged = False
        for j, b in enumerate(batches):
            m = result.measurement(name, b)
            if m is not None and m.throughput:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(m.throughput)
                flagged = flagged or m.flagged
        label = name + (" (error FLAGGED)" if flagged else "")
        bars = ax.bar(xs, ys, width, label=label, hatch="//" if flagged else None)
        ax.bar_label(bars, labels=[f"{y:,.0f}" if y >= 100 else f"{y:.3g}" for y in ys], fontsize=7)
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set_ylabel("throughput (images/s, at p50 latency)")
    threads = f", {result.threads} threads" if result.threads else ""
    ax.set_title(f"{result.model} on {result.device}{threads}")
    if names:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    out = Path(path)
    write_atomic(out, buf.getvalue())
    return out


def check_plot_support() -> None:
    """Raise :class:`BenchError` early if ``--plot`` cannot work (matplotlib missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib", "pip install 'graphcnn[plot]' (or pip install matplotlib)"
        ) from None
