"""User-facing errors: one message with file:line:col, the offending line, a caret and a hint."""

from __future__ import annotations

from collections.abc import Sequence

from graphcnn.types import SourceLoc

SOURCES: dict[str, str] = {}
"""Text of every spec file read in this process, by the name used in its locations."""


class GraphcnnError(Exception):
    """Base of the errors the CLI reports without a traceback (exit code 2)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(GraphcnnError):
    """A malformed spec: parse, name, argument, shape or limit errors, located in the source."""

    def __init__(
        self,
        message: str,
        loc: SourceLoc | None = None,
        hint: str | None = None,
        stack: Sequence[str] = (),
    ):
        super().__init__(message, hint)
        self.loc = loc
        self.stack = tuple(stack)

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message

    def format(self) -> str:
        head = f"{self.loc}: error: {self.message}" if self.loc else f"error: {self.message}"
        lines = [head]
        if self.loc is not None:
            lines += _quote(self.loc)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        for frame in self.stack:
            lines.append(f"  {frame}")
        return "\n".join(lines)


def _quote(loc: SourceLoc) -> list[str]:
    """The source line of ``loc`` and a caret under its column; nothing if that line is unknown."""
    src = SOURCES.get(loc.file)
    if src is None or not 1 <= loc.line:
        return []
    # NOTE: split on "\n" only, as the lexer counts lines (splitlines also splits on \f, \v...).
    lines = src.split("\n")
    if loc.line > len(lines) or not lines[loc.line - 1].strip():
        return []
    text, col = lines[loc.line - 1].rstrip(), max(loc.col - 1, 0)
    if len(text) > _WIDTH:
        start = max(0, min(col - _WIDTH // 2, len(text) - _WIDTH))
        text, col = text[start : start + _WIDTH], col - start
    gutter = f"{loc.line:5d} | "
    pad = "".join(c if c == "\t" else " " for c in text[:col])
    return [gutter + text, " " * (len(gutter) - 2) + "| " + pad + "^"]


_WIDTH = 120
"""The most characters of a source line an error quotes (a window around the column)."""
