"""ONNX lowering (issue "ONNX lowering ..."): backends/to_onnx.py, save(), OrtEngine, the CLI.

1. No torch anywhere on the ONNX path (CLI and Python API, run in ONNX Runtime), in a subprocess.
2. Every zoo model: ``to_onnx`` passes ``onnx.checker`` (full check) and strict ONNX shape
   inference without warnings, every IR node's shape (batch dim included) is what ONNX infers,
   and ONNX Runtime (CPU) computes what the PyTorch lowering computes, max|diff| / max|ref| <=
   1e-4 in float32, with and without the ``inference`` pipeline (BN folded), with non-trivial
   batch-norm statistics. Reduced input sizes where the architecture allows (adaptive pools
   with non-dividing sizes are an OnnxError, tested too).
3. Names (IR scope names for nodes and initializers), doc strings (spec locations), dynamic and
   static batch, every supported opset (gelu: Gelu from opset 20, erf form before), unsupported
   opsets, single ops against torch.
4. save(): external data above the protobuf limit (limit monkeypatched, no 2 GB allocated),
   atomic writes (failures mid-way, and a CLI process killed with SIGKILL while writing).
5. OrtEngine on corrupt / truncated files; the ``graphcnn compile --target onnx`` summary and
   exit codes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import graphcnn.backends.to_onnx as to_onnx_mod  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import REPO  # noqa: E402
from graphcnn.backends.ort_engine import EngineError, OrtEngine  # noqa: E402
from graphcnn.backends.to_onnx import (  # noqa: E402
    DEFAULT_OPSET,
    LOWERINGS,
    OPSETS,
    OnnxError,
    check,
    save,
    to_onnx,
)
from graphcnn.passes import PIPELINES, optimize  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn import zoo  # noqa: E402
from graphcnn.cli import main  # noqa: E402
from graphcnn.errors import GraphcnnError  # noqa: E402
from graphcnn.ir import Graph, Op  # noqa: E402
from graphcnn.weights import init_weights  # noqa: E402

TOL = 1e-4  # max |ORT - torch| / max |torch|, float32
ZOO = zoo.names()
SLOW = {n for n in ZOO if n.startswith("vgg")} | {
    "alexnet",  # adaptive pool to 6x6 needs the full 224x224 input
    "resnext101_32x8d",
    "wide_resnet50_2",
    "resnet152",
    "efficientnet_b6",
    "efficientnet_b7",
    "densenet264",
}
"""Models whose case takes 10-45 s (2 pipelines: seeded init, to_onnx, the full checker, ORT
session, torch forward). vgg and alexnet run at the full 224x224, the only size their 7x7 / 6x6
adaptive pool lowers at, and have 60-140M parameters; the others are the deepest."""


Array = np.ndarray[Any, Any]


@pytest.fixture
def torch1() -> Iterator[Any]:
    """torch with one thread per xdist worker (the machine has 2 cores)."""
    torch = pytest.importorskip("torch")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    yield torch
    torch.set_num_threads(old)


# ------------------------------------------------------------------------------------ helpers


def _slow(names: list[str]) -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


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
    native = graphcnn.compile(name)
    c, size = native.inputs[0].type.sample_shape[:2]
    for s in (64, 96, 128, 160, 192, 224):
        if s >= size:
            break
        try:
            g = graphcnn.compile(name, input_shape=(c, s, s))
        except GraphcnnError:
            continue
        if lowerable(g):
            return g
    return native


def bn_weights(g: Graph, seed: int = 0) -> dict[str, Array]:
    """Seeded init; every batch norm gets non-trivial statistics and affine parameters:
    running_mean ~ N(0, 0.5), running_var ~ U(0.5, 2), gamma ~ U(0.5, 1.5), beta ~ N(0, 0.5)."""
    w = init_weights(g, seed)
    rng = np.random.default_rng(seed)
    draw = {
        "running_mean": lambda s: rng.normal(0.0, 0.5, s),
        "running_var": lambda s: rng.uniform(0.5, 2.0, s),
        "weight": lambda s: rng.uniform(0.5, 1.5, s),
        "bias": lambda s: rng.normal(0.0, 0.5, s),
    }
    for n in g:
        if n.op is Op.BATCH_NORM:
            for p in n.params:
                w[f"{n.name}.{p.name}"] = draw[p.name](p.shape).astype(np.float32)
    return w


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
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
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


# ---------------------------------------------------------------- 1. no torch on the ONNX path


def test_onnx_path_never_imports_torch(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import graphcnn
        from graphcnn.cli import main
        from graphcnn.backends.to_onnx import check, save, to_onnx
        from graphcnn.backends.ort_engine import OrtEngine
        from graphcnn.passes import optimize

        out = {str(tmp_path / "cli.onnx")!r}
        try:
            main(["compile", "resnet18", "--input", "3x64x64", "--target", "onnx", "-o", out,
                  "--pipeline", "inference"], standalone_mode=False)
        except SystemExit as e:
            assert not e.code, e.code
        g = graphcnn.compile("mobilenet_v2", input_shape=(3, 64, 64))
        g2, w2, _ = optimize(g, None, "inference")
        model = to_onnx(g2)
        check(model, g2)
        api = {str(tmp_path / "api.onnx")!r}
        save(model, api)
        for path, c in ((out, 3), (api, 3)):
            y = OrtEngine(path, device="cpu", threads=1).run(np.ones((2, c, 64, 64), np.float32))
            assert y[0].shape == (2, 1000), y[0].shape
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("torch", "torchvision", "onnxscript"))
        assert not heavy, heavy
        print("ok")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


# ------------------------------------------------------- 2. every zoo model: valid and correct


def test_reduced_sizes_are_reduced_where_the_architecture_allows() -> None:
    """Only models whose adaptive pool (or spec) needs it run at their own size."""
    full = {
        n
        for n in ZOO
        if reduced(n).inputs[0].type.shape == graphcnn.compile(n).inputs[0].type.shape
    }
    vgg = {n for n in ZOO if n.startswith("vgg")}
    assert full == vgg | {"alexnet", "googlenet_paper", "inception_v3", "lenet5"}, full


@pytest.mark.parametrize("name", _slow(ZOO))
def test_zoo_model_is_valid_and_matches_torch(name: str, torch1: Any) -> None:
    g = reduced(name)
    w = bn_weights(g)
    x = sample(g)
    (ref,) = torch_run(torch1, g, w, x)
    for pipeline in ("none", "inference"):
        g2, w2, _ = optimize(g, w, pipeline)
        assert w2 is not None
        model = to_onnx(g2, w2)
        assert_valid(model, g2)
        bns = sum(n.op is Op.BATCH_NORM for n in g2.inference())
        assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == bns
        if pipeline == "inference":
            assert sum(n.op_type == "Dropout" for n in model.graph.node) == 0
        (out,) = ort_run(model, x)
        err = rel_err(out, ref)
        assert err <= TOL, f"{name} ({pipeline}): {err:.2e}"


def test_inference_pipeline_folds_batch_norm_into_the_onnx_model() -> None:
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    plain = to_onnx(g)
    g2, w2, _ = optimize(g, init_weights(g), "inference")
    folded = to_onnx(g2, w2)
    assert sum(n.op_type == "BatchNormalization" for n in plain.graph.node) == 20
    assert sum(n.op_type == "BatchNormalization" for n in folded.graph.node) == 0
    assert {n.name for n in folded.graph.node if n.op_type == "Conv"} == {
        n.name for n in plain.graph.node if n.op_type == "Conv"
    }
    assert len(folded.graph.initializer) < len(plain.graph.initializer)


@pytest.mark.parametrize(("name", "size"), [("alexnet", 64), ("vgg11", 96), ("vgg16", 160)])
def test_non_dividing_adaptive_pool_is_a_clear_onnx_error(name: str, size: int) -> None:
    g = graphcnn.compile(name, input_shape=(3, size, size))
    assert not lowerable(g)
    with pytest.raises(OnnxError) as info:
        to_onnx(g)
    msg = info.value.format()
    assert "adaptive_avgpool" in msg and "(node avgpool, " in msg
    assert f"{'alexnet' if name == 'alexnet' else 'vgg'}.gcnn:" in msg  # the node's spec location
    assert "hint:" in msg


# --------------------------------------------------------------- 3. names, batch, opsets, ops


@pytest.fixture(scope="module")
def resnet18() -> tuple[Graph, Any]:
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    return g, to_onnx(g)


def test_node_and_initializer_names_are_ir_scope_names(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    nodes = {n.name: n for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    assert nodes["layer1.0.conv1"].op_type == "Conv"
    assert list(nodes["layer1.0.conv1"].input)[1:] == ["layer1.0.conv1.weight"]
    assert nodes["layer1.0.bn1"].op_type == "BatchNormalization"
    assert nodes["fc"].op_type == "Gemm"
    assert {"layer1.0.conv1.weight", "fc.weight", "fc.bias", "bn1.running_mean"} <= inits
    assert len(nodes) == len(model.graph.node)  # node names are unique
    assert len(inits) == len(model.graph.initializer)
    params = {f"{n.name}.{p.name}" for n in g for p in n.params}
    assert params <= inits
    # every initializer is an IR parameter or a constant of one IR node (prefixed by its name)
    assert all(i in params or i.rpartition(".")[0] in g.nodes for i in inits)
    # every IR node is an ONNX node output of the same name
    outputs = {o for n in model.graph.node for o in n.output}
    assert {n.name for n in g if n.op is not Op.INPUT} <= outputs


def test_doc_strings_carry_the_spec_location(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    by_name = {n.name: n for n in model.graph.node}
    assert by_name["layer1.0.conv1"].doc_string.startswith("resnet.gcnn:")
    for ir in g:
        if ir.op is Op.INPUT:
            continue
        assert by_name[ir.name].doc_string == str(ir.loc), ir.name
        assert ".gcnn:" in by_name[ir.name].doc_string
    assert model.producer_name == "graphcnn"
    assert "resnet18" in model.doc_string


def test_batch_is_dynamic_n_by_default(resnet18: tuple[Graph, Any]) -> None:
    _, model = resnet18
    assert dims(model.graph.input[0]) == ["N", 3, 64, 64]
    assert dims(model.graph.output[0]) == ["N", 1000]
    eng = OrtEngine(model, device="cpu", threads=1)
    for b in (1, 3):
        assert eng.run(np.zeros((b, 3, 64, 64), np.float32))[0].shape == (b, 1000)


def test_symbolic_batch_propagates_through_every_node(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    assert_valid(model, g, symbolic_batch_everywhere=True)


def test_symbolic_batch_survives_channel_shuffle() -> None:
    g = graphcnn.compile("shufflenet_v2_x0_5", input_shape=(3, 64, 64))
    assert_valid(to_onnx(g), g, symbolic_batch_everywhere=True)


def test_static_batch_fixes_the_batch_dim(torch1: Any) -> None:
    g = graphcnn.compile("shufflenet_v2_x0_5", input_shape=(3, 64, 64))
    w = bn_weights(g)
    model = to_onnx(g, w, static_batch=3)
    assert_valid(model, g, batch=3)
    assert dims(model.graph.input[0]) == [3, 3, 64, 64]
    assert dims(model.graph.output[0]) == [3, 1000]
    eng = OrtEngine(model, device="cpu", threads=1)
    x = sample(g, batch=3)
    (ref,) = torch_run(torch1, g, w, x)
    assert rel_err(eng.run(x)[0], ref) <= TOL
    with pytest.raises(
        EngineError, match=r"input shape \[2, 3, 64, 64\], expected \[3, 3, 64, 64\]"
    ):
        eng.run(sample(g, batch=2))


ALL_OPS = """
network allops(classes = 10) {
  x = input(3, 16, 16)
  x = x -> conv(16, 3, pad: 1, bias: false) as stem -> bn as stem_bn -> gelu
  a = x -> conv(16, 3, pad: 2, dilation: 2, groups: 4) as dil -> relu6 -> relu
  b = x -> conv(16, 1) as pw -> silu
  c = x -> hardswish -> dropout(0.2) -> drop_path(0.1)
  d = (x -> sigmoid) * (x -> global_avgpool -> conv(16, 1) as gate -> tanh)
  x = concat([a + b, c, d]) -> channel_shuffle(4)
  p, q = split(x, [16, 32])
  x = concat([q, p -> identity]) -> lrn(5, alpha: 1e-2, k: 2.0) -> bn(affine: false) as nab
  x = x -> maxpool(3, stride: 2, pad: 1, ceil: true) -> avgpool(3, stride: 1, pad: 1)
  x = x -> avgpool(2, count_include_pad: false) -> adaptive_avgpool(2) -> softmax(axis: 1)
  x = x -> reshape([48, 4]) -> flatten -> linear(32) as fc1 -> bn as fc1_bn -> gelu
  return x -> linear(classes) as fc
}
"""


@pytest.fixture(scope="module")
def allops() -> Graph:
    return graphcnn.compile_text(ALL_OPS)


def test_all_ops_spec_covers_every_lowering(allops: Graph) -> None:
    used = {n.op for n in allops}
    missing = set(LOWERINGS) - used - {Op.GLOBAL_AVG_POOL, Op.MUL, Op.RESHAPE}
    assert not missing, missing
    assert set(LOWERINGS) == set(Op), set(Op) - set(LOWERINGS)


@pytest.mark.parametrize("opset", OPSETS)
def test_every_supported_opset_gives_a_valid_model(opset: int, allops: Graph, torch1: Any) -> None:
    w = bn_weights(allops)
    model = to_onnx(allops, w, opset=opset)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    assert_valid(model, allops)
    ops = {n.op_type for n in model.graph.node}
    if opset >= 20:
        assert "Gelu" in ops and "Erf" not in ops
    else:
        assert "Erf" in ops and "Gelu" not in ops
    x = sample(allops)
    (ref,) = torch_run(torch1, allops, w, x)
    (out,) = ort_run(model, x)
    assert rel_err(out, ref) <= TOL


def test_default_opset_is_17(allops: Graph) -> None:
    assert DEFAULT_OPSET == 17 == OPSETS[0]
    assert to_onnx(allops).opset_import[0].version == 17


@pytest.mark.parametrize("opset", [1, 13, 16, 22, 99])
def test_unsupported_opset_is_a_clear_error(opset: int, allops: Graph) -> None:
    with pytest.raises(OnnxError) as info:
        to_onnx(allops, opset=opset)
    msg = info.value.format()
    assert f"opset {opset}" in msg
    assert "17, 18, 19, 20, 21" in msg


def test_cli_rejects_an_unsupported_opset(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(
        main, ["compile", "lenet5", "--target", "onnx", "-o", str(out), "--opset", "16"]
    )
    assert r.exit_code == 2
    assert all(s in r.output for s in ("17", "18", "19", "20", "21"))
    assert not out.exists()


def test_output_is_deterministic(allops: Graph) -> None:
    a = to_onnx(allops, seed=5).SerializeToString()
    assert a == to_onnx(allops, seed=5).SerializeToString()
    assert a != to_onnx(allops, seed=6).SerializeToString()


def test_check_rejects_a_model_that_disagrees_with_the_ir(resnet18: tuple[Graph, Any]) -> None:
    g, model = resnet18
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    conv = next(n for n in bad.graph.node if n.name == "layer1.0.conv1")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [0, 0, 0, 0]
    with pytest.raises(OnnxError):
        check(bad, g)


@pytest.mark.parametrize("pool", ["maxpool", "avgpool"])
def test_ceil_mode_pool_dropping_the_last_window(pool: str, torch1: Any) -> None:
    g = graphcnn.compile_text(
        f"network t() {{\n x = input(3, 11, 11)\n return x -> {pool}(2, stride: 2, pad: 1, "
        "ceil: true) as pool\n}\n"
    )
    try:
        model = to_onnx(g)
    except OnnxError as e:  # refusing clearly, naming the pool, would be acceptable too
        assert "pool" in e.format()
        return
    assert_valid(model, g)
    x = sample(g)
    assert rel_err(ort_run(model, x)[0], torch_run(torch1, g, None, x)[0]) <= TOL


def test_even_size_lrn(torch1: Any) -> None:
    g = graphcnn.compile_text(
        "network t() {\n x = input(8, 6, 6)\n return x -> lrn(4, alpha: 0.1, k: 2.0) as n\n}\n"
    )
    try:
        model = to_onnx(g)
    except OnnxError as e:
        assert "lrn" in e.format()
        return
    x = sample(g)
    assert rel_err(ort_run(model, x)[0], torch_run(torch1, g, None, x)[0]) <= TOL


# ------------------------------------------------------------------- 4. external data, atomic


TINY = """
network tiny() {
  x = input(3, 16, 16)
  x = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  return x -> global_avgpool -> flatten -> linear(20) as fc
}
"""
"""conv1.weight and fc.weight are above onnx's 1 KiB threshold for external data."""


