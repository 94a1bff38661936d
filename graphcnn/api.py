"""The Python API: compile a spec or zoo model to IR, and profile it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphcnn.cost import Profile, profile
from graphcnn.errors import SpecError
from graphcnn.ir import Graph
from graphcnn.lang.interp import Options, compile_module
from graphcnn.lang.loader import MAX_SPEC_BYTES, LoadedModule, load_text
from graphcnn.lang.loader import resolve as resolve
from graphcnn.lang.values import show
from graphcnn.util import gc_paused

__all__ = ["compile", "compile_text", "load_spec", "profile", "Profile", "resolve"]


def load_spec(spec_or_model: str | Path) -> LoadedModule:
    return resolve(spec_or_model)[0]


def _overrides(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Python values become spec expressions; strings are taken as spec expressions."""
    out = {}
    for k, v in (params or {}).items():
        out[k] = v if isinstance(v, str) else show(v, limit=MAX_SPEC_BYTES)
    return out


def compile(  # noqa: A001 - the natural name for the main entry point
    spec_or_model: str | Path,
    network: str | None = None,
    params: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch: int | None = None,
) -> Graph:
    """Compile a zoo model (``"resnet50"``) or a ``.gcnn`` file into an IR graph.

    ``params`` overrides network parameters (values, or strings holding spec expressions such as
    ``"[1, 1, 1, 1]"``); ``input_shape`` replaces the network's ``input(C, H, W)``; ``batch``
    makes the batch dimension concrete (it is the symbol ``N`` otherwise).
    """
    module, default = resolve(spec_or_model)
    return compile_loaded(module, network or default, params, input_shape, batch)


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
