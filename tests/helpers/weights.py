"""Weights for a test graph: seeded init with batch-norm statistics that are not 0/1, so that a
wrong fold, an ignored buffer or a mixed-up parameter cannot hide behind mean 0 / var 1."""

from __future__ import annotations

import numpy as np

from graphcnn.ir import Graph, Op
from graphcnn.weights import init_weights


def random_bn_weights(graph: Graph, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Seeded PyTorch-style weights, with non-trivial BN statistics and affine parameters:
    running_mean ~ N(0, 0.5), running_var ~ U(0.5, 2), gamma ~ U(0.5, 1.5), beta ~ N(0, 0.5)."""
    weights = init_weights(graph, seed, dtype)
    rng = np.random.default_rng(seed + 1)
    draw = {
        "running_mean": lambda n: rng.normal(0.0, 0.5, n),
        "running_var": lambda n: rng.uniform(0.5, 2.0, n),
        "weight": lambda n: rng.uniform(0.5, 1.5, n),
        "bias": lambda n: rng.normal(0.0, 0.5, n),
    }
    for node in graph:
        if node.op is Op.BATCH_NORM:
            for p in node.params:
                weights[f"{node.name}.{p.name}"] = draw[p.name](p.shape).astype(dtype)
    return weights
