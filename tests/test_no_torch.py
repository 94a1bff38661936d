"""The core never imports torch: language, IR, shapes, cost, CLI profile of every zoo model."""

from __future__ import annotations

from helpers.fresh import imported


def test_profiling_every_zoo_model_never_imports_torch() -> None:
    code = """
        import graphcnn
        from graphcnn import zoo
        from graphcnn.cli import main
        assert len(zoo.names()) >= 46
        for name in zoo.names():
            g = graphcnn.compile(name)
            g.verify()
            graphcnn.profile(g).to_json(depth=1)
            graphcnn.profile(g, training=True)
            g.dump()
    """
    heavy = ("torch", "torchvision", "onnx", "onnxruntime", "tensorrt")
    assert imported(code, *heavy) == []


def test_import_graphcnn_is_light() -> None:
    code = "import graphcnn, graphcnn.passes, graphcnn.backends"
    assert imported(code, "torch", "numpy", "networkx", "rich", "lark") == []
