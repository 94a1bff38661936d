"""Shared by the pass tests: spec graphs, structural comparison, numeric equivalence.

A pass test reads like the pass's docstring: it writes the graph BEFORE and the expected graph
AFTER in the spec language and calls :func:`check_pass`, which runs the pass on the first and
compares the result with the compiled second (:func:`assert_same_graph`: ops, inputs, names,
attributes, types, parameters, outputs; spec locations are ignored), checks what the pass says it
removed and rewrote, and lowers both graphs to PyTorch with the same weights to check that the
outputs did not change (:func:`assert_same_outputs`, eval mode,
``max|diff| / max|ref| <= 1e-5``). BN statistics are made non-trivial
(:func:`random_bn_weights`) so a wrong fold cannot hide behind mean 0 / var 1.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence, Set
from typing import Any

import numpy as np

from graphcnn.ir import Graph, Op
from graphcnn.passes import PASSES, PassResult
from helpers.specs import net
from helpers.weights import random_bn_weights

TOL = 1e-5
"""Largest allowed ``max|after - before| / max|before|`` of any output."""


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


def check_pass(
    name: str,
    before: str,
    after: str | None = None,
    *,
    removed: Sequence[str] | Set[str] = (),
    rewritten: Sequence[str] = (),
    notes: Sequence[str] | None = (),
    new_weights: bool = False,
    input: str = "3, 8, 8",
) -> PassResult:
    """Run pass ``name`` on the network ``before`` (a :func:`net` body) with
    :func:`random_bn_weights` and check everything a pass promises:

    - the result has the structure of ``after`` (``None``: unchanged);
    - ``result.removed`` equals ``removed`` (a set: in any order, each once), ``result.rewritten``
      equals ``rewritten``, and ``result.notes`` equals ``notes`` (``None``: not compared);
    - ``new_weights``: the pass returns weights, which hold no key of a removed node and the
      caller's arrays for every node it did not rewrite; otherwise it returns none (the caller's
      weights still fit);
    - the caller's weights are not modified, the outputs did not change, and the same pass
      without weights gives the same graph (and no weights).

    Returns the result, for a test's own further checks.
    """
    graph = net(before, input)
    weights = random_bn_weights(graph)
    kept = {k: v.copy() for k, v in weights.items()}
    result = run_pass(name, graph, weights)
    assert_same_graph(result.graph, graph if after is None else net(after, input))
    if isinstance(removed, Set):
        assert set(result.removed) == removed and len(result.removed) == len(removed), (
            result.removed
        )
    else:
        assert result.removed == list(removed), result.removed
    assert result.rewritten == list(rewritten), result.rewritten
    if notes is not None:
        assert result.notes == list(notes), result.notes
    if new_weights:
        assert result.weights is not None, f"{name} returned no weights"
        for node in removed:
            assert not [k for k in result.weights if k.startswith(node + ".")], node
        for k, v in result.weights.items():
            if k.rsplit(".", 1)[0] not in rewritten:
                assert k in weights and (v is weights[k] or np.array_equal(v, weights[k])), k
    else:
        assert result.weights is None, f"{name} returned weights"
    for k, v in weights.items():
        np.testing.assert_array_equal(v, kept[k], err_msg=f"{name} modified input weight {k}")
    assert_same_outputs(graph, weights, result.graph, result.weights if new_weights else weights)
    graph_only = run_pass(name, graph)
    assert graph_only.weights is None
    assert canonical(graph_only.graph) == canonical(result.graph)
    return result
