"""The search space: ``--space NAME=EXPR`` lines parsed into Optuna distributions.

One dimension per line::

    width=choice(32, 64, 128)        categorical: numbers, or spec expressions (blocks, lists)
    unit=choice(basic, bottleneck)   a block of the spec as a value
    depth=int(1, 4)                  integers low..high inclusive; int(1, 8, 2) steps by 2
    lr=loguniform(1e-4, 1e-1)        a float, log-uniform
    dropout=uniform(0, 0.5)          a float, uniform

The right-hand side is read with Python's ``ast`` parser (nothing is evaluated: only literal
numbers, and the source text of each ``choice`` value, are kept). A bad line is a
:class:`~graphcnn.errors.SpecError` located at ``--space N:1:COL`` with the line and a caret.

Where a value goes is decided by :func:`route`: a parameter of the network goes to the spec
(``--set``), ``resolution`` to the input size (``CxRxR``), a field of
:class:`graphcnn.train.TrainConfig` to training.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphcnn.errors import SOURCES, SpecError
from graphcnn.types import SourceLoc

KINDS = {
    "choice": "choice(A, B, ...)",
    "int": "int(LOW, HIGH) or int(LOW, HIGH, STEP)",
    "uniform": "uniform(LOW, HIGH)",
    "loguniform": "loguniform(LOW, HIGH) with LOW > 0",
}
EXAMPLE = "--space 'width=choice(32, 64)' --space 'lr=loguniform(1e-4, 1e-1)'"
RESOLUTION = "resolution"
"""The pseudo-parameter that sets the input's height and width (unless the network has one)."""

Value = int | float | bool | str


@dataclass(frozen=True)
class Dimension:
    """One searched parameter.

    ``choices`` hold numbers and booleans as themselves and anything else (a block name, a
    list, a string) as its source text, which the spec reads as an expression.
    """

    name: str
    kind: str
    choices: tuple[Value, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    source: str = ""

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        from optuna import distributions as d

        if self.kind == "choice":
            return d.CategoricalDistribution(self.choices)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), step=self.step)
        return d.FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def grid(self) -> list[Value] | None:
        """Every value, for the grid sampler; None for a continuous dimension."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        return None

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class Space:
    dims: tuple[Dimension, ...]

    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def distributions(self) -> dict[str, Any]:
        return {d.name: d.distribution() for d in self.dims}

    def suggest(self, trial: Any) -> dict[str, Value]:
        """Sample every dimension from an Optuna trial, in declaration order."""
        out: dict[str, Value] = {}
        for d in self.dims:
            if d.kind == "choice":
                out[d.name] = trial.suggest_categorical(d.name, d.choices)
            elif d.kind == "int":
                out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=d.step)
            else:
                out[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.kind == "loguniform")
        return out

    def grid(self) -> dict[str, list[Value]]:
        """The grid sampler's search space; an error names the first continuous dimension."""
        out: dict[str, list[Value]] = {}
        for d in self.dims:
            values = d.grid()
            if values is None:
                raise SpecError(
                    f"--sampler grid cannot enumerate {d.name}={d.source.split('=', 1)[1]}",
                    None,
                    "the grid sampler takes choice(...) and int(...) dimensions only; "
                    "use --sampler random or tpe for continuous ones",
                )
            out[d.name] = values
        return out

    def to_json(self) -> list[str]:
        return [d.source for d in self.dims]


def _error(label: str, text: str, col: int, message: str, hint: str | None = None) -> SpecError:
    SOURCES[label] = text
    return SpecError(message, SourceLoc(label, 1, col), hint or f"e.g. {EXAMPLE}")


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _choice_value(node: ast.expr, text: str) -> Value:
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, (int, float, bool)):
        return value
    num = _number(node)
    if num is not None:
        return int(num) if num.is_integer() and "." not in text and "e" not in text else num
    return text


