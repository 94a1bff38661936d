"""ONNX lowering benchmark (issue: ONNX lowering). A benchmark script, not a timed test.

Everything runs side by side in one run, with interleaved repetitions (the order alternates every
repetition) and medians; the load average is recorded before and after each part.

1. Compile speed, whole processes, wall clock: ``graphcnn compile resnet50 --target onnx -o X``
   against a fresh Python process that imports torch + torchvision, builds
   ``torchvision.models.resnet50()`` (eval) and runs ``torch.onnx.export`` with the DEFAULT
   exporter (``dynamo=True`` in torch 2.x; needs onnxscript), with a dynamic batch like ours.
   The legacy TorchScript exporter (``dynamo=False``) is timed the same way, for reference.
   Requirement: ours >= 5x faster than the default exporter (ratio of medians).
2. CPU inference, resnet50, 224x224, ``--threads`` threads (default 2: ``torch.set_num_threads``,
   ONNX Runtime ``intra_op_num_threads``; inter-op 1), batches 1 and 8, all with torchvision's
   (seeded, random) weights:
   - ours: ``graphcnn compile resnet50 --target onnx --pipeline inference --weights W.pt`` (the
     CLI, with the state dict saved by torch), run by ``OrtEngine`` (CPU, graph optimisation
     "all");
   - PyTorch eager: the torchvision module, ``eval()``, under ``torch.inference_mode()``;
   - ONNX Runtime on ``torch.onnx.export``'s model of the same module (default exporter with its
     default optimisation, and the legacy exporter);
   - INT8: ``backends.quantize.quantize_int8`` of our FP32 model (QDQ, per-channel int8 weights,
     uint8 activations, minmax calibration on synthetic images), agreement with FP32 reported by
     ``accuracy_report`` on held-out synthetic images.
   Every model is checked against PyTorch eager first. Each timed sample is the mean of several
   calls (about ``--sample-s`` seconds). Requirements: ours >= 1.5x faster than PyTorch eager at
   batch 1; ours no slower than ORT on the exported model (batches 1 and 8); INT8 >= 2.5x faster
   than our FP32 model in ORT (batches 1 and 8).
3. Achieved GFLOP/s: ``graphcnn.profile`` FLOPs of the graph that runs (resnet50 after the
   inference pipeline; x batch) / median latency, against this machine's measured float32 GEMM
   peak (``graphcnn.analysis.devices`` cpu profile: numpy matmul with all cores, cached).

Examples::

    .venv/bin/python tools/bench_onnx.py                         # everything (~10 minutes)
    .venv/bin/python tools/bench_onnx.py --repeat 9 --json-out /tmp/bench_onnx.json
    .venv/bin/python tools/bench_onnx.py --no-compile --batches 1  # inference only, batch 1
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "resnet50"
COMPILE_SPEEDUP = 5.0
"""graphcnn compile must be at least this many times faster than the default exporter."""
EAGER_SPEEDUP = 1.5
"""Our FP32 model in ORT must be at least this many times faster than PyTorch eager (batch 1)."""
EXPORT_SPEEDUP = 1.0
"""... and no slower than ORT running torch.onnx.export's model."""
INT8_SPEEDUP = 2.5
"""INT8 must be at least this many times faster than our FP32 model in ORT."""
TOLERANCE = 1e-4
"""max |model - PyTorch eager| / max |PyTorch eager| accepted for the FP32 models."""

BIN = Path(sys.executable).parent
GRAPHCNN = (
    [str(BIN / "graphcnn")]
    if (BIN / "graphcnn").exists()
    else [
        sys.executable,
        "-m",
        "graphcnn.cli",
    ]
)

EXPORT_CHILD = textwrap.dedent("""
    import sys, warnings
    import torch, torchvision
    warnings.simplefilter("ignore")
    model = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    if sys.argv[1] == "dynamo":  # the default exporter of torch.onnx.export
        torch.onnx.export(model, (x,), sys.argv[2], input_names=["x"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("N")},))
    else:
        torch.onnx.export(model, (x,), sys.argv[2], dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
""")


