"""ONNX import of whole models (issue "ONNX lowering, ONNX import, ..."): backends/from_onnx/.

1. Round trip: every zoo model lowered with ``to_onnx`` and imported back has identical params,
   MACs (and FLOPs, up to the no-op adaptive pools the lowering drops), the same weight keys,
   node names, types and layer attributes (full input size); at a reduced input size the
   imported graph, lowered to torch, computes what ONNX Runtime computes on the original model.
2. torchvision models exported with ``torch.onnx.export`` import to torchvision's published
   params and GMACs, with the ``state_dict`` keys as weight keys, and compute what torchvision
   computes. The default exporter of torch 2.14 (``dynamo=True``) needs ``onnxscript``, which
   is not a dependency: those cases run only where it is installed (with ``optimize=False``:
   its optimizer folds BatchNormalization into Conv); the TorchScript exporter
   (``dynamo=False``) always runs, with ``training=PRESERVE`` for the same reason.

Single ops and patterns, errors and the ``graphcnn import`` command: tests/test_from_onnx.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from conftest import torchvision_meta  # noqa: E402
from helpers.onnx_ref import ort_run, reduced, rel_err, sample  # noqa: E402
from helpers.zoo import zoo_params  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn import zoo  # noqa: E402
from graphcnn.backends.from_onnx import from_onnx  # noqa: E402
from graphcnn.backends.to_onnx import to_onnx  # noqa: E402
from graphcnn.cost import node_cost, profile  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402
from graphcnn.weights import expected, init_weights  # noqa: E402

TOL = 1e-5  # max |ours - reference| / max |reference|, float32
ZOO = zoo.names()


def _dropped_flops(g: Graph) -> int:
    """FLOPs of adaptive pools that to_onnx lowers to Identity (output size = input size)."""
    total = 0
    for n in g:
        if n.op is not Op.ADAPTIVE_AVG_POOL or n.attr_pair("output") == (1, 1):
            continue
        if g[n.inputs[0]].type == n.type:
            total += node_cost(n, [g[n.inputs[0]].type]).flops
    return total


DROPPED = {Op.DROPOUT, Op.DROP_PATH, Op.IDENTITY, Op.ADAPTIVE_AVG_POOL}
POOLS = {Op.GLOBAL_AVG_POOL, Op.AVG_POOL}


def check_round_trip(g: Graph, g2: Graph, w: dict[str, Any], w2: dict[str, Any]) -> None:
    """``g2`` (imported from ``to_onnx(g)``) is ``g`` less the no-ops, node for node."""
    a, b = profile(g).totals, profile(g2).totals
    assert (b.params, b.macs) == (a.params, a.macs)
    assert b.flops == a.flops - _dropped_flops(g)
    assert b.weight_bytes == a.weight_bytes
    assert g2.outputs == g.outputs
    assert set(w2) == set(w)
    for k, v in w.items():
        assert w2[k].shape == v.shape and w2[k].dtype == np.float32, k
    for node in g2:
        orig = g[node.name]  # every imported node keeps its IR name
        assert node.type == orig.type, node.name
        if orig.op is Op.ADAPTIVE_AVG_POOL:
            assert node.op in POOLS, node.name
            continue
        assert node.op is orig.op, node.name
        want = dict(orig.attrs)
        if orig.op is Op.LAYER_SCALE:  # `init` only seeds the weight, which ONNX carries itself
            want["init"] = node.attrs["init"]
        assert dict(node.attrs) == want, node.name
        assert node.params == orig.params, node.name
    gone = [n for n in g if n.name not in g2.nodes]
    assert all(n.op in DROPPED for n in gone), [(n.name, str(n.op)) for n in gone]


@pytest.mark.parametrize("name", zoo_params(ZOO))
def test_zoo_round_trip_profiles_identically(name: str) -> None:
    """At the model's own input size; zero weights keep it cheap (values do not matter)."""
    g = graphcnn.compile(name).inference()
    w = {k: np.zeros(p.shape, np.float32) for k, (p, _) in expected(g).items()}
    g2, w2 = from_onnx(to_onnx(g, w))
    check_round_trip(g, g2, w, w2)
    assert all(not v.any() for v in w2.values())