def parse_dimension(text: str, index: int) -> Dimension:
    """One ``NAME=EXPR`` line (the ``index``-th ``--space``, counted from 1)."""
    label = f"--space {index}"
    name, eq, rhs = text.partition("=")
    if not eq:
        raise _error(label, text, 1, f"expected NAME=EXPR, got {text!r}")
    key = name.strip()
    if not key.isidentifier():
        raise _error(label, text, 1, f"{key!r} is not a parameter name")
    start = len(name) + 1
    try:
        tree = ast.parse(rhs.strip(), mode="eval")
    except SyntaxError as e:
        lead = len(rhs) - len(rhs.lstrip())
        col = start + lead + (e.offset or 1)
        raise _error(label, text, col, f"cannot parse {rhs.strip()!r}: {e.msg}") from None
    lead = len(rhs) - len(rhs.lstrip())
    call = tree.body

    def at(node: ast.AST) -> int:
        return start + lead + getattr(node, "col_offset", 0) + 1

    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise _error(label, text, at(call), "expected a distribution: " + ", ".join(KINDS.values()))
    kind = call.func.id
    if kind not in KINDS:
        raise _error(
            label,
            text,
            at(call),
            f"unknown distribution {kind!r}",
            "the distributions are: " + ", ".join(KINDS.values()),
        )
    if call.keywords:
        raise _error(label, text, at(call.keywords[0]), f"{kind}() takes no keyword arguments")
    args = call.args
    source = f"{key}={rhs.strip()}"
    if kind == "choice":
        if not args:
            raise _error(label, text, at(call), "choice() needs at least one value")
        texts = [ast.get_source_segment(rhs.strip(), a) or "" for a in args]
        choices = tuple(_choice_value(a, t) for a, t in zip(args, texts, strict=True))
        if len(set(map(repr, choices))) != len(choices):
            raise _error(label, text, at(call), f"choice() for {key} repeats a value")
        return Dimension(key, kind, choices=choices, source=source)
    counts = {"int": (2, 3), "uniform": (2, 2), "loguniform": (2, 2)}[kind]
    if not counts[0] <= len(args) <= counts[1]:
        raise _error(label, text, at(call), f"{kind}() takes {KINDS[kind]}, got {len(args)} values")
    nums: list[float] = []
    for a in args:
        v = _number(a)
        if v is None or not math.isfinite(v):
            raise _error(label, text, at(a), f"{kind}() bounds must be finite numbers")
        if kind == "int" and not v.is_integer():
            raise _error(label, text, at(a), f"int() bounds must be integers, got {v:g}")
        nums.append(v)
    low, high = nums[0], nums[1]
    if low >= high:
        raise _error(
            label, text, at(args[0]), f"{kind}(): LOW must be below HIGH, got {low:g} >= {high:g}"
        )
    if kind == "loguniform" and low <= 0:
        raise _error(label, text, at(args[0]), f"loguniform(): LOW must be > 0, got {low:g}")
    step = int(nums[2]) if len(nums) == 3 else 1
    if step < 1:
        raise _error(label, text, at(args[2]), f"int(): STEP must be >= 1, got {step}")
    return Dimension(key, kind, low=low, high=high, step=step, source=source)


def parse_space(texts: Sequence[str]) -> Space:
    """Every ``--space`` line; a parameter named twice is an error at the second."""
    dims: list[Dimension] = []
    seen: dict[str, int] = {}
    for i, text in enumerate(texts, 1):
        d = parse_dimension(text, i)
        if d.name in seen:
            raise _error(
                f"--space {i}", text, 1, f"{d.name} is searched twice (also --space {seen[d.name]})"
            )
        seen[d.name] = i
        dims.append(d)
    return Space(tuple(dims))


@dataclass(frozen=True)
class Routed:
    """A candidate's values split by where they go."""

    spec: dict[str, Value]
    train: dict[str, Any]
    resolution: int | None


def route(
    space: Space, network_params: Iterable[str], train_fields: Iterable[str]
) -> dict[str, str]:
    """``{name: "spec" | "resolution" | "train"}``; an unknown name is a located error."""
    spec_names, train_names = list(network_params), set(train_fields)
    out: dict[str, str] = {}
    for i, d in enumerate(space.dims, 1):
        if d.name in spec_names:
            out[d.name] = "spec"
        elif d.name == RESOLUTION:
            if d.kind not in ("choice", "int") or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in d.grid() or []
            ):
                raise _error(f"--space {i}", d.source, 1, "resolution takes positive integers")
            out[d.name] = "resolution"
        elif d.name in train_names:
            out[d.name] = "train"
        else:
            close = difflib.get_close_matches(d.name, [*spec_names, RESOLUTION, *train_names], 1)
            raise _error(
                f"--space {i}",
                d.source,
                1,
                f"{d.name!r} is not a parameter of the network nor a training option",
                (f"did you mean {close[0]!r}? " if close else "")
                + f"the network's parameters: {', '.join(spec_names) or 'none'}; "
                f"'{RESOLUTION}' sets the input size; training options: "
                f"{', '.join(sorted(train_names))}",
            )
    return out


def split(values: Mapping[str, Value], routes: Mapping[str, str]) -> Routed:
    spec = {k: v for k, v in values.items() if routes.get(k) == "spec"}
    train = {k: _train_value(v) for k, v in values.items() if routes.get(k) == "train"}
    res = values.get(RESOLUTION) if any(r == "resolution" for r in routes.values()) else None
    return Routed(spec, train, int(res) if res is not None else None)


def _train_value(v: Value) -> Any:
    """A training option's value: a quoted or bare word becomes a plain string."""
    if isinstance(v, str):
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    return v
