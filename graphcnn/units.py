"""Numbers for people: the one place that formats counts, bytes and times with units."""

from __future__ import annotations

from collections.abc import Iterable


def si(n: float, unit: str = "") -> str:
    """``1.50G``, ``26.56MB``: two decimals with an SI prefix (``999`` stays ``999``)."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n}{unit}"


def fmt_time(seconds: float) -> str:
    """``12.3 us``, ``4.56 ms``, ``1.23 s``."""
    for div, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= div:
            return f"{seconds / div:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns" if seconds else "0"


def fmt_ms(seconds: float) -> str:
    """Milliseconds with 3, 2 or 1 decimals as the value grows: ``0.123``, ``4.56``, ``78.9``."""
    x = seconds
    return f"{x * 1e3:.3f}" if x < 0.01 else f"{x * 1e3:.2f}" if x < 1 else f"{x * 1e3:.1f}"


def shape(dims: Iterable[object]) -> str:
    """``3x224x224``."""
    return "x".join(map(str, dims))
