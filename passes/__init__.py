"""graphcnn.passes: IR -> IR transforms, one pass per file.

The registry and the pipelines are explicit data. A pass's file name is its registry name and
its CLI name; its module docstring is its specification (before/after in spec terms, when it
fires, the math, what it refuses). Analyses, which read a graph and never change it, are the
stage before this one (``graphcnn.analysis``). This folder installs as ``graphcnn.passes``.
"""

if __name__ != "graphcnn.passes":
    raise ImportError(
        f"this package must be imported as 'graphcnn.passes', not {__name__!r}: "
        "install graphcnn (pip install -e .) and use 'import graphcnn.passes'"
    )

from collections.abc import Sequence  # noqa: E402

from graphcnn.ir import Graph  # noqa: E402
from graphcnn.passes import (  # noqa: E402 - after the import-name guard
    eliminate_dead_nodes,
    eliminate_identity,
    fold_bn,
    merge_reshapes,
    remove_dropout,
    remove_training_outputs,
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
from graphcnn.util import gc_paused  # noqa: E402

PASSES: dict[str, Transform] = {
    "remove_training_outputs": remove_training_outputs.run,
    "remove_dropout": remove_dropout.run,
    "eliminate_identity": eliminate_identity.run,
    "fold_bn": fold_bn.run,
    "merge_reshapes": merge_reshapes.run,
    "eliminate_dead_nodes": eliminate_dead_nodes.run,
}
"""Every transform pass by name."""

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


def apply_pipeline(graph: Graph, pipeline: str | Sequence[str]) -> Graph:
    """Run a pipeline's transforms on a graph without weights and without per-pass reports.

    :func:`optimize` profiles the whole graph before and after every pass to report what
    changed; callers that only need the final graph (``analyze``) use this instead.
    """
    with gc_paused():
        for name in resolve(pipeline, PASSES, PIPELINES):
            graph = PASSES[name](graph, None).graph
    return graph


__all__ = [
    "PASSES",
    "PIPELINES",
    "PassError",
    "PassReport",
    "PassResult",
    "apply_pipeline",
    "describe",
    "optimize",
    "run_pipeline",
]
