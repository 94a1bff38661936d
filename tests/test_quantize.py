"""Static INT8 quantisation (backends/quantize/): QDQ structure, calibration, CLI, accuracy."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.digits import train_lenet5
from helpers.fresh import imported

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.quantize import (  # noqa: E402
    QuantizeError,
    accuracy_report,
    int8_path,
    load_calibration,
    quantize_int8,
    split_samples,
    synthetic_calibration,
)
from graphcnn.backends.to_onnx import save, to_onnx  # noqa: E402
from graphcnn.cli import main  # noqa: E402

TINY = """
network tiny(classes = 10) {
  x = input(3, 16, 16)
  x = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
  y = x -> conv(8, 3, pad: 1) as conv2 -> relu
  return relu(x + y) -> maxpool(2) as pool -> adaptive_avgpool(1) as gap -> flatten
           -> linear(classes) as fc
}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small residual CNN (conv, BN, ReLU, Add, max pool, GAP, linear): FP32 and INT8."""
    d = tmp_path_factory.mktemp("tiny")
    g = graphcnn.compile_text(TINY)
    fp32 = d / "tiny.onnx"
    save(to_onnx(g, seed=3), fp32)
    q = quantize_int8(fp32, d / "tiny.int8.onnx", synthetic_calibration((3, 16, 16), 48, seed=0))
    return fp32, q


def _weight_dequantizers(model: onnx.ModelProto) -> dict[str, tuple[Any, Any, int | None]]:
    """Conv/Gemm node -> (int weight array, its scale array, DQ axis) of its weight input."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for n in model.graph.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        dq = producer[n.input[1]]
        assert dq.op_type == "DequantizeLinear", n.name
        axis = next((a.i for a in dq.attribute if a.name == "axis"), None)
        out[n.name] = (inits[dq.input[0]], inits[dq.input[1]], axis)
    return out


def test_qdq_structure_int8_per_channel_weights(tiny: tuple[Path, Path]) -> None:
    model = onnx.load(str(tiny[1]))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= 8
    weights = _weight_dequantizers(model)
    assert set(weights) == {"conv1", "conv2", "fc"}
    for name, (w, scale, axis) in weights.items():
        assert w.dtype == np.int8, name
        assert scale.shape == (w.shape[0],), name  # one scale per output channel
        assert axis in (None, 0), name
    # activations are uint8 (asymmetric): the network input's QuantizeLinear
    q_in = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    zp = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}[q_in.input[2]]
    assert zp.dtype == np.uint8


def test_int8_runs_in_ort_cpu_and_is_close_to_fp32(tiny: tuple[Path, Path]) -> None:
    held_out = synthetic_calibration((3, 16, 16), 32, seed=1)  # not the calibration seed
    r = accuracy_report(tiny[0], tiny[1], held_out, threads=1)
    assert r["n"] == 32
    assert r["max_abs_error"] <= 0.05 * r["max_abs_fp32"], r
    assert r["mean_abs_error"] <= 0.01 * r["max_abs_fp32"], r
    assert r["top1_agreement"] >= 0.9, r


def test_per_tensor_and_int8_activations(tmp_path: Path) -> None:
    g = graphcnn.compile("lenet5")
    calib = synthetic_calibration((1, 32, 32), 16)
    q = quantize_int8(
        to_onnx(g), tmp_path / "q.onnx", calib, per_channel=False, activation_type="int8"
    )
    model = onnx.load(str(q))
    for name, (w, scale, _) in _weight_dequantizers(model).items():
        assert w.dtype == np.int8 and scale.size == 1, name
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and all(z.dtype == np.int8 and z == 0 for z in zps)  # symmetric int8
    r = accuracy_report(to_onnx(g), q, synthetic_calibration((1, 32, 32), 8, seed=5))
    assert r["max_abs_error"] <= 0.05 * r["max_abs_fp32"], r


def test_writes_atomically_and_fails_cleanly(tmp_path: Path) -> None:
    g = graphcnn.compile("lenet5")
    out = tmp_path / "sub" / "q.onnx"
    with pytest.raises(QuantizeError, match=r"\[3, 32, 32\] \(per sample\).*is \[N, 1, 32, 32\]"):
        quantize_int8(to_onnx(g), out, np.zeros((4, 3, 32, 32), np.float32))
    assert not out.exists() and list(out.parent.iterdir()) == []
    with pytest.raises(QuantizeError, match="calibration method"):
        quantize_int8(to_onnx(g), out, np.zeros((4, 1, 32, 32), np.float32), method="median")
    quantize_int8(to_onnx(g), out, synthetic_calibration((1, 32, 32), 4), method="percentile")
    assert [p.name for p in out.parent.iterdir()] == ["q.onnx"]  # no temporary files left


