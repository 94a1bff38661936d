"""Build options, checked before TensorRT is needed: precisions, batch ranges, byte sizes and
the optimization profile of each input.

One optimization profile per input: ``min:opt:max`` batch over the graph's C, H, W. A graph
compiled with a concrete batch B defaults to ``B:B:B``, a symbolic one to ``1:1:1``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphcnn.backends.to_tensorrt.errors import TensorRTError
from graphcnn.ir import Graph

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}  # fmt: skip


def parse_batch_range(text: str) -> tuple[int, int, int]:
    """``"1:8:32"`` -> ``(1, 8, 32)`` (min, opt, max); ``"8"`` -> ``(8, 8, 8)``."""
    parts = text.strip().split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise TensorRTError(
            f"batch range {text!r} is not MIN:OPT:MAX", "e.g. 1:8:32 (or 8 for a fixed batch)"
        )
    lo, opt, hi = values
    return validate_batch_range((lo, opt, hi))


def validate_batch_range(r: Sequence[int]) -> tuple[int, int, int]:
    """Check ``1 <= min <= opt <= max``; returns the range as a tuple."""
    if len(r) != 3:
        raise TensorRTError(f"batch range needs 3 values (min, opt, max), got {list(r)}")
    lo, opt, hi = (int(v) for v in r)
    if lo < 1:
        raise TensorRTError(f"batch range {lo}:{opt}:{hi}: the minimum batch must be >= 1")
    if not lo <= opt <= hi:
        raise TensorRTError(
            f"batch range {lo}:{opt}:{hi} is not ordered", "it must satisfy MIN <= OPT <= MAX"
        )
    return lo, opt, hi


def parse_size(text: str) -> int:
    """A byte count: ``"1GiB"``, ``"512MiB"``, ``"2G"`` (binary), ``"1.5GB"`` (decimal) or
    ``"4096"``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS:
        raise TensorRTError(
            f"size {text!r} is not a byte count", "e.g. 1GiB, 512MiB, 2G or a number of bytes"
        )
    n = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if n < 1:
        raise TensorRTError(f"size {text!r} must be at least one byte")
    return n


@dataclass(frozen=True)
class InputProfile:
    """Min / opt / max shapes of one engine input (one optimization profile entry)."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"input": self.name, "min": list(self.min), "opt": list(self.opt),
                "max": list(self.max)}  # fmt: skip

    @property
    def batch_range(self) -> tuple[int, int, int]:
        return self.min[0], self.opt[0], self.max[0]


def default_batch_range(graph: Graph) -> tuple[int, int, int]:
    """A graph compiled with a concrete batch B gets ``B:B:B``; a symbolic one ``1:1:1``."""
    b = graph.inference().inputs[0].type.shape[0]
    return (b, b, b) if isinstance(b, int) else (1, 1, 1)


def input_profiles(graph: Graph, batch_range: Sequence[int] | None = None) -> list[InputProfile]:
    """One :class:`InputProfile` per graph input: ``(batch, C, H, W)`` for min, opt and max."""
    lo, opt, hi = validate_batch_range(batch_range or default_batch_range(graph))
    out = []
    for node in graph.inference().inputs:
        sample = node.type.sample_shape
        out.append(InputProfile(node.name, (lo, *sample), (opt, *sample), (hi, *sample)))
    if not out:
        raise TensorRTError(f"graph {graph.name} has no inputs")
    return out
