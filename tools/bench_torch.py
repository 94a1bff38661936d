"""PyTorch lowering benchmark (issue: PyTorch lowering). A benchmark script, not a timed test.

Everything runs in ONE process, graphcnn and torchvision side by side, with interleaved
repetitions (the order alternates every repetition) and medians:

1. Build time, resnet50 with seeded weights. The requirement compares
   ``graphcnn.backends.to_torch.to_torch(g, seed=0)`` (numpy ``init_weights`` + generated source +
   module built on the meta device with the arrays assigned) with ``torchvision.models.resnet50()``
   (torch's own initialisation): ratio of medians <= 1.1. ``g = graphcnn.compile("resnet50")`` is
   done once, outside the timing; for transparency the script also times
   ``compile + to_torch`` and the two halves of ``to_torch`` (``init_weights`` alone and
   ``build_module`` with ready weights).
2. Eval forward latency, CPU, ``torch.set_num_threads(2)``, ``torch.no_grad()``, batch 1 and 32:
   the lowered module carrying torchvision's weights (a copy of its ``state_dict``, so the two
   models share no memory) against torchvision's module. Warm-up runs, then repetitions that
   alternate which model goes first; each sample is the mean of a few calls (enough for about
   ``--sample-s`` seconds). Ratio of medians <= 1.05. Outputs are checked to agree.

Examples::

    .venv/bin/python tools/bench_torch.py
    .venv/bin/python tools/bench_torch.py --repeats 15 --json-out /tmp/bench_torch.json
    .venv/bin/python tools/bench_torch.py --no-forward --profile   # build time + cProfile only
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.metadata
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

MODEL = "resnet50"
BUILD_LIMIT = 1.1
"""graphcnn's seeded build may take at most this many times torchvision's (medians)."""
FORWARD_LIMIT = 1.05
"""The lowered module's eval forward may take at most this many times torchvision's (medians)."""
TOLERANCE = 1e-4
"""Largest absolute output difference accepted between the two models (same weights)."""


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _minor_faults() -> int:
    """Minor page faults of this process so far (fresh memory touched: a work count that does
    not depend on the machine's load)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _stats(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; the collector runs before, never inside, the timed region."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ------------------------------------------------------------------------------------ build time
def bench_build(repeats: int, warmup: int) -> dict[str, Any]:
    import torchvision

    import graphcnn
    from graphcnn.backends.to_torch import build_module, to_torch
    from graphcnn.weights import init_weights

    g = graphcnn.compile(MODEL)
    ready = init_weights(g, 0)
    routes: dict[str, Callable[[], Any]] = {
        "graphcnn to_torch(g, seed=0)": lambda: to_torch(g, seed=0),
        "torchvision resnet50()": lambda: torchvision.models.resnet50(),
        "graphcnn compile + to_torch": lambda: to_torch(graphcnn.compile(MODEL), seed=0),
        "  of which init_weights(g, 0)": lambda: init_weights(g, 0),
        "  of which build_module(g, w)": lambda: build_module(g, ready),
    }
    names = list(routes)
    for _ in range(warmup):
        for name in names:
            _timed(routes[name])
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            dt, out = _timed(routes[name])
            del out
            samples[name].append(dt)
        print(f"  build repetition {r + 1}/{repeats} done", file=sys.stderr)
    res = {n: _stats(s) for n, s in samples.items()}
    ours, theirs = names[0], names[1]
    paired = [a / b for a, b in zip(samples[ours], samples[theirs], strict=True)]
    return {
        "routes": res,
        "ratio_of_medians": res[ours]["median"] / res[theirs]["median"],
        "ratio_of_minima": res[ours]["min"] / res[theirs]["min"],
        "median_paired_ratio": statistics.median(paired),
        "ratio_with_compile": res[names[2]]["median"] / res[theirs]["median"],
        "limit": BUILD_LIMIT,
    }


def profile_build(top: int) -> str:
    """cProfile of one seeded build (after a warm-up), sorted by own time."""
    import graphcnn
    from graphcnn.backends.to_torch import to_torch

    g = graphcnn.compile(MODEL)
    to_torch(g, seed=0)
    prof = cProfile.Profile()
    prof.enable()
    to_torch(g, seed=0)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


# ------------------------------------------------------------------------------- forward latency
OURS, THEIRS, WHAT_IF = "graphcnn", "torchvision", "graphcnn, in-place add (what-if)"


def _inplace_add_variant(graph: Any, state: dict[str, Any]) -> Any:
    """Diagnostic only: the generated source with each residual ``a + b`` whose first operand
    dies there rewritten to ``a.add_(b)`` (what torchvision's ``out += identity`` does)."""
    import re

    from graphcnn.backends.to_torch import generate_source

    def rewrite(m: re.Match[str]) -> str:
        out, a, b, dead = m.groups()
        if a not in [d.strip() for d in dead.split(",")]:
            return m.group(0)
        return f"{out} = {a}.add_({b}); del {dead}"

    src = re.sub(r"(\w+) = (\w+) \+ (\w+); del ([\w, ]+)", rewrite, generate_source(graph))
    namespace: dict[str, Any] = {"__name__": "graphcnn_what_if"}
    exec(compile(src, "<what-if>", "exec"), namespace)  # noqa: S102 - graphcnn's own output
    module = namespace["Model"](load_weights=False)
    module.load_state_dict(state)
    return module.eval()


def bench_forward(
    batches: list[int], repeats: int, warmup: int, sample_s: float, what_if: bool = False
) -> dict[str, Any]:
    import torch
    import torchvision

    import graphcnn
    from graphcnn.backends.to_torch import to_torch

    torch.manual_seed(0)
    theirs = torchvision.models.resnet50().eval()
    g = graphcnn.compile(MODEL)
    state = {k: v.detach().clone() for k, v in theirs.state_dict().items()}
    # a copy: the two models share no memory
    arrays = {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    models = {OURS: to_torch(g, arrays).eval(), THEIRS: theirs}
    if what_if:
        models[WHAT_IF] = _inplace_add_variant(g, {k: v.clone() for k, v in state.items()})
    out: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(1)
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, generator=gen)
        with torch.no_grad():
            ref = theirs(x)
            diff = max((m(x) - ref).abs().max().item() for m in models.values())
            warm: list[float] = []
            for _ in range(max(1, warmup)):
                for m in models.values():
                    t0 = time.perf_counter()
                    m(x)
                    warm.append(time.perf_counter() - t0)
            # the fastest warm-up call is the least disturbed estimate of one call
            calls = max(1, round(sample_s / max(min(warm), 1e-6)))
            wall: dict[str, list[float]] = {n: [] for n in models}
            cpu: dict[str, list[float]] = {n: [] for n in models}
            faults: dict[str, list[float]] = {n: [] for n in models}
            for r in range(repeats):
                order = list(models) if r % 2 == 0 else list(models)[::-1]
                for name in order:
                    m = models[name]
                    gc.collect()
                    f0 = _minor_faults()
                    c0, t0 = time.process_time(), time.perf_counter()
                    for _ in range(calls):
                        m(x)
                    wall[name].append((time.perf_counter() - t0) / calls)
                    cpu[name].append((time.process_time() - c0) / calls)
                    faults[name].append((_minor_faults() - f0) / calls)
                print(f"  batch {batch}: repetition {r + 1}/{repeats} done", file=sys.stderr)
        res: dict[str, Any] = {}
        for name in models:
            res[name] = _stats(wall[name])
            res[name]["cpu_median"] = statistics.median(cpu[name])
            res[name]["cpu_samples"] = cpu[name]
            res[name]["minor_page_faults_per_call"] = statistics.median(faults[name])
            if name == THEIRS:
                continue
            paired = [a / b for a, b in zip(wall[name], wall[THEIRS], strict=True)]
            res[name]["ratio_of_medians"] = res[name]["median"] / statistics.median(wall[THEIRS])
            res[name]["ratio_of_minima"] = res[name]["min"] / min(wall[THEIRS])
            res[name]["median_paired_ratio"] = statistics.median(paired)
            res[name]["cpu_ratio_of_medians"] = res[name]["cpu_median"] / statistics.median(
                cpu[THEIRS]
            )
        out[str(batch)] = {
            "calls_per_sample": calls,
            "max_abs_diff": diff,
            "models": res,
            "ratio_of_medians": res[OURS]["ratio_of_medians"],
            "limit": FORWARD_LIMIT,
        }
    return out


# ----------------------------------------------------------------------------------------- main
def _verdict(ratio: float, limit: float) -> str:
    return "met" if ratio <= limit else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prints a table of medians and ratios; --json-out keeps every sample.",
    )
    ap.add_argument("--repeats", type=int, default=9, help="timed repetitions (default 9)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument(
        "--batches", default="1,32", help="comma-separated forward batch sizes (default 1,32)"
    )
    ap.add_argument(
        "--sample-s",
        type=float,
        default=0.5,
        help="target seconds per forward sample; short calls are repeated (default 0.5)",
    )
    ap.add_argument("--no-build", action="store_true", help="skip the build-time benchmark")
    ap.add_argument("--no-forward", action="store_true", help="skip the forward benchmark")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one seeded build (also done automatically when the build target is missed)",
    )
    ap.add_argument(
        "--what-if",
        action="store_true",
        help="also time a diagnostic variant of the generated module whose residual adds run "
        "in place (a + b -> a.add_(b)), to size the cost of the out-of-place add",
    )
    ap.add_argument("--json-out", metavar="PATH", help="write all results and samples as JSON")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="LOAD",
        help="before starting, wait (up to 10 minutes) for the 1-minute load average to drop "
        "below LOAD",
    )
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]

    if args.wait_quiet is not None:
        deadline = time.monotonic() + 600
        while _loadavg() and _loadavg()[0] >= args.wait_quiet and time.monotonic() < deadline:
            print(f"  waiting: load {_loadavg()}", file=sys.stderr)
            time.sleep(15)

    import torch

    from graphcnn.analysis.devices import machine

    torch.set_num_threads(args.threads)
    host = machine()
    report: dict[str, Any] = {
        "model": MODEL,
        "machine": {
            "nproc": host["cpu_count"],
            "cpu": host["cpu_model"],
            "platform": host["platform"],
            "python": host["python"],
            "torch": torch.__version__,
            "torchvision": _version("torchvision"),
            "numpy": _version("numpy"),
            "graphcnn": _version("graphcnn"),
            "torch_threads": torch.get_num_threads(),
        },
        "settings": {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "batches": batches,
            "sample_s": args.sample_s,
        },
        "loadavg_before": _loadavg(),
    }
    m = report["machine"]
    print(
        f"{MODEL}, torch {m['torch']}, torchvision {m['torchvision']}, {m['torch_threads']} "
        f"threads, {m['nproc']} CPUs ({m['cpu']}), load {report['loadavg_before']}"
    )
    ok = True
    if not args.no_build:
        b = bench_build(args.repeats, args.warmup)
        report["build"] = b
        print(f"\nBuild time, {args.repeats} interleaved repetitions (seconds)")
        print(f"{'route':<34} {'median':>8} {'min':>8} {'max':>8}")
        for name, s in b["routes"].items():
            print(f"{name:<34} {s['median']:8.3f} {s['min']:8.3f} {s['max']:8.3f}")
        verdict = _verdict(b["ratio_of_medians"], BUILD_LIMIT)
        ok &= verdict == "met"
        print(
            f"ratio to_torch / torchvision: {b['ratio_of_medians']:.3f} (medians; minima "
            f"{b['ratio_of_minima']:.3f}, median of paired {b['median_paired_ratio']:.3f}); "
            f"limit {BUILD_LIMIT}: {verdict}"
        )
        print(f"ratio with graphcnn.compile included: {b['ratio_with_compile']:.3f}")
        if args.profile or verdict != "met":
            text = profile_build(15)
            report["build_profile"] = text
            print("\ncProfile of one to_torch(g, seed=0):\n" + text)
    elif args.profile:
        text = profile_build(15)
        report["build_profile"] = text
        print("\ncProfile of one to_torch(g, seed=0):\n" + text)
    if not args.no_forward:
        f = bench_forward(batches, args.repeats, args.warmup, args.sample_s, args.what_if)
        report["forward"] = f
        print(
            f"\nEval forward latency, no_grad, {m['torch_threads']} threads, {args.repeats} "
            "interleaved repetitions (ms per call)"
        )
        print(
            "ratio: of wall-time medians, vs torchvision (the requirement); min: of minima; "
            "paired: median of per-repetition ratios; cpu: of process CPU-time medians; "
            "faults: minor page faults per call"
        )
        print(
            f"{'batch':>5} {'model':<33} {'median':>8} {'min':>8} {'ratio':>6} {'min':>6} "
            f"{'paired':>6} {'cpu':>6} {'faults':>10}"
        )
        for batch, r in f.items():
            for name, s in r["models"].items():
                ratios = (
                    f"{s['ratio_of_medians']:6.3f} {s['ratio_of_minima']:6.3f} "
                    f"{s['median_paired_ratio']:6.3f} {s['cpu_ratio_of_medians']:6.3f}"
                    if name != THEIRS
                    else f"{'':6} {'':6} {'':6} {'':6}"
                )
                print(
                    f"{batch:>5} {name:<33} {s['median'] * 1e3:8.1f} {s['min'] * 1e3:8.1f} "
                    f"{ratios} {s['minor_page_faults_per_call']:10,.0f}"
                )
            verdict = _verdict(r["ratio_of_medians"], FORWARD_LIMIT)
            ok &= verdict == "met" and r["max_abs_diff"] <= TOLERANCE
            print(
                f"{'':>5} batch {batch}: ratio {r['ratio_of_medians']:.3f}, limit "
                f"{FORWARD_LIMIT}: {verdict}; {r['calls_per_sample']} call(s) per sample; "
                f"max |output difference| {r['max_abs_diff']:.1e}"
            )
    report["loadavg_after"] = _loadavg()
    report["all_targets_met"] = ok
    print(f"\nload average after: {report['loadavg_after']}; all targets met: {ok}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