def test_static_batch_model(tmp_path: Path) -> None:
    g = graphcnn.compile("lenet5")
    fp32 = tmp_path / "b4.onnx"
    save(to_onnx(g, static_batch=4), fp32)
    calib = synthetic_calibration((1, 32, 32), 6)  # not a multiple of 4: wraps around
    q = quantize_int8(fp32, tmp_path / "b4.int8.onnx", calib, method="entropy")
    r = accuracy_report(fp32, q, synthetic_calibration((1, 32, 32), 5, seed=9))
    assert r["n"] == 5


# --------------------------------------------------------------------------- calibration data


def test_synthetic_calibration_is_deterministic_and_imagenet_normalised() -> None:
    a = synthetic_calibration((3, 32, 32), 64, seed=0)
    assert a.shape == (64, 3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, synthetic_calibration((3, 32, 32), 64, seed=0))
    assert not np.array_equal(a, synthetic_calibration((3, 32, 32), 64, seed=1))
    # [0, 1] images normalised with the ImageNet mean/std: about -2.1 .. 2.6
    assert -2.2 < a.min() < -1.5 and 2.0 < a.max() < 2.7
    gray = load_calibration(None, ["N", 1, 8, 8], n=5)
    assert gray.shape == (5, 1, 8, 8) and gray.min() >= 0.0 and gray.max() <= 1.0


def test_split_samples_holds_out_a_fifth() -> None:
    x = np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1)
    calib, held = split_samples(x)
    assert len(calib) == 40 and len(held) == 10
    assert not set(calib.ravel()) & set(held.ravel())
    with pytest.raises(QuantizeError, match="at least 2"):
        split_samples(x[:1])


def test_calibration_from_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((10, 3, 16, 16), dtype=np.float32)
    np.savez(tmp_path / "x.npz", other=np.zeros(3), x=x)
    assert np.array_equal(load_calibration(tmp_path / "x.npz", ["N", 3, 16, 16]), x)
    np.savez(tmp_path / "first.npz", x)  # unnamed: the first array
    got = load_calibration(tmp_path / "first.npz", (3, 16, 16), n=4)
    assert got.shape == (4, 3, 16, 16) and all(any(np.array_equal(g, r) for r in x) for g in got)
    np.savez(tmp_path / "gray.npz", images=x[:, 0])  # [N, H, W] for a 1-channel model
    assert load_calibration(tmp_path / "gray.npz", (1, 16, 16)).shape == (10, 1, 16, 16)


def test_npz_with_the_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(QuantizeError) as info:
        load_calibration(tmp_path / "bad.npz", ["N", 3, 224, 224])
    assert "[4, 3, 32, 32]" in info.value.message and "[N, 3, 224, 224]" in info.value.message
    np.savez(tmp_path / "u8.npz", x=np.zeros((4, 3, 8, 8), np.uint8))
    with pytest.raises(QuantizeError, match="model-ready float"):
        load_calibration(tmp_path / "u8.npz", (3, 8, 8))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(QuantizeError, match="neither a folder of images nor an .npz"):
        load_calibration(tmp_path / "notes.txt", (3, 8, 8))
    with pytest.raises(QuantizeError, match="no such file"):
        load_calibration(tmp_path / "missing.npz", (3, 8, 8))


