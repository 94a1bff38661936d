"""Evaluate a spec: run a network's body and build the IR graph node by node.

The interpreter walks the syntax tree. Arithmetic on numbers is plain (bounded) Python arithmetic;
calling a layer creates a node, runs its shape rule at once (so shape errors point at the call)
and names it from the scope stack; calling a block runs its body in a new scope. Nothing from the
host language is ever executed, and every loop, call depth and size is bounded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Node, Op, SourceLoc, freeze
from graphcnn.lang import ast
from graphcnn.lang.builtins import (
    FUNCTIONS,
    LAYERS,
    MAX_INT,
    MAX_ITEMS,
    REQUIRED,
    SPECIAL_LAYERS,
    ArgError,
    Layer,
)
from graphcnn.lang.loader import LoadedModule
from graphcnn.lang.values import Block, FunctionRef, LayerRef, Model, Tensor, show, type_name
from graphcnn.shapes import ShapeError, infer_node

MAX_STEPS = 1_000_000
"""Statements and calls one compilation may execute."""
MAX_DEPTH = 64
"""Deepest nesting of block calls."""
MAX_NODES = 1_000_000
"""Most nodes one graph may have."""

_NAME_RE = re.compile(r"[A-Za-z0-9_]+\Z")
_SHAPE_QUERIES = ("channels", "height", "width", "shape")


_UNSET = object()


class _Return(Exception):
    def __init__(self, value: Any, names: list[str | None]):
        self.value = value
        self.names = names


@dataclass
class _Scope:
    path: str
    seq: bool
    counter: int = 0
    names: set[str] = field(default_factory=set)
    auto: dict[str, int] = field(default_factory=dict)


@dataclass
class Options:
    """What the caller may change without editing the spec."""

    input_shape: tuple[int, ...] | None = None
    batch: int | str = "N"
    dtype: str = "float32"


class Interpreter:
    def __init__(self, options: Options | None = None):
        self.opts = options or Options()
        self.graph = Graph("")
        self.scopes: dict[str, _Scope] = {"": _Scope("", False)}
        self.stack: list[_Scope] = [self.scopes[""]]
        self.frames: list[tuple[str, SourceLoc]] = []
        self.training = 0
        self.steps = 0
        self.inputs_made = 0

    # ------------------------------------------------------------------ entry points
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

    # ------------------------------------------------------------------ statements
    def _exec_body(self, body: list[ast.Stmt], env: dict[str, Any], glob: dict[str, Any]) -> None:
        for stmt in body:
            self.steps += 1
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
                        msg += ": " + str(self.eval(stmt.message, glob, env))
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

    # ------------------------------------------------------------------ expressions
    def eval(self, e: ast.Expr, glob: dict[str, Any], env: dict[str, Any] | None = None) -> Any:
        env = env if env is not None else {}
        if type(e) is ast.Const:
            return e.value
        if type(e) is ast.Var:
            return self._lookup(e.name, e.loc, glob, env)
        if type(e) is ast.Call:
            return self._call(e, glob, env, None)
        if type(e) is ast.Chain:
            value = self.eval(e.head, glob, env)
            for link in e.links:
                value = self._call(link, glob, env, value)
            return value
        if type(e) is ast.BinOp:
            return self._binop(e, glob, env)
        if type(e) is ast.Compare:
            return self._compare(e, glob, env)
        if type(e) is ast.BoolOp:
            result: Any = None
            for v in e.values:
                result = self.eval(v, glob, env)
                truth = self._truth(result, v.loc)
                if truth == (e.op == "or"):
                    return result
            return result
        if type(e) is ast.Unary:
            v = self.eval(e.operand, glob, env)
            if e.op == "not":
                return not self._truth(v, e.loc)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._error(f"cannot negate {type_name(v)} {show(v)}", e.loc)
            return -v
        if type(e) is ast.Cond:
            test = self._truth(self.eval(e.test, glob, env), e.loc)
            return self.eval(e.then if test else e.other, glob, env)
        if type(e) is ast.ListExpr:
            items = [self.eval(i, glob, env) for i in e.items]
            return tuple(items) if e.tuple else items
        if type(e) is ast.Index:
            return self._index(e, glob, env)
        if type(e) is ast.Slice:
            v = self.eval(e.value, glob, env)
            bounds = [
                None if b is None else self._int(self.eval(b, glob, env), b.loc)
                for b in (e.start, e.stop)
            ]
            if not isinstance(v, (list, tuple, str)):
                raise self._error(f"cannot slice {type_name(v)}", e.loc)
            return v[bounds[0] : bounds[1]]
        if type(e) is ast.FString:
            return "".join(
                p if isinstance(p, str) else self._text(self.eval(p, glob, env)) for p in e.parts
            )
        raise self._error(f"cannot evaluate {type(e).__name__}", e.loc)  # pragma: no cover

    @staticmethod
    def _text(v: Any) -> str:
        return v if isinstance(v, str) else show(v)

    def _lookup(self, name: str, loc: SourceLoc, glob: dict[str, Any], env: dict[str, Any]) -> Any:
        if name in env:
            return env[name]
        if name in glob:
            return glob[name]
        if name in LAYERS or name in SPECIAL_LAYERS:
            return LayerRef(name)
        if name in FUNCTIONS or name in _SHAPE_QUERIES:
            return FunctionRef(name)
        known = list(env) + list(glob) + list(LAYERS) + list(FUNCTIONS)
        close = difflib.get_close_matches(name, known, n=3)
        raise self._error(
            f"unknown name {name!r}", loc, f"did you mean {', '.join(close)}?" if close else None
        )

    def _binop(self, e: ast.BinOp, glob: dict[str, Any], env: dict[str, Any]) -> Any:
        a, b = self.eval(e.left, glob, env), self.eval(e.right, glob, env)
        op = e.op
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            if isinstance(a, Tensor) and isinstance(b, Tensor) and op in ("+", "*"):
                layer = "add" if op == "+" else "mul"
                return self._make(layer, LAYERS[layer], [a, b], {}, None, e.loc)
            raise self._error(
                f"'{op}' on {type_name(a)} and {type_name(b)}",
                e.loc,
                "tensors support + (add) and * (mul) with another tensor",
            )
        if isinstance(a, (list, tuple)) and op in ("+", "*"):
            return self._seq_op(a, b, op, e.loc)
        if isinstance(a, str) and isinstance(b, str) and op == "+":
            return a + b
        for v in (a, b):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._error(f"unsupported operand {type_name(v)} {show(v)} for '{op}'", e.loc)
        try:
            if op == "+":
                r = a + b
            elif op == "-":
                r = a - b
            elif op == "*":
                r = a * b
            elif op == "/":
                r = a / b
            elif op == "//":
                r = a // b
            elif op == "%":
                r = a % b
            else:
                r = self._pow(a, b, e.loc)
        except ZeroDivisionError:
            raise self._error("division by zero", e.loc) from None
        except OverflowError:
            raise self._error("number too large", e.loc) from None
        if isinstance(r, int) and abs(r) > MAX_INT:
            raise self._error(f"integer result exceeds {MAX_INT:.0e}", e.loc)
        return r

    def _pow(self, a: Any, b: Any, loc: SourceLoc) -> Any:
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            if b * (abs(a).bit_length() - 1) > 64:
                raise self._error(f"integer result exceeds {MAX_INT:.0e}", loc)
        return a**b

    def _seq_op(self, a: Any, b: Any, op: str, loc: SourceLoc) -> Any:
        if op == "+":
            if type(a) is not type(b):
                raise self._error(f"cannot add {type_name(a)} and {type_name(b)}", loc)
            out = a + b
        else:
            n = self._int(b, loc)
            if len(a) * max(n, 0) > MAX_ITEMS:
                raise self._error(f"list of more than {MAX_ITEMS:,} items", loc)
            out = a * n
        if len(out) > MAX_ITEMS:
            raise self._error(f"list of more than {MAX_ITEMS:,} items", loc)
        return out

    def _compare(self, e: ast.Compare, glob: dict[str, Any], env: dict[str, Any]) -> bool:
        left = self.eval(e.first, glob, env)
        for op, expr in e.rest:
            right = self.eval(expr, glob, env)
            try:
                if op == "==":
                    ok = left == right
                elif op == "!=":
                    ok = left != right
                elif op == "in":
                    ok = left in right
                elif op == "<":
                    ok = left < right
                elif op == "<=":
                    ok = left <= right
                elif op == ">":
                    ok = left > right
                else:
                    ok = left >= right
            except TypeError:
                raise self._error(
                    f"cannot compare {type_name(left)} and {type_name(right)} with '{op}'", e.loc
                ) from None
            if not ok:
                return False
            left = right
        return True

    def _index(self, e: ast.Index, glob: dict[str, Any], env: dict[str, Any]) -> Any:
        v = self.eval(e.value, glob, env)
        i = self._int(self.eval(e.index, glob, env), e.index.loc)
        if not isinstance(v, (list, tuple, str)):
            raise self._error(f"cannot index {type_name(v)} {show(v)}", e.loc)
        if not -len(v) <= i < len(v):
            raise self._error(
                f"index {i} out of range for {type_name(v)} of length {len(v)}", e.index.loc
            )
        return v[i]

    def _truth(self, v: Any, loc: SourceLoc) -> bool:
        if isinstance(v, Tensor):
            raise self._error(
                "a tensor has no truth value",
                loc,
                "compare its shape instead, e.g. channels(x) != c",
            )
        return bool(v)

    def _int(self, v: Any, loc: SourceLoc) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._error(f"expected an integer, got {type_name(v)} {show(v)}", loc)
        return v

    # ------------------------------------------------------------------ calls
    def _call(self, e: ast.Call, glob: dict[str, Any], env: dict[str, Any], piped: Any) -> Any:
        self.steps += 1
        target = self._lookup(e.name, e.loc, glob, env)
        args = [self.eval(a, glob, env) for a in e.args]
        if piped is not None:
            args.insert(0, piped)
        kwargs = {k: (self.eval(v, glob, env), loc) for k, v, loc in e.kwargs}
        alias = None if e.alias is None else self.eval(e.alias, glob, env)
        if isinstance(target, LayerRef):
            return self._call_layer(target.name, args, kwargs, alias, e.loc)
        if isinstance(target, Block):
            return self._call_block(target, args, kwargs, alias, e.loc)
        if alias is not None:
            raise self._error(f"'as' names layers and blocks; {e.name!r} is a function", e.loc)
        if isinstance(target, FunctionRef):
            if kwargs:
                raise self._error(f"{e.name}() takes no keyword arguments", e.loc)
            if target.name in _SHAPE_QUERIES:
                return self._shape_query(target.name, args, e.loc)
            try:
                return FUNCTIONS[target.name](*args)
            except ArgError as err:
                raise self._error(f"{e.name}: {err}", e.loc, err.hint) from None
            except TypeError:
                raise self._error(f"wrong arguments to {e.name}()", e.loc) from None
        if isinstance(target, Model):
            raise self._error(f"{e.name!r} is a model; models are compiled, not called", e.loc)
        builtin = e.name in LAYERS or e.name in FUNCTIONS or e.name in SPECIAL_LAYERS
        raise self._error(
            f"{e.name!r} is a {type_name(target)} {show(target)}, not a layer, block or function",
            e.loc,
            f"a parameter or variable named {e.name!r} hides the built-in {e.name}; rename it"
            if builtin
            else None,
        )

    def _shape_query(self, name: str, args: list[Any], loc: SourceLoc) -> Any:
        if len(args) != 1 or not isinstance(args[0], Tensor):
            raise self._error(f"{name}() takes one tensor", loc)
        shape = args[0].type.shape[1:]
        if name == "shape":
            return tuple(shape)
        if name == "channels":
            return shape[0]
        if len(shape) != 3:
            raise self._error(f"{name}() needs a [C, H, W] tensor, got {show(args[0])}", loc)
        return shape[1] if name == "height" else shape[2]

    def _bind(
        self,
        what: str,
        params: Sequence[tuple[str, Any]],
        args: list[Any],
        kwargs: dict[str, tuple[Any, SourceLoc]],
        loc: SourceLoc,
    ) -> dict[str, Any]:
        names = [p for p, _ in params]
        if len(args) > len(params):
            raise self._error(
                f"{what} takes at most {len(params)} positional argument(s), got {len(args)}",
                loc,
                f"its parameters are ({', '.join(names)})",
            )
        bound = dict(zip(names, args, strict=False))
        for k, (v, kloc) in kwargs.items():
            if k not in names:
                close = difflib.get_close_matches(k, names, n=2)
                raise self._error(
                    f"{what} has no parameter {k!r}",
                    kloc,
                    f"did you mean {' or '.join(close)}?"
                    if close
                    else f"its parameters are ({', '.join(names)})",
                )
            if k in bound:
                raise self._error(f"{what}: argument {k!r} given twice", kloc)
            bound[k] = v
        for p, default in params:
            if p not in bound:
                if default is REQUIRED:
                    raise self._error(
                        f"{what} is missing argument {p!r}",
                        loc,
                        f"its parameters are ({', '.join(names)})",
                    )
                bound[p] = default
        return bound

    def _call_layer(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, tuple[Any, SourceLoc]],
        alias: Any,
        loc: SourceLoc,
    ) -> Any:
        if name == "input":
            return self._input(args, kwargs, alias, loc)
        if name == "split":
            return self._split(args, kwargs, alias, loc)
        layer = LAYERS[name]
        n_in = layer.inputs
        if n_in == 0:  # variadic: concat(a, b, c) or concat([a, b, c])
            tensors = (
                list(args[0])
                if len(args) == 1 and isinstance(args[0], (list, tuple))
                else [a for a in args if isinstance(a, Tensor)]
            )
            rest = [] if len(args) == 1 else [a for a in args if not isinstance(a, Tensor)]
        else:
            tensors, rest = args[:n_in], args[n_in:]
        for t in tensors:
            if not isinstance(t, Tensor):
                raise self._error(
                    f"{name} expects tensor input(s), got {type_name(t)} {show(t)}",
                    loc,
                    f"write x -> {name}(...) or {name}(x, ...)",
                )
        if len(tensors) < max(n_in, 1):
            raise self._error(
                f"{name} needs {max(n_in, 1)} tensor input(s), got {len(tensors)}",
                loc,
                f"write x -> {name}(...) or {name}(x, ...)",
            )
        bound = self._bind(name, layer.params, rest, kwargs, loc)
        try:
            attrs = layer.attrs(bound)
        except ArgError as err:
            where = kwargs[err.arg][1] if err.arg in kwargs else loc
            raise self._error(f"{name}: {err}", where, err.hint) from None
        return self._make(name, layer, tensors, attrs, alias, loc)

    def _input(self, args: list[Any], kwargs: dict[str, Any], alias: Any, loc: SourceLoc) -> Tensor:
        if self.stack[-1].path or self.frames[-1][0].startswith("block"):
            raise self._error("input() belongs in the network body, not in a block or scope", loc)
        self.inputs_made += 1
        shape = tuple(self._int(a, loc) for a in args)
        if self.opts.input_shape is not None:
            if self.inputs_made > 1:
                raise self._error("--input applies to single-input networks only", loc)
            if len(self.opts.input_shape) != len(shape):
                raise self._error(
                    f"--input has {len(self.opts.input_shape)} dimensions, "
                    f"the network's input() has {len(shape)}",
                    loc,
                )
            shape = self.opts.input_shape
        if not shape or min(shape) < 1:
            raise self._error(
                f"input shape must be positive dimensions, got {list(shape)}",
                loc,
                "e.g. input(3, 224, 224) for C, H, W",
            )
        dtype = kwargs.get("dtype", (self.opts.dtype, loc))[0]
        attrs = {"shape": shape, "batch": self.opts.batch, "dtype": dtype}
        return self._make(
            "input", Layer(Op.INPUT, functional=True, inputs=0), [], attrs, alias, loc
        )

    def _split(self, args: list[Any], kwargs: dict[str, Any], alias: Any, loc: SourceLoc) -> Any:
        bound = self._bind(
            "split", (("x", REQUIRED), ("parts", REQUIRED), ("axis", 1)), args, kwargs, loc
        )
        x, parts, axis = bound["x"], bound["parts"], self._int(bound["axis"], loc)
        if not isinstance(x, Tensor):
            raise self._error(f"split expects a tensor, got {type_name(x)}", loc)
        if not 1 <= axis < len(x.type.shape):
            raise self._error(f"split: axis {axis} out of range for {show(x)}", loc)
        size = int(x.type.shape[axis])
        if isinstance(parts, (list, tuple)):
            sizes = tuple(self._int(p, loc) for p in parts)
        else:
            n = self._int(parts, loc)
            if n < 1 or size % n:
                raise self._error(
                    f"split: {n} equal parts do not divide {size} (axis {axis} of {show(x)})",
                    loc,
                    "give a list of sizes instead",
                )
            sizes = (size // n,) * n
        layer = Layer(Op.SPLIT, functional=True)
        return tuple(
            self._make(
                "split",
                layer,
                [x],
                {"axis": axis, "sizes": sizes, "index": i},
                None if alias is None else f"{alias}_{i}",
                loc,
            )
            for i in range(len(sizes))
        )

    def _make(
        self,
        spec_name: str,
        layer: Layer,
        inputs: list[Tensor],
        attrs: dict[str, Any],
        alias: Any,
        loc: SourceLoc,
    ) -> Tensor:
        try:
            out, params = infer_node(layer.op, attrs, [t.type for t in inputs])
        except ShapeError as err:
            msg = str(err)
            raise self._error(
                msg if msg.startswith(spec_name) else f"{spec_name}: {msg}", loc, err.hint
            ) from None
        scope = self.stack[-1]
        if alias is not None:
            local = self._local_name(alias, loc)
            self._claim(scope, local, loc)
        elif scope.seq and not layer.functional:
            local = self._next_index(scope)
        else:
            local = self._auto(scope, spec_name)
        name = f"{scope.path}.{local}" if scope.path else local
        training = self.training > 0 or any(t.training_only for t in inputs)
        if len(self.graph.nodes) >= MAX_NODES:
            raise self._error(f"graph exceeds {MAX_NODES:,} nodes", loc)
        self.graph.add(
            Node(
                name,
                layer.op,
                tuple(t.node for t in inputs),
                freeze(attrs),
                out,
                params,
                loc,
                training,
            )
        )
        return Tensor(name, out, training)

    def _call_block(
        self,
        blk: Block,
        args: list[Any],
        kwargs: dict[str, tuple[Any, SourceLoc]],
        alias: Any,
        loc: SourceLoc,
    ) -> Any:
        if blk.defn.network:
            raise self._error(
                f"{blk.name!r} is a network; networks cannot be called",
                loc,
                "make the reusable part a block",
            )
        if len(self.frames) > MAX_DEPTH:
            raise self._error(
                f"block calls nested deeper than {MAX_DEPTH}",
                loc,
                "is a block calling itself without a base case?",
            )
        bound = self._bind_params(blk, args, kwargs, loc)
        if blk.defn.inline:
            if alias is not None:
                raise self._error(
                    f"inline block {blk.name} opens no scope, so 'as' cannot name it",
                    loc,
                    "name the layers inside it instead",
                )
            return self._run_block(blk, bound, loc)
        scope = self.stack[-1]
        if alias is not None:
            local = self._local_name(alias, loc)
            self._claim(scope, local, loc)
        elif scope.seq:
            local = self._next_index(scope)
        else:
            local = self._auto(scope, blk.name)
        path = f"{scope.path}.{local}" if scope.path else local
        self.graph.scopes[path] = blk.name
        self._push(path, blk.defn.seq)
        try:
            return self._run_block(blk, bound, loc)
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

    def _bind_params(
        self,
        blk: Block,
        args: list[Any],
        kwargs: dict[str, tuple[Any, SourceLoc]],
        loc: SourceLoc,
        allow_missing: bool = False,
    ) -> dict[str, Any]:
        fill = _UNSET if allow_missing else REQUIRED
        params = [(p.name, fill if p.default is None else _UNSET) for p in blk.defn.params]
        what = f"{'network' if blk.defn.network else 'block'} {blk.name}"
        bound = self._bind(what, params, args, kwargs, loc)
        given = {k: v for k, v in bound.items() if v is not _UNSET}
        return given if allow_missing else self._fill_defaults(blk, given, loc)

    def _fill_defaults(self, blk: Block, given: dict[str, Any], loc: SourceLoc) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for p in blk.defn.params:
            if p.name in given:
                env[p.name] = given[p.name]
            elif p.default is not None:
                env[p.name] = self.eval(p.default, blk.globals, env)
            else:
                what = "network" if blk.defn.network else "block"
                raise self._error(
                    f"{what} {blk.name} is missing argument {p.name!r}",
                    loc,
                    f"its parameters are ({', '.join(q.name for q in blk.defn.params)})",
                )
        return env

    # ------------------------------------------------------------------ naming
    def _push(self, path: str, seq: bool) -> None:
        scope = self.scopes.get(path)
        if scope is None:
            scope = self.scopes[path] = _Scope(path, seq)
        self.stack.append(scope)

    def _join(self, local: str) -> str:
        path = self.stack[-1].path
        return f"{path}.{local}" if path else local

    def _local_name(self, alias: Any, loc: SourceLoc) -> str:
        if isinstance(alias, bool) or not isinstance(alias, (str, int)):
            raise self._error(f"a layer name must be a name or an integer, got {show(alias)}", loc)
        name = str(alias)
        if not _NAME_RE.match(name):
            raise self._error(
                f"invalid layer name {name!r}",
                loc,
                "names use letters, digits and '_'; nest with scope/seq blocks",
            )
        return name

    def _claim(self, scope: _Scope, local: str, loc: SourceLoc, reuse: bool = False) -> None:
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

    def _next_index(self, scope: _Scope) -> str:
        while str(scope.counter) in scope.names:
            scope.counter += 1
        local = str(scope.counter)
        scope.names.add(local)
        scope.counter += 1
        return local

    def _auto(self, scope: _Scope, base: str) -> str:
        n = scope.auto.get(base, 0)
        local = base if n == 0 else f"{base}_{n}"
        while local in scope.names:
            n += 1
            local = f"{base}_{n}"
        scope.auto[base] = n + 1
        scope.names.add(local)
        return local

    # ------------------------------------------------------------------ errors
    def _error(self, message: str, loc: SourceLoc, hint: str | None = None) -> SpecError:
        """A located error with the block call stack, innermost first (repeats collapsed)."""
        frames: list[str] = []
        repeats = 0
        for i in range(len(self.frames) - 1, -1, -1):
            what, call_loc = self.frames[i]
            line = (
                f"in {what}"
                if i == 0
                else f"in {what}, called from {self.frames[i - 1][0]} at {call_loc}"
            )
            if frames and frames[-1] == line:
                repeats += 1
                continue
            if repeats:
                frames.append(f"  ... the line above {repeats} more time(s)")
                repeats = 0
            frames.append(line)
        if repeats:
            frames.append(f"  ... the line above {repeats} more time(s)")
        return SpecError(message, loc, hint, frames)


def compile_module(
    module: LoadedModule,
    network: str | None = None,
    overrides: dict[str, str] | None = None,
    options: Options | None = None,
) -> Graph:
    """Compile one network (or model) of a loaded spec into a verified-shape IR graph."""
    from graphcnn.lang.parser import parse_expr

    target = module.target(network)
    interp = Interpreter(options)
    values: dict[str, Any] = {}
    for key, text in (overrides or {}).items():
        expr = parse_expr(text, SourceLoc(f"--set {key}", 1, 1))
        values[key] = interp.eval(expr, module.globals)
    name = network or (target.defn.name if isinstance(target, Model) else target.name)
    return interp.run_network(target, values, name)
