"""graphcnn: a compiler for convolutional network architectures.

Declare an architecture in the ``.gcnn`` spec language, compile it to a typed IR, infer shapes and
compute exact per-layer cost analytically (no weights, no forward pass)::

    import graphcnn
    g = graphcnn.compile("resnet50")                # a zoo model, a .gcnn or an .onnx file
    p = graphcnn.profile(g)
    print(p.totals.params, p.totals.macs)            # 25557032 4089184256

The core never imports torch; backends (``graphcnn.backends``) import their libraries lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphcnn.version import __version__

if TYPE_CHECKING:
    from graphcnn.api import compile as compile
    from graphcnn.api import compile_text as compile_text
    from graphcnn.api import load as load
    from graphcnn.api import load_spec as load_spec
    from graphcnn.api import load_weights as load_weights
    from graphcnn.backends.to_torch import to_torch as to_torch
    from graphcnn.cost import Profile as Profile
    from graphcnn.cost import profile as profile
    from graphcnn.errors import GraphcnnError as GraphcnnError
    from graphcnn.errors import SpecError as SpecError
    from graphcnn.ir import Graph as Graph
    from graphcnn.ir import Node as Node
    from graphcnn.ir import Op as Op
    from graphcnn.ir import TensorType as TensorType

_LAZY = {
    "compile": "graphcnn.api",
    "compile_text": "graphcnn.api",
    "load": "graphcnn.api",
    "load_spec": "graphcnn.api",
    "load_weights": "graphcnn.api",
    "profile": "graphcnn.cost",
    "Profile": "graphcnn.cost",
    "GraphcnnError": "graphcnn.errors",
    "SpecError": "graphcnn.errors",
    "Graph": "graphcnn.ir",
    "Node": "graphcnn.ir",
    "Op": "graphcnn.ir",
    "TensorType": "graphcnn.ir",
    "to_torch": "graphcnn.backends.to_torch",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so ``import graphcnn`` stays cheap."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphcnn' has no attribute {name!r}")
