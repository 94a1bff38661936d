"""No torch anywhere on the ONNX path: the CLI and the Python API (lower, check, save, run in
ONNX Runtime), in a subprocess that fails if torch, torchvision or onnxscript was imported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from conftest import REPO  # noqa: E402


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
