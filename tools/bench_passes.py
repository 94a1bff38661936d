"""Speed of ``inference`` pipeline + ``analyze`` (issue: bottleneck cost analysis). A benchmark
script, not a timed test.

Budgets: densenet264 under 100 ms, a generated 10,000-layer plain network (tools/gen_plain.py)
under 2 s, and linear scaling (the 20,000-layer network at most about twice the 10,000-layer one).
Timed per case, in-process: ``apply_pipeline(g, "inference")`` then
``analyze(lean, device, training_graph=g)`` (the roofline, the advisor, the receptive field and
peak memory for inference and training: everything ``graphcnn analyze`` computes, without
printing). Compilation, weight initialisation and the one-time cpu measurement are excluded: the
graphs are compiled and the cpu profile is loaded (or measured and cached) before timing.
Repetitions are interleaved across cases; medians of wall clock and of process CPU time are
reported (on a shared machine CPU time is the steadier of the two), with a per-analysis
breakdown and, for comparison, the pipeline run through ``graphcnn.passes.optimize`` (which
profiles the graph around every pass to fill its reports).

Examples::

    .venv/bin/python tools/bench_passes.py
    .venv/bin/python tools/bench_passes.py --reps 9 --json-out /tmp/bench_passes.json
    .venv/bin/python tools/bench_passes.py --sizes 10000,20000,40000 --device h100-sxm
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

TOOLS = Path(__file__).resolve().parent

DENSENET = "densenet264"
DENSENET_BUDGET_S = 0.100
PLAIN_BUDGET_S = 2.0
PLAIN_BUDGET_N = 10_000
PIPELINE = "inference"


def _load_gen_plain() -> ModuleType:
    """tools/gen_plain.py as a module (tools/ is not a package)."""
    if "gen_plain" in sys.modules:
        return sys.modules["gen_plain"]
    spec = importlib.util.spec_from_file_location("gen_plain", TOOLS / "gen_plain.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_plain"] = module
    spec.loader.exec_module(module)
    return module


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result) of one call, after a full collection."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - w0, time.process_time() - c0, result


def bench(cases: dict[str, Any], device: Any, reps: int) -> dict[str, dict[str, Any]]:
    from graphcnn.analysis import advise_bottlenecks, peak_memory, receptive_field, roofline
    from graphcnn.analysis.report import analyze
    from graphcnn.cost import profile
    from graphcnn.passes import apply_pipeline, optimize

    samples: dict[str, dict[str, list[float]]] = {name: {} for name in cases}

    def add(name: str, key: str, value: float) -> None:
        samples[name].setdefault(key, []).append(value)

    for r in range(reps):
        for name, g in cases.items():
            w1, c1, lean = _timed(lambda g=g: apply_pipeline(g, PIPELINE))
            w2, c2, _ = _timed(
                lambda g=g, lean=lean: analyze(lean, device, training_graph=g, pipeline=PIPELINE)
            )
            add(name, "pipeline_wall", w1)
            add(name, "analyze_wall", w2)
            add(name, "total_wall", w1 + w2)
            add(name, "pipeline_cpu", c1)
            add(name, "analyze_cpu", c2)
            add(name, "total_cpu", c1 + c2)
            # breakdown (CPU seconds; the analyses share one profile, as in analyze), and the
            # pipeline run with per-pass reports
            p = profile(lean)
            parts: dict[str, Callable[[], Any]] = {
                "profile": lambda lean=lean: profile(lean),
                "roofline": lambda lean=lean, p=p: roofline.analyze(lean, device, profile=p),
                "advise_bottlenecks": lambda lean=lean, p=p: advise_bottlenecks.analyze(
                    lean, profile=p
                ),
                "receptive_field": lambda lean=lean: receptive_field.analyze(lean),
                "peak_memory_inference": lambda lean=lean: peak_memory.analyze(lean, 1, False),
                "peak_memory_training": lambda g=g: peak_memory.analyze(g, 1, True),
                "optimize_with_reports": lambda g=g: optimize(g, None, PIPELINE),
            }
            for part, fn in parts.items():
                add(name, f"part_cpu:{part}", _timed(fn)[1])
            print(
                f"  rep {r + 1}/{reps} {name:14s} pipeline {1e3 * w1:8.1f} ms  analyze "
                f"{1e3 * w2:8.1f} ms  (cpu {1e3 * (c1 + c2):8.1f} ms)",
                flush=True,
            )
    return {
        name: {
            "nodes": len(cases[name]),
            "median_s": {k: statistics.median(v) for k, v in s.items()},
            "min_s": {k: min(v) for k, v in s.items()},
            "samples_s": s,
        }
        for name, s in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--reps", type=int, default=5, help="repetitions per case (default 5)")
    ap.add_argument("--sizes", default="10000,20000", help="plain network sizes (layers)")
    ap.add_argument("--device", default="cpu", help="device profile (default cpu)")
    ap.add_argument("--json-out", type=Path, default=None, help="write all samples as JSON")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a budget is missed")
    args = ap.parse_args(argv)

    import graphcnn
    from graphcnn.analysis.devices import get_device

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    t0 = time.perf_counter()
    device = get_device(args.device)  # excluded: measured once, then cached
    print(f"device {device.name} ready in {time.perf_counter() - t0:.2f} s (not timed below)")
    gen = _load_gen_plain()
    cases: dict[str, Any] = {}
    compile_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in [(DENSENET, DENSENET)] + [
            (f"plain{n}", str(gen.write_plain(Path(tmp) / f"plain{n}.gcnn", n))) for n in sizes
        ]:
            t = time.perf_counter()
            cases[name] = graphcnn.compile(source)
            compile_s[name] = time.perf_counter() - t
    for name, g in cases.items():
        print(f"compiled {name}: {len(g)} nodes in {compile_s[name]:.2f} s (not timed below)")

    warm = {DENSENET: cases[DENSENET]}
    bench(warm, device, 1)  # imports, caches
    load_before = _loadavg()
    results = bench(cases, device, args.reps)
    load_after = _loadavg()

    print(f"\nmedians of {args.reps} (load average {load_before} -> {load_after}):")
    ok = True
    verdicts: dict[str, Any] = {}
    for name, r in results.items():
        med = r["median_s"]
        if name == DENSENET:
            budget = DENSENET_BUDGET_S
        else:
            n = int(name.removeprefix("plain"))
            budget = PLAIN_BUDGET_S * n / PLAIN_BUDGET_N
        wall, cpu = med["total_wall"], med["total_cpu"]
        verdicts[name] = {
            "budget_s": budget,
            "wall_ratio": wall / budget,
            "cpu_ratio": cpu / budget,
        }
        ok &= wall <= budget
        print(
            f"  {name:14s} {r['nodes']:6d} nodes  pipeline+analyze wall {1e3 * wall:8.1f} ms "
            f"cpu {1e3 * cpu:8.1f} ms  budget {1e3 * budget:7.0f} ms  wall/budget "
            f"{wall / budget:.2f}  cpu/budget {cpu / budget:.2f}  "
            f"({1e6 * cpu / r['nodes']:.1f} us/node cpu)"
        )
        parts = {k.split(":", 1)[1]: v for k, v in med.items() if k.startswith("part_cpu:")}
        print(
            "      cpu breakdown: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in parts.items())
        )
    plains = [name for name in results if name != DENSENET]
    if len(plains) >= 2:
        a, b = plains[0], plains[-1]
        na, nb = results[a]["nodes"], results[b]["nodes"]
        for key in ("total_wall", "total_cpu"):
            ratio = results[b]["median_s"][key] / results[a]["median_s"][key]
            print(f"  scaling {a} -> {b} ({key}): x{ratio:.2f} for x{nb / na:.2f} nodes")
            verdicts[f"scaling_{key}"] = {"ratio": ratio, "nodes_ratio": nb / na}
    print("all budgets met (wall clock)" if ok else "a budget was missed (wall clock)")
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "device": device.to_json(),
                    "compile_s": compile_s,
                    "reps": args.reps,
                    "loadavg": [load_before, load_after],
                    "results": results,
                    "verdicts": verdicts,
                },
                indent=1,
            )
        )
        print(f"wrote {args.json_out}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    raise SystemExit(main())
