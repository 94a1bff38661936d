"""The GPU path without TensorRT: PyTorch lowering in FP16/BF16 channels_last, torch.compile
(max-autotune), CUDA graphs and ONNX Runtime's CUDA provider, each checked against float32
eager on the same input. These run where torch sees a CUDA GPU and are skipped (with that
reason) elsewhere; the helpers they share with tools/gpu_bench.py, and the script's ``--dry-run``,
are tested everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import graphcnn  # noqa: E402


def _bench_tool() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "tools" / "gpu_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


bench = _bench_tool()
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False here)"
)
TINY = """
network tiny(classes = 10) {
  x = input(3, 32, 32)
  x = x -> conv(16, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  y = x -> conv(16, 3, pad: 1) as conv2 -> relu
  x = relu(x + y) -> maxpool(2) as pool -> conv(32, 3, stride: 2, pad: 1) as conv3 -> hardswish
  return x -> adaptive_avgpool(1) as gap -> flatten -> linear(classes) as fc
}
"""


def _module(g: graphcnn.Graph, device: str) -> Any:
    from graphcnn.backends.to_torch import to_torch

    return to_torch(g, seed=0).eval().to(device)


def _input(g: graphcnn.Graph, batch: int, device: str) -> Any:
    shape = (batch, *g.inputs[0].type.sample_shape)
    x = np.random.default_rng(1).standard_normal(shape, dtype=np.float32)
    return torch.from_numpy(x).to(device)


# --------------------------------------------------------------------------- helpers, everywhere


def test_rel_error_and_peaks() -> None:
    ref = np.array([[1.0, -4.0], [2.0, 0.0]], dtype=np.float32)
    assert bench.rel_error(ref, ref) == 0.0
    assert bench.rel_error(ref + 0.04, ref) == pytest.approx(0.01)
    assert bench.rel_error([torch.from_numpy(ref)], ref) == 0.0
    assert bench.gpu_peak("NVIDIA H100 80GB HBM3")[0] == 989e12
    assert bench.gpu_peak("NVIDIA H100 PCIe")[0] == 756e12
    assert bench.gpu_peak("NVIDIA H200")[0] == 989e12
    assert bench.gpu_peak("Some GPU")[0] is None
    assert bench.gpu_peak("Some GPU", 100.0) == (100e12, "--peak-tflops")


def test_half_module_keeps_the_original_and_uses_channels_last() -> None:
    g = graphcnn.compile_text(TINY)
    m = _module(g, "cpu")
    h = bench.half_module(m, torch.bfloat16)
    assert next(m.parameters()).dtype == torch.float32
    w = dict(h.named_parameters())["conv1.weight"]
    assert w.dtype == torch.bfloat16 and w.is_contiguous(memory_format=torch.channels_last)
    x = bench.half_input(_input(g, 2, "cpu"), torch.bfloat16)
    assert x.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        err = bench.rel_error(h(x), m(_input(g, 2, "cpu")))
    assert err < bench.TOLERANCES["bfloat16"]


def test_fp16_onnx_model_keeps_float32_io_and_agrees() -> None:
    import onnx
    from onnx import TensorProto

    from graphcnn.backends.ort_engine import OrtEngine
    from graphcnn.backends.to_onnx import to_onnx

    g = graphcnn.compile_text(TINY)
    model = to_onnx(g)
    half = bench.to_fp16_onnx(model)
    onnx.checker.check_model(half, full_check=True)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.data_type for i in half.graph.initializer if i.name.endswith(".weight")} == {
        TensorProto.FLOAT16
    }
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT  # the original is untouched
    x = _input(g, 2, "cpu").numpy()
    ref = OrtEngine(model, device="cpu").run(x)[0]
    y = OrtEngine(half, device="cpu").run(x)[0]
    assert y.dtype == np.float32 and bench.rel_error(y, ref) < bench.TOLERANCES["float16"]


def test_args_defaults_and_validation() -> None:
    a = bench.parse_args([])
    assert a.models == ["resnet50", "mobilenet_v2"] and a.batches == [1, 32, 256]
    assert a.variants == list(bench.VARIANTS) and not a.dry_run
    d = bench.parse_args(["--dry-run"])
    assert d.batches == [1, 2] and d.input == [3, 32, 32] and d.iters == 2
    with pytest.raises(SystemExit):
        bench.parse_args(["--variants", "eager-fp64"])


@pytest.mark.slow
def test_dry_run_exercises_every_path(tmp_path: Path) -> None:
    out = tmp_path / "dry"
    assert bench.main(["--dry-run", "--batches", "1", "--out", str(out)]) == 0
    report = json.loads((out / "gpu_bench.json").read_text())
    rows = report["results"]
    assert report["dry_run"] is True and len(rows) == 2 * len(bench.VARIANTS)
    by = {(r["model"], r["variant"]): r for r in rows}
    for model in ("resnet50", "mobilenet_v2"):
        for v in ("eager-fp32", "eager-fp16-cl", "eager-bf16-cl", "compile-fp16",
                  "ort-cuda-fp32", "ort-cuda-fp16"):  # fmt: skip
            r = by[(model, v)]
            assert r["status"] == "ok", r
            assert r["accuracy_ok"], r
            assert r["p50_ms"] > 0 and r["tflops"] > 0 and r["peak_fraction"] is None
        for v in ("cudagraph-fp16", "tensorrt-fp32", "tensorrt-fp16"):
            assert by[(model, v)]["status"] == "skipped"
            assert "CUDA" in by[(model, v)]["reason"]
    assert by[("resnet50", "eager-fp32")]["rel_error"] == 0.0
    md = (out / "gpu_bench.md").read_text()
    assert "| model | batch | variant |" in md and "% FP16 peak" in md
    assert md.count("\n| resnet50 |") == len(bench.VARIANTS)


def test_without_a_gpu_the_real_run_refuses_clearly(tmp_path: Path) -> None:
    if CUDA:
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        bench.main(["--out", str(tmp_path)])


# --------------------------------------------------------------------------- on a CUDA GPU


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_channels_last_matches_fp32_eager(dtype_name: str) -> None:
    dtype = getattr(torch, dtype_name)
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    m = _module(g, "cuda")
    x = _input(g, 8, "cuda")
    h = bench.half_module(m, dtype)
    with torch.inference_mode():
        ref = m(x)
        y = h(bench.half_input(x, dtype))
    assert y.dtype == dtype
    assert bench.rel_error(y, ref) < bench.TOLERANCES[dtype_name]
    assert (y.float().argmax(1) == ref.argmax(1)).float().mean() >= 0.75


@needs_cuda
@pytest.mark.slow
def test_torch_compile_max_autotune_fp16_matches_fp32_eager() -> None:
    g = graphcnn.compile_text(TINY)
    m = _module(g, "cuda")
    x = _input(g, 4, "cuda")
    h = bench.half_module(m, torch.float16)
    fn = torch.compile(h, mode="max-autotune", dynamic=False)
    with torch.inference_mode():
        ref = m(x)
        y = fn(bench.half_input(x, torch.float16)).clone()
        y2 = fn(bench.half_input(x, torch.float16)).clone()  # replays (CUDA graphs inside)
    assert bench.rel_error(y, ref) < bench.TOLERANCES["float16"]
    assert torch.equal(y, y2)
    torch._dynamo.reset()


@needs_cuda
def test_cuda_graph_replay_matches_fp32_eager() -> None:
    g = graphcnn.compile_text(TINY)
    m = _module(g, "cuda")
    h = bench.half_module(m, torch.float16)
    x1, x2 = _input(g, 4, "cuda"), _input(g, 4, "cuda") * 0.5
    runner = bench.CudaGraphRunner(h, bench.half_input(x1, torch.float16))
    with torch.inference_mode():
        for x in (x1, x2):  # new data through the same captured graph
            y = runner(bench.half_input(x, torch.float16))
            assert bench.rel_error(y, m(x)) < bench.TOLERANCES["float16"]


@needs_cuda
@pytest.mark.parametrize("fp16", [False, True])
def test_ort_cuda_provider_matches_fp32_eager(fp16: bool) -> None:
    from graphcnn.backends.ort_engine import OrtEngine, usable_providers
    from graphcnn.backends.to_onnx import to_onnx

    if "CUDAExecutionProvider" not in usable_providers():
        pytest.skip(f"ONNX Runtime's CUDA provider is not usable here: {usable_providers()}")
    g = graphcnn.compile("mobilenet_v2", input_shape=(3, 64, 64))
    m = _module(g, "cuda")
    model: Any = to_onnx(g)
    if fp16:
        model = bench.to_fp16_onnx(model)
    eng = OrtEngine(model, device="cuda")
    assert eng.providers[0] == "CUDAExecutionProvider"
    x = _input(g, 8, "cuda")
    (y,) = eng.run_torch(x)[:1]
    with torch.inference_mode():
        ref = m(x)
    assert y.is_cuda
    assert bench.rel_error(y, ref) < bench.TOLERANCES["float16" if fp16 else "float32"]
