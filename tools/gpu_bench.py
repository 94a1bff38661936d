"""GPU comparison of graphcnn's lowerings: one script for a lent GPU machine.

For each model (default resnet50 and mobilenet_v2, seeded weights: no network needed) and each
batch (default 1, 32, 256) it runs, checks against float32 eager, and times:

==========================  ====================================================================
``eager-fp32``              :func:`graphcnn.backends.to_torch.to_torch`, eval, inference_mode
``eager-fp16-cl``           the same module in float16, channels_last weights and input
``eager-bf16-cl``           the same in bfloat16
``compile-fp16``            ``torch.compile(mode="max-autotune", dynamic=False)`` of the fp16
                            channels_last module (Triton GEMM/conv autotuning + CUDA graphs)
``cudagraph-fp16``          the fp16 channels_last eager module captured once in a CUDA graph
                            per batch (static input buffer, replay)
``ort-cuda-fp32``           ONNX Runtime, CUDA execution provider, I/O bound to torch tensors
``ort-cuda-fp16``           the same with float16 weights and activations (Cast at the edges)
``tensorrt-fp16``           :func:`graphcnn.backends.to_tensorrt.to_tensorrt` when ``tensorrt``
(and ``tensorrt-fp32``)     imports; else skipped with the reason
==========================  ====================================================================

Each measurement: ``--warmup`` calls, then CUDA-event-timed calls until ``--iters`` calls and
``--min-time`` seconds; p50/mean latency, images/s, achieved TFLOP/s (the model's exact FLOPs
from :func:`graphcnn.cost.profile` x batch / p50) and that as a share of the GPU's *dense FP16
tensor peak* (:data:`FP16_PEAKS`; 989 TFLOP/s on H100 SXM; ``--peak-tflops`` overrides), and the
output's max |error| relative to max |fp32 eager output|. Results go to ``OUT/gpu_bench.json``
and ``OUT/gpu_bench.md`` (a markdown table), rewritten after every measurement so a run that is
cut off still leaves what it measured. A variant that fails is recorded with its error and the
run goes on.

``--dry-run`` runs everything on the CPU at tiny sizes (3x32x32, batches 1 and 2, two timed
calls), to exercise the code paths anywhere: float16 becomes bfloat16 (CPU kernels), compile
uses the ``eager`` backend (no Triton), ORT the CPU provider, CUDA graphs and TensorRT are
skipped with the reason.

Examples (on the GPU machine)::

    .venv/bin/python tools/gpu_bench.py --out gpu-results
    .venv/bin/python tools/gpu_bench.py --models resnet50 --batches 32 \
        --variants eager-fp32,compile-fp16
    .venv/bin/python tools/gpu_bench.py --dry-run --out /tmp/dry
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS = ("resnet50", "mobilenet_v2")
BATCHES = (1, 32, 256)
VARIANTS = (
    "eager-fp32",
    "eager-fp16-cl",
    "eager-bf16-cl",
    "compile-fp16",
    "cudagraph-fp16",
    "ort-cuda-fp32",
    "ort-cuda-fp16",
    "tensorrt-fp32",
    "tensorrt-fp16",
)
FP16_PEAKS = (
    # (substring of torch.cuda.get_device_name(), dense FP16 tensor TFLOP/s, source)
    ("H100 PCIe", 756.0, "H100 PCIe datasheet, dense"),
    ("H100 NVL", 835.0, "H100 NVL datasheet, dense"),
    ("H100", 989.0, "H100 SXM5 datasheet, dense"),
    ("H200", 989.0, "H200 SXM datasheet, dense"),
    ("GH200", 989.0, "GH200 datasheet, dense"),
    ("A100", 312.0, "A100 datasheet, dense"),
    ("L40S", 362.0, "L40S datasheet, dense"),
    ("L4", 121.0, "L4 datasheet, dense"),
)
TOLERANCES = {"float32": 1e-3, "float16": 2e-2, "bfloat16": 6e-2}
"""Max |error| / max |fp32 output| accepted per compute dtype (flagged, not fatal, here)."""
DRY = {"input": (3, 32, 32), "batches": (1, 2), "warmup": 1, "iters": 2, "min_time": 0.0}


# --------------------------------------------------------------------------- helpers (tested)


def rel_error(y: Any, ref: Any) -> float:
    """max |y - ref| / max |ref| over float32 copies (torch tensors or arrays)."""
    import numpy as np

    a = _np(y)
    b = _np(ref)
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12))


def _np(t: Any) -> Any:
    import numpy as np

    if isinstance(t, (list, tuple)):
        t = t[0]
    if hasattr(t, "detach"):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def half_module(module: Any, dtype: Any, channels_last: bool = True) -> Any:
    """A copy of ``module`` in ``dtype`` (and channels_last memory format), eval mode."""
    import copy

    import torch

    m = copy.deepcopy(module).to(dtype=dtype).eval()
    return m.to(memory_format=torch.channels_last) if channels_last else m


def half_input(x: Any, dtype: Any, channels_last: bool = True) -> Any:
    import torch

    y = x.to(dtype=dtype)
    return y.contiguous(memory_format=torch.channels_last) if channels_last and y.dim() == 4 else y


class CudaGraphRunner:
    """``fn`` captured in a CUDA graph for inputs shaped like ``example``; ``self(x)`` copies x
    into the static input, replays, and returns a clone of the static output."""

    def __init__(self, fn: Callable[[Any], Any], example: Any, warmup: int = 3) -> None:
        import torch

        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):  # allocator and cuDNN warm-up outside the capture
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_out = fn(self.static_in)

    def __call__(self, x: Any) -> Any:
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out.clone()


def to_fp16_onnx(model: Any) -> Any:
    """An ONNX model computing in float16 with float32 inputs/outputs (Cast at the edges).

    Float initializers become float16; graph inputs get ``Cast(to=FLOAT16)`` and outputs a final
    ``Cast(to=FLOAT)``. Enough for graphcnn's CNN lowerings (Conv, Gemm, BatchNormalization,
    pools, activations, Add/Mul/Concat, Clip with float bounds, Reshape with int64 shapes).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for i, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init).astype(np.float16)
            g.initializer[i].CopyFrom(numpy_helper.from_array(arr, init.name))
    inits = {i.name for i in g.initializer}
    casts = []
    for inp in g.input:
        if inp.name in inits or inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        new = f"{inp.name}.fp16"
        for node in g.node:
            node.input[:] = [new if n == inp.name else n for n in node.input]
        casts.append(helper.make_node("Cast", [inp.name], [new], name=new, to=TensorProto.FLOAT16))
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        new = f"{out.name}.fp16"
        for node in g.node:
            node.output[:] = [new if n == out.name else n for n in node.output]
            node.input[:] = [new if n == out.name else n for n in node.input]
        g.node.append(
            helper.make_node(
                "Cast", [new], [out.name], name=f"{out.name}.fp32", to=TensorProto.FLOAT
            )
        )
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]  # stale float32 annotations
    return m


