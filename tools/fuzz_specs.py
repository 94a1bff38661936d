"""The long fuzzing campaign of the spec language (issue 10): N generated specs through
``graphcnn check``, each in a worker process with a time and a memory limit.

Inputs are mutated zoo specs and docs examples, grammar-generated network bodies and
whole-grammar programs (``tests/helpers/fuzz.py``); input ``i`` of seed ``s`` is always the same
text, so a failure is reproduced with ``--seed s --start i --n 1``. Every input is classified
ok / located / unlocated / crash / hang / memory; the summary JSON has the counts (overall and per
origin), the rate and the limits, and every failing input is written to ``OUT/failures/`` with
its outcome. Exit code 1 when any input failed.

Examples::

    .venv/bin/python tools/fuzz_specs.py --n 100000 --workers 2 --out /tmp/fuzz
    .venv/bin/python tools/fuzz_specs.py --n 2000 --seed 7 --timeout 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import fuzz  # noqa: E402


def generate(seed: int, start: int, n: int) -> dict[int, tuple[str, str]]:
    """Input ``i`` -> (origin, text), each from its own seeded generator."""
    out = {}
    for i in range(start, start + n):
        rng = random.Random(f"{seed}:{i}")
        out[i] = fuzz.random_input(rng.randrange)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of inputs")
    ap.add_argument("--start", type=int, default=0, help="index of the first input")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per input (a hang)")
    ap.add_argument("--memory-mb", type=int, default=2048, help="address space per worker")
    ap.add_argument("--out", type=Path, default=Path("fuzz-out"), help="summary and failures")
    args = ap.parse_args(argv)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    import graphcnn.cli.app  # noqa: F401 - imported once, before the workers fork

    failures = args.out / "failures"
    failures.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    by_origin: dict[str, Counter[str]] = {}
    pool = fuzz.Pool(args.workers, args.timeout, args.memory_mb)
    started = time.monotonic()
    chunk = 500
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("fuzzing", total=args.n)
            for first in range(args.start, args.start + args.n, chunk):
                batch = generate(args.seed, first, min(chunk, args.start + args.n - first))
                for i, text, outcome in pool.run((i, t) for i, (_, t) in batch.items()):
                    origin = batch[i][0].split(":")[0]
                    counts[outcome.kind] += 1
                    by_origin.setdefault(origin, Counter())[outcome.kind] += 1
                    if outcome.kind in fuzz.FAILURES:
                        stem = failures / f"{args.seed}-{i}-{outcome.kind}"
                        stem.with_suffix(".gcnn").write_text(
                            text, encoding="utf-8", errors="surrogatepass"
                        )
                        stem.with_suffix(".txt").write_text(
                            f"{batch[i][0]}\n{outcome.detail}\n", errors="replace"
                        )
                    bar.advance(task)
                    bar.update(task, description=_line(counts))
                # NOTE: a partial summary after every chunk, so a long run stopped early still
                # leaves its numbers (with "complete": false).
                _summary(args, counts, by_origin, started, complete=False)
    finally:
        pool.close()
    summary = _summary(args, counts, by_origin, started, complete=True)
    print(json.dumps(summary, indent=2))
    failed = summary["failed"]
    if failed:
        print(f"{failed} failing input(s) in {failures}", file=sys.stderr)
    return 1 if failed else 0


def _summary(
    args: argparse.Namespace,
    counts: Counter[str],
    by_origin: dict[str, Counter[str]],
    started: float,
    complete: bool,
) -> dict[str, Any]:
    """Write ``OUT/summary.json`` (the counts so far) and return it."""
    elapsed = time.monotonic() - started
    done = sum(counts.values())
    summary = {
        "complete": complete,
        "inputs": done,
        "seed": args.seed,
        "start": args.start,
        "workers": args.workers,
        "timeout_s": args.timeout,
        "memory_mb": args.memory_mb,
        "elapsed_s": round(elapsed, 1),
        "inputs_per_s": round(done / max(elapsed, 1e-9), 1),
        "counts": {k: counts[k] for k in fuzz.OUTCOMES},
        "failed": sum(counts[k] for k in fuzz.FAILURES),
        "by_origin": {o: {k: c[k] for k in fuzz.OUTCOMES} for o, c in sorted(by_origin.items())},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _line(counts: Counter[str]) -> str:
    return "  ".join(f"{k} {counts[k]}" for k in fuzz.OUTCOMES if counts[k])


if __name__ == "__main__":
    sys.exit(main())
