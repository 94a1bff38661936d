"""Evaluate a spec: run a network's body and build the IR graph node by node.

The interpreter walks the syntax tree. Arithmetic on numbers is plain (bounded) Python arithmetic;
calling a layer creates a node, runs its shape rule at once (so shape errors point at the call)
and names it from the scope stack; calling a block runs its body in a new scope. Nothing from the
host language is ever executed, and every loop, call depth and size is bounded.

This module holds the statements, the network run and node creation; expressions, calls and
naming are the parts :class:`Interpreter` inherits (see :mod:`graphcnn.lang.state`).
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Node, SourceLoc, freeze
from graphcnn.lang import ast
from graphcnn.lang.builtins import MAX_INT, Layer
from graphcnn.lang.calls import Calls
from graphcnn.lang.memo import Memo, Shaped
from graphcnn.lang.parser import parse_expr
from graphcnn.lang.state import MAX_NODES, MAX_STEPS
from graphcnn.lang.state import Options as Options  # re-exported for graphcnn.api
from graphcnn.lang.values import SHOW_LIMIT, Block, LoadedModule, Model, Tensor, show, type_name
from graphcnn.shapes import MAX_NUMEL, ShapeError, infer_node
from graphcnn.types import TensorType


class _Return(Exception):
    def __init__(self, value: Any, names: list[str | None]):
        self.value = value
        self.names = names


class Interpreter(Calls):
    def run_network(self, target: Block | Model, overrides: dict[str, Any], name: str) -> Graph:
        """Run ``target`` with its defaults, model arguments and ``overrides`` bound."""
        net = target.network if isinstance(target, Model) else target
        if not net.defn.network:
            raise SpecError(
                f"{net.name!r} is a block, not a network",
                net.defn.loc,
                "compile a 'network' (or 'model'); blocks are called from networks",
            )
        args: dict[str, Any] = {}
        if isinstance(target, Model):
            pos = [self.eval(a, target.globals) for a in target.defn.args]
            kw = {k: (self.eval(v, target.globals), loc) for k, v, loc in target.defn.kwargs}
            args = self._bind_params(net, pos, kw, target.defn.loc, allow_missing=True)
        known = {p.name for p in net.defn.params}
        for key, value in overrides.items():
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=3)
                params = ", ".join(p.name for p in net.defn.params) or "none"
                raise SpecError(
                    f"network {net.name!r} has no parameter {key!r}",
                    net.defn.loc,
                    f"did you mean {', '.join(close)}?"
                    if close
                    else f"its parameters are: {params}",
                )
            args[key] = value
        self.graph = Graph(name)
        env = self._fill_defaults(net, args, net.defn.loc)
        self.frames.append((f"network {name}", net.defn.loc))
        try:
            self._exec_body(net.defn.body, env, net.globals)
            raise SpecError(
                f"network {net.name!r} does not return its output",
                net.defn.loc,
                "end the network with 'return x'",
            )
        except _Return as r:
            self._set_outputs(r.value, net.defn, r.names)
        finally:
            self.frames.pop()
        if self.inputs_made == 0:
            raise SpecError(
                f"network {net.name!r} has no input()",
                net.defn.loc,
                "start the network with x = input(3, 224, 224)",
            )
        return self.graph

    def _set_outputs(self, value: Any, defn: ast.BlockDef, given: list[str | None]) -> None:
        """Outputs are named after the returned variables (``return logits, aux``)."""
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise SpecError(
                f"network {defn.name!r} returns an empty {type_name(value)}, not a tensor",
                defn.loc,
                "end the network with 'return x'",
            )
        if len(given) != len(values) or len(set(given)) != len(given):
            given = [None] * len(values)
        names: list[str] = []
        for i, v in enumerate(values):
            if not isinstance(v, Tensor):
                raise SpecError(
                    f"network {defn.name!r} returns {type_name(v)} {show(v)}, not a tensor",
                    defn.loc,
                )
            names.append(given[i] or ("output" if len(values) == 1 else f"output{i}"))
        self.graph.outputs = [(n, v.node) for n, v in zip(names, values, strict=False)]

    def _exec_body(self, body: list[ast.Stmt], env: dict[str, Any], glob: dict[str, Any]) -> None:
        for stmt in body:
            self.steps += 1
            self.where = stmt.loc
            if self.steps > MAX_STEPS:
                raise self._error(
                    f"spec executes more than {MAX_STEPS:,} steps",
                    stmt.loc,
                    "a loop or recursion runs away",
                )
            if type(stmt) is ast.Assign:
                self._assign(stmt, env, glob)
            elif type(stmt) is ast.ExprStmt:
                self.eval(stmt.value, glob, env)
            elif type(stmt) is ast.Return:
                vals = [self.eval(v, glob, env) for v in stmt.values]
                names = [v.name if type(v) is ast.Var else None for v in stmt.values]
                value = vals[0] if len(vals) == 1 else tuple(vals) if vals else None
                raise _Return(value, names)
            elif type(stmt) is ast.For:
                self._for(stmt, env, glob)
            elif type(stmt) is ast.If:
                for test, branch in stmt.branches:
                    if self._truth(self.eval(test, glob, env), test.loc):
                        self._exec_body(branch, env, glob)
                        break
                else:
                    if stmt.orelse is not None:
                        self._exec_body(stmt.orelse, env, glob)
            elif type(stmt) is ast.Scope:
                self._scope(stmt, env, glob)
            elif type(stmt) is ast.Training:
                self.training += 1
                try:
                    self._exec_body(stmt.body, env, glob)
                finally:
                    self.training -= 1
            elif type(stmt) is ast.Assert:
                if not self._truth(self.eval(stmt.test, glob, env), stmt.loc):
                    msg = "assertion failed"
                    if stmt.message is not None:
                        text = self.eval(stmt.message, glob, env)
                        msg += ": " + (text[:SHOW_LIMIT] if isinstance(text, str) else show(text))
                    raise self._error(msg, stmt.loc)

    def _assign(self, stmt: ast.Assign, env: dict[str, Any], glob: dict[str, Any]) -> None:
        value = self.eval(stmt.value, glob, env)
        if len(stmt.targets) == 1:
            env[stmt.targets[0]] = value
            return
        if not isinstance(value, (list, tuple)) or len(value) != len(stmt.targets):
            n = len(value) if isinstance(value, (list, tuple)) else 1
            raise self._error(
                f"cannot unpack {n} value(s) into {len(stmt.targets)} names", stmt.loc
            )
        for t, v in zip(stmt.targets, value, strict=False):
            env[t] = v

    def _for(self, stmt: ast.For, env: dict[str, Any], glob: dict[str, Any]) -> None:
        items = self.eval(stmt.iterable, glob, env)
        if not isinstance(items, (list, tuple)):
            raise self._error(
                f"for loops over a list or range, not {type_name(items)}",
                stmt.iterable.loc,
                "use range(n) to repeat n times",
            )
        targets = stmt.targets
        for item in items:
            # NOTE: each iteration is a step, so loops with empty bodies are bounded too.
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise self._error(
                    f"spec executes more than {MAX_STEPS:,} steps",
                    stmt.loc,
                    "a loop or recursion runs away",
                )
            if len(targets) == 1:
                env[targets[0]] = item
            elif isinstance(item, (list, tuple)) and len(item) == len(targets):
                env.update(zip(targets, item, strict=True))
            else:
                n = len(item) if isinstance(item, (list, tuple)) else 1
                raise self._error(
                    f"cannot unpack {type_name(item)} {show(item)} ({n} value(s)) into "
                    f"{len(targets)} names",
                    stmt.loc,
                    "for an index and the item, loop over enumerate(xs)",
                )
            self._exec_body(stmt.body, env, glob)

    def _scope(self, stmt: ast.Scope, env: dict[str, Any], glob: dict[str, Any]) -> None:
        name = self._local_name(self.eval(stmt.name, glob, env), stmt.name.loc)
        path = self._join(name)
        self.graph.scopes.setdefault(path, "seq" if stmt.seq else "scope")
        self._claim(self.stack[-1], name, stmt.loc, reuse=True)
        self._push(path, stmt.seq)
        try:
            self._exec_body(stmt.body, env, glob)
        finally:
            self.stack.pop()

    def _run_block(self, blk: Block, bound: dict[str, Any], loc: SourceLoc) -> Any:
        self.frames.append((f"block {blk.name}", loc))
        try:
            self._exec_body(blk.defn.body, bound, blk.globals)
        except _Return as r:
            return r.value
        finally:
            self.frames.pop()
        return None

    def _make(
        self,
        spec_name: str,
        layer: Layer,
        inputs: list[Tensor],
        attrs: dict[str, Any],
        alias: Any,
        loc: SourceLoc,
    ) -> Tensor:
        in_types = tuple([t.type for t in inputs])
        memo = self.memo
        shareable = memo.share_shapes
        known = None
        if shareable:
            key = (layer.op, tuple(attrs.items()), in_types)
            try:
                known = memo.shapes.get(key)
            except TypeError:  # an unhashable attribute value: nothing to share
                shareable = False
        if known is None:
            try:
                out, params = infer_node(layer.op, attrs, in_types)
            except ShapeError as err:
                msg = str(err)
                raise self._error(
                    msg if msg.startswith(spec_name) else f"{spec_name}: {msg}", loc, err.hint
                ) from None
            _check_size(self, out, params, spec_name, loc)
            if shareable:
                known = memo.shapes[key] = Shaped(out, params)
        else:
            out, params = known.out, known.params
        name = self._child(alias, spec_name, loc, numbered=not layer.functional)
        training = self.training > 0 or any(t.training_only for t in inputs)
        if len(self.graph.nodes) >= MAX_NODES:
            raise self._error(f"graph exceeds {MAX_NODES:,} nodes", loc)
        self.graph.add(
            Node(
                name,
                layer.op,
                tuple([t.node for t in inputs]),
                freeze(attrs),
                out,
                params,
                loc,
                training,
            )
        )
        self.made.append(name)
        if known is not None:
            memo.keys[name] = known
        return Tensor(name, out, training)


def compile_module(
    module: LoadedModule,
    network: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    options: Options | None = None,
    memo: Memo | None = None,
) -> Graph:
    """Compile one network (or model) of a loaded spec into a verified-shape IR graph.

    ``overrides`` are spec expressions as text (``"[1, 2, 2, 1]"``, ``"basic"``) or plain
    ``int``, ``float`` and ``bool`` values, taken as they are. ``memo`` shares parsed overrides and
    shape rule results with earlier compilations of the same module (a search's candidates).
    """
    target = module.target(network)
    interp = Interpreter(options, memo)
    memo = interp.memo
    memo.start()
    interp.where = target.defn.loc
    with _bounded_recursion(interp):
        values: dict[str, Any] = {}
        for key, value in (overrides or {}).items():
            if _plain(value):
                values[key] = value
                continue
            text = value if isinstance(value, str) else show(value)
            interp.where = SourceLoc(f"--set {key}", 1, 1)
            expr = memo.exprs.get((key, text))
            if expr is None:
                expr = memo.exprs[key, text] = parse_expr(text, interp.where)
            values[key] = interp.eval(expr, module.globals)
        name = network or (target.defn.name if isinstance(target, Model) else target.name)
        memo.graph = interp.run_network(target, values, name)
        return memo.graph


def _plain(value: Any) -> bool:
    """A number or boolean the spec language could have written (finite, integers bounded)."""
    t = type(value)
    if t is bool:
        return True
    if t is int:
        return bool(abs(value) <= MAX_INT)
    return t is float and math.isfinite(value)


def evaluate_constants(consts: list[ast.ConstDef], glob: dict[str, Any]) -> None:
    """Evaluate a file's top-level constants in order into ``glob`` (each sees the earlier ones)."""
    interp = Interpreter()
    with _bounded_recursion(interp):
        for c in consts:
            interp.where = c.loc
            glob[c.name] = interp.eval(c.value, glob)


@contextlib.contextmanager
def _bounded_recursion(interp: Interpreter) -> Iterator[None]:
    """A runaway recursion (deeply nested values, calls inside deep expressions) as a located
    error at the statement that was running; syntax nesting is refused before (ast.MAX_NESTING)."""
    try:
        yield
    except RecursionError:
        raise SpecError(
            "the spec nests too deeply to evaluate",
            interp.where,
            "deeply nested lists or block calls inside long expressions; flatten them",
        ) from None


def _check_size(
    interp: Interpreter, out: TensorType, params: Any, name: str, loc: SourceLoc
) -> None:
    """Refuse absurd tensor and parameter sizes (``shapes.MAX_NUMEL``) before anything (cost,
    memory, backends) multiplies them; most shape rules check their outputs already."""
    for what, shape in [
        ("output", out.shape[1:]),
        *((f"parameter {p.name}", p.shape) for p in params),
    ]:
        numel = math.prod(d if isinstance(d, int) else 1 for d in shape)
        if numel > MAX_NUMEL:
            raise interp._error(
                f"{name}: {what} of {numel:.3g} elements is too large (limit {MAX_NUMEL:.0e})",
                loc,
                "check the input size and channel counts",
            )
