"""The Python API: compile a spec or zoo model to IR, and profile it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphcnn import zoo
from graphcnn.cost import Profile, profile
from graphcnn.errors import GraphcnnError, SpecError
from graphcnn.ir import Graph
from graphcnn.lang.interp import Options, compile_module
from graphcnn.lang.loader import MAX_SPEC_BYTES, LoadedModule, load, load_text
from graphcnn.lang.values import show
from graphcnn.util import gc_paused

__all__ = ["compile", "compile_text", "load_spec", "profile", "Profile", "resolve"]


def resolve(spec_or_model: str | Path) -> tuple[LoadedModule, str | None]:
    """A zoo model name or a spec path -> (loaded module, network name or None)."""
    text = str(spec_or_model)
    if text in zoo.models():
        path = zoo.spec_path(text)
        return load(path, path.name), text
    p = Path(text)
    try:
        is_file, is_dir, exists = p.is_file(), p.is_dir(), p.exists()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        why = e.strerror if isinstance(e, OSError) else str(e)
        raise GraphcnnError(f"cannot read spec file {text[:200]!r}: {why}") from None
    if is_file:
        return load(p, text), None
    if is_dir or exists:
        what = "a directory" if is_dir else "not a regular file"
        raise GraphcnnError(f"cannot read spec file {text!r}: it is {what}")
    if p.suffix == ".gcnn" or "/" in text or exists:
        raise GraphcnnError(f"cannot read spec file {text!r}: no such file")
    close = difflib.get_close_matches(text, zoo.names(), n=3, cutoff=0.5)
    raise GraphcnnError(
        f"{text!r} is neither a zoo model nor a spec file",
        f"did you mean {', '.join(close)}?" if close else "see `graphcnn list` for the zoo",
    )


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