@pytest.fixture
def tiny() -> Graph:
    return graphcnn.compile_text(TINY)


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_save_small_model_is_one_file(tmp_path: Path, tiny: Graph) -> None:
    model = to_onnx(tiny)
    p = tmp_path / "m.onnx"
    assert save(model, p) == [p]
    assert _files(tmp_path) == ["m.onnx"]
    assert p.read_bytes() == model.SerializeToString()


def test_above_the_protobuf_limit_weights_go_to_external_data(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = to_onnx(tiny, bn_weights(tiny))
    x = sample(tiny)
    expect = ort_run(model, x)[0]
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    p = tmp_path / "m.onnx"
    files = save(model, p)
    data = files[1]  # a fresh name per save: m.onnx.<8 hex>.data
    assert files[0] == p and re.fullmatch(r"m\.onnx\.[0-9a-f]{8}\.data", data.name)
    assert _files(tmp_path) == ["m.onnx", data.name]  # no temporary directory left
    on_disk = onnx.load(str(p), load_external_data=False)
    external = [
        i.name for i in on_disk.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL
    ]
    assert "conv1.weight" in external and "fc.weight" in external
    assert all(
        e.value == data.name
        for i in on_disk.graph.initializer
        if i.data_location == onnx.TensorProto.EXTERNAL
        for e in i.external_data
        if e.key == "location"
    )
    assert data.stat().st_size == (16 * 3 * 9 + 20 * 16) * 4
    assert p.stat().st_size < 5000
    loaded = onnx.load(str(p))  # with the external data
    onnx.checker.check_model(str(p), full_check=True)
    np.testing.assert_array_equal(
        numpy_helper.to_array(next(i for i in loaded.graph.initializer if i.name == "fc.weight")),
        numpy_helper.to_array(
            next(
                i
                for i in to_onnx(tiny, bn_weights(tiny)).graph.initializer
                if i.name == "fc.weight"
            )
        ),
    )
    np.testing.assert_array_equal(ort_run(p, x)[0], expect)
    np.testing.assert_array_equal(OrtEngine(str(p), device="cpu").run(x)[0], expect)


def test_cli_writes_external_data_above_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 10_000)
    out = tmp_path / "lenet.onnx"
    r = CliRunner().invoke(main, ["compile", "lenet5", "--target", "onnx", "-o", str(out)])
    assert r.exit_code == 0, r.output
    names = _files(tmp_path)
    assert names[0] == "lenet.onnx" and re.fullmatch(r"lenet\.onnx\.[0-9a-f]{8}\.data", names[1])
    assert names[1] in r.output and len(names) == 2
    y = OrtEngine(out, device="cpu").run(np.ones((1, 1, 32, 32), np.float32))[0]
    assert y.shape == (1, 10)


