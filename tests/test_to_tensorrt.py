"""The TensorRT backend (the package backends/to_tensorrt/).

Everything that needs neither TensorRT nor a GPU always runs: batch ranges and sizes, profiles,
IR/spec hashes, manifests, the engine cache, parser-error mapping, calibration batching, input
validation and the CLI's argument checks and its "TensorRT missing" exit. The integration tests
at the end build and run real engines; they run only where ``tensorrt`` imports AND torch sees
a CUDA GPU, and are skipped with that reason elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.cli import invoke

pytest.importorskip("onnx")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends import to_tensorrt as trt_backend  # noqa: E402
from graphcnn.backends.to_onnx import to_onnx  # noqa: E402
from graphcnn.backends.to_tensorrt import (  # noqa: E402
    CalibrationBatches,
    EngineCache,
    InputProfile,
    ManifestMismatch,
    ParseError,
    TensorRTError,
    TensorRTUnavailable,
    TensorSpec,
    cache_key,
    canonical,
    check_input,
    compare_manifest,
    default_batch_range,
    input_profiles,
    ir_hash,
    load_engine,
    make_manifest,
    manifest_path,
    map_parser_error,
    onnx_inputs,
    onnx_nodes,
    parse_batch_range,
    parse_loc,
    parse_size,
    qdq_summary,
    read_manifest,
    save_engine,
    spec_hash,
)
from graphcnn.backends.to_tensorrt.runtime import device_index  # noqa: E402

SPEC = """\
network small(classes = 10) {
  x = input(3, 16, 16)
  x = x -> conv(8, 3, pad: 1) as conv1 -> silu as act1 -> maxpool(2) as pool
  return x -> adaptive_avgpool(1) as gap -> flatten -> linear(classes) as fc
}
"""
ENV = {"tensorrt": "10.13.0.35", "cuda": "12.9", "gpu": "NVIDIA H100 80GB HBM3",
       "compute_capability": "9.0"}  # fmt: skip


def _have_tensorrt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def _have_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def small() -> graphcnn.Graph:
    return graphcnn.compile_text(SPEC, name="small.gcnn")


def _manifest(g: graphcnn.Graph, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(precision="fp16", profiles=input_profiles(g, (1, 8, 32)),
                                onnx_sha256="ab" * 32)  # fmt: skip
    args.update(kw)
    env = args.pop("env", ENV)
    return make_manifest(g, env, **args)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "text, want",
    [("1:8:32", (1, 8, 32)), (" 4:4:4 ", (4, 4, 4)), ("8", (8, 8, 8)), ("1:1:256", (1, 1, 256))],
)
def test_parse_batch_range(text: str, want: tuple[int, int, int]) -> None:
    assert parse_batch_range(text) == want


@pytest.mark.parametrize(
    "text, says",
    [
        ("8:4:32", "not ordered"),
        ("1:64:32", "not ordered"),
        ("0:1:2", "minimum batch must be >= 1"),
        ("1:8", "MIN:OPT:MAX"),
        ("a:b:c", "MIN:OPT:MAX"),
        ("", "MIN:OPT:MAX"),
    ],
)
def test_bad_batch_ranges_say_why(text: str, says: str) -> None:
    with pytest.raises(TensorRTError, match=says):
        parse_batch_range(text)


@pytest.mark.parametrize(
    "text, want",
    [("1GiB", 2**30), ("512MiB", 512 * 2**20), ("2G", 2 * 2**30), ("1.5GB", 1_500_000_000),
     ("4096", 4096), ("64 KiB", 65536), ("1e9", 10**9)],
)  # fmt: skip
def test_parse_size(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["abc", "0", "1XB", "-1GiB", "GiB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(TensorRTError):
        parse_size(text)


def test_profiles_come_from_the_graphs_chw(small: graphcnn.Graph) -> None:
    (p,) = input_profiles(small, (1, 8, 32))
    assert p == InputProfile("input", (1, 3, 16, 16), (8, 3, 16, 16), (32, 3, 16, 16))
    assert p.batch_range == (1, 8, 32)
    assert p.to_json() == {"input": "input", "min": [1, 3, 16, 16], "opt": [8, 3, 16, 16],
                           "max": [32, 3, 16, 16]}  # fmt: skip
    assert default_batch_range(small) == (1, 1, 1)  # symbolic N
    fixed = graphcnn.compile_text(SPEC, batch=4)
    assert default_batch_range(fixed) == (4, 4, 4)
    assert input_profiles(fixed)[0].min == (4, 3, 16, 16)
    big = graphcnn.compile("resnet18", input_shape=(3, 64, 96))
    assert input_profiles(big, (2, 2, 2))[0].opt == (2, 3, 64, 96)
    with pytest.raises(TensorRTError, match="not ordered"):
        input_profiles(small, (4, 2, 8))


# --------------------------------------------------------------------------- hashes, manifest


def test_ir_hash_is_stable_and_ignores_locations_but_not_structure(small: graphcnn.Graph) -> None:
    again = graphcnn.compile_text(SPEC, name="small.gcnn")
    moved = graphcnn.compile_text("# a comment moves every line\n\n" + SPEC, name="moved.gcnn")
    assert ir_hash(small) == ir_hash(again) == ir_hash(moved)
    assert len(ir_hash(small)) == 64
    assert ir_hash(graphcnn.compile_text(SPEC, params={"classes": 5})) != ir_hash(small)
    assert ir_hash(graphcnn.compile_text(SPEC, input_shape=(3, 32, 32))) != ir_hash(small)
    # the spec text itself is hashed separately: the comment changes it
    assert spec_hash(small) is not None
    other = graphcnn.compile_text("# changed\n" + SPEC, name="other.gcnn")
    assert spec_hash(other) != spec_hash(small)


def test_manifest_fields(small: graphcnn.Graph) -> None:
    m = _manifest(small, workspace=2**30)
    assert m["format"] == "graphcnn-tensorrt-engine" and m["version"] == 1
    assert m["model"] == "small" and m["ir_hash"] == ir_hash(small)
    assert m["spec_hash"] == spec_hash(small)
    assert m["graphcnn"] == graphcnn.__version__
    assert (m["tensorrt"], m["cuda"], m["gpu"], m["compute_capability"]) == (
        "10.13.0.35", "12.9", "NVIDIA H100 80GB HBM3", "9.0",
    )  # fmt: skip
    assert m["precision"] == "fp16" and m["workspace"] == 2**30
    assert m["profiles"] == [{"input": "input", "min": [1, 3, 16, 16], "opt": [8, 3, 16, 16],
                              "max": [32, 3, 16, 16]}]  # fmt: skip
    json.dumps(m)  # JSON-clean
    with pytest.raises(TensorRTError, match="unknown precision"):
        _manifest(small, precision="int4")
    with pytest.raises(TensorRTError, match="lacks gpu"):
        _manifest(small, env={k: v for k, v in ENV.items() if k != "gpu"})


def test_cache_key_ignores_build_time_fields_only(small: graphcnn.Graph) -> None:
    m = _manifest(small)
    built = dict(m, created="2026-01-01T00:00:00Z", build_seconds=12.5, engine_sha256="00" * 32,
                 engine_bytes=123, from_cache=False, io=[])  # fmt: skip
    assert cache_key(built) == cache_key(m)
    assert "created" not in canonical(built)
    assert cache_key(dict(m, precision="fp32")) != cache_key(m)
    assert cache_key(dict(m, gpu="NVIDIA A100")) != cache_key(m)
    assert cache_key(dict(m, onnx_sha256="cd" * 32)) != cache_key(m)  # new weights: rebuild
    assert cache_key(_manifest(small, workspace=1)) != cache_key(m)


def test_compare_manifest_names_each_mismatch(small: graphcnn.Graph) -> None:
    m = _manifest(small)
    assert compare_manifest(m, ENV, ir_hash(small), "fp16") == []
    here = dict(ENV, gpu="NVIDIA A100-SXM4-80GB", compute_capability="8.0", tensorrt="10.9.0")
    problems = compare_manifest(m, here)
    assert len(problems) == 3
    assert any("GPU: engine built with NVIDIA H100 80GB HBM3, here NVIDIA A100" in p
               for p in problems)  # fmt: skip
    assert any(
        p.startswith("TensorRT: engine built with 10.13.0.35, here 10.9.0") for p in problems
    )
    assert any("compute capability" in p for p in problems)
    other = graphcnn.compile_text(SPEC, params={"classes": 5})
    (ir,) = compare_manifest(m, ENV, ir_hash(other))
    assert ir.startswith("IR: engine built from IR ")
    assert compare_manifest(m, ENV, precision="int8") == [
        "precision: engine is fp16, asked for int8"
    ]
    assert "not a graphcnn TensorRT manifest" in compare_manifest({"format": "x"}, ENV)[0]
    # CUDA is recorded, not enforced (minor-version compatible)
    assert compare_manifest(m, dict(ENV, cuda="12.4")) == []


def test_save_and_load_engine_with_its_manifest(small: graphcnn.Graph, tmp_path: Path) -> None:
    blob = b"\x00engine-bytes\xff" * 10
    files = save_engine(tmp_path / "model.engine", blob, _manifest(small))
    assert files == [tmp_path / "model.engine", tmp_path / "model.engine.json"]
    assert manifest_path(files[0]) == files[1]
    stored = read_manifest(files[0])
    assert stored["engine_bytes"] == len(blob) and len(stored["engine_sha256"]) == 64
    got, manifest = load_engine(files[0], small, env=ENV, precision="fp16")
    assert got == blob and manifest["ir_hash"] == ir_hash(small)

    with pytest.raises(ManifestMismatch, match="GPU: engine built with NVIDIA H100") as info:
        load_engine(files[0], env=dict(ENV, gpu="Tesla T4", compute_capability="7.5"))
    assert "rebuild" in (info.value.hint or "")
    with pytest.raises(ManifestMismatch, match="IR"):
        load_engine(files[0], graphcnn.compile_text(SPEC, params={"classes": 3}), env=ENV)

    files[0].write_bytes(blob[:-1])  # truncated: the manifest no longer vouches for it
    with pytest.raises(ManifestMismatch, match="sha256"):
        load_engine(files[0], env=ENV)
    files[1].unlink()
    with pytest.raises(TensorRTError, match="has no manifest"):
        load_engine(files[0], env=ENV)
    with pytest.raises(TensorRTError, match="no such engine"):
        load_engine(tmp_path / "missing.engine", env=ENV)


def test_engine_cache_roundtrip(small: graphcnn.Graph, tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "cache")
    m = _manifest(small)
    assert cache.lookup(m) is None
    path = cache.store(b"ENGINE", dict(m, created="t0", build_seconds=1.0))
    assert path.name == f"{cache_key(m)}.engine" and path.is_file()
    hit = cache.lookup(m)  # no build fields in the query: still a hit
    assert hit is not None
    blob, stored = hit
    assert blob == b"ENGINE" and stored["from_cache"] is True and stored["created"] == "t0"
    assert cache.lookup(dict(m, precision="fp32")) is None
    path.write_bytes(b"CORRUPT")
    assert cache.lookup(m) is None  # a damaged entry is rebuilt, not used


def test_engine_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHCNN_TRT_CACHE", str(tmp_path / "here"))
    assert EngineCache().root == tmp_path / "here" and EngineCache.enabled()
    monkeypatch.delenv("GRAPHCNN_TRT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert EngineCache().root == tmp_path / "xdg" / "graphcnn" / "tensorrt"
    monkeypatch.setenv("GRAPHCNN_TRT_CACHE", "off")
    assert not EngineCache.enabled()


# --------------------------------------------------------------------------- parser errors


def test_parser_errors_map_to_ir_scopes_and_spec_lines(small: graphcnn.Graph) -> None:
    model = to_onnx(small)
    nodes = onnx_nodes(model.SerializeToString())
    assert onnx_inputs(model) == ["input"]
    by_name = {n.name: n for n in nodes}
    conv = by_name["conv1"]
    assert conv.op == "Conv" and conv.loc is not None
    assert (conv.loc.file, conv.loc.line) == ("small.gcnn", 3)

    issue = map_parser_error("Conv: unsupported padding", conv.index, "conv1", nodes, small)
    assert issue.scope == "conv1"
    text = issue.format()
    assert text.startswith("small.gcnn:3:")
    assert "TensorRT cannot parse ONNX node 'conv1' (Conv): Conv: unsupported padding" in text
    assert "x = x -> conv(8, 3, pad: 1)" in text  # the spec line, with a caret under it
    assert "^" in text

    # silu lowers to Sigmoid + Mul; the helper node maps back to the IR node act1
    helper_node = by_name["act1.sigmoid"]
    issue = map_parser_error("no kernel", -1, "act1.sigmoid", nodes, small)
    assert issue.node == helper_node and issue.scope == "act1"
    assert "from IR node 'act1'" in issue.format()

    # TensorRT builds without node_name(): the index is enough
    issue = map_parser_error("bad", conv.index, "", nodes, small)
    assert issue.node == conv
    # no node at all (e.g. an unsupported opset): the description alone
    issue = map_parser_error("unsupported IR version", -1, "", nodes, small)
    assert issue.node is None and issue.format() == "error: unsupported IR version"

    err = ParseError([map_parser_error("x", conv.index, "conv1", nodes, small), issue])
    text = err.format()
    assert text.startswith("error: TensorRT's ONNX parser reported 2 errors")
    assert "small.gcnn:3:" in text and "hint:" in text


def test_parse_loc() -> None:
    loc = parse_loc("nets/my net.gcnn:12:5")
    assert loc is not None and (loc.file, loc.line, loc.col) == ("nets/my net.gcnn", 12, 5)
    assert parse_loc("") is None and parse_loc("no location") is None


def _qdq_model(zero_point_type: int) -> onnx.ModelProto:
    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    zp_dtype = np.uint8 if zero_point_type == TensorProto.UINT8 else np.int8
    zp = numpy_helper.from_array(np.array(0, dtype=zp_dtype), "zp")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=[scale, zp],
    )  # fmt: skip
    return helper.make_model(graph)


def test_qdq_summary(small: graphcnn.Graph) -> None:
    assert qdq_summary(to_onnx(small)) == {"quantize": 0, "dequantize": 0, "uint8": 0}
    assert qdq_summary(_qdq_model(TensorProto.INT8)) == {"quantize": 1, "dequantize": 1,
                                                         "uint8": 0}  # fmt: skip
    assert qdq_summary(_qdq_model(TensorProto.UINT8).SerializeToString())["uint8"] == 1


# --------------------------------------------------------------------------- calibration


def test_calibration_batches_pad_the_last_batch() -> None:
    x = np.arange(10, dtype=np.float64).reshape(10, 1)
    b = CalibrationBatches(x, 4)
    assert len(b) == 3 and b.padded == 2 and b.dropped == 0
    got = [batch[:, 0].tolist() for batch in b]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]  # wraps to the first samples
    assert all(batch.dtype == np.float32 and batch.flags.c_contiguous for batch in b)
    with pytest.raises(IndexError):
        b[3]


def test_calibration_batches_drop_or_exact() -> None:
    x = np.zeros((10, 3, 2, 2), dtype=np.float32)
    d = CalibrationBatches(x, 4, "drop")
    assert len(d) == 2 and d.dropped == 2 and d.padded == 0
    assert [b.shape for b in d] == [(4, 3, 2, 2)] * 2
    exact = CalibrationBatches(x[:8], 4, "pad", sample_shape=(3, 2, 2))
    assert len(exact) == 2 and exact.padded == 0
    one = CalibrationBatches(x[:3], 8)  # fewer samples than a batch: padded to a full one
    assert len(one) == 1 and one.padded == 5 and one[0].shape == (8, 3, 2, 2)


@pytest.mark.parametrize(
    "data, kw, says",
    [
        (np.zeros((3, 2)), {"batch_size": 4, "remainder": "drop"}, "no full batch"),
        (np.zeros((4, 3, 8, 8)), {"batch_size": 2, "sample_shape": (3, 16, 16)}, "the model takes"),
        (np.array([[np.nan]]), {"batch_size": 1}, "NaN"),
        (np.zeros((0, 3)), {"batch_size": 1}, "non-empty"),
        (np.zeros(5), {"batch_size": 1}, "non-empty"),
        (np.zeros((4, 1)), {"batch_size": 0}, "batch size must be >= 1"),
        (np.zeros((4, 1)), {"batch_size": 2, "remainder": "wrap"}, "unknown remainder"),
    ],
)
def test_calibration_batches_reject_bad_input(data: Any, kw: dict[str, Any], says: str) -> None:
    with pytest.raises(TensorRTError, match=says):
        CalibrationBatches(data, **kw)


def test_calibration_hash_covers_data_and_batching() -> None:
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    a = CalibrationBatches(x, 4).sha256()
    assert a == CalibrationBatches(x.copy(), 4).sha256()
    assert a != CalibrationBatches(x, 3).sha256()
    assert a != CalibrationBatches(x, 4, "drop").sha256()
    assert a != CalibrationBatches(x + 1, 4).sha256()


# --------------------------------------------------------------------------- runner checks


SPEC_IN = TensorSpec("x", (-1, 3, 16, 16), "float32", True, (1, 3, 16, 16), (32, 3, 16, 16))


def test_check_input_accepts_a_fitting_tensor() -> None:
    check_input(SPEC_IN, (8, 3, 16, 16), "float32", "cuda")
    check_input(SPEC_IN, (1, 3, 16, 16), "float32", "cuda")
    check_input(SPEC_IN, (32, 3, 16, 16), "float32", "cuda")


@pytest.mark.parametrize(
    "shape, dtype, device, says",
    [
        ((8, 3, 16, 16), "float32", "cpu", "is on cpu; a TensorRT engine takes CUDA tensors"),
        ((8, 3, 16, 16), "float16", "cuda", "dtype float16, the engine takes float32"),
        ((3, 16, 16), "float32", "cuda", r"shape \[3, 16, 16\], expected \[N, 3, 16, 16\]"),
        ((8, 1, 16, 16), "float32", "cuda", r"expected \[N, 3, 16, 16\]"),
        ((64, 3, 16, 16), "float32", "cuda", r"batch 64 is outside .* profile \(1\.\.32\)"),
    ],
)
def test_check_input_errors(shape: tuple[int, ...], dtype: str, device: str, says: str) -> None:
    with pytest.raises(TensorRTError, match=says) as info:
        check_input(SPEC_IN, shape, dtype, device)
    if "outside" in says:
        assert "--batch-range" in (info.value.hint or "")


def test_device_index() -> None:
    assert device_index(0) == 0
    assert device_index("cuda") == 0
    assert device_index("cuda:1") == 1
    with pytest.raises(TensorRTError, match="CUDA device"):
        device_index("cpu")


# --------------------------------------------------------------------------- without TensorRT


needs_no_trt = pytest.mark.skipif(_have_tensorrt(), reason="tensorrt is importable here")


@needs_no_trt
def test_missing_tensorrt_is_a_clear_error() -> None:
    with pytest.raises(TensorRTUnavailable) as info:
        trt_backend.require_tensorrt()
    assert "'tensorrt'" in info.value.message and "cannot be imported" in info.value.message
    assert "--target onnx" in (info.value.hint or "")


@needs_no_trt
def test_build_engine_validates_before_needing_tensorrt(small: graphcnn.Graph) -> None:
    model = to_onnx(small).SerializeToString()
    with pytest.raises(TensorRTError, match="unknown precision"):
        trt_backend.build_engine(model, small, "fp8")
    with pytest.raises(TensorRTError, match="not ordered"):
        trt_backend.build_engine(model, small, "fp32", (8, 1, 8))
    with pytest.raises(TensorRTError, match="needs calibration data or a model with Q/DQ"):
        trt_backend.build_engine(model, small, "int8")
    other = to_onnx(small)
    other.graph.input[0].name = "image"
    with pytest.raises(TensorRTError, match=r"inputs \['image'\] are not the graph's"):
        trt_backend.build_engine(other.SerializeToString(), small, "fp32")
    with pytest.raises(TensorRTUnavailable, match="tensorrt"):
        trt_backend.build_engine(model, small, "fp16", (1, 2, 4))


# --------------------------------------------------------------------------- CLI


@needs_no_trt
def test_cli_tensorrt_target_without_tensorrt_exits_2_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "model.engine"
    r = invoke("compile", "lenet5", "--target", "tensorrt", "-o", str(out), "--fp16",
               "--batch-range", "1:8:32", "--workspace", "1GiB", code=2)  # fmt: skip
    assert "tensorrt" in r.output and "cannot be imported" in r.output
    assert "Traceback" not in r.output
    assert not out.exists() and not manifest_path(out).exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--batch-range", "8:1:32"], "not ordered"),
        (["--batch-range", "x"], "MIN:OPT:MAX"),
        (["--workspace", "lots"], "not a byte count"),
        (["--fp16", "--int8"], "exclusive"),
        (["--static-batch", "4"], "--batch-range"),
    ],
)
def test_cli_validates_tensorrt_options(tmp_path: Path, args: list[str], says: str) -> None:
    out = str(tmp_path / "m.engine")
    r = invoke("compile", "lenet5", "--target", "tensorrt", "-o", out, *args, code=2)
    assert says in r.output


@pytest.mark.parametrize(
    "args", [["--fp16"], ["--batch-range", "1:2:4"], ["--workspace", "1GiB"],
             ["--timing-cache", "t.cache"]],
)  # fmt: skip
def test_cli_tensorrt_options_need_the_tensorrt_target(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "m.onnx"
    r = invoke("compile", "lenet5", "--target", "onnx", "-o", str(out), *args, code=2)
    assert "--target tensorrt" in r.output
    assert not out.exists()


def test_cli_help_documents_the_tensorrt_target() -> None:
    r = invoke("compile", "--help")
    for word in ("tensorrt", "--fp16", "--batch-range", "--workspace", "--timing-cache"):
        assert word in r.output


# --------------------------------------------------------------------------- with TensorRT + GPU

gpu_trt = pytest.mark.skipif(
    not (_have_tensorrt() and _have_cuda()),
    reason="needs the tensorrt package and a CUDA GPU "
    f"(tensorrt importable: {_have_tensorrt()}, CUDA GPU: {_have_cuda()})",
)


def _reference(g: graphcnn.Graph, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import torch

    from graphcnn.backends.to_torch import to_torch

    m = to_torch(g).eval()
    with torch.inference_mode():
        return m(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]


@gpu_trt
@pytest.mark.parametrize("precision, tol", [("fp32", 1e-3), ("fp16", 3e-2)])
def test_engine_matches_torch(small: graphcnn.Graph, tmp_path: Path, precision: str,
                              tol: float) -> None:  # fmt: skip
    import torch

    model = to_onnx(small).SerializeToString()
    cache = EngineCache(tmp_path / "cache")
    blob, manifest = trt_backend.build_engine(
        model, small, precision, (1, 4, 8), 1 << 28, tmp_path / "timing.cache", cache=cache
    )
    assert manifest["precision"] == precision and not manifest["from_cache"]
    assert (tmp_path / "timing.cache").stat().st_size > 0
    assert {t["name"] for t in manifest["io"]} >= {"input"}
    x = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)
    runner = trt_backend.TensorRTRunner(blob, manifest)
    (y,) = runner(torch.from_numpy(x).cuda())
    torch.cuda.synchronize()
    ref = _reference(small, x)
    err = np.abs(y.cpu().numpy() - ref).max() / max(np.abs(ref).max(), 1e-6)
    assert err < tol
    with pytest.raises(TensorRTError, match="outside"):
        runner(torch.zeros(16, 3, 16, 16, device="cuda"))
    with pytest.raises(TensorRTError, match="CUDA tensors"):
        runner(torch.zeros(2, 3, 16, 16))
    # a second identical build comes from the cache
    again, m2 = trt_backend.build_engine(model, small, precision, (1, 4, 8), 1 << 28, cache=cache)
    assert again == blob and m2["from_cache"]
    files = save_engine(tmp_path / "m.engine", blob, manifest)
    got, _ = load_engine(files[0], small, precision=precision)
    assert got == blob


@gpu_trt
def test_int8_calibrated_engine(small: graphcnn.Graph, tmp_path: Path) -> None:
    import torch

    x = np.random.default_rng(1).normal(size=(20, 3, 16, 16)).astype(np.float32)
    blob, manifest = trt_backend.build_engine(
        to_onnx(small).SerializeToString(), small, "int8", (1, 4, 8), calibration=x,
        calibration_cache=tmp_path / "calib.cache",
    )  # fmt: skip
    assert manifest["quantization"].startswith("calibrated")
    assert (tmp_path / "calib.cache").is_file()
    (y,) = trt_backend.TensorRTRunner(blob)(torch.from_numpy(x[:4]).cuda())
    torch.cuda.synchronize()
    assert np.isfinite(y.cpu().numpy()).all()


@gpu_trt
def test_cli_builds_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHCNN_TRT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "lenet.engine"
    invoke("compile", "lenet5", "--target", "tensorrt", "-o", str(out), "--fp16",
           "--batch-range", "1:2:4", "--timing-cache", str(tmp_path / "t.cache"))  # fmt: skip
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["precision"] == "fp16"
    assert manifest["profiles"][0]["max"] == [4, 1, 32, 32]
