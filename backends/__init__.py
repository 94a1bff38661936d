"""graphcnn.backends: lowering of the IR to execution targets, one module per target.

This folder installs as ``graphcnn.backends`` (see ``[tool.setuptools.package-dir]``).
Backends import their heavy libraries (torch, onnx, tensorrt) lazily, inside functions.
"""

if __name__ != "graphcnn.backends":
    raise ImportError(
        f"this package must be imported as 'graphcnn.backends', not {__name__!r}: "
        "install graphcnn (pip install -e .) and use 'import graphcnn.backends'"
    )

BACKENDS: dict[str, str] = {}
"""Registry of backends by target name -> module (filled as backends land)."""
