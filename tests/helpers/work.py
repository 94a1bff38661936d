"""Work counted, never timed: counters wrapped around unit operations, and every Python
function's call count (cProfile's deterministic counts, not its timings), with the check that
they grow linearly in a network's size."""

from __future__ import annotations

import cProfile
import gc
import pstats
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Work(Counter[str]):
    """Counts of unit operations; nothing is counted while ``active`` is false."""

    active = True


def counted(work: Work, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, each call counted under ``key`` while ``work.active``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if work.active:
            work[key] += 1
        return fn(*args, **kwargs)

    return wrapper


def call_counts(run: Callable[[], T]) -> tuple[T, dict[str, int]]:
    """What ``run()`` returns, and the calls of every function while it runs, by
    ``file:line(name)``. The garbage collector is off meanwhile: no finalizers or weakref
    callbacks of earlier tests count."""
    gc.collect()
    gc.disable()
    prof = cProfile.Profile()
    try:
        prof.enable()
        result = run()
        prof.disable()
    finally:
        gc.enable()
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    return result, {f"{file}:{line}({name})": n[1] for (file, line, name), n in stats.items()}


def not_linear(
    one: dict[str, int], two: dict[str, int], four: dict[str, int]
) -> dict[str, tuple[int, int, int]]:
    """The functions whose call counts for N, 2N and 4N layers do not grow linearly (the step
    from 2N to 4N exactly twice the step from N to 2N), with their three counts."""
    return {
        fn: (one.get(fn, 0), two.get(fn, 0), four.get(fn, 0))
        for fn in set(one) | set(two) | set(four)
        if four.get(fn, 0) - two.get(fn, 0) != 2 * (two.get(fn, 0) - one.get(fn, 0))
    }
