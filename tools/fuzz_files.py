"""The long file-fuzzing campaign (issue 10): malformed ONNX models, PyTorch and safetensors
checkpoints, calibration ``.npz`` files and image folders, each loaded by graphcnn in a worker
process with a time and a memory limit.

Inputs are real files mutated byte-wise and structure-aware (``tests/helpers/file_mutators.py``);
input ``i`` of target ``t`` and seed ``s`` is always the same file, so a failure is reproduced
with ``--seed s --targets t --start i --n 1``. Each input is classified ok / clean / crash /
hang / memory (``tests/helpers/file_fuzz.py``); the summary JSON has the counts per target, the
rate and the limits, and every failing input is copied to ``OUT/failures/``. Exit code 1 when
any input failed.

Examples::

    .venv/bin/python tools/fuzz_files.py --n 2000 --workers 2 --out /tmp/fuzz-files
    .venv/bin/python tools/fuzz_files.py --targets onnx --n 500 --seed 7
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.file_fuzz import FAILURES, OUTCOMES, TARGETS, Worker, make_input  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="inputs per target")
    ap.add_argument("--start", type=int, default=0, help="index of the first input")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--targets", default=",".join(TARGETS), help="comma list: " + ", ".join(TARGETS)
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per input (a hang)")
    ap.add_argument("--memory-mb", type=int, default=2048, help="address space per worker")
    ap.add_argument("--out", type=Path, default=Path("fuzz-files-out"), help="summary, failures")
    args = ap.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        ap.error(f"unknown targets {unknown}; valid: {', '.join(TARGETS)}")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    failures_dir = args.out / "failures"
    failures_dir.mkdir(parents=True, exist_ok=True)
    seeds = {t: TARGETS[t].seeds() for t in targets}
    jobs = [(t, i) for t in targets for i in range(args.start, args.start + args.n)]
    counts: dict[str, Counter[str]] = {t: Counter() for t in targets}
    failures: list[dict[str, object]] = []
    lock = threading.Lock()
    work = Path(tempfile.mkdtemp(prefix="fuzz_files_"))
    start = time.perf_counter()

    def serve(k: int, bar: Progress, task: object) -> None:
        worker = Worker(args.timeout, args.memory_mb)
        try:
            for t, i in jobs[k :: args.workers]:
                path, mutations = make_input(t, seeds[t], args.seed, i, work)
                outcome, detail = worker.run(t, path)
                with lock:
                    counts[t][outcome] += 1
                    if outcome in FAILURES:
                        failures.append(
                            dict(
                                target=t,
                                index=i,
                                outcome=outcome,
                                mutations=mutations,
                                detail=detail,
                            )
                        )
                        copy = shutil.copytree if path.is_dir() else shutil.copy
                        copy(path, failures_dir / f"{outcome}-{path.name}")
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                bar.advance(task)  # type: ignore[arg-type]
        finally:
            worker.close()

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("fuzz", total=len(jobs))
        threads = [threading.Thread(target=serve, args=(k, bar, task)) for k in range(args.workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    seconds = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    total = {o: sum(c[o] for c in counts.values()) for o in OUTCOMES}
    summary = dict(
        inputs=len(jobs),
        seed=args.seed,
        start=args.start,
        seconds=round(seconds, 1),
        inputs_per_second=round(len(jobs) / seconds, 1),
        workers=args.workers,
        timeout_s=args.timeout,
        memory_mb=args.memory_mb,
        total=total,
        by_target={t: {o: counts[t][o] for o in OUTCOMES} for t in targets},
        failures=failures,
    )
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