def test_calibration_from_a_folder_of_images(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    d = tmp_path / "images"
    (d / "class_a").mkdir(parents=True)
    image.new("RGB", (40, 30), (255, 255, 255)).save(d / "white.png")
    image.new("RGB", (20, 20), (0, 0, 0)).save(d / "class_a" / "black.jpg")
    (d / "readme.txt").write_text("not an image")
    x = load_calibration(d, ["N", 3, 16, 16])
    assert x.shape == (2, 3, 16, 16) and x.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    # sorted by path: class_a/black.jpg, then white.png
    np.testing.assert_allclose(x[0, :, 0, 0], -mean / std, atol=0.05)
    np.testing.assert_allclose(x[1, :, 5, 5], (1 - mean) / std, atol=1e-5)
    gray = load_calibration(d, (1, 8, 8))
    assert gray.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(gray[:, 0, 0, 0], [0.0, 1.0], atol=0.02)
    with pytest.raises(QuantizeError, match="1 .*or 3"):
        load_calibration(d, (4, 8, 8))


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(QuantizeError, match=r"no images in .*empty"):
        load_calibration(tmp_path / "empty", (3, 8, 8))


def test_missing_pillow_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    with pytest.raises(QuantizeError, match="Pillow") as info:
        load_calibration(tmp_path, (3, 8, 8))
    assert "pip install pillow" in (info.value.hint or "")


# --------------------------------------------------------------------------- CLI


def test_cli_int8_end_to_end_on_lenet5(tmp_path: Path) -> None:
    out = tmp_path / "lenet.onnx"
    r = CliRunner().invoke(main, ["compile", "lenet5", "-t", "onnx", "--int8", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and int8_path(out) == tmp_path / "lenet.int8.onnx"
    assert int8_path(out).is_file()
    assert "top-1 agreement" in r.output and "16 held-out samples" in r.output
    assert "calibration: synthetic" in r.output
    ops = {n.op_type for n in onnx.load(str(int8_path(out))).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.int8.onnx", "lenet.onnx"]


def test_cli_int8_with_npz_calibration(tmp_path: Path) -> None:
    from graphcnn import datasets

    x, _ = datasets.digits(32)
    np.savez(tmp_path / "digits.npz", x=x[:50])
    out = tmp_path / "m.onnx"
    args = ["compile", "lenet5", "-t", "onnx", "-o", str(out), "--int8"]
    r = CliRunner().invoke(main, [*args, "--calibration", str(tmp_path / "digits.npz")])
    assert r.exit_code == 0, r.output
    assert "(50 samples)" in r.output and "/10 held-out samples" in r.output
    np.savez(tmp_path / "bad.npz", x=x[:8, :, :16, :16])
    r = CliRunner().invoke(main, [*args, "--calibration", str(tmp_path / "bad.npz")])
    assert r.exit_code == 2 and "error: calibration array bad.npz['x'] has shape" in r.output


def test_cli_int8_option_errors(tmp_path: Path) -> None:
    base = ["compile", "lenet5", "-o", str(tmp_path / "m.onnx")]
    r = CliRunner().invoke(main, [*base, "--int8"])  # default target: torch
    assert r.exit_code == 2 and "--int8" in r.output and "onnx" in r.output
    r = CliRunner().invoke(main, [*base, "-t", "onnx", "--calibration", str(tmp_path)])
    assert r.exit_code == 2 and "--int8" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(
        main, [*base, "-t", "onnx", "--int8", "--calibration", str(tmp_path / "empty")]
    )
    assert r.exit_code == 2 and "error: no images in" in r.output
    assert not (tmp_path / "m.int8.onnx").exists()


def test_quantizing_does_not_import_torch(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        import graphcnn
        from graphcnn.backends.quantize import quantize_int8, synthetic_calibration
        from graphcnn.backends.to_onnx import to_onnx
        g = graphcnn.compile("lenet5")
        quantize_int8(to_onnx(g), {str(tmp_path / "q.onnx")!r},
                      synthetic_calibration((1, 32, 32), 4))
    """)
    assert imported(code, "torch") == []


# --------------------------------------------------------------------------- trained model


def _train_lenet5(torch: Any, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    """LeNet-5 trained on digits with tests/test_training.py's recipe; its graph and weights."""
    g, module = train_lenet5(torch, torch.from_numpy(x), torch.from_numpy(y))
    weights = {
        k: v.detach().cpu().numpy().copy()
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    return g, weights


@pytest.mark.slow
@pytest.mark.torch
def test_trained_lenet5_int8_agrees_with_fp32_on_held_out_digits(
    tmp_path: Path, torch1: Any
) -> None:
    from graphcnn import datasets

    x, y = datasets.digits(32)
    x_train, y_train, x_val, y_val = datasets.split(x, y, val_fraction=0.2, seed=0)
    g, weights = _train_lenet5(torch1, x_train, y_train)
    fp32 = tmp_path / "lenet5.onnx"
    save(to_onnx(g, weights), fp32)
    q = quantize_int8(fp32, int8_path(fp32), x_train[:256])  # calibrate on training images
    r = accuracy_report(fp32, q, x_val)  # held-out digits
    from graphcnn.backends.ort_engine import OrtEngine

    fp32_acc = float((OrtEngine(fp32, device="cpu").run(x_val)[0].argmax(1) == y_val).mean())
    int8_acc = float((OrtEngine(q, device="cpu").run(x_val)[0].argmax(1) == y_val).mean())
    print(f"\nlenet5 digits: fp32 acc {fp32_acc:.4f}, int8 acc {int8_acc:.4f}, {r}")
    assert fp32_acc >= 0.9, "training did not converge"
    assert r["n"] == len(x_val)
    assert r["top1_agreement"] >= 0.99, r
    assert abs(int8_acc - fp32_acc) <= 0.01
