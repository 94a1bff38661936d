"""Loading a file never runs code from it, degenerate files are refused with one clear error, and
artifacts written as a set stay consistent when the writer is killed between its renames.

One regression test per class of issue 10: the lark cache (a pickle) only in a private per-user
folder; checkpoints through ``weights_only``; ONNX files with 0/negative dims, cycles,
self-loops, future opsets and external data outside the model's folder; the INT8 calibration
folder (links out of it, huge images, non-images); the torch source + weights pair; the
TensorRT engine + manifest pair.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from graphcnn.weights import WeightsError, load_checkpoint

REPO = Path(__file__).resolve().parent.parent


class _Plant:
    """Unpickling this runs ``open(marker, 'w')``: proof that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gen_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the lark cache
def _cache_path(monkeypatch: pytest.MonkeyPatch, base: Path) -> str | bool:
    from graphcnn.lang import parser

    monkeypatch.setenv("XDG_CACHE_HOME", str(base))
    return parser._cache_path("module")


def test_lark_cache_lives_in_a_private_per_user_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _cache_path(monkeypatch, tmp_path / "cache")
    assert isinstance(path, str)
    folder = Path(path).parent
    assert folder == tmp_path / "cache" / "graphcnn"
    assert folder.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_lark_cache_refused_in_a_folder_others_can_write(
    mode: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "graphcnn"
    folder.mkdir()
    folder.chmod(mode)
    assert _cache_path(monkeypatch, tmp_path) is False


def test_lark_cache_refused_when_the_file_is_a_link_or_writable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _cache_path(monkeypatch, tmp_path)
    assert isinstance(path, str)
    Path(path).write_bytes(b"x")
    Path(path).chmod(0o666)
    assert _cache_path(monkeypatch, tmp_path) is False
    Path(path).unlink()
    os.symlink(tmp_path / "elsewhere", path)
    assert _cache_path(monkeypatch, tmp_path) is False


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown (root)")
def test_lark_cache_refused_in_a_folder_of_another_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "graphcnn"
    folder.mkdir(mode=0o700)
    os.chown(folder, 12345, 12345)
    assert _cache_path(monkeypatch, tmp_path) is False


def test_a_planted_lark_cache_in_a_shared_folder_never_runs(tmp_path: Path) -> None:
    """Another user created the cache folder (world-writable: the shared temp folder's, where
    graphcnn kept it before, or the XDG one) and planted a pickle in it."""
    from graphcnn.lang import parser

    shared = tmp_path / "shared"
    marker = tmp_path / "pwned"
    digest = hashlib.sha256(parser.GRAMMAR.read_bytes()).hexdigest()[:16]
    for folder in (shared / "graphcnn", shared / f"graphcnn-{os.getuid()}"):
        folder.mkdir(parents=True)
        folder.chmod(0o777)
        for kind in ("module", "expr"):
            (folder / f"lark-{kind}-{digest}.cache").write_bytes(pickle.dumps(_Plant(marker)))
    env = dict(
        os.environ, XDG_CACHE_HOME=str(shared), TMPDIR=str(shared), PYTHONPATH=str(REPO / "tests")
    )
    code = (
        "import test_hardening_files\n"  # makes _Plant importable, as a real exploit would
        "import graphcnn\n"
        "graphcnn.compile('lenet5')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


# ------------------------------------------------------------------------------- checkpoints
def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    ckpt.write_bytes(pickle.dumps({"w": _Plant(marker)}))
    with pytest.raises(WeightsError) as e:
        load_checkpoint(ckpt)
    assert not marker.exists()
    text = e.value.format()
    assert "weights_only=False" not in text and "never unpickles" in text


def test_a_zipped_torch_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"w": _Plant(marker)}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    with pytest.raises(WeightsError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_checkpoint_with_non_string_keys_is_a_clear_error(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({1: torch.zeros(2)}, tmp_path / "int.pt")
    with pytest.raises(WeightsError, match="key 1 is not a string"):
        load_checkpoint(tmp_path / "int.pt")


def test_checkpoint_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d.pt").mkdir()
    with pytest.raises(WeightsError, match="is a directory"):
        load_checkpoint(tmp_path / "d.pt")


def test_garbage_checkpoint_names_the_file_and_no_unsafe_advice(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "g.pth").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(WeightsError, match="g.pth") as e:
        load_checkpoint(tmp_path / "g.pth")
    assert "weights_only" not in str(e.value).replace("weights_only=True", "")


# --------------------------------------------------------------------------------- ONNX files
def _model(
    input_dims: tuple[int, ...] = (1, 3, 8, 8),
    weight_dims: tuple[int, ...] = (4, 3, 3, 3),
    nodes: list[Any] | None = None,
    opset: int = 17,
) -> Any:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    del w.dims[:]
    w.dims.extend(weight_dims)
    nodes = nodes or [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _node(op: str, inputs: list[str], outputs: list[str], name: str) -> Any:
    onnx = pytest.importorskip("onnx")
    return onnx.helper.make_node(op, inputs, outputs, name=name)


def _degenerate() -> dict[str, tuple[Any, str]]:
    return {
        "zero input dim": (_model(input_dims=(1, 0, 8, 8)), "dimension 1 is 0"),
        "zero batch": (_model(input_dims=(0, 3, 8, 8)), "dimension 0 is 0"),
        "negative input dim": (_model(input_dims=(1, -3, 8, 8)), "negative dimension"),
        "negative weight dim": (_model(weight_dims=(-4, 3, 3, 3)), "'w' has a negative dimension"),
        "self loop": (
            _model(
                nodes=[_node("Add", ["x", "s"], ["s"], "a"), _node("Conv", ["s", "w"], ["y"], "c")]
            ),
            "'a' (Add) consumes its own output 's'",
        ),
        "cycle": (
            _model(
                nodes=[
                    _node("Relu", ["b"], ["a"], "r"),
                    _node("Add", ["x", "a"], ["b"], "p"),
                    _node("Conv", ["b", "w"], ["y"], "c"),
                ]
            ),
            "has a cycle: 'r' (Relu) -> 'p' (Add) -> 'r' (Relu)",
        ),
        "out of order": (
            _model(nodes=[_node("Relu", ["c"], ["y"], "r"), _node("Conv", ["x", "w"], ["c"], "c")]),
            "reads 'c' before the node that computes it",
        ),
        "two producers": (
            _model(nodes=[_node("Conv", ["x", "w"], ["y"], "c"), _node("Relu", ["x"], ["y"], "r")]),
            "written by two nodes",
        ),
        "future opset": (_model(opset=99), "opset 99, from the future"),
    }


DEGENERATE = [
    "zero input dim",
    "zero batch",
    "negative input dim",
    "negative weight dim",
    "self loop",
    "cycle",
    "out of order",
    "two producers",
    "future opset",
]


@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_onnx_is_one_clear_error(case: str, tmp_path: Path) -> None:
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    model, message = _degenerate()[case]
    with pytest.raises(OnnxImportError) as e:
        from_onnx(model.SerializeToString())
    assert message in str(e.value)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxImportError) as e:
        from_onnx(path)
    assert message in str(e.value)


def test_future_ir_version_is_refused() -> None:
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    model = _model()
    model.ir_version = pytest.importorskip("onnx").IR_VERSION + 5
    with pytest.raises(OnnxImportError, match="IR version .* from the future"):
        from_onnx(model.SerializeToString())


def _external(model: Any, location: str) -> Any:
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = pytest.importorskip("onnx").TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    return model


@pytest.mark.parametrize("where", ["../secret.bin", "/abs/secret.bin", "link.bin", "sub/../x"])
def test_external_data_outside_the_models_folder_is_refused(where: str, tmp_path: Path) -> None:
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    np.ones(108, np.float32).tofile(secret)
    os.symlink(secret, folder / "link.bin")
    location = str(secret) if where.startswith("/abs") else where
    path = folder / "m.onnx"
    path.write_bytes(_external(_model(), location).SerializeToString())
    with pytest.raises(OnnxImportError, match="outside the model's folder"):
        from_onnx(path)


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    from graphcnn.backends.from_onnx import from_onnx

    np.full(108, 2.0, np.float32).tofile(tmp_path / "w.bin")
    path = tmp_path / "m.onnx"
    path.write_bytes(_external(_model(), "w.bin").SerializeToString())
    g, weights = from_onnx(path)
    assert float(weights["conv.weight"].sum()) == 216.0
    (tmp_path / "w.bin").unlink()
    from graphcnn.backends.from_onnx import OnnxImportError

    with pytest.raises(OnnxImportError, match="'w.bin' is missing"):
        from_onnx(path)


def test_external_data_of_bytes_is_never_read_from_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    np.full(108, 2.0, np.float32).tofile(tmp_path / "w.bin")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OnnxImportError, match="external file"):
        from_onnx(_external(_model(), "w.bin").SerializeToString())


def test_cli_import_of_a_degenerate_file_exits_2_without_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from graphcnn.cli import main

    path = tmp_path / "cycle m.onnx"
    path.write_bytes(_degenerate()["cycle"][0].SerializeToString())
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 2, result.output
    assert "has a cycle" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------ calibration folders
def _png(path: Path, size: tuple[int, int] = (12, 12)) -> None:
    from PIL import Image

    Image.new("RGB", size, (10, 20, 30)).save(path)


def test_calibration_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from graphcnn.backends.quantize.calibration import QuantizeError, load_calibration

    folder = tmp_path / "cal"
    folder.mkdir()
    _png(folder / "a.png")
    _png(tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", folder / "b.png")
    with pytest.raises(QuantizeError, match="outside"):
        load_calibration(folder, (3, 8, 8))
    (folder / "b.png").unlink()
    os.symlink(folder / "a.png", folder / "b.png")  # a link inside the folder is fine
    assert load_calibration(folder, (3, 8, 8)).shape == (2, 3, 8, 8)


def test_calibration_folder_link_loop_does_not_hang(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from graphcnn.backends.quantize.calibration import load_calibration

    folder = tmp_path / "cal"
    (folder / "sub").mkdir(parents=True)
    os.symlink(folder, folder / "sub" / "loop")
    _png(folder / "sub" / "a.png")
    assert load_calibration(folder, (3, 8, 8)).shape == (1, 3, 8, 8)


def test_calibration_huge_image_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("PIL")
    from graphcnn.backends.quantize import calibration

    monkeypatch.setattr(calibration, "MAX_IMAGE_PIXELS", 100)
    _png(tmp_path / "big.png", (20, 20))
    with pytest.raises(calibration.QuantizeError, match="20 x 20 pixels"):
        calibration.load_calibration(tmp_path, (3, 8, 8))


@pytest.mark.parametrize("content", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_calibration_non_image_is_a_clear_error(content: bytes, tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from graphcnn.backends.quantize.calibration import QuantizeError, load_calibration

    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(QuantizeError, match="cannot read calibration image"):
        load_calibration(tmp_path, (3, 8, 8))


def test_calibration_npz_declaring_too_much_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphcnn.backends.quantize import calibration

    monkeypatch.setattr(calibration, "MAX_NPZ_BYTES", 1000)
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(calibration.QuantizeError, match="declares more than"):
        calibration.load_calibration(tmp_path / "c.npz", (3, 8, 8))


# --------------------------------------------------------------------- the torch source pair
LENET = ("compile", "lenet5", "--target", "torch", "-o")


def _compile_torch(out: Path, seed: int) -> None:
    from click.testing import CliRunner

    from graphcnn.cli import main

    result = CliRunner().invoke(main, [*LENET, str(out), "--seed", str(seed)])
    assert result.exit_code == 0, result.output


def test_torch_pair_survives_a_kill_between_its_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from graphcnn.backends.to_torch import emit as emit_module

    out = tmp_path / "m.py"
    _compile_torch(out, 1)
    before = sorted(os.listdir(tmp_path))
    old = _import_file(out).Model().state_dict()["conv1.weight"].clone()

    real = emit_module.write_atomic
    calls: list[Path] = []

    def killed_before_source(path: Any, data: Any) -> None:
        calls.append(Path(path))
        if Path(path) == out:
            raise KeyboardInterrupt  # the process dies between the two renames
        real(path, data)

    monkeypatch.setattr(emit_module, "write_atomic", killed_before_source)
    with pytest.raises(KeyboardInterrupt):
        emit_module.emit(*_lenet_args(seed=2), out, _options(), lambda s: None)
    assert calls[0].suffix == ".safetensors" and calls[-1] == out  # weights first, source last
    model = _import_file(out).Model()  # the old source still loads its old weights
    assert torch.equal(model.state_dict()["conv1.weight"], old)
    monkeypatch.setattr(emit_module, "write_atomic", real)
    _compile_torch(out, 2)
    after = sorted(os.listdir(tmp_path))
    assert len(after) == 2 and after != before  # the new pair, older weights removed
    assert not torch.equal(_import_file(out).Model().state_dict()["conv1.weight"], old)


def _lenet_args(seed: int) -> tuple[Any, Any]:
    import graphcnn
    from graphcnn.weights import init_weights

    g = graphcnn.compile("lenet5")
    return g, init_weights(g, seed)


def _options() -> Any:
    from graphcnn.backends import EmitOptions

    return EmitOptions(origin="test")


def test_torch_model_refuses_weights_that_are_not_its_own(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "m.py"
    _compile_torch(out, 1)
    module = _import_file(out)
    weights = out.with_name(module.Model.WEIGHTS)
    assert module.Model.WEIGHTS.startswith("m.") and len(module.Model.WEIGHTS_SHA256) == 64
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 differs"):
        module.Model()
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="load_weights=False"):
        module.Model()
    assert module.Model(load_weights=False) is not None


# ------------------------------------------------------------------ the TensorRT engine pair
def test_engine_replaced_without_its_manifest_is_refused_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphcnn.backends.to_tensorrt import manifest as m

    path = tmp_path / "e.engine"
    m.save_engine(path, b"old engine", {"precision": "fp32"})
    real = m.write_atomic if hasattr(m, "write_atomic") else None
    assert real is None  # imported inside save_engine: patch it where it lives
    import graphcnn.weights as w

    original = w.write_atomic

    def killed_before_manifest(p: Any, data: Any) -> None:
        if str(p).endswith(".json"):
            raise KeyboardInterrupt
        original(p, data)

    monkeypatch.setattr(w, "write_atomic", killed_before_manifest)
    with pytest.raises(KeyboardInterrupt):
        m.save_engine(path, b"new engine", {"precision": "fp32"})
    monkeypatch.setattr(w, "write_atomic", original)
    with pytest.raises(m.ManifestMismatch, match="sha256 differs"):
        m.load_engine(path, env={})


def test_fuzz_findings_are_clean_errors() -> None:
    """Inputs the file fuzzer found crashing (tools/fuzz_files.py, seed 0), rebuilt by hand."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 4, 8, 8])
    split = helper.make_node("Split", ["x"], ["y", "z"], name="s", axis=0, num_outputs=2)
    batch_split = helper.make_model(
        helper.make_graph([split], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)]
    )
    with pytest.raises(OnnxImportError, match="'s' \\(Split\\).*only per-sample axes"):
        from_onnx(batch_split.SerializeToString())  # was: ValueError int('N') in the handler

    with pytest.raises(OnnxImportError, match="too large"):
        from_onnx(_model(input_dims=(1, 3, 2**22, 2**22)).SerializeToString())  # ShapeError

    model = _model()
    model.graph.node[0].name = "conv_AAAA"
    data = model.SerializeToString().replace(b"conv_AAAA", b"conv_\xe5AAA")
    with pytest.raises(OnnxImportError, match="(?i)utf-8"):
        from_onnx(data)  # was: UnicodeDecodeError from onnx.checker
