"""What the interpreter's parts share: options, limits, the graph under construction, the scope
stack, the block call stack and the counters, plus located errors that carry the call stack.

The interpreter is one class assembled from parts, one module each: :mod:`.naming` (scope paths
and node names), :mod:`.eval` (expressions), :mod:`.calls` (calls and argument binding) and
:mod:`.interp` (statements and the network run). :class:`State` declares the few methods a part
uses from a later one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from graphcnn.errors import SpecError
from graphcnn.ir import Graph, SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.builtins import Layer
from graphcnn.lang.memo import Memo
from graphcnn.lang.values import Block, Tensor

MAX_STEPS = 1_000_000
"""Statements and calls one compilation may execute."""
MAX_DEPTH = 64
"""Deepest nesting of block calls."""
MAX_NODES = 1_000_000
"""Most nodes one graph may have."""
MAX_WORK = 20_000_000
"""List items one compilation may build, copy, compare or iterate over (loops on large lists)."""


@dataclass
class Options:
    """What the caller may change without editing the spec."""

    input_shape: tuple[int, ...] | None = None
    batch: int | str = "N"
    dtype: str = "float32"


@dataclass
class Scope:
    """A named scope: its path, whether unnamed children are numbered, and the names taken."""

    path: str
    seq: bool
    counter: int = 0
    names: set[str] = field(default_factory=set)
    auto: dict[str, int] = field(default_factory=dict)


class State(ABC):
    def __init__(self, options: Options | None = None, memo: Memo | None = None):
        self.opts = options or Options()
        self.memo = memo if memo is not None else Memo(share_shapes=False)
        self.made: list[str] = []
        """Node names in the order they were made (what a block call added: a slice)."""
        self.opened: list[Scope] = []
        """Scopes in the order they were opened."""
        self.graph = Graph("")
        self.scopes: dict[str, Scope] = {"": Scope("", False)}
        self.stack: list[Scope] = [self.scopes[""]]
        self.frames: list[tuple[str, SourceLoc]] = []
        self.training = 0
        self.steps = 0
        self.work = 0
        self.inputs_made = 0
        self.where: SourceLoc | None = None
        """The statement (or constant) being run: where a runaway recursion is reported."""

    @abstractmethod
    def _call(self, e: ast.Call, glob: dict[str, Any], env: dict[str, Any], piped: Any) -> Any:
        """Evaluate a call (``piped`` is the chain's input, if any)."""

    @abstractmethod
    def _run_block(self, blk: Block, bound: dict[str, Any], loc: SourceLoc) -> Any:
        """Run a block's body with its bound parameters; its return value."""

    @abstractmethod
    def _make(
        self,
        spec_name: str,
        layer: Layer,
        inputs: list[Tensor],
        attrs: dict[str, Any],
        alias: Any,
        loc: SourceLoc,
    ) -> Tensor:
        """Add one node to the graph (shape checked, named from the scope stack)."""

    def _charge(self, items: int, loc: SourceLoc) -> None:
        """Count ``items`` of list work against :data:`MAX_WORK`."""
        self.work += items
        if self.work > MAX_WORK:
            raise self._error(
                f"spec handles more than {MAX_WORK:,} list items in total",
                loc,
                "a loop over a large list or range runs away",
            )

    def _charge_deep(self, value: Any, loc: SourceLoc) -> None:
        """Count every item of a nested list (comparing it visits them all), stopping as soon as
        the budget is spent: shared sub-lists (``y = [y, y]``) may stand for billions of items."""
        left = MAX_WORK - self.work
        stack, seen = [value], 0
        while stack and seen <= left:
            v = stack.pop()
            if isinstance(v, (list, tuple)):
                seen += len(v)
                stack.extend(x for x in v if isinstance(x, (list, tuple)))
            elif isinstance(v, str):
                seen += len(v) // 64
        self._charge(seen, loc)

    def _error(self, message: str, loc: SourceLoc, hint: str | None = None) -> SpecError:
        """A located error with the block call stack, innermost first (repeats collapsed)."""
        frames: list[str] = []
        repeats = 0
        for i in range(len(self.frames) - 1, -1, -1):
            what, call_loc = self.frames[i]
            line = (
                f"in {what}"
                if i == 0
                else f"in {what}, called from {self.frames[i - 1][0]} at {call_loc}"
            )
            if frames and frames[-1] == line:
                repeats += 1
                continue
            if repeats:
                frames.append(f"  ... the line above {repeats} more time(s)")
                repeats = 0
            frames.append(line)
        if repeats:
            frames.append(f"  ... the line above {repeats} more time(s)")
        return SpecError(message, loc, hint, frames)