def random_weights(g: Graph, seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    """Seeded init, with batch-norm statistics and affine parameters that are not 0/1."""
    w = init_weights(g, seed)
    rng = np.random.default_rng(seed)
    for k, v in w.items():
        if k.endswith("running_var"):
            w[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
        elif k.endswith(("running_mean", "bias")) or (k.endswith("weight") and v.ndim == 1):
            w[k] = (v + rng.normal(0, 0.1, v.shape)).astype(np.float32)
    return w


@pytest.mark.parametrize("name", zoo_params(ZOO))
def test_zoo_round_trip_computes_what_ort_computes(name: str, torch1: Any) -> None:
    """ONNX Runtime on to_onnx(graph) vs our torch lowering of the imported graph."""
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    g = reduced(name).inference()
    w = random_weights(g)
    model = to_onnx(g, w)
    g2, w2 = from_onnx(model)
    check_round_trip(g, g2, w, w2)
    for k, v in w.items():
        np.testing.assert_array_equal(w2[k], v, err_msg=k)
    x = sample(g, seed=0)
    (ref,) = ort_run(model, x)
    with torch.no_grad():
        ours = to_torch(g2, w2).eval()(torch.from_numpy(x)).numpy()
    assert rel_err(ours, ref) < TOL


META = torchvision_meta()
TV_MODELS = [
    "resnet18",
    "mobilenet_v2",
    "googlenet",
    "shufflenet_v2_x1_0",
    "densenet121",
    "efficientnet_b0",
    "inception_v3",
    "resnext50_32x4d",
    "squeezenet1_0",
    "squeezenet1_1",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "convnext_tiny",
    "convnext_small",
    *(f"regnet_{k}_{s}" for k in "xy" for s in ("400mf", "800mf", "1_6gf", "3_2gf")),
]
"""The larger RegNets and ConvNeXts are the same specs with other numbers (their own zoo-wide
round trips run in tests/test_to_onnx_models.py and here, above); exporting them twice more at
224 would add minutes of CI for no new op or pattern."""


def _has_onnxscript() -> bool:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


DYNAMO_STATIC_BATCH = {"convnext_tiny", "convnext_small"}
"""torch.export cannot trace torchvision's ConvNeXt with a symbolic batch (a guard N <= 2,
"Constraints violated (N)"): exported at batch 1, imported with that batch."""


def export_torchvision(torch: Any, name: str, path: Path, exporter: str) -> Any:
    """torchvision's model (random weights, eval) exported with a dynamic batch; the module."""
    tvm = pytest.importorskip("torchvision.models")
    kwargs = (
        {"aux_logits": False, "init_weights": False}
        if name in ("googlenet", "inception_v3")
        else {}
    )
    torch.manual_seed(0)
    m = tvm.get_model(name, weights=None, **kwargs).eval()
    # at the crop the published MACs are counted at (299 for inception_v3, 384-480 for v2)
    size = int(META[name]["crop"])
    x = torch.randn(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dims = None if name in DYNAMO_STATIC_BATCH else ({0: torch.export.Dim("N")},)
            torch.onnx.export(m, (x,), str(path), dynamic_shapes=dims, optimize=False)
        else:
            torch.onnx.export(
                m,
                (x,),
                str(path),
                dynamo=False,
                training=torch.onnx.TrainingMode.PRESERVE,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
            )
    return m


EXPORTERS = [
    "torchscript",
    pytest.param(
        "dynamo",
        marks=pytest.mark.skipif(not _has_onnxscript(), reason="dynamo exporter needs onnxscript"),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", TV_MODELS)
def test_torchvision_export_imports_to_published_numbers(
    name: str, exporter: str, tmp_path: Path, torch1: Any
) -> None:
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    path = tmp_path / f"{name}.onnx"
    tv = export_torchvision(torch, name, path, exporter)
    g, w = from_onnx(path)
    p = profile(g)
    assert g.inputs[0].type.shape[0] == (
        1 if exporter == "dynamo" and name in DYNAMO_STATIC_BATCH else "N"
    )
    assert p.totals.params == sum(q.numel() for q in tv.parameters())
    if name != "inception_v3":  # its published count includes the auxiliary head
        assert p.totals.params == META[name]["params"]
    assert round(p.totals.macs / 1e9, 3) == META[name]["gmacs"]
    state = {k: v for k, v in tv.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(w) == set(state)  # the weights map back to torchvision's state_dict keys
    for k, v in state.items():
        np.testing.assert_array_equal(w[k], v.numpy(), err_msg=k)
    x = torch.from_numpy(sample(g, seed=0))
    with torch.no_grad():
        ours = to_torch(g, w).eval()(x).numpy()
        ref = tv(x).numpy()
    assert rel_err(ours, ref) < TOL


@pytest.mark.slow
def test_torchscript_eval_export_folds_batch_norm(tmp_path: Path, torch1: Any) -> None:
    """training=EVAL (the default) folds BN into the convs: MACs match, params do not."""
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    m = tvm.resnet18(weights=None).eval()
    for mod in m.modules():  # trained-like statistics, so the folded conv biases are not 0
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False)
    g, w = from_onnx(path)
    assert not any(n.op is Op.BATCH_NORM for n in g)
    p = profile(g).totals
    assert round(p.macs / 1e9, 3) == META["resnet18"]["gmacs"]
    # each BN's 2C parameters are gone, and its conv gained a C bias
    assert p.params == META["resnet18"]["params"] - sum(
        v.numel() for k, v in m.state_dict().items() if k.endswith("running_mean")
    )
    assert g["layer1.0.conv1"].attrs["bias"] is True  # named after the torch module path
    x = torch.from_numpy(sample(g, batch=1, seed=0))
    with torch.no_grad():
        assert rel_err(to_torch(g, w).eval()(x).numpy(), m(x).numpy()) < TOL
