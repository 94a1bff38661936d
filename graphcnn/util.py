"""Small process-level helpers shared by the stages."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large acyclic structures.

    Parsing, compiling and profiling allocate many small objects that live as long as the graph;
    full collections would re-walk them again and again and make the work superlinear in the
    graph size. Reference counting still frees everything; the collector resumes afterwards.
    Nested uses are fine: only the outermost one switches the collector back on.
    """
    global _depth
    was_enabled = gc.isenabled() if _depth == 0 else False
    _depth += 1
    gc.disable()
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and was_enabled:
            gc.enable()
