"""The objective: one metric, or a weighted sum of metrics, and its direction.

``--objective macs`` ranks by exact MACs; ``--objective val_accuracy`` trains each accepted
candidate; a weighted objective is a sum of terms ``[WEIGHT *] METRIC [/ SCALE]`` joined by
``+`` or ``-``, with SI suffixes on scales so that the terms are comparable::

    val_accuracy - 0.05 * macs / 100M
    macs / 300M + params / 5M

Cost metrics (``macs params flops latency measured``) need no training; training metrics
(``val_accuracy val_loss``) train the candidate with ``graphcnn train``'s options. The
direction is ``maximize`` when ``val_accuracy`` has a positive weight, else ``minimize``
(``--direction`` overrides it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from graphcnn.search.candidate import SI, TIME, Cost, SearchError

COST_METRICS = ("macs", "params", "flops", "latency", "measured")
TRAIN_METRICS = ("val_accuracy", "val_loss")
METRICS = COST_METRICS + TRAIN_METRICS
DIRECTIONS = ("minimize", "maximize")
_NUM = r"[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?"
_TERM = re.compile(
    rf"^(?:(?P<w>{_NUM})\s*\*\s*)?(?P<m>[a-z_]+)(?:\s*/\s*(?P<s>{_NUM})\s*(?P<u>[kKMGT]|ms|us|s)?)?$"
)


@dataclass(frozen=True)
class Objective:
    text: str
    terms: tuple[tuple[float, str], ...]
    """(weight, metric): weight already divided by the term's scale."""
    direction: str

    @property
    def trains(self) -> bool:
        return any(m in TRAIN_METRICS for _, m in self.terms)

    def metrics(self) -> set[str]:
        return {m for _, m in self.terms}

    def value(self, cost: Cost, trained: Mapping[str, float] | None = None) -> float:
        values: dict[str, float | None] = {
            "macs": cost.macs,
            "params": cost.params,
            "flops": cost.flops,
            "latency": cost.latency_s,
            "measured": cost.measured_s,
            **(trained or {}),
        }
        total = 0.0
        for w, m in self.terms:
            v = values.get(m)
            if v is None:
                raise SearchError(f"objective {self.text!r}: no value for {m}")
            total += w * float(v)
        return total


def parse_objective(text: str, direction: str | None = None) -> Objective:
    """Parse ``--objective``; an unknown metric or malformed term is a :class:`SearchError`."""
    hint = f"metrics: {', '.join(METRICS)}; e.g. 'val_accuracy - 0.05 * macs / 100M'"
    raw = text.strip()
    if not raw:
        raise SearchError("--objective is empty", hint)
    parts = re.split(r"(?<![0-9][eE])\s*([+-])\s*", raw)
    # NOTE: re.split keeps the separators; a leading sign gives an empty first part.
    signs, terms = ["+"], []
    if parts[0] == "":
        parts = parts[1:]
        signs = [parts.pop(0)]
    terms.append(parts[0])
    for i in range(1, len(parts), 2):
        signs.append(parts[i])
        terms.append(parts[i + 1] if i + 1 < len(parts) else "")
    out: list[tuple[float, str]] = []
    for sign, term in zip(signs, terms, strict=True):
        m = _TERM.match(term.strip())
        if not m or m.group("m") not in METRICS:
            bad = m.group("m") if m else term.strip()
            raise SearchError(f"--objective {text!r}: cannot read term {bad!r}", hint)
        weight = float(m.group("w") or 1.0)
        if m.group("s") is not None:
            unit = m.group("u") or ""
            scale = float(m.group("s")) * (TIME[unit] if unit in TIME else SI[unit])
            if scale == 0:
                raise SearchError(f"--objective {text!r}: a term divides by zero", hint)
            weight /= scale
        out.append((-weight if sign == "-" else weight, m.group("m")))
    if direction is None:
        up = any(m == "val_accuracy" and w > 0 for w, m in out)
        direction = "maximize" if up else "minimize"
    if direction not in DIRECTIONS:
        raise SearchError(f"unknown --direction {direction!r}", "minimize or maximize")
    return Objective(raw, tuple(out), direction)
