"""``graphcnn compile --target onnx``: the summary it prints, static batch and opset options,
and exit code 2 with a one-line error (no traceback) for every bad input.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402
from conftest import REPO  # noqa: E402
from helpers.onnx_ref import dims, file_names  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.ort_engine import OrtEngine  # noqa: E402
from graphcnn.cli import main  # noqa: E402
from graphcnn.passes import PIPELINES, optimize  # noqa: E402


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
    assert file_names(tmp_path) == []


@pytest.mark.slow
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
