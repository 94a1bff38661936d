"""Timing calls and summarising the samples: :func:`time_calls`, :func:`percentile` (linear
between order statistics, numpy's default) and :class:`LatencyStats` via :func:`summarize`."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_WARMUP = 3
DEFAULT_REPEAT = 10
DEFAULT_MIN_TIME = 1.0
"""Seconds of timed calls per measurement, at least (besides ``repeat`` samples)."""
MAX_SAMPLES = 10_000
PROGRESS_INTERVAL_S = 0.1


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-call wall-clock times, in seconds."""

    samples: int
    mean: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    def to_json(self) -> dict[str, float | int]:
        """Milliseconds (rounded to ns), plus the sample count."""
        ms = {k: round(getattr(self, k) * 1e3, 6) for k in ("mean", "min", "p50", "p90", "p99")}
        return {"samples": self.samples, **ms, "max": round(self.max * 1e3, 6)}


def summarize(samples: Sequence[float]) -> LatencyStats:
    """Count, mean, min, p50/p90/p99 (see :func:`percentile`) and max of ``samples``."""
    if not samples:
        raise ValueError("no samples to summarize")
    return LatencyStats(
        samples=len(samples),
        mean=sum(samples) / len(samples),
        min=min(samples),
        p50=percentile(samples, 50),
        p90=percentile(samples, 90),
        p99=percentile(samples, 99),
        max=max(samples),
    )


def time_calls(
    call: Callable[[], Any],
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    min_time: float = DEFAULT_MIN_TIME,
    max_samples: int = MAX_SAMPLES,
    tick: Callable[[int], None] | None = None,
) -> list[float]:
    """Per-call seconds: ``warmup`` untimed calls, then at least ``repeat`` timed calls and
    ``min_time`` seconds of them (at most ``max_samples`` calls). ``call`` must finish its work
    (synchronise a GPU) before it returns. The cyclic GC is off meanwhile."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    last = start = time.perf_counter()
    try:
        while len(samples) < repeat or (
            time.perf_counter() - start < min_time and len(samples) < max_samples
        ):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            samples.append(t1 - t0)
            if tick is not None and t1 - last >= PROGRESS_INTERVAL_S:
                tick(len(samples))
                last = t1
    finally:
        if was_enabled:
            gc.enable()
    return samples
