"""What a benchmark returns: each backend's :class:`Accuracy` against the eager reference
(:func:`compare`), one :class:`Measurement` per backend and batch, how each backend was set up
(:class:`BackendInfo`), and the whole :class:`BenchResult` with its ``--json`` form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphcnn.bench.options import BenchError
from graphcnn.bench.timing import LatencyStats

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Accuracy:
    """A backend's logits against the float32 eager reference on the same input."""

    max_abs_error: float
    max_abs_reference: float
    rel_error: float
    top1_agreement: float
    n: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.rel_error <= self.tolerance  # NaN compares false: flagged

    def to_json(self) -> dict[str, Any]:
        return {
            "max_abs_error": _finite(self.max_abs_error),
            "max_abs_reference": _finite(self.max_abs_reference),
            "rel_error": _finite(self.rel_error),
            "top1_agreement": self.top1_agreement,
            "n": self.n,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def _finite(x: float) -> float | None:
    """JSON has no NaN/inf: those become null (the measurement is flagged anyway)."""
    return x if math.isfinite(x) else None


def compare(y: Array, ref: Array, tolerance: float) -> Accuracy:
    """:class:`Accuracy` of output ``y`` against ``ref`` (same shape; [N, ...] logits)."""
    import numpy as np

    a = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    b = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if a.shape != b.shape:
        raise BenchError(f"output shape {list(b.shape)} differs from the reference {list(a.shape)}")
    with np.errstate(invalid="ignore"):
        err = float(np.abs(a - b).max()) if a.size else 0.0
        scale = float(np.abs(a).max()) if a.size else 0.0
    if math.isnan(err) or not np.isfinite(b).all():
        err = math.nan
    rel = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
    agree = float((a.argmax(axis=1) == b.argmax(axis=1)).mean()) if a.size else 1.0
    return Accuracy(err, scale, rel, agree, int(len(a)), tolerance)


@dataclass
class Measurement:
    """One backend at one batch size: latency, derived rates and the error check."""

    backend: str
    batch: int
    status: str
    """``ok``, ``fallback`` (torch-compile measured eager), ``skipped`` or ``failed``."""
    reason: str | None = None
    dtype: str = "float32"
    latency: LatencyStats | None = None
    accuracy: Accuracy | None = None
    flops: int = 0
    """Model FLOPs of one batch (the same for every backend)."""
    peak_flops: float | None = None
    first_call_s: float | None = None
    """The untimed check call (includes torch.compile's compilation)."""
    speedup: float | None = None

    @property
    def measured(self) -> bool:
        return self.latency is not None

    @property
    def flagged(self) -> bool:
        return self.accuracy is not None and not self.accuracy.ok

    @property
    def throughput(self) -> float | None:
        """Images per second at the median latency."""
        return self.batch / self.latency.p50 if self.latency else None

    @property
    def gflops(self) -> float | None:
        return self.flops / self.latency.p50 / 1e9 if self.latency and self.flops else None

    @property
    def peak_fraction(self) -> float | None:
        if self.latency is None or not self.flops or not self.peak_flops:
            return None
        return self.flops / self.latency.p50 / self.peak_flops

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None, nd: int = 4) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "backend": self.backend,
            "batch": self.batch,
            "status": self.status,
            "reason": self.reason,
            "dtype": self.dtype,
            "latency_ms": self.latency.to_json() if self.latency else None,
            "throughput": r(self.throughput, 3),
            "speedup": r(self.speedup),
            "gflops": r(self.gflops, 3),
            "peak_fraction": r(self.peak_fraction, 5),
            "flops": self.flops,
            "first_call_s": r(self.first_call_s),
            "accuracy": self.accuracy.to_json() if self.accuracy else None,
            "flagged": self.flagged,
        }


@dataclass
class BackendInfo:
    """How a backend was set up, or why it was not."""

    name: str
    status: str
    """``ready``, ``fallback``, ``skipped`` or ``failed``."""
    reason: str | None = None
    dtype: str = "float32"
    setup_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "dtype": self.dtype,
            "setup_s": None if self.setup_s is None else round(self.setup_s, 3),
            "detail": self.detail,
        }


@dataclass
class BenchResult:
    """Everything :func:`run_bench` measured; :meth:`to_json` is ``graphcnn bench --json``."""

    model: str
    input: tuple[int, ...]
    device: str
    half: str | None
    threads: int | None
    pipeline: str
    seed: int
    warmup: int
    repeat: int
    min_time: float
    calibration: str
    flops_per_sample: int
    peak_flops: float | None
    peak_source: str
    backends: list[BackendInfo]
    measurements: list[Measurement]
    environment: dict[str, Any] = field(default_factory=dict)

    def measurement(self, backend: str, batch: int) -> Measurement | None:
        return next(
            (m for m in self.measurements if m.backend == backend and m.batch == batch), None
        )

    def backend(self, name: str) -> BackendInfo | None:
        return next((b for b in self.backends if b.name == name), None)

    @property
    def batches(self) -> list[int]:
        return sorted({m.batch for m in self.measurements})

    @property
    def flagged(self) -> list[Measurement]:
        return [m for m in self.measurements if m.flagged]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": list(self.input),
            "device": self.device,
            "half": self.half,
            "threads": self.threads,
            "pipeline": self.pipeline,
            "seed": self.seed,
            "warmup": self.warmup,
            "repeat": self.repeat,
            "min_time_s": self.min_time,
            "calibration": self.calibration,
            "flops_per_sample": self.flops_per_sample,
            "peak_flops": self.peak_flops,
            "peak_source": self.peak_source,
            "backends": [b.to_json() for b in self.backends],
            "results": [m.to_json() for m in self.measurements],
            "environment": self.environment,
        }
