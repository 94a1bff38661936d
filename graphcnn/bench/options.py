"""What a benchmark can be asked for: backend, device and half-type names, tolerances, and the
checks of ``--backend`` / ``--batch`` lists (:class:`BenchError` names the valid choices)."""

from __future__ import annotations

from collections.abc import Iterable

from graphcnn.errors import GraphcnnError

BACKENDS: tuple[str, ...] = ("torch", "torch-compile", "ort", "ort-int8", "tensorrt")
"""Every backend :func:`graphcnn.bench.run_bench` knows, in display order."""
DEFAULT_BACKENDS: tuple[str, ...] = ("torch", "ort", "ort-int8")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
HALF_TYPES: dict[str, str] = {"fp16": "float16", "bf16": "bfloat16"}
TOLERANCES: dict[str, float] = {
    "float32": 1e-3,
    "float16": 2e-2,
    "bfloat16": 6e-2,
    "int8": 0.25,
}
"""Largest accepted ``max|y - ref| / max|ref|`` of the logits, by the backend's arithmetic."""


class BenchError(GraphcnnError):
    """Bad benchmark arguments (unknown backend, batch, device...), or a missing dependency."""


def parse_backends(names: Iterable[str]) -> list[str]:
    """Backend names from items that may hold comma lists, deduplicated, in the given order.

    :class:`BenchError` names every unknown one and lists the valid ones.
    """
    out: list[str] = []
    unknown: list[str] = []
    for item in names:
        for name in (p.strip().lower() for p in item.split(",")):
            if not name:
                continue
            if name not in BACKENDS:
                unknown.append(name)
            elif name not in out:
                out.append(name)
    if unknown:
        raise BenchError(
            f"unknown backend{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}",
            f"valid backends: {', '.join(BACKENDS)}",
        )
    return out


def parse_batches(items: Iterable[str | int]) -> list[int]:
    """Batch sizes from ints or comma lists (``"1,8,32"``), deduplicated, sorted."""
    out: set[int] = set()
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                b = int(part)
            except ValueError:
                b = 0
            if b < 1:
                raise BenchError(
                    f"batch sizes must be positive integers, got {part!r}", "e.g. --batch 1,8,32"
                )
            out.add(b)
    if not out:
        raise BenchError("no batch size given", "e.g. --batch 1,8,32")
    return sorted(out)
