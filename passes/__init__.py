"""graphcnn.passes: IR -> IR transforms and analyses, one pass per file.

This folder installs as ``graphcnn.passes`` (see ``[tool.setuptools.package-dir]``).
"""

if __name__ != "graphcnn.passes":
    raise ImportError(
        f"this package must be imported as 'graphcnn.passes', not {__name__!r}: "
        "install graphcnn (pip install -e .) and use 'import graphcnn.passes'"
    )

PASSES: dict[str, object] = {}
"""Registry of passes by name (filled as passes land; see docs/layout.md)."""
