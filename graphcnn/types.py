"""The IR's value types: tensor types, parameter declarations, source locations, attributes.

These are the plain data every stage passes along (shape rules read them, nodes carry them);
:mod:`graphcnn.ir` builds nodes and graphs from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

Dim = int | str
"""A dimension: a concrete size, or a symbol such as the batch ``"N"``."""

AttrValue = int | float | bool | str | None | tuple[Any, ...]

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int64": 8}


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """Where in a spec a node (or an error) comes from."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class TensorType:
    """Shape (batch first, then C, H, W or features) and element type of a tensor."""

    shape: tuple[Dim, ...]
    dtype: str = "float32"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape without the batch dimension (always concrete)."""
        return tuple(int(d) for d in self.shape[1:])

    @property
    def sample_numel(self) -> int:
        n = 1
        for d in self.shape[1:]:
            n *= int(d)
        return n

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def __str__(self) -> str:
        short = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "int8": "i8"}
        return f"{short.get(self.dtype, self.dtype)}[{','.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True, slots=True)
class ParamDecl:
    """A parameter (trainable) or buffer (state such as BN running statistics), by shape only."""

    name: str
    shape: tuple[int, ...]
    trainable: bool = True

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def freeze(attrs: Mapping[str, AttrValue]) -> Mapping[str, AttrValue]:
    return MappingProxyType(dict(attrs))


def attr_int(attrs: Mapping[str, AttrValue], key: str) -> int:
    """``int(attrs[key])``: an integer attribute (``groups``, ``axis``, ...)."""
    return int(cast("int | float | str", attrs[key]))


def attr_float(attrs: Mapping[str, AttrValue], key: str) -> float:
    """``float(attrs[key])``: a real attribute (``eps``, ``p``, ``alpha``, ...)."""
    return float(cast("int | float | str", attrs[key]))


def attr_pair(
    attrs: Mapping[str, AttrValue], key: str, default: tuple[int, int] | None = None
) -> tuple[int, int]:
    """A ``(h, w)`` attribute (``kernel``, ``stride``, ...); ``default`` if given and absent."""
    value = attrs[key] if default is None else attrs.get(key, default)
    return cast("tuple[int, int]", value)


def attr_ints(attrs: Mapping[str, AttrValue], key: str) -> tuple[int, ...]:
    """A tuple-of-integers attribute (``shape``, ``sizes``)."""
    return cast("tuple[int, ...]", attrs[key])
