"""Colour scales of the pictures: a sequential palette on a log scale, and the roofline bounds.

Costs span orders of magnitude (a 1x1 conv next to a 7x7 stem), so a cost maps to a colour
through its logarithm between the smallest and the largest non-zero value of the picture; 0 has
its own neutral colour. The palette is ColorBrewer's 9-class ``YlOrRd`` (light yellow for cheap,
dark red for expensive): its lightness falls monotonically, so darker always means more, also in
grey-scale print. Colours are interpolated in RGB between its stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PALETTE: tuple[str, ...] = (
    "#ffffcc",
    "#ffeda0",
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
)
"""ColorBrewer YlOrRd, 9 classes, cheap to expensive."""

ZERO = "#f0f0f0"
"""A box whose cost is 0 (or unknown)."""

BOUND_COLORS = {"compute": "#d95f02", "memory": "#1b9e77", None: ZERO}
"""Roofline bound -> colour (ColorBrewer Dark2); None: no time (views, training-only parts)."""


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c):02x}" for c in rgb)


def at(t: float) -> str:
    """The palette's colour at ``t`` in [0, 1] (clamped)."""
    t = min(1.0, max(0.0, t)) * (len(PALETTE) - 1)
    i = min(int(t), len(PALETTE) - 2)
    f = t - i
    a, b = _rgb(PALETTE[i]), _rgb(PALETTE[i + 1])
    return _hex((a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f))


def luminance(hex_color: str) -> float:
    """Relative luminance (WCAG 2) of a ``#rrggbb`` colour, 0 (black) to 1 (white)."""

    def lin(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = _rgb(hex_color)
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def text_color(fill: str) -> str:
    """Black or white, whichever reads better on ``fill``."""
    return "#000000" if luminance(fill) > 0.18 else "#ffffff"


@dataclass(frozen=True)
class LogScale:
    """Non-zero values from ``lo`` to ``hi`` mapped to the palette by their logarithm."""

    lo: float
    hi: float

    @classmethod
    def of(cls, values: list[float]) -> LogScale | None:
        """The scale spanning ``values``' non-zero entries; None when all are 0."""
        positive = [v for v in values if v > 0]
        if not positive:
            return None
        return cls(min(positive), max(positive))

    def position(self, value: float) -> float:
        """Where ``value`` lies on the scale, 0 to 1 (one value only: 1)."""
        if self.hi <= self.lo:
            return 1.0
        return (math.log(value) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))

    def color(self, value: float) -> str:
        return at(self.position(value)) if value > 0 else ZERO

    def ticks(self, min_gap: float = 0.3) -> list[float]:
        """Values to label on the legend: both ends, and the powers of ten between them that lie
        at least ``min_gap`` (a fraction of the scale) from every other label."""
        if self.hi <= self.lo:
            return [self.lo]
        kept = {0.0: self.lo, 1.0: self.hi}
        e = math.floor(math.log10(self.lo)) + 1
        while 10.0**e < self.hi:
            pos = self.position(10.0**e)
            if all(abs(pos - k) >= min_gap for k in kept):
                kept[pos] = 10.0**e
            e += 1
        return [kept[k] for k in sorted(kept)]
