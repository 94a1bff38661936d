"""The file fuzzer: malformed ONNX models, checkpoints and calibration data, each loaded by
graphcnn in a worker process with a time and a memory limit, and the outcome classified.

Outcomes: ``ok`` (loaded), ``clean`` (a :class:`~graphcnn.errors.GraphcnnError`: what the CLI
prints as one error with exit code 2), and the failures ``crash`` (any other exception, i.e. a
traceback, or the worker died), ``hang`` (past the time limit; the worker is killed) and
``memory`` (``MemoryError`` under the address-space limit). Inputs come from
:mod:`.file_mutators`; input ``i`` of a run is a pure function of ``(seed, target, i)``, so a
failure is reproduced by :func:`make_input` alone.

``tests/test_file_fuzz.py`` runs a short budget (and hypothesis-drawn inputs) in ``make test``;
``tools/fuzz_files.py`` runs the long one (10,000 files) and writes the failing files out.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import file_mutators as fm

OUTCOMES = ("ok", "clean", "crash", "hang", "memory")
FAILURES = frozenset({"crash", "hang", "memory"})


@dataclass(frozen=True)
class Target:
    """One kind of file graphcnn reads: its seeds, mutations, and the suffix of an input
    (empty: the input is a folder of mutated images)."""

    suffix: str
    seeds: Callable[[], list[bytes]]
    mutators: tuple[fm.Mutator, ...]


TARGETS: dict[str, Target] = {
    "onnx": Target(".onnx", fm.onnx_seeds, fm.ONNX_MUTATORS * 2 + fm.BYTE_MUTATORS),
    "pt": Target(".pt", lambda: fm.checkpoint_seeds("pt"), (fm.zip_member,) * 6 + fm.BYTE_MUTATORS),
    "safetensors": Target(
        ".safetensors",
        lambda: fm.checkpoint_seeds("safetensors"),
        (fm.safetensors_header,) * 6 + fm.BYTE_MUTATORS,
    ),
    "npz": Target(".npz", fm.npz_seeds, (fm.zip_member, fm.npy_header) * 3 + fm.BYTE_MUTATORS),
    "images": Target("", fm.image_seeds, (fm.png_size,) * 3 + fm.BYTE_MUTATORS),
}
"""What graphcnn loads from files: ``from_onnx``, ``load_checkpoint`` (two formats) and
``load_calibration`` (``.npz`` and image folders)."""


def _ext(data: bytes) -> str:
    for magic, ext in ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp")):
        if data.startswith(magic):
            return ext
    return ".png"


def _mutate(data: bytes, target: Target, rng: random.Random) -> tuple[bytes, list[str]]:
    names = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        m = rng.choice(target.mutators)
        try:
            data = m(data, rng)
        except Exception:  # noqa: BLE001 - a structure mutator cannot parse broken bytes
            m = fm.flip_bits
            data = m(data, rng)
        names.append(m.__name__)
    return data, names


def make_input(
    name: str, seeds: list[bytes], seed: int, index: int, folder: Path
) -> tuple[Path, list[str]]:
    """Write input ``index`` of run ``seed`` for target ``name`` under ``folder``; return its
    path and the mutations applied."""
    target = TARGETS[name]
    rng = random.Random(f"{seed}:{name}:{index}")
    base = rng.choice(seeds)
    if target.suffix:
        data, names = _mutate(base, target, rng)
        path = folder / f"{name}-{index}{target.suffix}"
        path.write_bytes(data)
        return path, names
    path = folder / f"{name}-{index}"
    path.mkdir()
    names = []
    for k in range(rng.randint(1, 3)):
        img = rng.choice(seeds)
        if k == 0 or rng.random() < 0.5:
            img, applied = _mutate(img, target, rng)
            names += applied
        (path / f"{k}{_ext(img)}").write_bytes(img)
    return path, names


# ---------------------------------------------------------------------------- the worker
def _load(target: str, path: str, state: dict[str, Any]) -> None:
    """What a user's file goes through: the loader and, for a model, what follows it."""
    if target == "onnx":
        from graphcnn.backends.from_onnx import from_onnx
        from graphcnn.cost import profile

        g, _ = from_onnx(path)
        profile(g)
    elif target in ("pt", "safetensors"):
        from graphcnn.weights import load_checkpoint

        load_checkpoint(path, state["lenet5"])
    elif target in ("npz", "images"):
        from graphcnn.backends.quantize.calibration import load_calibration

        load_calibration(path, (3, 16, 16), n=8)
    elif target == "_crash":
        raise KeyError(path)
    elif target == "_hang":
        time.sleep(3600)
    elif target == "_memory":
        bytearray(2**40)
    elif target == "_die":
        os._exit(3)
    else:
        raise ValueError(f"unknown fuzz target {target!r}")