def test_save_with_external_data_does_not_modify_the_model(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = to_onnx(tiny)
    before = model.SerializeToString()
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    save(model, tmp_path / "m.onnx")
    assert model.SerializeToString() == before


BIG = """
network big() {
  x = input(4096, 1, 1)
  return x -> flatten -> linear(75000, bias: false) as fc1 -> linear(4096, bias: false) as fc2
}
"""
"""614M parameters in two 1.2 GB tensors: 2.46 GB of float32 weights, above protobuf's 2 GB
limit, each tensor below it (as in any real model of that size)."""


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("GRAPHCNN_TEST_2GB"),
    reason="allocates ~7 GB (a real > 2 GB model); set GRAPHCNN_TEST_2GB=1 to run",
)
def test_real_model_above_2gb_compiles_with_external_data(tmp_path: Path) -> None:
    spec = tmp_path / "big.gcnn"
    spec.write_text(BIG)
    out = tmp_path / "big.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "graphcnn.cli", "compile", str(spec), "-t", "onnx", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = _files(tmp_path)
    assert names[:2] == ["big.gcnn", "big.onnx"] and len(names) == 3
    assert re.fullmatch(r"big\.onnx\.[0-9a-f]{8}\.data", names[2])
    y = OrtEngine(out, device="cpu").run(np.ones((1, 4096, 1, 1), np.float32))[0]
    assert y.shape == (1, 4096)


