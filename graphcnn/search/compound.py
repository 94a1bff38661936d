"""EfficientNet's compound scaling (Tan & Le 2019, section 3.3), reproduced on exact counts.

Step 1 of the paper fixes phi = 1 and grid-searches depth, width and resolution factors
``alpha, beta, gamma >= 1`` under ``alpha * beta**2 * gamma**2 ~= 2``: FLOPs grow linearly with
depth and quadratically with width and resolution, so every candidate should cost about twice
the baseline. :func:`compound_space` is that grid (one ``choice`` per factor; the grid sampler
walks it), :class:`Compound` maps a factor triple onto the spec's own parameters
(``depth_mult``, ``width_mult`` and ``res`` for ``efficientnet``; the input size otherwise) and
rejects a triple off the constraint before anything compiles. Every accepted candidate then
gets its *exact* MACs beside the law's prediction ``alpha * beta**2 * gamma**2 * base``.

:func:`law_check` measures how far the law is from the exact counts for the published
B1..B7 (their own ``depth_mult``, ``width_mult``, resolution against B0's): channel rounding to
multiples of 8, ``ceil`` on block counts, the stem and head that do not scale with depth, and the
squeeze-excite and classifier layers whose cost is not quadratic in resolution all bend it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphcnn.search.candidate import SearchError
from graphcnn.search.space import Dimension, Space

DEPTH = ("depth_mult", "depth")
WIDTH = ("width_mult", "width")
RESOLUTION = ("res", "resolution")
FACTORS = ("alpha", "beta", "gamma")


def _grid(low: float, high: float, step: float) -> tuple[float, ...]:
    n = round((high - low) / step)
    return tuple(round(low + i * step, 6) for i in range(n + 1))


def compound_space(step: float = 0.05, high: float = 1.5) -> Space:
    """alpha, beta, gamma each in 1.0, 1.0 + step, ..., high."""
    values = _grid(1.0, high, step)
    text = ", ".join(f"{v:g}" for v in values)
    return Space(
        tuple(Dimension(f, "choice", choices=values, source=f"{f}=choice({text})") for f in FACTORS)
    )


@dataclass(frozen=True)
class Compound:
    """How factors become spec values, and the constraint they must meet."""

    depth: str
    width: str
    resolution: str | None
    """The network parameter for the input size, or None to set the input shape."""
    base: Mapping[str, float]
    base_resolution: int
    target: float = 2.0
    tolerance: float = 0.1

    @classmethod
    def for_network(
        cls,
        params: Sequence[str],
        defaults: Mapping[str, float],
        input_hw: int,
        target: float = 2.0,
        tolerance: float = 0.1,
    ) -> Compound:
        def pick(names: tuple[str, ...], what: str) -> str:
            for n in names:
                if n in params:
                    return n
            raise SearchError(
                f"--compound: the network has no {what} parameter ({' or '.join(names)})",
                "compound scaling needs a depth and a width multiplier among the network's "
                f"parameters; it has: {', '.join(params) or 'none'}",
            )

        depth, width = pick(DEPTH, "depth"), pick(WIDTH, "width")
        res = next((n for n in RESOLUTION if n in params), None)
        base = {depth: float(defaults.get(depth, 1.0)), width: float(defaults.get(width, 1.0))}
        base_res = int(defaults[res]) if res is not None and res in defaults else input_hw
        return cls(depth, width, res, base, base_res, target, tolerance)

    @staticmethod
    def factor(values: Mapping[str, Any]) -> float:
        a, b, g = (float(values[f]) for f in FACTORS)
        return a * b * b * g * g

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        f = self.factor(values)
        if abs(f - self.target) > self.tolerance:
            return [f"alpha*beta^2*gamma^2 = {f:.3f}, not {self.target:g} +- {self.tolerance:g}"]
        return []

    def spec_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
        """(network parameter overrides, input resolution or None)."""
        a, b, g = (float(values[f]) for f in FACTORS)
        res = round(self.base_resolution * g)
        out: dict[str, Any] = {
            self.depth: round(self.base[self.depth] * a, 6),
            self.width: round(self.base[self.width] * b, 6),
        }
        if self.resolution is not None:
            out[self.resolution] = res
            return out, None
        return out, res

    def to_json(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "width": self.width,
            "resolution": self.resolution or "input",
            "base": {**self.base, "resolution": self.base_resolution},
            "target": self.target,
            "tolerance": self.tolerance,
        }


B_MODELS = tuple(f"efficientnet_b{i}" for i in range(8))


def law_check(models: Sequence[str] = B_MODELS) -> list[dict[str, Any]]:
    """For each model: its (d, w, r) against the first model's, the law's FLOPs ratio
    ``d * w**2 * r**2`` and the exact MACs and FLOPs ratios."""
    from graphcnn.cost import profile
    from graphcnn.lang.values import Model
    from graphcnn.search.candidate import compile_with, load_spec

    rows: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    for name in models:
        module, _ = load_spec(name)
        target = module.target(name)
        if not isinstance(target, Model):
            raise SearchError(f"{name} is not a model line with its own multipliers")
        kw: dict[str, Any] = {k: getattr(v, "value", None) for k, v, _ in target.defn.kwargs}
        p = profile(compile_with(module, name, {}, None, None)).totals
        row: dict[str, Any] = {
            "model": name,
            "d": float(kw["depth_mult"]),
            "w": float(kw["width_mult"]),
            "res": int(kw["res"]),
            "macs": p.macs,
            "flops": p.flops,
        }
        if base is None:
            base = row
        r = row["res"] / base["res"]
        row["law"] = row["d"] / base["d"] * (row["w"] / base["w"]) ** 2 * r**2
        row["macs_ratio"] = p.macs / base["macs"]
        row["flops_ratio"] = p.flops / base["flops"]
        row["error"] = row["law"] / row["flops_ratio"] - 1.0
        rows.append(row)
    return rows
