"""The Python API: compile a spec, a zoo model or an ONNX file to IR, and profile it.

:func:`load` is the one entry point for every source: a zoo name or a ``.gcnn`` file gives the
graph and no weights (a spec declares shapes only), an ``.onnx`` file gives the imported graph
and its initializers as weights (:mod:`graphcnn.backends.from_onnx`, imported lazily: it needs
``onnx`` and numpy, never torch). :func:`compile` is :func:`load` without the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.cost import Profile, profile
from graphcnn.errors import GraphcnnError, SpecError
from graphcnn.ir import Graph
from graphcnn.lang.interp import Options, compile_module
from graphcnn.lang.loader import MAX_SPEC_BYTES, LoadedModule, load_text
from graphcnn.lang.loader import resolve as resolve_spec
from graphcnn.lang.values import show
from graphcnn.util import gc_paused
from graphcnn.weights import Fitted, fit_checkpoint

if TYPE_CHECKING:
    from graphcnn.types import Dim
    from graphcnn.weights import Weights

__all__ = [
    "compile",
    "compile_text",
    "is_onnx",
    "load",
    "load_spec",
    "load_weights",
    "drops_training",
    "profile",
    "Profile",
    "resolve",
    "retype",
]

ONNX_SUFFIX = ".onnx"


def is_onnx(spec_or_model: str | Path) -> bool:
    """Whether ``spec_or_model`` names an ONNX file (by its ``.onnx`` suffix, any case)."""
    return str(spec_or_model).lower().endswith(ONNX_SUFFIX)


def resolve(spec_or_model: str | Path) -> tuple[LoadedModule, str | None]:
    """A zoo model name or a spec path -> (loaded module, network name or None).

    An ``.onnx`` path is refused with a pointer to :func:`load`: it holds a graph, not a spec.
    """
    if is_onnx(spec_or_model):
        raise GraphcnnError(
            f"{str(spec_or_model)!r} is an ONNX model, not a spec",
            "it has one graph and no spec to load: graphcnn.load() or graphcnn.compile() import it",
        )
    return resolve_spec(spec_or_model)


def load_spec(spec_or_model: str | Path) -> LoadedModule:
    return resolve(spec_or_model)[0]


def _overrides(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Python values become spec expressions; strings are taken as spec expressions."""
    out = {}
    for k, v in (params or {}).items():
        out[k] = v if isinstance(v, str) else show(v, limit=MAX_SPEC_BYTES)
    return out


def load(
    spec_or_model: str | Path,
    network: str | None = None,
    params: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch: int | None = None,
) -> tuple[Graph, Weights | None]:
    """The graph of a zoo model, a ``.gcnn`` file or an ``.onnx`` file, and its weights.

    A spec gives ``(graph, None)``: it declares shapes only (``graphcnn.weights.init_weights``
    makes seeded ones). An ONNX file gives the imported graph and its initializers, keyed
    ``node.param`` like every graphcnn weights. The arguments are :func:`compile`'s; an ONNX
    model has no networks or parameters to choose, so ``network`` and ``params`` are refused
    for one, and ``input_shape`` and ``batch`` re-infer its graph (an error if that would
    change a parameter's shape: the weights would no longer fit).
    """
    if batch is not None and batch < 1:
        raise SpecError(f"batch must be >= 1, got {batch}")
    if not is_onnx(spec_or_model):
        module, default = resolve(spec_or_model)
        return compile_loaded(module, network or default, params, input_shape, batch), None
    name = str(spec_or_model)
    if network is not None:
        raise GraphcnnError(
            f"{name!r} is an ONNX model: it has one graph, no network {network!r} to choose",
            "drop --network",
        )
    if params:
        raise GraphcnnError(
            f"{name!r} is an ONNX model: it has no parameters to set ({', '.join(params)})",
            "set parameters on the spec it was exported from, or drop --set",
        )
    from graphcnn.backends.from_onnx import from_onnx

    g, weights = from_onnx(spec_or_model)
    if input_shape is not None or batch is not None:
        g = retype(g, input_shape, batch, name)
    return g, weights


