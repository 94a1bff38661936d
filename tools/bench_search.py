"""Speed of ``graphcnn search`` (issue: cost-constrained search). A benchmark script, not a test.

Three measurements, each printed as a markdown table (and all as JSON with ``--json-out``):

1. **candidates profiled per second**, one process: resnet18 (224x224) candidates with distinct
   ``layers`` and ``classes``, costed by :class:`graphcnn.search.Evaluator` (the spec is loaded
   once; each candidate is compiled from the loaded module with its own overrides, then
   profiled). Rows: exact params/MACs/FLOPs; the same plus the H100 roofline latency; a cache
   hit (a candidate whose spec values were already costed: what a search over training
   hyperparameters mostly sees); and, for comparison, ``graphcnn.compile`` from the file each
   time (parse included). Median of ``--reps`` runs, process CPU time and wall clock.
2. **workers**: the same study finished by 1 and by 2 processes on one storage (``--storage
   sqlite``, graphcnn's default, or ``journal``, Optuna's journal file) (``run_search(config,
   workers=N)``), wall clock. The default study trains each accepted cell
   candidate of ``docs/examples/nasnet_cells.gcnn`` for one epoch on digits with one thread per
   process (``--speedup-objective macs`` runs a cost-only study instead).
3. **the compound-scaling law** (``--law``): d * w^2 * r^2 against the exact FLOPs ratios of
   EfficientNet-B1..B7 to B0.

Examples::

    .venv/bin/python tools/bench_search.py
    .venv/bin/python tools/bench_search.py --candidates 2000 --reps 5 --skip-workers
    .venv/bin/python tools/bench_search.py --law --skip-candidates --skip-workers
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CELLS = ROOT / "docs" / "examples" / "nasnet_cells.gcnn"


def _layers(rng: random.Random, n: int) -> list[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    while len(out) < n:
        layers = "[" + ", ".join(str(rng.randint(1, 3)) for _ in range(4)) + "]"
        out.add((layers, rng.randint(2, 2000)))
    return sorted(out)


def _timed(fn: Callable[[], int], reps: int) -> dict[str, float]:
    walls, cpus, count = [], [], 0
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        count = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {
        "n": count,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s_wall": count / wall,
        "per_s_cpu": count / cpu,
    }


def candidates(n: int, reps: int) -> dict[str, dict[str, float]]:
    import graphcnn
    from graphcnn.search import Evaluator

    rng = random.Random(0)
    cands = _layers(rng, n)

    def run(device: str | None) -> Callable[[], int]:
        def go() -> int:
            ev = Evaluator("resnet18", device=device)
            for layers, classes in cands:
                ev.cost({"layers": layers, "classes": classes})
            return len(cands)

        return go

    ev = Evaluator("resnet18")
    for layers, classes in cands:
        ev.cost({"layers": layers, "classes": classes})

    def cached() -> int:
        for layers, classes in cands:
            ev.cost({"layers": layers, "classes": classes})
        return len(cands)

    def reparse() -> int:
        for layers, classes in cands[: max(1, n // 4)]:
            g = graphcnn.compile("resnet18", params={"layers": layers, "classes": classes})
            graphcnn.profile(g)
        return max(1, n // 4)

    return {
        "exact cost (params, MACs, FLOPs)": _timed(run(None), reps),
        "+ roofline latency (h100-sxm)": _timed(run("h100-sxm"), reps),
        "cache hit (same spec values)": _timed(cached, reps),
        "graphcnn.compile from the file each time": _timed(reparse, reps),
    }


def workers(trials: int, objective: str, storage: str = "sqlite") -> dict[str, float]:
    import optuna

    from graphcnn.search import SearchConfig, parse_objective, parse_space, run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ops = "choice(sep3, sep5, pool3, skip)"
    space = [f"n{i}={ops}" for i in range(4)] + ["c=choice(8, 16, 24)"]
    train: tuple[str, ...] = ()
    if objective == "val_accuracy":
        train = ("epochs=1", "threads=1")
    out: dict[str, float] = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            config = SearchConfig(
                str(CELLS),
                parse_space(space),
                parse_objective(objective),
                out=Path(tmp),
                trials=trials,
                train=train,
                storage=f"journal:{Path(tmp) / 'study.log'}" if storage == "journal" else None,
            )
            t0 = time.perf_counter()
            result = run_search(config, workers=n)
            out[f"{n} process{'es' if n > 1 else ''}"] = time.perf_counter() - t0
            out[f"complete ({n})"] = result.counts()["complete"]
    out["speed-up"] = out["1 process"] / out["2 processes"]
    return out


def law() -> list[dict[str, Any]]:
    from graphcnn.search.compound import law_check

    return law_check()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trials", type=int, default=8, help="trials of the workers study")
    ap.add_argument("--speedup-objective", default="val_accuracy", choices=["val_accuracy", "macs"])
    ap.add_argument(
        "--storage",
        default="sqlite",
        choices=["sqlite", "journal"],
        help="the workers study's storage: graphcnn's default SQLite file, or a journal file",
    )
    ap.add_argument("--skip-candidates", action="store_true")
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--law", action="store_true")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    report: dict[str, Any] = {}
    if not args.skip_candidates:
        rows = candidates(args.candidates, args.reps)
        report["candidates"] = rows
        print(f"resnet18 candidates, {args.candidates} distinct, median of {args.reps}\n")
        print("| path | candidates/s (CPU time) | candidates/s (wall) | ms each (CPU) |")
        print("|---|---:|---:|---:|")
        for k, r in rows.items():
            print(
                f"| {k} | {r['per_s_cpu']:,.0f} | {r['per_s_wall']:,.0f} | "
                f"{1e3 * r['cpu_s'] / r['n']:.3f} |"
            )
        print()
    if not args.skip_workers:
        w = workers(args.trials, args.speedup_objective, args.storage)
        report["workers"] = w
        print(
            f"study of {args.trials} complete trials ({args.speedup_objective}), "
            f"{args.storage} storage, wall clock\n"
        )
        print("| processes | seconds | complete |")
        print("|---|---:|---:|")
        print(f"| 1 | {w['1 process']:.1f} | {w['complete (1)']:.0f} |")
        print(f"| 2 | {w['2 processes']:.1f} | {w['complete (2)']:.0f} |")
        print(f"\nspeed-up {w['speed-up']:.2f}x\n")
    if args.law:
        rows_law = law()
        report["law"] = rows_law
        print(
            "| model | d | w | r | law d*w^2*r^2 | exact FLOPs ratio | exact MACs ratio | "
            "law / exact - 1 |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows_law:
            print(
                f"| {r['model']} | {r['d']:g} | {r['w']:g} | {r['res']} | {r['law']:.2f} | "
                f"{r['flops_ratio']:.2f} | {r['macs_ratio']:.2f} | {r['error']:+.1%} |"
            )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
