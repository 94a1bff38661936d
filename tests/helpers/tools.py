"""Python files imported as modules: the scripts of tools/ (not a package),
``load_tool("gen_plain")``, and generated model files, ``import_file(path)``."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _exec(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported once per process (as module ``name``)."""
    if name in sys.modules:
        return sys.modules[name]
    return _exec(name, TOOLS / f"{name}.py")


def import_file(path: Path) -> ModuleType:
    """Import a generated file under a fresh module name (each call runs it anew)."""
    module = _exec(f"generated_{path.stem}_{uuid.uuid4().hex}", path)
    del sys.modules[module.__name__]
    return module