def retype(
    g: Graph,
    input_shape: tuple[int, ...] | None = None,
    batch: Dim | None = None,
    source: str | None = None,
) -> Graph:
    """``g`` with its input's shape (``input_shape``: C, H, W) or batch (a size, or a symbol
    such as ``"N"``) replaced and every type inferred again, its parameters unchanged.

    For an imported graph, which has no spec to compile again; raises :class:`OnnxImportError`
    naming ``source`` (default: the graph's name) when a layer does not fit the new input or a
    parameter would change shape (the weights would no longer fit).
    """
    from graphcnn.backends.from_onnx import OnnxImportError
    from graphcnn.ir import Op, TensorType
    from graphcnn.shapes import ShapeError, infer_node

    wanted = "x".join(map(str, input_shape)) if input_shape else f"batch {batch}"
    where = f"{source or g.name} at {wanted}"
    types: dict[str, TensorType] = {}
    out = Graph(g.name, outputs=list(g.outputs), scopes=dict(g.scopes))
    for n in g:
        if n.op is Op.INPUT:
            attrs = dict(n.attrs)
            if input_shape is not None:
                attrs["shape"] = tuple(input_shape)
            if batch is not None:
                attrs["batch"] = batch
            n = n.replace(attrs=attrs)
        try:
            t, params = infer_node(n.op, n.attrs, [types[i] for i in n.inputs])
        except ShapeError as e:
            raise OnnxImportError(
                f"{where}: {n.name}: {e}",
                "the model's layers do not fit that input; re-export it at that size",
            ) from None
        if params != n.params:
            raise OnnxImportError(
                f"{where}: {n.name}'s parameters would change shape, and the model's weights "
                "would no longer fit",
                "re-export the model at that size",
            )
        types[n.name] = t
        out.add(n.replace(type=t))
    return out


def compile(  # noqa: A001 - the natural name for the main entry point
    spec_or_model: str | Path,
    network: str | None = None,
    params: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch: int | None = None,
) -> Graph:
    """Compile a zoo model (``"resnet50"``), a ``.gcnn`` file or an ``.onnx`` file into IR.

    ``params`` overrides network parameters (values, or strings holding spec expressions such as
    ``"[1, 1, 1, 1]"``); ``input_shape`` replaces the network's ``input(C, H, W)``; ``batch``
    makes the batch dimension concrete (it is the symbol ``N`` otherwise). An ONNX file is
    imported (:func:`load` also returns its weights).
    """
    return load(spec_or_model, network, params, input_shape, batch)[0]


def compile_text(
    text: str,
    network: str | None = None,
    params: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch: int | None = None,
    name: str = "<spec>",
) -> Graph:
    """Compile spec source given as a string."""
    return compile_loaded(load_text(text, name), network, params, input_shape, batch)


def compile_loaded(
    module: LoadedModule,
    network: str | None,
    params: Mapping[str, Any] | None,
    input_shape: tuple[int, ...] | None,
    batch: int | None,
) -> Graph:
    if batch is not None and batch < 1:
        raise SpecError(f"batch must be >= 1, got {batch}")
    opts = Options(input_shape=input_shape, batch="N" if batch is None else batch)
    with gc_paused():
        return compile_module(module, network, _overrides(params), opts)


def drops_training(pipeline: str | Sequence[str]) -> bool:
    """Whether ``pipeline`` (a name, comma-separated passes or a list) removes training-only
    parts (its passes include ``remove_training_outputs``, as ``inference`` does)."""
    from graphcnn.passes import PASSES, PIPELINES
    from graphcnn.passes.manager import resolve as resolve_pipeline

    return "remove_training_outputs" in resolve_pipeline(pipeline, PASSES, PIPELINES)


def load_weights(
    path: str | Path, graph: Graph, pipeline: str | Sequence[str] = "none", seed: int = 0
) -> Fitted:
    """Read a checkpoint for ``graph`` as ``pipeline`` will run it (``.safetensors`` or a
    PyTorch state dict, read with ``weights_only``).

    When ``pipeline`` removes the training-only parts (``"inference"``), a checkpoint without
    their weights loads: ``.not_needed`` lists those keys and ``.note`` says so; run the
    pipeline next (``graphcnn.passes.optimize(graph, fitted.weights, pipeline)``). Any other
    missing, unexpected or mis-shaped key raises :class:`~graphcnn.weights.WeightsError`.
    """
    return fit_checkpoint(path, graph, drops_training(pipeline), seed)
