"""IR names from ONNX names: torch-style ``/a/b/Op`` and dynamo name scopes -> module paths."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


_COMPONENT = re.compile(r"[^0-9A-Za-z_]")
_SCOPE_COMPONENT = re.compile(r"[^0-9A-Za-z_-]")
"""A scope component keeps ``-``, as the spec language does (``block1-0``)."""


def _component(c: str) -> str:
    c = _SCOPE_COMPONENT.sub("_", c) or "_"
    if c.isdigit() and len(c) > 1 and c[0] == "0":
        c = "_" + c
    return c


def scope_name(text: str) -> str:
    """Any string as a dotted IR name: components of letters, digits and underscores."""
    return ".".join(_component(c) for c in text.strip(".").split(".")) or "_"


def identifier(text: str) -> str:
    out = _COMPONENT.sub("_", text) or "model"
    return "m_" + out if out[0].isdigit() else out


def _join_scopes(parts: Sequence[str]) -> str:
    """Module path from torch's scope components: ``layer1, layer1.0, conv1`` -> ``layer1.0.conv1``.

    A dotted component repeats the end of the path so far (``stage2, stage2.0, branch1,
    branch1.4`` -> ``stage2.0.branch1.4``; the dynamo exporter's are full paths); a plain one is
    a child's name.
    """
    path: list[str] = []
    for p in parts:
        if not p:
            continue
        comps = p.split(".")
        overlap = 0
        if len(comps) > 1:
            for k in range(min(len(comps), len(path)), 0, -1):
                if path[-k:] == comps[:k]:
                    overlap = k
                    break
        path += comps[overlap:]
    return ".".join(path)


def module_path(node: onnx.NodeProto) -> str | None:
    """The torch module path a node comes from, or None for a name that is not torch's."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            import ast

            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                break
            if isinstance(scopes, list) and scopes and all(isinstance(s, str) for s in scopes):
                return _join_scopes(scopes[1:-1])
    if node.name.startswith("/"):
        return _join_scopes(node.name.strip("/").split("/")[:-1])
    return None


@dataclass
class Hint:
    """What the final naming pass knows about one IR node."""

    param: str | None
    """``<path>`` of a ``<path>.weight`` initializer."""
    path: str | None
    """torch module path (None: not a torch-style name)."""
    plain: str
    """The ONNX node name (or its first output), for models not exported by torch."""
