"""The Pareto front of a study: trials no other trial beats on both the objective and MACs.

Trial ``a`` dominates ``b`` when ``a`` is at least as good on both axes (objective in the
study's direction, MACs lower) and strictly better on one. The front is every trial that no
trial dominates; two trials with equal MACs and equal value are both on it. Sort by MACs, then
sweep: a group of equal-MACs trials contributes its best-valued members when their value is
strictly better than every trial with fewer MACs. O(n log n).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby


def dominates(a: tuple[int, float], b: tuple[int, float], maximize: bool) -> bool:
    """``(macs, value)`` ``a`` dominates ``b``."""
    (ma, va), (mb, vb) = a, b
    if maximize:
        va, vb = -va, -vb
    return ma <= mb and va <= vb and (ma < mb or va < vb)


def front(points: Sequence[tuple[int, float]], maximize: bool) -> list[int]:
    """Indices of the non-dominated ``(macs, value)`` points, in increasing MACs."""
    sign = -1.0 if maximize else 1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], sign * points[i][1]))
    best = float("inf")
    out: list[int] = []
    for _, group in groupby(order, key=lambda i: points[i][0]):
        members = list(group)
        top = sign * points[members[0]][1]
        if top < best:
            out.extend(i for i in members if sign * points[i][1] == top)
            best = top
    return out
