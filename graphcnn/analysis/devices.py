"""Device profiles for time estimates: peak arithmetic rate per dtype and memory bandwidth.

A :class:`DeviceProfile` is two numbers the roofline model needs (``graphcnn.analysis.roofline``):
the peak FLOP/s for an element type and the memory bandwidth in bytes/s. Built in:

``h100-sxm``
    NVIDIA H100 SXM5 datasheet numbers: 989e12 FLOP/s dense FP16/BF16 on the tensor cores,
    67e12 FP32 (non-tensor), 3.35e12 B/s HBM3.
``cpu``
    This machine, *measured*: float32 GEMM peak with numpy (``a @ b`` on square n x n float32
    matrices, 2 n^3 FLOPs, best of a few runs, with whatever threads numpy's BLAS uses) and memory
    bandwidth with a large numpy copy (``np.copyto`` of 128 MiB: bytes read + bytes written, best
    of a few runs; one thread, so it is the bandwidth a single core sees, which is below what all
    cores together can draw). The measurement takes well under 3 s and is cached in
    ``$XDG_CACHE_HOME/graphcnn/cpu_profile.json`` (default ``~/.cache/graphcnn/``), keyed by
    hostname, CPU model, numpy version and usable CPU count; ``remeasure=True`` (CLI
    ``--remeasure``) measures again. The cpu profile has a float32 peak only: numpy has no fast
    float16 GEMM to measure, so asking for float16 on ``cpu`` is an error, not a guess.

Nothing here imports numpy until the cpu profile is measured.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphcnn.errors import GraphcnnError

CACHE_VERSION = 1
"""Bump when the measurement method changes: older cache entries are then measured again."""


class DeviceError(GraphcnnError):
    """An unknown device, or a dtype the device has no peak rate for."""


@dataclass(frozen=True)
class DeviceProfile:
    """Peak FLOP/s per dtype and memory bandwidth (bytes/s) of one device."""

    name: str
    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    description: str = ""
    measured: dict[str, Any] = field(default_factory=dict, compare=False)
    """For a measured profile: how and when (method, sizes, seconds, cache file); else empty."""

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype``; :class:`DeviceError` naming the supported dtypes if none."""
        try:
            return self.peak_flops[dtype]
        except KeyError:
            raise DeviceError(
                f"device {self.name!r} has no peak rate for dtype {dtype!r}",
                f"dtypes of {self.name}: {', '.join(self.peak_flops)}",
            ) from None

    def ridge(self, dtype: str) -> float:
        """The roofline's ridge point: FLOP/byte above which a layer is compute-bound."""
        return self.peak(dtype) / self.mem_bandwidth

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "peak_flops": dict(self.peak_flops),
            "mem_bandwidth": self.mem_bandwidth,
            "description": self.description,
        }
        if self.measured:
            data["measured"] = dict(self.measured)
        return data


H100_SXM = DeviceProfile(
    "h100-sxm",
    {"float16": 989e12, "bfloat16": 989e12, "float32": 67e12},
    3.35e12,
    "NVIDIA H100 SXM5 datasheet: dense FP16/BF16 tensor 989 TFLOP/s, FP32 67 TFLOP/s, "
    "HBM3 3.35 TB/s",
)

BUILTIN: dict[str, DeviceProfile] = {"h100-sxm": H100_SXM}
"""Fixed profiles by name (``cpu`` is measured, see :func:`cpu_profile`)."""

DEVICE_NAMES: tuple[str, ...] = ("cpu", *BUILTIN)
"""Every name :func:`get_device` accepts."""


def get_device(name: str, remeasure: bool = False) -> DeviceProfile:
    """The profile called ``name``; ``cpu`` is measured once and cached (see the module doc)."""
    if name == "cpu":
        return cpu_profile(remeasure)
    if name in BUILTIN:
        return BUILTIN[name]
    raise DeviceError(f"unknown device {name!r}", f"valid devices: {', '.join(DEVICE_NAMES)}")


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/graphcnn/cpu_profile.json``, by default under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphcnn" / "cpu_profile.json"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _nproc() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """This machine, described: ``hostname``, ``cpu_model`` (``/proc/cpuinfo``'s model name),
    ``nproc`` (CPUs this process may use), ``cpu_count`` (all CPUs), ``platform`` (the OS) and
    ``python`` (the version)."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "nproc": _nproc(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def machine_key() -> dict[str, Any]:
    """What a cached measurement is valid for."""
    from importlib.metadata import version

    m = machine()
    return {
        "hostname": m["hostname"],
        "cpu_model": m["cpu_model"],
        "numpy": version("numpy"),
        "nproc": m["nproc"],
    }


def _key_text(key: Mapping[str, Any]) -> str:
    return "|".join(f"{k}={key[k]}" for k in sorted(key))


def measure_cpu(gemm_target_s: float = 0.15, copy_mib: int = 128) -> dict[str, Any]:
    """Measure float32 GEMM FLOP/s and copy bandwidth with numpy (well under 3 s in all).

    GEMM: a 512 x 512 warm-up sizes the matrix so one product takes about ``gemm_target_s``
    (n between 512 and 2048, a multiple of 128), then the best of 3 products, 2 n^3 FLOPs each.
    Copy: ``np.copyto`` between two ``copy_mib`` MiB float32 arrays (large enough to leave the
    caches), one untimed run to fault the pages in, then the best of 5; each moves 2x its bytes.
    """
    import numpy as np

    t_start = time.perf_counter()
    rng = np.random.default_rng(0)

    def gemm_rate(n: int, reps: int) -> float:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
        return 2.0 * n**3 / best

    warm = gemm_rate(512, 2)
    n = round((warm * gemm_target_s / 2.0) ** (1 / 3) / 128) * 128
    n = max(512, min(2048, n))
    flops = max(warm, gemm_rate(n, 3))

    elems = copy_mib * 2**20 // 4
    src = np.ones(elems, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the destination pages in
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    bandwidth = 2.0 * src.nbytes / best
    return {
        "float32_flops": flops,
        "mem_bandwidth": bandwidth,
        "gemm_n": n,
        "copy_bytes": int(src.nbytes),
        "seconds": round(time.perf_counter() - t_start, 3),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "method": f"numpy float32 matmul n={n} best of 3 (2n^3 FLOPs); np.copyto of "
        f"{copy_mib} MiB best of 5 (read + write bytes)",
    }


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("profiles")
    return entries if isinstance(entries, dict) else {}


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    """Write atomically; an unwritable cache only costs a measurement next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"version": CACHE_VERSION, "profiles": entries}, indent=1), encoding="utf-8"
        )
        os.replace(tmp, path)
    except OSError:
        pass


def cpu_profile(remeasure: bool = False, path: Path | None = None) -> DeviceProfile:
    """This machine's measured profile: from the cache, else measured now and cached."""
    path = path or cache_path()
    key = machine_key()
    text = _key_text(key)
    entries = _read_cache(path)
    entry = None if remeasure else entries.get(text)
    cached = isinstance(entry, dict)
    if not cached:
        entry = {**key, **measure_cpu()}
        entries[text] = entry
        _write_cache(path, entries)
    assert isinstance(entry, dict)
    try:
        flops, bandwidth = float(entry["float32_flops"]), float(entry["mem_bandwidth"])
    except (KeyError, TypeError, ValueError):
        return cpu_profile(True, path)
    return DeviceProfile(
        "cpu",
        {"float32": flops},
        bandwidth,
        f"this machine ({key['cpu_model']}, {key['nproc']} CPUs), measured with numpy "
        f"{key['numpy']}",
        {**entry, "cache": str(path), "from_cache": cached},
    )
