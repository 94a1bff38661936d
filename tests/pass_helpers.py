"""Shared helpers of the pass tests: spec graphs, structural comparison, numeric equivalence.

A pass test reads like the pass's docstring: it writes the graph BEFORE and the expected graph
AFTER in the spec language, runs the pass on the first, and compares the result with the compiled
second (:func:`assert_same_graph`: ops, inputs, names, attributes, types, parameters, outputs;
spec locations are ignored). Then it lowers both graphs to PyTorch with the same weights and
checks that the outputs did not change (:func:`assert_same_outputs`, eval mode,
``max|diff| / max|ref| <= 1e-5``). BN statistics are made non-trivial
(:func:`random_bn_weights`) so a wrong fold cannot hide behind mean 0 / var 1.
"""

from __future__ import annotations

import difflib
import math
import textwrap
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

import graphcnn
from graphcnn.ir import Graph, Op
from graphcnn.passes import PASSES, PassResult
from graphcnn.weights import init_weights

TOL = 1e-5
"""Largest allowed ``max|after - before| / max|before|`` of any output."""

TRAINING_ONLY_OPS = frozenset({Op.DROPOUT, Op.DROP_PATH})
"""Ops that only do something while training (inference is the identity)."""


def spec(text: str, **kw: Any) -> Graph:
    """Compile spec source (dedented); keyword arguments go to ``graphcnn.compile_text``."""
    return graphcnn.compile_text(textwrap.dedent(text), **kw)


def net(body: str, input: str = "3, 8, 8", name: str = "net") -> Graph:
    """Compile a one-network spec: ``x = input(...)`` then ``body`` (which ends with return)."""
    lines = textwrap.dedent(body).strip().splitlines()
    inner = "\n".join("  " + line for line in lines)
    return spec(f"network {name}() {{\n  x = input({input})\n{inner}\n}}\n")


def _attr(v: Any) -> str:
    return repr(tuple(v)) if isinstance(v, tuple) else repr(v)


def canonical(graph: Graph) -> str:
    """The structure of ``graph`` as text: one line per node (order, name, op, inputs,
    attributes sorted by key, output type, parameter declarations, training mark) and the
    outputs. Spec locations are left out: they say where a node was written, not what it is."""
    lines = []
    for n in graph:
        attrs = ", ".join(f"{k}={_attr(v)}" for k, v in sorted(n.attrs.items()))
        params = ", ".join(
            f"{p.name}{'' if p.trainable else '*'}:{'x'.join(map(str, p.shape))}" for p in n.params
        )
        line = f"%{n.name}: {n.type} = {n.op}({', '.join('%' + i for i in n.inputs)})"
        line += f" {{{attrs}}} [{params}]"
        if n.training_only:
            line += " training_only"
        lines.append(line)
    lines.append("return " + ", ".join(f"{o}=%{n}" for o, n in graph.outputs))
    return "\n".join(lines)


def assert_same_graph(actual: Graph, expected: Graph) -> None:
    """``actual`` and ``expected`` have the same structure (see :func:`canonical`)."""
    a, e = canonical(actual), canonical(expected)
    if a != e:
        diff = "\n".join(
            difflib.unified_diff(e.splitlines(), a.splitlines(), "expected", "actual", lineterm="")
        )
        raise AssertionError(f"graph structure differs:\n{diff}")


def run_pass(
    name: str, graph: Graph, weights: Mapping[str, np.ndarray] | None = None
) -> PassResult:
    """Run pass ``name``; the result must verify, and its weights (if any) must fit it."""
    before = canonical(graph)
    result = PASSES[name](graph, dict(weights) if weights is not None else None)
    result.graph.verify()
    assert canonical(graph) == before, f"{name} mutated its input graph"
    if result.weights is not None:
        from graphcnn.weights import check_weights

        check_weights(result.graph, result.weights, f"weights after {name}")
    return result


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


def lowered_outputs(
    graph: Graph, weights: Mapping[str, np.ndarray], x: np.ndarray
) -> list[np.ndarray]:
    """Lower ``graph`` with ``weights`` (to_torch), run it in eval mode on ``x``."""
    import torch

    from graphcnn.backends.to_torch import to_torch

    module = to_torch(graph, dict(weights)).eval()
    with torch.no_grad():
        out = module(torch.from_numpy(x))
    outs = out if isinstance(out, tuple) else (out,)
    return [o.detach().numpy().copy() for o in outs]


def relative_error(actual: np.ndarray, ref: np.ndarray) -> float:
    """``max|actual - ref| / max|ref|`` (in float64)."""
    a, r = actual.astype(np.float64), ref.astype(np.float64)
    assert a.shape == r.shape, f"shape {a.shape} != {r.shape}"
    scale = float(np.abs(r).max())
    assert scale > 0 and math.isfinite(scale), "degenerate reference output"
    return float(np.abs(a - r).max()) / scale


def example_input(graph: Graph, batch: int = 2, seed: int = 0, dtype: str = "float32") -> Any:
    shape = graph.inputs[0].type.sample_shape
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(dtype)


def assert_same_outputs(
    before: Graph,
    before_weights: Mapping[str, np.ndarray],
    after: Graph,
    after_weights: Mapping[str, np.ndarray],
    batch: int = 2,
    tol: float = TOL,
) -> float:
    """Both graphs, lowered with their weights, compute the same outputs on a random batch.
    Returns the largest relative error seen."""
    dtype = str(next(iter(before_weights.values())).dtype) if before_weights else "float32"
    x = example_input(before, batch, dtype=dtype)
    ref = lowered_outputs(before, before_weights, x)
    got = lowered_outputs(after, after_weights, x)
    assert len(got) == len(ref), f"{len(got)} outputs after, {len(ref)} before"
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        err = relative_error(g, r)
        assert err <= tol, f"output {i}: max|diff|/max|ref| = {err:.3g} > {tol:g}"
        worst = max(worst, err)
    return worst


def ops(graph: Graph) -> list[str]:
    return [str(n.op) for n in graph]


def of_op(graph: Graph, *wanted: Op) -> list[str]:
    """Names of the nodes of ``graph`` whose op is one of ``wanted``."""
    return [n.name for n in graph if n.op in wanted]


# The zoo at a reduced input size, for the pipeline's numeric tests.

SIZES: Sequence[int] = (64, 96, 128, 160, 192, 224, 256, 299)
"""Input sizes tried in order for a zoo model; the first that compiles is used."""


@cache
def zoo_input(name: str) -> tuple[int, ...]:
    """The smallest input of :data:`SIZES` a zoo model compiles at (lenet5 keeps 1x32x32)."""
    from graphcnn.errors import GraphcnnError

    native = graphcnn.compile(name).inputs[0].type.sample_shape
    if name == "lenet5":
        return native
    for s in SIZES:
        if s >= native[1]:
            break
        try:
            graphcnn.compile(name, input_shape=(native[0], s, s))
        except GraphcnnError:
            continue
        return (native[0], s, s)
    return native


def zoo_graph(name: str) -> Graph:
    """Zoo model ``name`` compiled at :func:`zoo_input` (a fresh graph each call)."""
    return graphcnn.compile(name, input_shape=zoo_input(name))


def torch_single_thread() -> None:
    """Tests run two per machine (``-n 2``): one intra-op thread each avoids oversubscription."""
    import torch

    torch.set_num_threads(1)
