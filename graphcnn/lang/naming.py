"""Scope paths and node names: ``as`` names, ``seq`` indices, auto names, each name claimed once.

A node's name is its scope path plus a local name: the ``as`` name if given, else in a ``seq``
scope the next index, else the layer's or block's own name deduplicated (``relu``, ``relu_1``).
"""

from __future__ import annotations

import re
from typing import Any

from graphcnn.ir import SourceLoc
from graphcnn.lang.state import Scope, State
from graphcnn.lang.values import show

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
"""Layer and scope names: letters, digits, ``_`` and ``-`` (RegNet keys: ``block1-0``)."""
MAX_NAME = 200
"""Longest layer or scope name (a numeric one also becomes the ``seq`` counter)."""


class Naming(State):
    def _push(self, path: str, seq: bool) -> None:
        scope = self.scopes.get(path)
        if scope is None:
            scope = self.scopes[path] = Scope(path, seq)
            self.opened.append(scope)
        self.stack.append(scope)

    def _join(self, local: str) -> str:
        path = self.stack[-1].path
        return f"{path}.{local}" if path else local

    def _child(self, alias: Any, base: str, loc: SourceLoc, numbered: bool = True) -> str:
        """A new child of the current scope: named by ``alias``, else numbered, else ``base``."""
        scope = self.stack[-1]
        if alias is not None:
            local = self._local_name(alias, loc)
            self._claim(scope, local, loc)
        elif scope.seq and numbered:
            local = self._next_index(scope)
        else:
            local = self._auto(scope, base)
        return self._join(local)

    def _local_name(self, alias: Any, loc: SourceLoc) -> str:
        if type(alias) is str and alias in self.memo.names:
            return alias
        if isinstance(alias, bool) or not isinstance(alias, (str, int)):
            raise self._error(f"a layer name must be a name or an integer, got {show(alias)}", loc)
        name = str(alias)
        if len(name) > MAX_NAME:
            raise self._error(
                f"layer name of {len(name):,} characters is too long (limit {MAX_NAME})", loc
            )
        if not _NAME_RE.match(name):
            raise self._error(
                f"invalid layer name {show(name)}",
                loc,
                "names use letters, digits, '_' and '-'; nest with scope/seq blocks",
            )
        if type(alias) is str:
            self.memo.names.add(name)
        return name

    def _claim(self, scope: Scope, local: str, loc: SourceLoc, reuse: bool = False) -> None:
        if local in scope.names:
            if reuse:
                return
            where = f"scope {scope.path!r}" if scope.path else "the network"
            raise self._error(
                f"layer name {local!r} is already used in {where}",
                loc,
                'give each layer its own name, e.g. as "conv{i}" in a loop',
            )
        scope.names.add(local)
        if local.isdigit():
            scope.counter = max(scope.counter, int(local) + 1)

    def _next_index(self, scope: Scope) -> str:
        while str(scope.counter) in scope.names:
            scope.counter += 1
        local = str(scope.counter)
        scope.names.add(local)
        scope.counter += 1
        return local

    def _auto(self, scope: Scope, base: str) -> str:
        n = scope.auto.get(base, 0)
        local = base if n == 0 else f"{base}_{n}"
        while local in scope.names:
            n += 1
            local = f"{base}_{n}"
        scope.auto[base] = n + 1
        scope.names.add(local)
        return local
