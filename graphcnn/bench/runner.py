"""The shape every benchmarked backend takes: a :class:`Runner` (prepare the input once, then a
timed ``forward`` + ``sync``) built from the shared :class:`Context` of one run, which also
holds what several backends share (the deployment ONNX model: :func:`onnx_model`);
:class:`Skip` says a backend cannot run here, with the reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from graphcnn.ir import Graph

    Array = np.ndarray[Any, Any]


class Skip(Exception):
    """A backend cannot run here (missing GPU, package or module): skipped, with the reason."""


@dataclass
class Runner:
    """A ready backend: ``prepare`` the input once, then ``forward`` it (timed) + ``sync``."""

    name: str
    dtype: str
    prepare: Callable[[Array], Any]
    forward: Callable[[Any], Any]
    to_numpy: Callable[[Any], Array]
    sync: Callable[[], None] = lambda: None
    fallback: Callable[[Any], Any] | None = None
    """torch-compile: the eager forward to use if compiling fails."""
    fallback_reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """One run's graphs, weights and options, and what the backends build once and share."""

    graph: Graph
    weights: Mapping[str, Array]
    deploy_graph: Graph
    deploy_weights: Mapping[str, Array]
    device: str
    half: str | None
    threads: int | None
    batches: list[int]
    seed: int
    calibration: str | Path | None
    shape: tuple[int, int, int]
    ref_module: Any = None
    onnx_model: Any = None
    calibration_source: str = ""


def first_output(out: Any) -> Any:
    """The first output (the logits) of a module or session result."""
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out


def short_error(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception, bounded (torch's messages run to pages)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def onnx_model(ctx: Context) -> Any:
    """The deployment ONNX model (ort, ort-int8 and tensorrt run it), built and checked once."""
    if ctx.onnx_model is None:
        from graphcnn.backends.to_onnx import check, to_onnx

        model = to_onnx(ctx.deploy_graph, ctx.deploy_weights)
        check(model, ctx.deploy_graph)
        ctx.onnx_model = model
    return ctx.onnx_model
