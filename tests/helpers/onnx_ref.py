"""Shared by the ONNX lowering tests (tests/test_to_onnx_*.py): models at reduced sizes, weights
with non-trivial batch-norm statistics, running a model in ONNX Runtime and the PyTorch lowering,
and the validity check every model must pass.

Import it after ``pytest.importorskip("onnx")``: it imports onnx.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import graphcnn
from graphcnn import zoo
from graphcnn.backends.ort_engine import OrtEngine
from graphcnn.backends.to_onnx import check
from graphcnn.ir import Graph, Op
from helpers.zoo import reduced as zoo_reduced

TOL = 1e-4  # max |ORT - torch| / max |torch|, float32
ZOO = zoo.names()
Array = np.ndarray[Any, Any]


def lowerable(g: Graph) -> bool:
    """to_onnx lowers adaptive pools only where the output size divides the input size."""
    for n in g:
        if n.op is Op.ADAPTIVE_AVG_POOL:
            h, w = (int(d) for d in g[n.inputs[0]].type.shape[2:])
            oh, ow = n.attr_pair("output")
            if h % oh or w % ow:
                return False
    return True


def reduced(name: str) -> Graph:
    """The model at the smallest of 64, 96, ... 224 (or its own size) it compiles and lowers at."""
    return zoo_reduced(name, (64, 96, 128, 160, 192, 224), fits=lowerable)


def sample(g: Graph, batch: int = 2, seed: int = 1) -> Array:
    shape = (batch, *g.inputs[0].type.sample_shape)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ort_run(model: Any, x: Array) -> list[Array]:
    return OrtEngine(model, device="cpu", threads=1).run(x)


def torch_run(torch: Any, g: Graph, w: dict[str, Array] | None, x: Array) -> list[Array]:
    """The PyTorch lowering in eval mode; ``w=None``: the same seeded init as ``to_onnx``."""
    from graphcnn.backends.to_torch import to_torch

    m = to_torch(g, w, seed=0).eval()
    with torch.no_grad():
        y = m(torch.from_numpy(x))
    ys = y if isinstance(y, (tuple, list)) else [y]
    return [t.numpy() for t in ys]


def rel_err(ours: Array, ref: Array) -> float:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.isfinite(ref).all() and np.isfinite(ours).all()
    scale = float(np.abs(ref).max())
    assert scale > 0
    return float(np.abs(ours.astype(np.float64) - ref).max() / scale)


def dims(info: Any) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else d.dim_param
        for d in info.type.tensor_type.shape.dim
    ]


def assert_valid(
    model: Any, g: Graph, batch: int | str = "N", symbolic_batch_everywhere: bool = False
) -> None:
    """Full checker + strict shape inference without warnings; every IR node's inferred shape
    equals the IR's (the batch dim: of inputs and outputs, and with
    ``symbolic_batch_everywhere`` of every node); ``check()`` agrees."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(model, g)  # onnx.checker.check_model(full_check=True) + strict shape inference
        # data_prop: opset 17 has no Resize axes; a resize to a size reads N and C off Shape(x)
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    assert not caught, [str(w.message) for w in caught]
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    inf = g.inference()
    for n in inf:
        if n.op is Op.INPUT:
            assert dims(next(i for i in model.graph.input if i.name == n.name)) == [
                batch,
                *(int(d) for d in n.type.shape[1:]),
            ]
            continue
        assert n.name in known, f"no inferred shape for {n.name}"
        got = dims(known[n.name])
        assert got[1:] == [int(d) for d in n.type.shape[1:]], n.name
        if symbolic_batch_everywhere or not isinstance(batch, str):
            assert got[0] == batch, (n.name, got)
    for out in model.graph.output:
        assert dims(out)[0] == batch
    for out in inferred.graph.output:
        assert dims(out)[0] == batch


TINY = """
network tiny() {
  x = input(3, 16, 16)
  x = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  return x -> global_avgpool -> flatten -> linear(20) as fc
}
"""
"""conv1.weight and fc.weight are above onnx's 1 KiB threshold for external data."""


def tiny_graph() -> Graph:
    """:data:`TINY` compiled."""
    return graphcnn.compile_text(TINY)


def file_names(d: Path) -> list[str]:
    """The names in folder ``d``, sorted."""
    return sorted(p.name for p in d.iterdir())
