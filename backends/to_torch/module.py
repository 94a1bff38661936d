"""The in-memory PyTorch module: :func:`build_module` executes the generated source and
instantiates the class (weights assigned without copying), :func:`to_torch` is the public entry
that copies given weights or draws the seeded initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_torch.source import generate_source
from graphcnn.ir import Graph

if TYPE_CHECKING:
    import numpy as np
    import torch


def build_module(
    graph: Graph,
    weights: Mapping[str, np.ndarray[Any, Any]] | None = None,
    class_name: str = "Model",
) -> torch.nn.Module:
    """Execute the generated source and instantiate the module.

    With ``weights`` the layers are created on the meta device (no wasted initialisation) and
    the numpy arrays are assigned without copying; without, torch's default initialisation runs.
    """
    import torch

    namespace: dict[str, Any] = {"__name__": f"graphcnn_generated_{graph.name}"}
    code = compile(generate_source(graph, class_name), f"<graphcnn:{graph.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own generated source, not user code
    cls = namespace[class_name]
    if weights is None:
        return cls(load_weights=False)  # type: ignore[no-any-return]
    from graphcnn.weights import check_weights

    check_weights(graph, weights)
    with torch.device("meta"):
        module = cls(load_weights=False)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    for key in module.state_dict():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    module.load_state_dict(state, strict=True, assign=True)
    return module  # type: ignore[no-any-return]


def to_torch(
    graph: Graph, weights: Mapping[str, np.ndarray[Any, Any]] | None = None, seed: int | None = 0
) -> torch.nn.Module:
    """Lower ``graph`` to an ``nn.Module``: given ``weights`` (copied), else seeded init.

    ``seed=None`` with no weights keeps torch's own (unseeded) initialisation.
    """
    if weights is not None:  # copied: the module must not alias the caller's arrays
        return build_module(graph, {k: v.copy() for k, v in weights.items()})
    if seed is not None:
        from graphcnn.weights import init_weights

        return build_module(graph, init_weights(graph, seed))
    return build_module(graph, None)