# ------------------------------------------------------------------------------------- helpers
def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return sorted(have & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma"})
    except OSError:
        pass
    return []


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _stats(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rel_err(a: Any, ref: Any) -> float:
    import numpy as np

    return float(np.abs(a.astype(np.float64) - ref).max() / np.abs(ref).max())


# ------------------------------------------------------------------------------ 1. compile speed
def bench_compile(repeat: int, warmup: int, work: Path, legacy: bool) -> dict[str, Any]:
    """Whole processes, wall clock, interleaved; every output is checked to load."""
    routes: dict[str, list[str]] = {
        "graphcnn compile --target onnx": [
            *GRAPHCNN,
            "compile",
            MODEL,
            "--target",
            "onnx",
            "-o",
            str(work / "c_ours.onnx"),
        ],
        "torch.onnx.export (default: dynamo)": [
            sys.executable,
            "-c",
            EXPORT_CHILD,
            "dynamo",
            str(work / "c_dynamo.onnx"),
        ],
    }
    if legacy:
        routes["torch.onnx.export (dynamo=False)"] = [
            sys.executable,
            "-c",
            EXPORT_CHILD,
            "legacy",
            str(work / "c_legacy.onnx"),
        ]
    names = list(routes)

    def run(name: str) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(routes[name], capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return dt

    for _ in range(warmup):
        for name in names:
            run(name)
    samples: dict[str, list[float]] = {n: [] for n in names}
    load = [_loadavg()]
    for r in range(repeat):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(run(name))
        load.append(_loadavg())
        _log(
            f"  compile repetition {r + 1}/{repeat}: "
            + ", ".join(f"{n.split(' (')[0]} {samples[n][-1]:.2f}s" for n in order)
        )
    import onnx

    sizes = {}
    for f in sorted(work.glob("c_*.onnx*")):
        sizes[f.name] = f.stat().st_size
    for f in ("c_ours.onnx", "c_dynamo.onnx", "c_legacy.onnx"):
        if (work / f).exists():
            onnx.checker.check_model(str(work / f))
    res = {n: _stats(s) for n, s in samples.items()}
    ours = res[names[0]]["median"]
    return {
        "routes": res,
        "speedup_vs_dynamo": res[names[1]]["median"] / ours,
        "speedup_vs_dynamo_minima": res[names[1]]["min"] / res[names[0]]["min"],
        "speedup_vs_legacy": res[names[2]]["median"] / ours if legacy else None,
        "requirement": COMPILE_SPEEDUP,
        "file_sizes": sizes,
        "loadavg": load,
    }


# ---------------------------------------------------------------------------------- 2. inference
def build_models(work: Path, threads: int, calib: int, legacy: bool) -> dict[str, Any]:
    """The torchvision module and the ONNX models of it (ours fp32/int8, exported)."""
    import warnings

    import torch
    import torchvision

    from graphcnn.backends.quantize import (
        SYNTHETIC_HELD_OUT,
        accuracy_report,
        quantize_int8,
        synthetic_calibration,
    )

    torch.manual_seed(0)
    tv = torchvision.models.resnet50().eval()
    # non-trivial batch-norm statistics, so folding them is real work and really checked
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    weights = work / "resnet50.pt"
    torch.save(tv.state_dict(), weights)
    paths: dict[str, Path] = {}
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    ours = work / "ours.onnx"
    cmd = [
        *GRAPHCNN,
        "compile",
        MODEL,
        "--target",
        "onnx",
        "--pipeline",
        "inference",
        "--weights",
        str(weights),
        "-o",
        str(ours),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"graphcnn compile failed:\n{proc.stderr[-3000:]}")
    timings["graphcnn compile --pipeline inference"] = time.perf_counter() - t0
    paths["ours fp32"] = ours

    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        dyn = work / "export_dynamo.onnx"
        torch.onnx.export(
            tv,
            (x,),
            str(dyn),
            input_names=["x"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("N")},),
        )
        timings["torch.onnx.export dynamo (in-process)"] = time.perf_counter() - t0
        paths["torch.onnx.export (dynamo)"] = dyn
        if legacy:
            t0 = time.perf_counter()
            leg = work / "export_legacy.onnx"
            torch.onnx.export(
                tv,
                (x,),
                str(leg),
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
            )
            timings["torch.onnx.export legacy (in-process)"] = time.perf_counter() - t0
            paths["torch.onnx.export (legacy)"] = leg

    int8_report: dict[str, Any] = {}
    if calib > 0:
        t0 = time.perf_counter()
        q = quantize_int8(
            ours, work / "ours.int8.onnx", synthetic_calibration((3, 224, 224), calib, seed=0)
        )
        timings["quantize_int8"] = time.perf_counter() - t0
        paths["ours int8"] = q
        held = synthetic_calibration((3, 224, 224), SYNTHETIC_HELD_OUT, seed=1)
        int8_report = accuracy_report(ours, q, held, threads=threads)
    return {
        "torchvision": tv,
        "paths": paths,
        "build_s": timings,
        "int8_report": int8_report,
        "sizes": {
            k: sum(f.stat().st_size for f in p.parent.glob(p.name + "*")) for k, p in paths.items()
        },
    }


def bench_inference(
    built: dict[str, Any],
    batches: list[int],
    repeat: int,
    warmup: int,
    sample_s: float,
    threads: int,
) -> dict[str, Any]:
    import numpy as np
    import torch

    from graphcnn.backends.ort_engine import OrtEngine

    tv = built["torchvision"]
    engines = {k: OrtEngine(p, device="cpu", threads=threads) for k, p in built["paths"].items()}
    for k, e in engines.items():
        assert e.providers[0] == "CPUExecutionProvider", (k, e.providers)

    def eager(x: Any) -> Any:
        with torch.inference_mode():
            return tv(torch.from_numpy(x)).numpy()

    runners: dict[str, Callable[[Any], Any]] = {"PyTorch eager": eager}
    for k, e in engines.items():
        runners[k] = (lambda eng: lambda x: eng.run(x)[0])(e)
    names = list(runners)
    out: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    for batch in batches:
        x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
        ref = eager(x)
        errors = {n: _rel_err(runners[n](x), ref) for n in names if n != "PyTorch eager"}
        for n, err in errors.items():
            if "int8" not in n and err > TOLERANCE:
                raise SystemExit(f"{n} disagrees with PyTorch eager: {err:.2e}")
        warm: dict[str, float] = {}
        for n in names:
            best = float("inf")
            for _ in range(max(1, warmup)):
                t0 = time.perf_counter()
                runners[n](x)
                best = min(best, time.perf_counter() - t0)
            warm[n] = best
        calls = {n: max(1, round(sample_s / max(warm[n], 1e-6))) for n in names}
        samples: dict[str, list[float]] = {n: [] for n in names}
        load = [_loadavg()]
        for r in range(repeat):
            order = names if r % 2 == 0 else names[::-1]
            for n in order:
                fn = runners[n]
                gc.collect()
                t0 = time.perf_counter()
                for _ in range(calls[n]):
                    fn(x)
                samples[n].append((time.perf_counter() - t0) / calls[n])
            load.append(_loadavg())
            _log(f"  batch {batch}: repetition {r + 1}/{repeat} done (load {_loadavg()})")
        res = {n: _stats(s) | {"calls_per_sample": calls[n]} for n, s in samples.items()}
        for n, err in errors.items():
            res[n]["rel_err_vs_eager"] = err
        out[str(batch)] = {"models": res, "loadavg": load}
    return out


def _ratio(res: dict[str, Any], slow: str, fast: str, stat: str = "median") -> float | None:
    """How many times faster ``fast`` is than ``slow``: ratio of medians (or of minima, or the
    median of the per-repetition ratios with ``stat="paired"``)."""
    if slow not in res or fast not in res:
        return None
    if stat == "paired":
        pairs = zip(res[slow]["samples"], res[fast]["samples"], strict=True)
        return float(statistics.median(a / b for a, b in pairs))
    return float(res[slow][stat] / res[fast][stat])


def analyse(inference: dict[str, Any], flops_per_sample: int, peak: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch, data in inference.items():
        m = data["models"]
        for r in m.values():
            r["gflops"] = flops_per_sample * int(batch) / r["median"] / 1e9
            r["fraction_of_peak"] = flops_per_sample * int(batch) / r["median"] / peak
        pairs = {
            "ours_vs_eager": ("PyTorch eager", "ours fp32"),
            "ours_vs_export_dynamo": ("torch.onnx.export (dynamo)", "ours fp32"),
            "ours_vs_export_legacy": ("torch.onnx.export (legacy)", "ours fp32"),
            "int8_vs_fp32": ("ours fp32", "ours int8"),
        }
        out[batch] = {k: _ratio(m, *v) for k, v in pairs.items()}
        for stat in ("min", "paired"):
            out[batch][stat] = {k: _ratio(m, *v, stat=stat) for k, v in pairs.items()}
    return out


# ----------------------------------------------------------------------------------------- main
def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value >= limit else "MISSED"


def print_report(rep: dict[str, Any]) -> None:
    m = rep["machine"]
    print(
        f"\nmachine: {m['cpu']} ({m['nproc']} cores, flags {','.join(m['cpu_flags'])}); "
        f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, onnx {m['onnx']}, "
        f"onnxscript {m['onnxscript']}; threads {rep['threads']}"
    )
    print(f"load average before {rep['loadavg_before']}, after {rep['loadavg_after']}")
    c = rep.get("compile")
    if c:
        print(
            f"\n1. compile {MODEL} to ONNX, whole processes, wall clock "
            f"({len(next(iter(c['routes'].values()))['samples'])} interleaved repetitions)"
        )
        print(f"  {'route':40s} {'median s':>9s} {'min s':>8s} {'max s':>8s}")
        for name, r in c["routes"].items():
            print(f"  {name:40s} {r['median']:9.2f} {r['min']:8.2f} {r['max']:8.2f}")
        print(
            f"  speed-up vs default exporter: {c['speedup_vs_dynamo']:.1f}x (medians; "
            f"{c['speedup_vs_dynamo_minima']:.1f}x minima), requirement >= "
            f"{COMPILE_SPEEDUP}x: {_verdict(c['speedup_vs_dynamo'], COMPILE_SPEEDUP)}"
        )
        if c["speedup_vs_legacy"] is not None:
            print(f"  speed-up vs legacy TorchScript exporter: {c['speedup_vs_legacy']:.1f}x")
    inf = rep.get("inference")
    if inf:
        peak = rep["peak_float32_flops"]
        print(
            f"\n2. CPU inference {MODEL} 224x224, {rep['threads']} threads; median latency per "
            f"call (ms); GFLOP/s = {rep['flops_per_sample'] / 1e9:.2f} GFLOP/sample x batch / "
            f"latency; peak (numpy float32 GEMM) {peak / 1e9:.1f} GFLOP/s"
        )
        for batch, data in inf.items():
            print(f"  batch {batch}:")
            print(
                f"    {'model':30s} {'median ms':>10s} {'min ms':>8s} {'GFLOP/s':>8s} "
                f"{'% peak':>7s} {'rel err':>9s}"
            )
            for name, r in data["models"].items():
                err = r.get("rel_err_vs_eager")
                print(
                    f"    {name:30s} {r['median'] * 1e3:10.2f} {r['min'] * 1e3:8.2f} "
                    f"{r['gflops']:8.1f} {100 * r['fraction_of_peak']:6.1f}% "
                    f"{'' if err is None else f'{err:9.1e}'}"
                )
            a = rep["ratios"][batch]
            lines = [
                (
                    "ours vs PyTorch eager",
                    a["ours_vs_eager"],
                    EAGER_SPEEDUP if batch == "1" else None,
                ),
                (
                    "ours vs ORT on torch.onnx.export (dynamo)",
                    a["ours_vs_export_dynamo"],
                    EXPORT_SPEEDUP,
                ),
                ("ours vs ORT on torch.onnx.export (legacy)", a["ours_vs_export_legacy"], None),
                ("INT8 vs FP32 (ours, ORT)", a["int8_vs_fp32"], INT8_SPEEDUP),
            ]
            keys = [
                "ours_vs_eager",
                "ours_vs_export_dynamo",
                "ours_vs_export_legacy",
                "int8_vs_fp32",
            ]
            for (label, v, limit), key in zip(lines, keys, strict=True):
                if v is None:
                    continue
                req = f", requirement >= {limit}x: {_verdict(v, limit)}" if limit else ""
                print(
                    f"    {label}: {v:.2f}x{req} (minima {a['min'][key]:.2f}x, "
                    f"paired {a['paired'][key]:.2f}x)"
                )
        r = rep.get("int8_report")
        if r:
            print(
                f"  INT8 vs FP32 on {r['n']} held-out synthetic images: top-1 agreement "
                f"{100 * r['top1_agreement']:.1f}%, logit error max {r['max_abs_error']:.3g} "
                f"(largest |logit| {r['max_abs_fp32']:.3g})"
            )
        print(
            "  model files: "
            + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in rep["model_sizes"].items())
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=7,
        help="timed, interleaved repetitions of every part (default 7)",
    )
    ap.add_argument(
        "--compile-repeat",
        type=int,
        default=None,
        help="repetitions of the whole-process compile part (default: --repeat)",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed warm-up runs of each route (default 1; inference: at least 1)",
    )
    ap.add_argument(
        "--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads (default 2)"
    )
    ap.add_argument("--batches", default="1,8", help="inference batch sizes (default 1,8)")
    ap.add_argument(
        "--sample-s",
        type=float,
        default=0.5,
        help="target seconds per inference sample; calls are repeated (default 0.5)",
    )
    ap.add_argument(
        "--calibration-samples",
        type=int,
        default=64,
        help="synthetic INT8 calibration images (default 64; 0 skips INT8)",
    )
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-speed part")
    ap.add_argument("--no-inference", action="store_true", help="skip the inference part")
    ap.add_argument(
        "--no-legacy",
        action="store_true",
        help="skip the legacy TorchScript exporter (dynamo=False)",
    )
    ap.add_argument(
        "--remeasure-peak",
        action="store_true",
        help="measure the float32 GEMM peak again instead of using the cached one",
    )
    ap.add_argument("--keep", metavar="DIR", help="write the models to DIR and keep them")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="LOAD",
        help="first wait (up to 10 minutes) for the 1-minute load average to drop below LOAD",
    )
    ap.add_argument("--json-out", metavar="PATH", help="write all results and samples as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--repeat and --threads must be >= 1, --warmup >= 0")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if args.wait_quiet is not None:
        deadline = time.monotonic() + 600
        while _loadavg() and _loadavg()[0] >= args.wait_quiet and time.monotonic() < deadline:
            _log(f"  waiting: load {_loadavg()}")
            time.sleep(15)

    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    import graphcnn
    from graphcnn.analysis.devices import cpu_profile, machine
    from graphcnn.passes import optimize

    host = machine()
    report: dict[str, Any] = {
        "model": MODEL,
        "threads": args.threads,
        "repeat": args.repeat,
        "machine": {
            "nproc": host["cpu_count"],
            "cpu": host["cpu_model"],
            "cpu_flags": _cpu_flags(),
            "platform": host["platform"],
            "python": host["python"],
            "torch": torch.__version__,
            "torchvision": _version("torchvision"),
            "onnx": _version("onnx"),
            "onnxruntime": _version("onnxruntime-gpu")
            if _version("onnxruntime") == "not installed"
            else _version("onnxruntime"),
            "onnxscript": _version("onnxscript"),
            "graphcnn": graphcnn.__version__,
        },
        "loadavg_before": _loadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.no_compile:
            _log("1. compile speed (whole processes)")
            report["compile"] = bench_compile(
                args.compile_repeat or args.repeat, args.warmup, work, not args.no_legacy
            )
        if not args.no_inference:
            _log("2. building the models (CLI compile, torch.onnx.export, quantize_int8)")
            built = build_models(work, args.threads, args.calibration_samples, not args.no_legacy)
            report["build_s"] = built["build_s"]
            report["int8_report"] = built["int8_report"]
            report["model_sizes"] = built["sizes"]
            g, _, _ = optimize(graphcnn.compile(MODEL), None, "inference")
            flops = graphcnn.profile(g.inference()).totals.flops
            peak = cpu_profile(remeasure=args.remeasure_peak).peak("float32")
            report["flops_per_sample"] = flops
            report["peak_float32_flops"] = peak
            _log("   timing inference")
            report["inference"] = bench_inference(
                built, batches, args.repeat, max(1, args.warmup), args.sample_s, args.threads
            )
            report["ratios"] = analyse(report["inference"], flops, peak)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["loadavg_after"] = _loadavg()
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
