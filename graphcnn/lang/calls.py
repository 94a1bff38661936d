"""Calls and argument binding: layers, blocks, functions, shape queries, ``input()``, ``split()``.

A call binds its arguments (positional first, then ``name: value``, then defaults) and dispatches
on what its name holds. A layer call creates a node; a block call opens a scope named by ``as``,
the next ``seq`` index or the block's name, and runs the block's body in it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from graphcnn.ir import Node, Op, SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.builtins import (
    FUNCTIONS,
    LAYERS,
    MAX_ITEMS,
    REQUIRED,
    SHAPE_QUERIES,
    SPECIAL_LAYERS,
    ArgError,
    Layer,
)
from graphcnn.lang.eval import Evaluator
from graphcnn.lang.memo import Recorded, ScopeState, Unshareable, rename, signature
from graphcnn.lang.naming import Naming
from graphcnn.lang.state import MAX_DEPTH, MAX_NODES, MAX_STEPS, MAX_WORK, Scope
from graphcnn.lang.values import Block, FunctionRef, LayerRef, Model, Tensor, show, type_name
from graphcnn.types import DTYPE_BYTES

_UNSET = object()


def _tensors(value: Any) -> list[Tensor]:
    """The tensors in a value (lists and tuples searched)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


class Calls(Evaluator, Naming):
    def _call(self, e: ast.Call, glob: dict[str, Any], env: dict[str, Any], piped: Any) -> Any:
        self.steps += 1
        target = self._lookup(e.name, e.loc, glob, env)
        ev = self.eval
        # NOTE: constants, the most common arguments, skip the call to eval.
        args = [a.value if type(a) is ast.Const else ev(a, glob, env) for a in e.args]
        if piped is not None:
            args.insert(0, piped)
        kwargs = (
            {
                k: (v.value if type(v) is ast.Const else ev(v, glob, env), loc)
                for k, v, loc in e.kwargs
            }
            if e.kwargs
            else {}
        )
        alias = None if e.alias is None else ev(e.alias, glob, env)
        if isinstance(target, LayerRef):
            return self._call_layer(target.name, args, kwargs, alias, e.loc)
        if isinstance(target, Block):
            return self._call_block(target, args, kwargs, alias, e.loc)
        if alias is not None:
            raise self._error(f"'as' names layers and blocks; {e.name!r} is a function", e.loc)
        if isinstance(target, FunctionRef):
            if kwargs:
                raise self._error(f"{e.name}() takes no keyword arguments", e.loc)
            if target.name in SHAPE_QUERIES:
                return self._shape_query(target.name, args, e.loc)
            return self._call_function(e.name, FUNCTIONS[target.name], args, e.loc)
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

    def _call_function(
        self, name: str, fn: Callable[..., Any], args: list[Any], loc: SourceLoc
    ) -> Any:
        """A pure built-in function: its arguments' and its result's sizes count as work."""
        for a in args:
            if isinstance(a, (list, tuple, str)):
                self._charge(len(a), loc)
        try:
            result = fn(*args)
        except ArgError as err:
            raise self._error(f"{name}: {err}", loc, err.hint) from None
        except TypeError:
            raise self._error(f"wrong arguments to {name}()", loc) from None
        except (ArithmeticError, ValueError) as err:
            # NOTE: a last line of defence; the functions check their domains themselves.
            raise self._error(f"{name}: {err}", loc) from None
        if isinstance(result, (list, tuple, str)):
            if len(result) > MAX_ITEMS:
                unit = "characters" if isinstance(result, str) else "items"
                raise self._error(f"{name}: result of more than {MAX_ITEMS:,} {unit}", loc)
            self._charge(len(result), loc)
        return self._number(result, loc)

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
        if len(args) > len(params):
            raise self._error(
                f"{what} takes at most {len(params)} positional argument(s), got {len(args)}",
                loc,
                f"its parameters are ({', '.join(p for p, _ in params)})",
            )
        bound = {p[0]: a for p, a in zip(params, args, strict=False)}
        if kwargs:
            names = [p for p, _ in params]
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
        if len(bound) < len(params):
            for p, default in params:
                if p not in bound:
                    if default is REQUIRED:
                        raise self._error(
                            f"{what} is missing argument {p!r}",
                            loc,
                            f"its parameters are ({', '.join(q for q, _ in params)})",
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
        if not self.frames or self.stack[-1].path or self.frames[-1][0].startswith("block"):
            raise self._error(
                "input() belongs in the network body, not in a block, scope or constant", loc
            )
        self.inputs_made += 1
        if kwargs.keys() - {"dtype"}:
            bad = sorted(kwargs.keys() - {"dtype"})[0]
            raise self._error(
                f"input has no parameter {bad!r}", kwargs[bad][1], "its only keyword is dtype"
            )
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
        dtype, dtype_loc = kwargs.get("dtype", (self.opts.dtype, loc))
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise self._error(
                f"unknown dtype {show(dtype)}",
                dtype_loc,
                f"the dtypes are {', '.join(DTYPE_BYTES)}",
            )
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
        path = self._child(alias, blk.name, loc)
        self.graph.scopes[path] = blk.name
        self._push(path, blk.defn.seq)
        try:
            return self._run_shared(blk, bound, loc, path)
        finally:
            self.stack.pop()

    def _run_shared(self, blk: Block, bound: dict[str, Any], loc: SourceLoc, path: str) -> Any:
        """Run a block in its new scope ``path``, or replay an identical earlier call."""
        scope = self.stack[-1]
        if not self.opened or self.opened[-1] is not scope or scope.names:
            return self._run_block(blk, bound, loc)  # NOTE: not a new scope (never expected)
        tensors: list[Tensor] = []
        keep: list[Any] = [blk]
        try:
            sig = tuple([signature(v, tensors, keep) for v in bound.values()])
        except Unshareable:
            return self._run_block(blk, bound, loc)
        key = (id(blk), len(self.frames), self.training > 0, sig)
        rec = self.memo.blocks.get(key)
        if rec is not None and self._fits(rec):
            return self._replay(rec, path, tensors)
        made, opened, steps, work = len(self.made), len(self.opened), self.steps, self.work
        value = self._run_block(blk, bound, loc)
        if rec is None:
            rec = self._record(path, tensors, keep, value, made, opened, steps, work)
            if rec is not None:
                self.memo.remember(key, rec)
        return value

    def _record(
        self,
        path: str,
        args: list[Tensor],
        keep: list[Any],
        value: Any,
        made: int,
        opened: int,
        steps: int,
        work: int,
    ) -> Recorded | None:
        """What the call just run in scope ``path`` added: None when it reached outside it."""
        external: dict[str, int] = {}
        for i, t in enumerate(args):
            external.setdefault(t.node, i)
        inside = path + "."
        nodes = self.graph.nodes
        keys = self.memo.keys
        recorded = []
        for name in self.made[made:]:
            node = nodes[name]
            if not name.startswith(inside) or not all(
                i in external or i.startswith(inside) for i in node.inputs
            ):
                return None
            recorded.append((node, keys.get(name)))
        if not all(t.node in external or t.node.startswith(inside) for t in _tensors(value)):
            return None
        scopes = []
        for scope in self.opened[opened - 1 :]:
            if scope.path != path and not scope.path.startswith(inside):
                return None
            scopes.append(
                ScopeState(
                    scope.path[len(path) :],
                    None if scope.path == path else self.graph.scopes[scope.path],
                    scope.seq,
                    scope.counter,
                    frozenset(scope.names),
                    tuple(scope.auto.items()),
                )
            )
        return Recorded(
            path,
            tuple(recorded),
            tuple(scopes),
            self.steps - steps,
            self.work - work,
            self.where,
            value,
            external,
            tuple(keep),
        )

    def _fits(self, rec: Recorded) -> bool:
        """Whether replaying stays within the limits (else the call runs, to fail where it
        should)."""
        return (
            self.steps + rec.steps <= MAX_STEPS
            and self.work + rec.work <= MAX_WORK
            and len(self.graph.nodes) + len(rec.nodes) < MAX_NODES
        )

    def _replay(self, rec: Recorded, path: str, args: list[Tensor]) -> Any:
        old, n, ext = rec.path, len(rec.path), rec.external
        add, made, keys = self.graph.add, self.made, self.memo.keys
        for s in rec.scopes:
            scope = self.stack[-1] if s.kind is None else Scope(path + s.rel, s.seq)
            if s.kind is not None:
                self.scopes[scope.path] = scope
                self.graph.scopes[scope.path] = s.kind
                self.opened.append(scope)
            scope.counter, scope.names, scope.auto = s.counter, set(s.names), dict(s.auto)
        for node, shaped in rec.nodes:
            name = path + node.name[n:]
            inputs = tuple([args[ext[i]].node if i in ext else path + i[n:] for i in node.inputs])
            add(
                Node(
                    name,
                    node.op,
                    inputs,
                    node.attrs,
                    node.type,
                    node.params,
                    node.loc,
                    node.training_only,
                )
            )
            made.append(name)
            if shaped is not None:
                keys[name] = shaped
        self.steps += rec.steps
        self.work += rec.work
        self.where = rec.where
        return rename(rec.value, old, path, args, ext)

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
