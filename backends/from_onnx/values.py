"""What an ONNX tensor name stands for while importing: an activation, a constant, a pattern.

Constants include shape values, which are object arrays of ints and :class:`Sym` (the batch,
or anything computed from it) so that ``x.view(x.size(0), -1)`` folds with a dynamic batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class Sym:
    """A symbolic integer of a shape computation: the batch, or anything computed from it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return self.label

    def _unknown(self, *other: object) -> Sym:
        return UNKNOWN

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unknown
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = _unknown
    __neg__ = __abs__ = _unknown


BATCH = Sym("N")
UNKNOWN = Sym("?")


@dataclass(frozen=True)
class Tensor:
    """An activation: the IR node that computes it."""

    ir: str


@dataclass(frozen=True)
class Const:
    """A constant (numeric, or an object array of ints and :class:`Sym` for shape values)."""

    value: np.ndarray[Any, Any]
    name: str
    """The ONNX tensor's name (an Identity of an initializer names it anew: torch's exporter
    deduplicates equal initializers so, and the Identity's output keeps the parameter name)."""


@dataclass(frozen=True)
class Pending:
    """Part of a pattern that has no IR op of its own (``x / sqrt(2)``, ``Erf``, ...)."""

    kind: str
    base: str
    """IR node of the pattern's input ``x``."""
    op_type: str
    node: str
    value: float = 0.0
    divisor: float = 0.0
    """For ``x / d`` ("scaled" by 1/d): d itself, so a scale node divides exactly."""


@dataclass(frozen=True)
class Seq:
    """A sequence of activations (SplitToSequence, as the dynamo exporter emits ``chunk``)."""

    items: tuple[str, ...]
    node: str


Value = Tensor | Const | Pending | Seq


def has_sym(a: np.ndarray[Any, Any]) -> bool:
    return a.dtype == object and any(isinstance(v, Sym) for v in a.flat)


def normalize(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Object arrays without symbols become int64 (or float64) arrays again."""
    import numpy as np

    if a.dtype != object or has_sym(a):
        return a
    if all(isinstance(v, (int, np.integer, bool, np.bool_)) for v in a.flat):
        return a.astype(np.int64)
    return a.astype(np.float64)
