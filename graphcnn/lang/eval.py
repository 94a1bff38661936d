"""Evaluate expressions: bounded arithmetic, comparisons, indexing, slicing, truth and names.

Arithmetic on numbers is plain Python arithmetic, bounded (integers by ``MAX_INT``, lists by
``MAX_ITEMS``); ``a + b`` and ``a * b`` on tensors create ``add`` and ``mul`` nodes; ``x * k``,
``k * x`` and ``x / k`` with a tensor ``x`` and a number ``k`` create a ``scale`` node (a division
stays a division). A name is looked up in the local variables, then the file's globals, then
the built-ins.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from graphcnn.ir import SourceLoc
from graphcnn.lang import ast
from graphcnn.lang.builtins import (
    FUNCTIONS,
    LAYERS,
    MAX_INT,
    MAX_ITEMS,
    SHAPE_QUERIES,
    SPECIAL_LAYERS,
)
from graphcnn.lang.state import State
from graphcnn.lang.values import FunctionRef, LayerRef, Tensor, show, type_name

_REFS: dict[str, LayerRef | FunctionRef] = {
    **{name: FunctionRef(name) for name in (*FUNCTIONS, *SHAPE_QUERIES)},
    **{name: LayerRef(name) for name in (*LAYERS, *SPECIAL_LAYERS)},
}
"""The built-in names as values (immutable, so one of each serves every lookup)."""


class Evaluator(State):
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
            out = v[bounds[0] : bounds[1]]
            self._charge(len(out), e.loc)
            return out
        if type(e) is ast.FString:
            text = "".join(
                p if isinstance(p, str) else self._text(self.eval(p, glob, env)) for p in e.parts
            )
            if len(text) > MAX_ITEMS:
                raise self._error(f"string of more than {MAX_ITEMS:,} characters", e.loc)
            return text
        raise self._error(f"cannot evaluate {type(e).__name__}", e.loc)  # pragma: no cover

    @staticmethod
    def _text(v: Any) -> str:
        return v if isinstance(v, str) else show(v, MAX_ITEMS + 1)

    def _lookup(self, name: str, loc: SourceLoc, glob: dict[str, Any], env: dict[str, Any]) -> Any:
        if name in env:
            return env[name]
        if name in glob:
            return glob[name]
        ref = _REFS.get(name)
        if ref is not None:
            return ref
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
            scaled = self._scale(a, b, op, e.loc)
            if scaled is not None:
                return scaled
            raise self._error(
                f"'{op}' on {type_name(a)} and {type_name(b)}",
                e.loc,
                "tensors support + (add) and * (mul) with another tensor, and x * k, k * x, "
                "x / k (scale) with a number k",
            )
        if isinstance(a, (list, tuple)) and op in ("+", "*"):
            return self._seq_op(a, b, op, e.loc)
        if isinstance(a, str) and isinstance(b, str) and op == "+":
            if len(a) + len(b) > MAX_ITEMS:
                raise self._error(f"string of more than {MAX_ITEMS:,} characters", e.loc)
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
        return self._number(r, e.loc)

    def _number(self, r: Any, loc: SourceLoc) -> Any:
        """``r`` if it is within the bounds of spec numbers (finite, integers <= MAX_INT)."""
        if isinstance(r, complex):
            raise self._error(
                "the result is a complex number", loc, "a negative base needs an integer exponent"
            )
        if isinstance(r, float) and not math.isfinite(r):
            raise self._error("number too large", loc, "numbers are 64-bit floats")
        if isinstance(r, int) and abs(r) > MAX_INT:
            raise self._error(f"integer result exceeds {MAX_INT:.0e}", loc)
        return r

    def _scale(self, a: Any, b: Any, op: str, loc: SourceLoc) -> Tensor | None:
        """``x * k``, ``k * x``, ``x / k`` (a ``scale`` node); None for other operands."""
        if op == "*" and isinstance(b, Tensor):
            a, b = b, a
        if not isinstance(a, Tensor) or isinstance(b, bool) or not isinstance(b, (int, float)):
            return None
        if op not in ("*", "/"):
            return None
        if op == "/" and b == 0:
            raise self._error("division of a tensor by zero", loc)
        if not math.isfinite(b):
            raise self._error(f"cannot scale a tensor by {show(b)}", loc)
        attrs = {"factor": float(b), "divide": op == "/"}
        return self._make("scale", LAYERS["scale"], [a], attrs, None, loc)

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
        self._charge(len(out), loc)
        return out

    def _compare(self, e: ast.Compare, glob: dict[str, Any], env: dict[str, Any]) -> bool:
        left = self.eval(e.first, glob, env)
        for op, expr in e.rest:
            right = self.eval(expr, glob, env)
            for side in (left, right):
                if isinstance(side, (list, tuple, str)):
                    self._charge_deep(side, e.loc)
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
