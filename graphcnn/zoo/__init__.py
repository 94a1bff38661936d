"""The model zoo: classic CNN families as ``.gcnn`` specs shipped in this folder.

The specs are the registry: every ``model NAME = ...`` line of a zoo file is a zoo model (one spec
per family, variants as arguments, like torchvision's ``_resnet(Bottleneck, [3, 4, 6, 3])``).
Finding them is a line scan, not a parse, so looking up one model stays cheap.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
_MODEL_LINE = re.compile(r"^model\s+([A-Za-z_][A-Za-z_0-9]*)\s*=", re.MULTILINE)


@cache
def models() -> dict[str, Path]:
    """Every zoo model name -> the spec file that defines it, in file then source order."""
    found: dict[str, Path] = {}
    for path in sorted(ZOO_DIR.glob("*.gcnn")):
        for name in _MODEL_LINE.findall(path.read_text(encoding="utf-8")):
            found[name] = path
    return found


def names() -> list[str]:
    return list(models())


def spec_path(name: str) -> Path:
    """The spec file of zoo model ``name`` (KeyError if there is none)."""
    return models()[name]
