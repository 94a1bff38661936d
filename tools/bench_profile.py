"""Profiling-speed benchmark (issue: foundation). A benchmark script, not a timed test.

Three measurements, all on this machine, in one run:

1. resnet152, whole processes, wall clock: ``graphcnn profile resnet152 --json`` against the usual
   way to get the same numbers (a fresh Python process that imports torch/torchvision/fvcore,
   builds torchvision's resnet152 and runs fvcore's FlopCountAnalysis plus a parameter count on a
   1x3x224x224 input). Repetitions are interleaved (alternating which goes first); medians, minima
   and their ratios are reported, and the numbers are checked to agree: params equal, and fvcore's
   conv + linear (+ addmm) count equal to graphcnn's MACs (fvcore also counts batch_norm and
   adaptive_avg_pool2d, which graphcnn's MAC convention leaves out; they are reported apart).
2. Linearity: in-process parse + compile + profile of a generated PLAIN network
   (tools/gen_plain.py: N layers written out line by line) for several N, interleaved, median of a
   few runs; seconds and microseconds per layer. Flags per-layer growth > 1.5x smallest -> largest.
3. The whole ``graphcnn profile PLAIN.gcnn --json`` process for N = 10,000 against a 2 s budget.

Examples::

    .venv/bin/python tools/bench_profile.py
    .venv/bin/python tools/bench_profile.py --json-out /tmp/bench.json
    .venv/bin/python tools/bench_profile.py --no-baseline --sizes 1000,10000 --scale-reps 5
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent

MODEL = "resnet152"
INPUT = (1, 3, 224, 224)
BUDGET_S = 2.0
"""Whole-process and in-process budget for the 10,000-layer plain network."""
MIN_SPEEDUP = 20.0
"""graphcnn must be at least this many times faster than the torch/fvcore route (medians)."""
GROWTH_LIMIT = 1.5
"""Per-layer time may grow at most this much from the smallest to the largest N."""
FVCORE_MAC_OPS = ("conv", "linear", "addmm", "matmul")
"""fvcore operator names that are conv2d/linear MACs (graphcnn's MAC convention)."""


def _load_gen_plain() -> ModuleType:
    """tools/gen_plain.py as a module (tools/ is not a package)."""
    if "gen_plain" in sys.modules:
        return sys.modules["gen_plain"]
    spec = importlib.util.spec_from_file_location("gen_plain", TOOLS / "gen_plain.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_plain"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the torch/fvcore route
def fvcore_child() -> None:
    """The usual way users get resnet152's numbers: runs in its own process, prints JSON."""
    import torch
    import torchvision
    from fvcore.nn import FlopCountAnalysis

    model = torchvision.models.resnet152(weights=None).eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        fca = FlopCountAnalysis(model, torch.zeros(*INPUT))
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        by_op = {k: int(v) for k, v in fca.by_operator().items()}
        total = int(fca.total())
    sys.stdout.write(json.dumps({"params": params, "by_operator": by_op, "total": total}) + "\n")


# --------------------------------------------------------------------------- helpers
def _graphcnn_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("graphcnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "graphcnn.cli"]


def _timed(cmd: Sequence[str]) -> tuple[float, str]:
    """Wall-clock seconds of a whole process, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _summary(xs: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    # before importing graphcnn, which may write graphcnn/__pycache__
    pycache = (ROOT / "graphcnn" / "__pycache__").is_dir()
    from graphcnn.analysis.devices import machine

    host = machine()
    return {
        **{k: host[k] for k in ("cpu_model", "nproc", "cpu_count", "platform", "python")},
        # with bytecode writing off and no __pycache__, every process compiles graphcnn's sources
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "graphcnn_pycache": pycache,
        "versions": {
            d: _version(d) for d in ("graphcnn", "lark", "torch", "torchvision", "fvcore")
        },
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------- 1. resnet152
def bench_resnet152(reps: int, warmup: int) -> dict[str, Any]:
    ours_cmd = [*_graphcnn_cmd(), "profile", MODEL, "--json"]
    base_cmd = [sys.executable, str(Path(__file__).resolve()), "--fvcore-child"]
    runners = {"graphcnn": ours_cmd, "fvcore": base_cmd}
    outputs: dict[str, str] = {}
    for _ in range(warmup):  # page cache, .pyc files, lark's grammar cache
        for name, cmd in runners.items():
            outputs[name] = _timed(cmd)[1]
    samples: dict[str, list[float]] = {"graphcnn": [], "fvcore": []}
    load_before = _loadavg()
    for i in range(reps):
        order = ("graphcnn", "fvcore") if i % 2 == 0 else ("fvcore", "graphcnn")
        for name in order:
            wall, out = _timed(runners[name])
            samples[name].append(wall)
            outputs[name] = out
            print(f"  rep {i + 1}/{reps} {name:8s} {wall:7.3f} s", flush=True)
    ours = json.loads(outputs["graphcnn"])["totals"]
    base = json.loads(outputs["fvcore"])
    by_op: dict[str, int] = base["by_operator"]
    fv_macs = sum(v for k, v in by_op.items() if k in FVCORE_MAC_OPS)
    agreement = {
        "graphcnn_params": ours["params"],
        "fvcore_params": base["params"],
        "params_equal": ours["params"] == base["params"],
        "graphcnn_macs": ours["macs"],
        "fvcore_conv_linear": fv_macs,
        "macs_equal": ours["macs"] == fv_macs,
        "fvcore_by_operator": by_op,
        "fvcore_total_all_ops": base["total"],
        "fvcore_extra_ops": {k: v for k, v in by_op.items() if k not in FVCORE_MAC_OPS},
    }
    med = {k: statistics.median(v) for k, v in samples.items()}
    low = {k: min(v) for k, v in samples.items()}
    return {
        "model": MODEL,
        "input": list(INPUT),
        "reps": reps,
        "warmup": warmup,
        "commands": {k: " ".join(v) for k, v in runners.items()},
        "samples_s": samples,
        "summary_s": {k: _summary(v) for k, v in samples.items()},
        "ratio_of_medians": med["fvcore"] / med["graphcnn"],
        "ratio_of_minima": low["fvcore"] / low["graphcnn"],
        "agreement": agreement,
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }


# --------------------------------------------------------------------------- 2. linearity
def _inprocess(path: Path, gc_off: bool = False) -> tuple[dict[str, float], Any]:
    """Seconds to parse, compile and profile ``path`` here; ``gc_off``: with the cyclic GC off."""
    from graphcnn.api import compile_loaded
    from graphcnn.cost import profile
    from graphcnn.lang.loader import load

    gc.collect()
    if gc_off:
        gc.disable()
    try:
        t0 = time.perf_counter()
        module = load(path, str(path))
        t1 = time.perf_counter()
        graph = compile_loaded(module, None, None, None, None)
        t2 = time.perf_counter()
        totals = profile(graph).totals
        t3 = time.perf_counter()
    finally:
        gc.enable()
    times = {"parse": t1 - t0, "compile": t2 - t1, "profile": t3 - t2, "total": t3 - t0}
    return times, (len(graph), totals)


def bench_scaling(
    sizes: Sequence[int], reps: int, folder: Path, gc_diagnostic: bool = True
) -> dict[str, Any]:
    """In-process timings per size, interleaved. With ``gc_diagnostic`` every run is repeated
    with the cyclic garbage collector off: the gap between the two is the collector's share."""
    gen = _load_gen_plain()
    paths = {n: gen.write_plain(folder / f"plain{n}.gcnn", n) for n in sizes}
    _inprocess(gen.write_plain(folder / "warmup.gcnn", 30))  # build the parser once
    modes = (False, True) if gc_diagnostic else (False,)
    runs: dict[tuple[int, bool], list[dict[str, float]]] = {
        (n, m): [] for n in sizes for m in modes
    }
    load_before = _loadavg()
    for r in range(reps):  # interleaved: machine noise spreads over all sizes alike
        for n in sizes:
            for gc_off in modes:
                times, (nodes, totals) = _inprocess(paths[n], gc_off)
                want = gen.expected_totals(n)
                if (nodes, totals.params, totals.macs) != (want.nodes, want.params, want.macs):
                    raise RuntimeError(
                        f"plain{n}: got {nodes} nodes, {totals.params} params, "
                        f"{totals.macs} MACs; expected {want}"
                    )
                runs[n, gc_off].append(times)
                print(
                    f"  rep {r + 1}/{reps} N={n:6d} {'gc off' if gc_off else 'gc on ':6s} "
                    f"{times['total']:7.3f} s",
                    flush=True,
                )
    rows: list[dict[str, Any]] = []
    for n in sizes:
        on = runs[n, False]
        med = {k: statistics.median(t[k] for t in on) for k in on[0]}
        best = min(t["total"] for t in on)
        row: dict[str, Any] = {
            "n": n,
            "median_s": med,
            "min_total_s": best,
            "us_per_layer_median": med["total"] / n * 1e6,
            "us_per_layer_min": best / n * 1e6,
        }
        if gc_diagnostic:
            off = runs[n, True]
            row["gc_off_median_s"] = {k: statistics.median(t[k] for t in off) for k in off[0]}
            row["gc_off_us_per_layer_median"] = row["gc_off_median_s"]["total"] / n * 1e6
        rows.append(row)
    first, last = rows[0], rows[-1]
    growth_median = last["us_per_layer_median"] / first["us_per_layer_median"]
    out: dict[str, Any] = {
        "reps": reps,
        "rows": rows,
        "runs": {f"{n}{'_gc_off' if m else ''}": v for (n, m), v in runs.items()},
        "per_layer_growth_median": growth_median,
        "per_layer_growth_min": last["us_per_layer_min"] / first["us_per_layer_min"],
        "growth_limit": GROWTH_LIMIT,
        "linear": growth_median <= GROWTH_LIMIT,
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }
    if gc_diagnostic:
        out["per_layer_growth_gc_off_median"] = (
            last["gc_off_us_per_layer_median"] / first["gc_off_us_per_layer_median"]
        )
    return out


# --------------------------------------------------------------------------- 3. CLI, N = 10,000
def bench_cli_plain(n: int, reps: int, warmup: int, folder: Path) -> dict[str, Any]:
    gen = _load_gen_plain()
    path = gen.write_plain(folder / f"cli_plain{n}.gcnn", n)
    cmd = [*_graphcnn_cmd(), "profile", str(path), "--json"]
    for _ in range(warmup):
        _timed(cmd)
    samples = []
    out = ""
    for i in range(reps):
        wall, out = _timed(cmd)
        samples.append(wall)
        print(f"  rep {i + 1}/{reps} N={n} CLI {wall:7.3f} s", flush=True)
    totals = json.loads(out)["totals"]
    want = gen.expected_totals(n)
    return {
        "n": n,
        "command": " ".join(cmd),
        "samples_s": samples,
        "summary_s": _summary(samples),
        "budget_s": BUDGET_S,
        "ok": statistics.median(samples) < BUDGET_S,
        "numbers_ok": (totals["params"], totals["macs"]) == (want.params, want.macs),
    }


# --------------------------------------------------------------------------- report
def _print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(f"\nmachine: {m['cpu_model']}, {m['nproc']} cores, Python {m['python']}")
    if "resnet152" in res:
        r = res["resnet152"]
        s = r["summary_s"]
        print(f"\n{MODEL} as whole processes ({r['reps']} interleaved reps, wall clock, s)")
        print(f"  {'route':34s} {'median':>8s} {'min':>8s} {'max':>8s}")
        for key, label in (
            ("graphcnn", "graphcnn profile --json"),
            ("fvcore", "torch+torchvision+fvcore"),
        ):
            print(
                f"  {label:34s} {s[key]['median']:8.3f} {s[key]['min']:8.3f} {s[key]['max']:8.3f}"
            )
        print(
            f"  speed-up: {r['ratio_of_medians']:.1f}x (medians), {r['ratio_of_minima']:.1f}x "
            f"(minima); required >= {MIN_SPEEDUP:.0f}x"
        )
        a = r["agreement"]
        print(
            f"  params   graphcnn {a['graphcnn_params']:,}  fvcore {a['fvcore_params']:,}  "
            f"{'equal' if a['params_equal'] else 'DIFFER'}"
        )
        print(
            f"  MACs     graphcnn {a['graphcnn_macs']:,}  fvcore conv+linear "
            f"{a['fvcore_conv_linear']:,}  {'equal' if a['macs_equal'] else 'DIFFER'}"
        )
        extra = ", ".join(f"{k} {v:,}" for k, v in a["fvcore_extra_ops"].items())
        print(f"  fvcore total over all ops {a['fvcore_total_all_ops']:,} (extra: {extra})")
    if "scaling" in res:
        sc = res["scaling"]
        print(f"\nplain network, in-process parse+compile+profile (median of {sc['reps']}, s)")
        print(
            f"  {'N':>6s} {'parse':>7s} {'compile':>8s} {'profile':>8s} {'total':>7s} "
            f"{'us/layer':>9s} {'min us/layer':>13s}"
        )
        for row in sc["rows"]:
            t = row["median_s"]
            print(
                f"  {row['n']:6d} {t['parse']:7.3f} {t['compile']:8.3f} {t['profile']:8.3f} "
                f"{t['total']:7.3f} {row['us_per_layer_median']:9.1f} "
                f"{row['us_per_layer_min']:13.1f}"
            )
        flag = "ok" if sc["linear"] else "FLAG: superlinear?"
        print(
            f"  per-layer growth smallest->largest N: {sc['per_layer_growth_median']:.2f}x "
            f"(medians), {sc['per_layer_growth_min']:.2f}x (minima); limit "
            f"{GROWTH_LIMIT}x: {flag}"
        )
        if "per_layer_growth_gc_off_median" in sc:
            print(
                "  diagnostic, cyclic GC off (median s, us/layer): "
                + ", ".join(
                    f"N={row['n']} {row['gc_off_median_s']['total']:.3f} "
                    f"{row['gc_off_us_per_layer_median']:.1f}"
                    for row in sc["rows"]
                )
            )
            print(f"  per-layer growth with GC off: {sc['per_layer_growth_gc_off_median']:.2f}x")
    if "cli_plain" in res:
        c = res["cli_plain"]
        s = c["summary_s"]
        print(
            f"\nwhole process `graphcnn profile plain{c['n']}.gcnn --json`: median "
            f"{s['median']:.3f} s (min {s['min']:.3f}, max {s['max']:.3f}; "
            f"{len(c['samples_s'])} reps); budget {BUDGET_S} s: "
            f"{'ok' if c['ok'] else 'OVER BUDGET'}"
            f"{'' if c['numbers_ok'] else '; NUMBERS WRONG'}"
        )
    print(
        "\nrequirements: "
        + ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in res["requirements"].items())
    )


def _requirements(res: dict[str, Any]) -> dict[str, bool]:
    req: dict[str, bool] = {}
    if "resnet152" in res:
        r = res["resnet152"]
        req["speedup>=20x"] = r["ratio_of_medians"] >= MIN_SPEEDUP
        req["numbers_agree"] = r["agreement"]["params_equal"] and r["agreement"]["macs_equal"]
    if "scaling" in res:
        req["linear"] = res["scaling"]["linear"]
        rows = {row["n"]: row for row in res["scaling"]["rows"]}
        if 10_000 in rows:
            req[f"inprocess_10000<{BUDGET_S:g}s"] = rows[10_000]["median_s"]["total"] < BUDGET_S
    if "cli_plain" in res:
        c = res["cli_plain"]
        req[f"cli_{c['n']}<{BUDGET_S:g}s"] = c["ok"] and c["numbers_ok"]
    return req


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench_profile.py",
        description=__doc__.split("\n\n")[0],
        epilog="See docs/benchmarks.md for results and how to read them.",
    )
    ap.add_argument(
        "--reps",
        type=int,
        default=5,
        help="interleaved whole-process repetitions for resnet152 (default 5)",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed warm-up runs of each whole-process command (default 1)",
    )
    ap.add_argument(
        "--sizes",
        default="1000,2000,5000,10000,20000",
        help="plain network sizes N, comma separated (default %(default)s)",
    )
    ap.add_argument(
        "--scale-reps", type=int, default=3, help="in-process repetitions per size (default 3)"
    )
    ap.add_argument(
        "--cli-n",
        type=int,
        default=10_000,
        help="plain network size for the whole-process CLI timing (default 10000)",
    )
    ap.add_argument(
        "--cli-reps", type=int, default=5, help="whole-process CLI repetitions (default 5)"
    )
    ap.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the resnet152 comparison (needs torch, torchvision, fvcore)",
    )
    ap.add_argument("--no-scaling", action="store_true", help="skip the plain-network measurements")
    ap.add_argument(
        "--no-gc-diagnostic",
        action="store_true",
        help="do not repeat the in-process runs with the cyclic GC off",
    )
    ap.add_argument(
        "--json-out",
        type=Path,
        default=None,
        metavar="PATH",
        help="write all samples and summaries as JSON to PATH",
    )
    ap.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a requirement is not met (default: always exit 0)",
    )
    ap.add_argument("--fvcore-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.fvcore_child:
        fvcore_child()
        return 0
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or min(args.reps, args.scale_reps, args.cli_reps) < 1:
        ap.error("sizes and repetition counts must be >= 1")

    res: dict[str, Any] = {"machine": machine_info(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not args.no_baseline:
        print(f"[1/3] {MODEL}: graphcnn vs torch+torchvision+fvcore, whole processes", flush=True)
        res["resnet152"] = bench_resnet152(args.reps, args.warmup)
    if not args.no_scaling:
        with tempfile.TemporaryDirectory(prefix="graphcnn-bench-") as tmp:
            folder = Path(tmp)
            print("[2/3] plain networks, in-process", flush=True)
            res["scaling"] = bench_scaling(
                sizes, args.scale_reps, folder, not args.no_gc_diagnostic
            )
            print(f"[3/3] plain network N={args.cli_n}, whole process", flush=True)
            res["cli_plain"] = bench_cli_plain(args.cli_n, args.cli_reps, args.warmup, folder)
    res["requirements"] = _requirements(res)
    _print_report(res)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 1 if args.strict and not all(res["requirements"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