def test_saved_files_follow_the_umask(tmp_path: Path, tiny: Graph) -> None:
    umask = os.umask(0)
    os.umask(umask)
    p = tmp_path / "m.onnx"
    save(to_onnx(tiny), p)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_external_data_files_follow_the_umask(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    umask = os.umask(0)
    os.umask(umask)
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    files = save(to_onnx(tiny), tmp_path / "m.onnx")
    assert [f.stat().st_mode & 0o777 for f in files] == [0o666 & ~umask] * 2


def _boom(*args: Any, **kwargs: Any) -> None:
    raise OSError("simulated failure (disk full / killed)")


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_failed_save_leaves_the_old_file_intact_and_no_temp_files(
    where: str, tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "m.onnx"
    save(to_onnx(tiny, seed=1), p)
    old = p.read_bytes()
    new = to_onnx(tiny, seed=2)
    if where == "fsync":  # every byte went to the temp file, then the process "dies"
        monkeypatch.setattr(os, "fsync", _boom)
    elif where == "replace":
        monkeypatch.setattr(os, "replace", _boom)
    else:  # serialization fails half-way: the temp file holds a prefix of the model
        real = os.fdopen

        class Half:
            def __init__(self, f: Any) -> None:
                self.f = f

            def __enter__(self) -> Half:
                return self

            def __exit__(self, *a: Any) -> None:
                self.f.close()

            def write(self, data: bytes) -> int:
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                raise OSError("simulated failure mid-write")

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Half(real(*a, **k)))
    with pytest.raises(OSError, match="simulated"):
        save(new, p)
    assert p.read_bytes() == old
    assert _files(tmp_path) == ["m.onnx"]


def test_failed_external_data_save_leaves_the_old_files_intact(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    p = tmp_path / "m.onnx"
    save(to_onnx(tiny, seed=1), p)
    old = {f: (tmp_path / f).read_bytes() for f in _files(tmp_path)}
    real = onnx.save_model

    def half(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise OSError("simulated failure after the temporary files were written")

    monkeypatch.setattr(onnx, "save_model", half)
    with pytest.raises(OSError, match="simulated"):
        save(to_onnx(tiny, seed=2), p)
    assert {f: (tmp_path / f).read_bytes() for f in _files(tmp_path)} == old


def test_external_data_pair_is_never_mixed(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    p = tmp_path / "m.onnx"
    old_model = to_onnx(tiny, seed=1)
    x = sample(tiny)
    expect = ort_run(old_model, x)[0]
    save(old_model, p)
    real = os.replace
    calls = []

    def second_fails(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("simulated kill between the two renames")
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="simulated"):
        save(to_onnx(tiny, seed=2), p)
    monkeypatch.setattr(os, "replace", real)
    np.testing.assert_array_equal(ort_run(p, x)[0], expect)  # the old model, whole


@pytest.mark.slow
def test_cli_killed_while_writing_never_leaves_a_truncated_model(tmp_path: Path) -> None:
    """SIGKILL the CLI while it writes vgg11 (530 MB): the old file stays whole."""
    target = tmp_path / "m.onnx"
    save(to_onnx(graphcnn.compile("lenet5")), target)
    old = target.read_bytes()
    cmd = [
        sys.executable,
        "-m",
        "graphcnn.cli",
        "compile",
        "vgg11",
        "--target",
        "onnx",
        "-o",
        str(target),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_mid_write = False
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            temps = [f for f in _files(tmp_path) if f != "m.onnx"]
            if temps and (tmp_path / temps[0]).stat().st_size > 0:
                os.kill(proc.pid, signal.SIGKILL)
                killed_mid_write = True
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if killed_mid_write:
        assert proc.returncode == -signal.SIGKILL
        assert target.read_bytes() == old  # untouched: never truncated
    else:  # it finished before we saw it writing: then it must be complete
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        onnx.checker.check_model(str(target))
    if proc.stderr:
        proc.stderr.close()
    OrtEngine(target, device="cpu").session  # noqa: B018 - opens: a complete, valid model
    assert killed_mid_write, "the process finished before the test caught it writing"


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 3.0, 8.0])
def test_cli_killed_at_any_time_leaves_no_target_or_a_complete_model(
    delay: float, tmp_path: Path
) -> None:
    target = tmp_path / "m.onnx"
    cmd = [
        sys.executable,
        "-m",
        "graphcnn.cli",
        "compile",
        "resnet50",
        "--target",
        "onnx",
        "-o",
        str(target),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if target.exists():
        onnx.checker.check_model(str(target), full_check=True)
        assert OrtEngine(target, device="cpu").input_shape == ["N", 3, 224, 224]


# ------------------------------------------------------------ 5. OrtEngine on bad files, CLI


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    g = graphcnn.compile("lenet5")
    return to_onnx(g).SerializeToString()


@pytest.mark.parametrize("frac", [0.0005, 0.01, 0.5, 0.9, 0.9999])
def test_truncated_model_file_is_an_engine_error(
    frac: float, good_bytes: bytes, tmp_path: Path
) -> None:
    p = tmp_path / "cut.onnx"
    p.write_bytes(good_bytes[: int(len(good_bytes) * frac)])
    with pytest.raises(EngineError) as info:
        OrtEngine(p, device="cpu")
    msg = info.value.format()
    assert "cut.onnx is not a valid ONNX model" in msg
    assert "truncated" in msg


@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 64, b"garbage, not a protobuf \xff\xfe" * 10, b"\x08\x07"]
)
def test_corrupt_model_file_is_an_engine_error(content: bytes, tmp_path: Path) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    with pytest.raises(EngineError) as info:
        OrtEngine(p, device="cpu")
    assert info.value.message


def test_truncated_model_bytes_are_an_engine_error(good_bytes: bytes) -> None:
    with pytest.raises(EngineError, match="ONNX Runtime cannot open the model"):
        OrtEngine(good_bytes[: len(good_bytes) // 2], device="cpu")


def test_missing_model_or_external_data_is_an_engine_error(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EngineError, match="no such model file"):
        OrtEngine(tmp_path / "nope.onnx", device="cpu")
    monkeypatch.setattr(to_onnx_mod, "PROTOBUF_LIMIT", 1000)
    p = tmp_path / "m.onnx"
    data = save(to_onnx(tiny), p)[1]
    data.unlink()
    with pytest.raises(EngineError):
        OrtEngine(p, device="cpu")
    data.write_bytes(b"\x00" * 16)  # truncated external data
    with pytest.raises(EngineError):
        OrtEngine(p, device="cpu")


def test_cli_compile_summary(tmp_path: Path) -> None:
    out = tmp_path / "r18.onnx"
    r = CliRunner().invoke(
        main,
        ["compile", "resnet18", "--target", "onnx", "-o", str(out), "--pipeline", "inference"],
    )
    assert r.exit_code == 0, r.output
    g2, _, _ = optimize(graphcnn.compile("resnet18"), None, "inference")
    totals = graphcnn.profile(g2.inference()).totals
    model = onnx.load(str(out))
    text = r.output
    assert "resnet18 -> ONNX opset 17, batch N (dynamic), input 3x224x224" in text
    assert f"{len(model.graph.node)} nodes: " in text
    assert "Conv 20" in text and "Gemm 1" in text and "BatchNormalization" not in text
    assert f"{totals.params:,} params" in text
    assert f"{totals.macs / 1e9:.3f} GMACs" in text
    assert "passes: inference" in text
    assert "onnx.checker" in text
    size = out.stat().st_size
    assert f"wrote {out} ({size / 1e6:.2f}MB)" in text
    assert PIPELINES["inference"]  # the pipeline named in the summary is a real one


def test_cli_compile_static_batch_and_opset(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(
        main,
        [
            "compile",
            "mobilenet_v2",
            "--input",
            "3x64x64",
            "--target",
            "onnx",
            "-o",
            str(out),
            "--static-batch",
            "2",
            "--opset",
            "20",
            "-p",
            "none",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "ONNX opset 20, batch 2, input 3x64x64" in r.output
    assert "passes: none" in r.output
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 20
    assert dims(model.graph.input[0]) == [2, 3, 64, 64]
    assert OrtEngine(out, device="cpu").run(np.zeros((2, 3, 64, 64), np.float32))[0].shape == (
        2,
        1000,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nosuchmodel"], "nosuchmodel"),
        (["alexnet", "--input", "3x64x64"], "adaptive_avgpool"),
        (["lenet5", "--static-batch", "0"], "static-batch"),
        (["lenet5", "--opset", "22"], "opset"),
        (["lenet5", "--pipeline", "nosuchpass"], "nosuchpass"),
    ],
)
def test_cli_compile_errors_exit_2_without_a_traceback(
    args: list[str], needle: str, tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(main, ["compile", *args, "--target", "onnx", "-o", str(out)])
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert needle in r.output
    assert "Traceback" not in r.output
    assert not out.exists()
    assert _files(tmp_path) == []


def test_cli_process_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "l.onnx"
    ok = subprocess.run(
        [sys.executable, "-m", "graphcnn.cli", "compile", "lenet5", "-t", "onnx", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert out.is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphcnn.cli",
            "compile",
            "alexnet",
            "--input",
            "3x64x64",
            "-t",
            "onnx",
            "-o",
            str(tmp_path / "a.onnx"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: adaptive_avgpool")
    assert "Traceback" not in bad.stderr
