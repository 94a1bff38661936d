"""Spec source written inside a test, compiled: a whole spec, or one network's body."""

from __future__ import annotations

import textwrap
from typing import Any

import graphcnn
from graphcnn.ir import Graph


def spec(text: str, **kw: Any) -> Graph:
    """Compile spec source (dedented); keyword arguments go to ``graphcnn.compile_text``."""
    return graphcnn.compile_text(textwrap.dedent(text), **kw)


def net(body: str, input: str | tuple[int, ...] = "3, 8, 8", name: str = "net") -> Graph:
    """Compile a one-network spec: ``x = input(...)`` then ``body`` (which ends with return);
    ``input`` is the input's arguments, ``"3, 8, 8"`` or ``(3, 8, 8)``."""
    shape = input if isinstance(input, str) else ", ".join(map(str, input))
    lines = textwrap.dedent(body).strip().splitlines()
    inner = "\n".join("  " + line for line in lines)
    return spec(f"network {name}() {{\n  x = input({shape})\n{inner}\n}}\n")
