"""OrtEngine on bad model files: truncated, corrupt, missing, or with missing or truncated
external data, each an EngineError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers.onnx_ref import tiny_graph  # noqa: E402

import graphcnn  # noqa: E402
import graphcnn.backends.to_onnx.files as onnx_files  # noqa: E402
from graphcnn.backends.ort_engine import EngineError, OrtEngine  # noqa: E402
from graphcnn.backends.to_onnx import save, to_onnx  # noqa: E402
from graphcnn.ir import Graph  # noqa: E402


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    g = graphcnn.compile("lenet5")
    return to_onnx(g).SerializeToString()


@pytest.mark.parametrize("frac", [0.0005, 0.01, 0.5, 0.9, -1])
def test_truncated_model_file_is_an_engine_error(
    frac: float, good_bytes: bytes, tmp_path: Path
) -> None:
    """Cut inside a field (-1: the last byte missing). A cut that happens to fall exactly on a
    field boundary of the model's trailing metadata leaves a shorter *valid* protobuf, which
    no reader can tell from a whole one, so the cuts are not arbitrary fractions near 1."""
    p = tmp_path / "cut.onnx"
    p.write_bytes(good_bytes[: int(frac) if frac < 0 else int(len(good_bytes) * frac)])
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


@pytest.fixture
def tiny() -> Graph:
    return tiny_graph()


def test_missing_model_or_external_data_is_an_engine_error(
    tmp_path: Path, tiny: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EngineError, match="no such model file"):
        OrtEngine(tmp_path / "nope.onnx", device="cpu")
    monkeypatch.setattr(onnx_files, "PROTOBUF_LIMIT", 1000)
    p = tmp_path / "m.onnx"
    data = save(to_onnx(tiny), p)[1]
    data.unlink()
    with pytest.raises(EngineError):
        OrtEngine(p, device="cpu")
    data.write_bytes(b"\x00" * 16)  # truncated external data
    with pytest.raises(EngineError):
        OrtEngine(p, device="cpu")
