"""graphcnn.passes: IR -> IR transforms and analyses, one pass per file.

The registry and the pipelines are explicit data. A pass's file name is its registry name and
its CLI name; its module docstring is its specification (before/after in spec terms, when it
fires, the math, what it refuses). This folder installs as ``graphcnn.passes``.
"""

if __name__ != "graphcnn.passes":
    raise ImportError(
        f"this package must be imported as 'graphcnn.passes', not {__name__!r}: "
        "install graphcnn (pip install -e .) and use 'import graphcnn.passes'"
    )

from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

from graphcnn.passes import (  # noqa: E402 - after the import-name guard
    advise_bottlenecks,
    eliminate_dead_nodes,
    eliminate_identity,
    fold_bn,
    merge_reshapes,
    peak_memory,
    receptive_field,
    remove_dropout,
    remove_training_outputs,
    roofline,
)
from graphcnn.passes.manager import (  # noqa: E402
    PassError,
    PassReport,
    PassResult,
    Transform,
    Weights,
    resolve,
    run_pipeline,
)

from graphcnn.ir import Graph  # noqa: E402

PASSES: dict[str, Transform] = {
    "remove_training_outputs": remove_training_outputs.run,
    "remove_dropout": remove_dropout.run,
    "eliminate_identity": eliminate_identity.run,
    "fold_bn": fold_bn.run,
    "merge_reshapes": merge_reshapes.run,
    "eliminate_dead_nodes": eliminate_dead_nodes.run,
}
"""Every transform pass by name."""

ANALYSES: dict[str, Callable[..., Any]] = {
    "receptive_field": receptive_field.analyze,
    "peak_memory": peak_memory.analyze,
    "roofline": roofline.analyze,
    "advise_bottlenecks": advise_bottlenecks.analyze,
}
"""Every analysis by name: they read a graph and return plain dataclasses, never mutate it."""

PIPELINES: dict[str, tuple[str, ...]] = {
    "none": (),
    "inference": (
        "remove_training_outputs",
        "remove_dropout",
        "eliminate_identity",
        "fold_bn",
        "merge_reshapes",
        "eliminate_dead_nodes",
    ),
}
"""Named pipelines: ``inference`` makes a lean eval graph; ``none`` changes nothing."""


def describe(name: str) -> str:
    """The first line of a pass's docstring."""
    import sys

    doc = sys.modules[PASSES[name].__module__].__doc__ or ""
    return doc.strip().splitlines()[0].replace("``", "'") if doc.strip() else name


def optimize(
    graph: Graph,
    weights: Weights | None = None,
    pipeline: str | Sequence[str] = "inference",
    verify: bool = False,
) -> tuple[Graph, Weights | None, list[PassReport]]:
    """Run a pipeline (name, comma-separated passes or list): (graph, weights, reports)."""
    return run_pipeline(graph, weights, resolve(pipeline, PASSES, PIPELINES), PASSES, verify)


__all__ = [
    "ANALYSES",
    "PASSES",
    "PIPELINES",
    "PassError",
    "PassReport",
    "PassResult",
    "describe",
    "optimize",
    "run_pipeline",
]