def gpu_peak(name: str, override_tflops: float | None = None) -> tuple[float | None, str]:
    """(dense FP16 peak FLOP/s, where the number comes from) for a device name."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    for key, tflops, source in FP16_PEAKS:
        if key.lower() in name.lower():
            return tflops * 1e12, source
    return None, f"unknown device {name!r} (pass --peak-tflops)"


@dataclass
class Timing:
    samples_ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def measure(fn: Callable[[], Any], cuda: bool, warmup: int, iters: int, min_time: float) -> Timing:
    """Warm up, then time single calls (CUDA events on the GPU) until ``iters`` and ``min_time``."""
    import torch

    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    t = Timing()
    start = time.perf_counter()
    while len(t.samples_ms) < iters or (time.perf_counter() - start) < min_time:
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            t.samples_ms.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            t.samples_ms.append((time.perf_counter() - t0) * 1e3)
        if len(t.samples_ms) >= 10_000:
            break
    return t


# --------------------------------------------------------------------------- the run


class Skip(Exception):
    """A variant that cannot run here (the message says why)."""


@dataclass
class Ctx:
    name: str
    graph: Any
    weights: Any
    module: Any  # fp32 eager, on the device
    device: str
    dry: bool
    onnx_bytes: bytes
    cache: dict[str, Any] = field(default_factory=dict)


def _half(ctx: Ctx, kind: str) -> Any:
    import torch

    dtype = torch.bfloat16 if kind == "bf16" or ctx.dry else torch.float16
    key = f"half-{dtype}"
    if key not in ctx.cache:
        ctx.cache[key] = half_module(ctx.module, dtype)
    return ctx.cache[key], dtype


def _setup(variant: str, ctx: Ctx, x: Any) -> tuple[Callable[[], Any], str]:
    """``(zero-argument call producing the output for input x, compute dtype name)``."""
    import torch

    cuda = ctx.device == "cuda"
    if variant == "eager-fp32":
        return (lambda: ctx.module(x)), "float32"
    if variant in ("eager-fp16-cl", "eager-bf16-cl"):
        m, dtype = _half(ctx, "bf16" if "bf16" in variant else "fp16")
        xh = half_input(x, dtype)
        return (lambda: m(xh)), str(dtype).removeprefix("torch.")
    if variant == "compile-fp16":
        m, dtype = _half(ctx, "fp16")
        key = "compiled"
        if key not in ctx.cache:
            if ctx.dry:
                ctx.cache[key] = torch.compile(m, backend="eager", dynamic=False)
            else:
                ctx.cache[key] = torch.compile(m, mode="max-autotune", dynamic=False)
        fn = ctx.cache[key]
        xh = half_input(x, dtype)
        return (lambda: fn(xh).clone()), str(dtype).removeprefix("torch.")
    if variant == "cudagraph-fp16":
        if not cuda:
            raise Skip("CUDA graphs need a CUDA device")
        m, dtype = _half(ctx, "fp16")
        xh = half_input(x, dtype)
        runner = CudaGraphRunner(m, xh)
        return (lambda: runner(xh)), str(dtype).removeprefix("torch.")
    if variant in ("ort-cuda-fp32", "ort-cuda-fp16"):
        from graphcnn.backends.ort_engine import OrtEngine, usable_providers

        fp16 = variant.endswith("fp16")
        if cuda and "CUDAExecutionProvider" not in usable_providers():
            raise Skip(f"ONNX Runtime's CUDA provider is not usable here ({usable_providers()})")
        key = f"ort-{fp16}"
        if key not in ctx.cache:
            import onnx

            model: Any = ctx.onnx_bytes
            if fp16:
                model = to_fp16_onnx(onnx.load_model_from_string(ctx.onnx_bytes))
            ctx.cache[key] = OrtEngine(model, device="cuda" if cuda else "cpu")
        eng = ctx.cache[key]
        return (lambda: eng.run_torch(x)[0]), "float16" if fp16 else "float32"
    if variant in ("tensorrt-fp32", "tensorrt-fp16"):
        from graphcnn.backends import to_tensorrt as trt_backend

        if not cuda:
            raise Skip("TensorRT needs a CUDA device")
        try:
            trt_backend.require_runtime()
        except trt_backend.TensorRTError as e:
            raise Skip(e.message) from None
        precision = variant.rsplit("-", 1)[1]
        b = int(x.shape[0])
        runner = trt_backend.to_tensorrt(
            ctx.graph, ctx.weights, batches=(b,), precision=precision,
            cache=trt_backend.EngineCache(),
        )  # fmt: skip
        return (lambda: runner(x)[0]), "float16" if precision == "fp16" else "float32"
    raise ValueError(f"unknown variant {variant!r}")


def environment(device: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from graphcnn.analysis.devices import machine

    host = machine()
    env: dict[str, Any] = {
        "python": host["python"],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": np.__version__,
        "platform": host["platform"],
        "device": device,
    }
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
    except ImportError:
        env["onnxruntime"] = None
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except ImportError:
        env["tensorrt"] = None
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, compute_capability=f"{p.major}.{p.minor}",
                   gpu_memory_gib=round(p.total_memory / 2**30, 1))  # fmt: skip
    return env


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    peak = report["peak_flops"]
    lines = [
        f"# graphcnn GPU comparison{' (dry run, CPU)' if report['dry_run'] else ''}",
        "",
        f"Device: {env.get('gpu', env['device'])}; torch {env['torch']} (CUDA {env['cuda']}), "
        f"onnxruntime {env.get('onnxruntime')}, tensorrt {env.get('tensorrt')}.",
        f"Peak: {peak / 1e12:.0f} TFLOP/s dense FP16 ({report['peak_source']})."
        if peak
        else f"Peak: unknown ({report['peak_source']}).",
        "TFLOP/s = exact model FLOPs x batch / p50 latency; error = max |y - fp32 eager| / "
        "max |fp32 eager|.",
        "",
        "| model | batch | variant | dtype | status | p50 ms | img/s | TFLOP/s | % FP16 peak "
        "| error |",
        "|---|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r["status"] != "ok":
            why = str(r.get("reason", "")).replace("|", "/")[:120]
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['variant']} | {r.get('dtype') or ''} | "
                f"{r['status']}: {why} | | | | | |"
            )
            continue
        pct = f"{100 * r['peak_fraction']:.1f}" if r.get("peak_fraction") is not None else ""
        flag = "" if r["accuracy_ok"] else " (!)"
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['variant']} | {r['dtype']} | ok | "
            f"{r['p50_ms']:.3f} | {r['images_per_s']:.0f} | {r['tflops']:.2f} | {pct} | "
            f"{r['rel_error']:.2e}{flag} |"
        )
    return "\n".join(lines) + "\n"


def _write(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_bench.md").write_text(markdown(report))


def run(args: argparse.Namespace, log: Callable[[str], Any] = print) -> dict[str, Any]:
    import numpy as np
    import torch

    import graphcnn
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.backends.to_torch import to_torch
    from graphcnn.cost import profile
    from graphcnn.weights import init_weights

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    if not dry and not torch.cuda.is_available():
        raise SystemExit("gpu_bench: no CUDA GPU here (torch.cuda.is_available() is False); "
                         "use --dry-run to exercise the code paths on the CPU")  # fmt: skip
    torch.manual_seed(args.seed)
    env = environment(device)
    peak, source = gpu_peak(env.get("gpu", ""), args.peak_tflops) if not dry else (None, "CPU")
    report: dict[str, Any] = {
        "dry_run": dry, "environment": env, "peak_flops": peak, "peak_source": source,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()
                     if k != "out"},
        "results": [],
    }  # fmt: skip
    out = Path(args.out)
    if not dry:
        torch.backends.cudnn.benchmark = True
    for name in args.models:
        g = graphcnn.compile(name, input_shape=tuple(args.input) if args.input else None)
        weights = init_weights(g, args.seed)
        module = to_torch(g, weights).eval().to(device)
        flops = profile(g.inference()).totals.flops  # per sample
        ctx = Ctx(name, g, weights, module, device, dry, to_onnx(g, weights).SerializeToString())
        sample = tuple(g.inputs[0].type.sample_shape)
        rng = np.random.default_rng(args.seed + 1)
        for b in args.batches:
            x = torch.from_numpy(rng.standard_normal((b, *sample), dtype=np.float32)).to(device)
            with torch.inference_mode():
                ref = module(x).float()
            for variant in args.variants:
                row: dict[str, Any] = {"model": name, "batch": b, "variant": variant,
                                       "flops_per_sample": flops}  # fmt: skip
                t0 = time.perf_counter()
                try:
                    with torch.inference_mode():
                        fn, dtype = _setup(variant, ctx, x)
                        row["dtype"] = dtype
                        y = fn()  # the first call compiles / builds
                        row["first_call_s"] = round(time.perf_counter() - t0, 3)
                        err = rel_error(y, ref)
                        t = measure(fn, device == "cuda", args.warmup, args.iters, args.min_time)
                except Skip as e:
                    row.update(status="skipped", reason=str(e))
                except Exception as e:  # noqa: BLE001 - one variant failing must not end the run
                    row.update(status="error", reason=f"{type(e).__name__}: {e}",
                               traceback=traceback.format_exc(limit=4))  # fmt: skip
                else:
                    p50_s = t.p50 / 1e3
                    achieved = flops * b / p50_s
                    row.update(
                        status="ok", p50_ms=t.p50, mean_ms=t.mean, samples=len(t.samples_ms),
                        images_per_s=b / p50_s, tflops=achieved / 1e12,
                        peak_fraction=achieved / peak if peak else None, rel_error=err,
                        tolerance=TOLERANCES[dtype], accuracy_ok=err <= TOLERANCES[dtype],
                    )  # fmt: skip
                report["results"].append(row)
                _write(out, report)
                shown = (f"{row['p50_ms']:.3f} ms, {row['tflops']:.2f} TFLOP/s, err "
                         f"{row['rel_error']:.1e}" if row["status"] == "ok"
                         else f"{row['status']}: {row.get('reason', '')[:160]}")  # fmt: skip
                log(f"{name} b={b} {variant}: {shown}")
        del ctx, module
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()
    _write(out, report)
    return report


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(p) for p in text.split(",") if p.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=_csv(str), default=list(MODELS))
    ap.add_argument("--batches", type=_csv(int), default=None, help="default 1,32,256")
    ap.add_argument("--variants", type=_csv(str), default=list(VARIANTS))
    ap.add_argument("--input", type=_csv(int), default=None, metavar="C,H,W",
                    help="replace the models' input size")  # fmt: skip
    ap.add_argument("--warmup", type=int, default=None, help="default 10")
    ap.add_argument("--iters", type=int, default=None, help="default 50")
    ap.add_argument("--min-time", type=float, default=None, help="seconds; default 1.0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense FP16 peak override")
    ap.add_argument("--out", default="gpu-bench", help="folder for gpu_bench.json / .md")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: exercise the paths")
    args = ap.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    defaults = DRY if args.dry_run else {"input": None, "batches": BATCHES, "warmup": 10,
                                         "iters": 50, "min_time": 1.0}  # fmt: skip
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, list(value) if isinstance(value, tuple) else value)
    if any(b < 1 for b in args.batches):
        ap.error("batches must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    n = {s: sum(r["status"] == s for r in report["results"]) for s in ("ok", "skipped", "error")}
    print(f"wrote {Path(args.out) / 'gpu_bench.json'} and gpu_bench.md: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