def _serve(conn: Any, memory_mb: int) -> None:
    """Worker main loop: receive (target, path), send (outcome, detail)."""
    import resource

    import graphcnn
    from graphcnn.errors import GraphcnnError

    for module in ("torch", "onnx", "PIL.Image", "safetensors.numpy"):
        try:
            __import__(module)  # imported before the limit: their mappings are not the input's
        except ImportError:
            pass
    state = {"lenet5": graphcnn.compile("lenet5")}
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = used + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", ""))
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            _load(job[0], job[1], state)
            result = ("ok", "")
        except GraphcnnError as e:
            result = ("clean", str(e).splitlines()[0] if str(e) else type(e).__name__)
        except MemoryError:
            result = ("memory", traceback.format_exc(limit=-6))
        except BaseException:  # noqa: BLE001 - anything else is a finding
            result = ("crash", traceback.format_exc(limit=-8))
        conn.send(result)


class Worker:
    """One worker process; restarted after it hangs or dies."""

    def __init__(self, timeout: float = 20.0, memory_mb: int = 2048) -> None:
        self.timeout, self.memory_mb = timeout, memory_mb
        self.proc: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.proc = ctx.Process(target=_serve, args=(child, self.memory_mb), daemon=True)
        self.proc.start()
        self.conn = parent
        if not parent.poll(300):
            raise RuntimeError("the fuzz worker did not start")
        parent.recv()

    def run(self, target: str, path: Path) -> tuple[str, str]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((target, str(path)))
        try:
            if self.conn.poll(self.timeout):
                return tuple(self.conn.recv())  # type: ignore[return-value]
        except (EOFError, OSError):
            self.proc.join(5)
            return "crash", f"the worker died (exit code {self.proc.exitcode})"
        self.stop()
        return "hang", f"no answer in {self.timeout:g} s"

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)
        self.stop()


# ------------------------------------------------------------------------------- a run
@dataclass
class Report:
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def failed(self) -> int:
        return sum(c[k] for c in self.counts.values() for k in FAILURES)


def fuzz(
    targets: list[str],
    count: int,
    seed: int,
    work: Path,
    worker: Worker,
    keep: Path | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Report:
    """``count`` inputs per target, each loaded in ``worker``; failing inputs are copied to
    ``keep`` (if given)."""
    report = Report()
    start = time.perf_counter()
    for name in targets:
        seeds = TARGETS[name].seeds()
        counts = report.counts.setdefault(name, Counter())
        for i in range(count):
            path, mutations = make_input(name, seeds, seed, i, work)
            outcome, detail = worker.run(name, path)
            counts[outcome] += 1
            if outcome in FAILURES:
                report.failures.append(
                    dict(target=name, index=i, outcome=outcome, mutations=mutations, detail=detail)
                )
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    copy = shutil.copytree if path.is_dir() else shutil.copy
                    copy(path, keep / path.name)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            if progress is not None:
                progress(1)
    report.seconds = time.perf_counter() - start
    return report
