"""The core never imports torch: language, IR, shapes, cost, CLI profile of every zoo model."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO


def test_profiling_every_zoo_model_never_imports_torch() -> None:
    code = textwrap.dedent("""
        import sys
        import graphcnn
        from graphcnn import zoo
        from graphcnn.cli import main
        for name in zoo.names():
            g = graphcnn.compile(name)
            g.verify()
            graphcnn.profile(g).to_json(depth=1)
            graphcnn.profile(g, training=True)
            g.dump()
        heavy = sorted(m for m in ("torch", "torchvision", "onnx", "onnxruntime", "tensorrt")
                       if m in sys.modules)
        assert not heavy, heavy
        print(len(zoo.names()))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 46


def test_import_graphcnn_is_light() -> None:
    code = (
        "import sys, graphcnn, graphcnn.passes, graphcnn.backends; "
        "print(sorted(m for m in ('torch', 'numpy', 'networkx', 'rich', 'lark') "
        "if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
