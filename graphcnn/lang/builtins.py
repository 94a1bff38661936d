"""The spec language's built-in layers (``conv``, ``bn``, ...) and functions (``min``, ...).

``LAYERS[name]`` describes one spec-level layer: the IR op it creates, its parameters after the
input tensor (with defaults) and how the bound arguments become the node's frozen attributes.
Functions are plain Python callables on spec values; they must not be able to run away (ranges and
lists are bounded by :data:`MAX_ITEMS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphcnn.ir import Op
from graphcnn.lang.values import show

REQUIRED = object()
MAX_ITEMS = 1_000_000
"""Largest range or list a spec may build."""
MAX_INT = 10**18
"""Largest integer magnitude arithmetic may produce."""


class ArgError(Exception):
    """A built-in was called with a bad argument; ``arg`` names it, ``hint`` helps."""

    def __init__(self, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.arg = arg


def _int(v: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        hint = (
            "use round(), int() or make_divisible() to get an integer"
            if isinstance(v, float)
            else None
        )
        raise ArgError(f"{what} must be an integer, got {show(v)}", hint, what)
    if minimum is not None and v < minimum:
        raise ArgError(f"{what} must be >= {minimum}, got {v}", None, what)
    return v


def _pair(v: Any, what: str, minimum: int = 0) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ArgError(f"{what} must be an integer or a pair (h, w), got {show(v)}", None, what)
        return _int(v[0], what, minimum), _int(v[1], what, minimum)
    n = _int(v, what, minimum)
    return n, n


def _float(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"{what} must be a number, got {show(v)}", None, what)
    return float(v)


def _prob(v: Any, what: str) -> float:
    p = _float(v, what)
    if not 0.0 <= p <= 1.0:
        raise ArgError(f"{what} must be a probability in [0, 1], got {p}", None, what)
    return p


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ArgError(f"{what} must be true or false, got {show(v)}", None, what)
    return v


@dataclass(frozen=True)
class Layer:
    """A built-in layer: ``name(x, *params)`` creates one ``op`` node."""

    op: Op
    params: tuple[tuple[str, Any], ...] = ()
    attrs: Callable[[dict[str, Any]], dict[str, Any]] = lambda a: {}
    functional: bool = False
    """Functional ops (add, concat, ...) take no index in a ``seq`` scope, like torch functions."""
    inputs: int = 1
    """Number of tensor inputs; 0 means a variable number (concat)."""


def _conv(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "out_channels": _int(a["out"], "out", 1),
        "kernel": _pair(a["k"], "k", 1),
        "stride": _pair(a["stride"], "stride", 1),
        "padding": _pair(a["pad"], "pad", 0),
        "dilation": _pair(a["dilation"], "dilation", 1),
        "groups": _int(a["groups"], "groups", 1),
        "bias": _bool(a["bias"], "bias"),
    }


def _drop_connect(a: dict[str, Any]) -> dict[str, Any]:
    """DropConnect (Wan et al. 2013) on a conv/linear: the attribute only when it drops."""
    p = _prob(a["drop_connect"], "drop_connect")
    if p == 1.0:
        raise ArgError(
            "drop_connect must be below 1 (p = 1 drops every weight)", None, "drop_connect"
        )
    return {"drop_connect": p} if p > 0.0 else {}


def _choice(v: Any, what: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise ArgError(
            f"{what} must be one of {', '.join(map(repr, choices))}, got {show(v)}", None, what
        )
    return str(v)


def _upsample(a: dict[str, Any]) -> dict[str, Any]:
    """``scale`` (whole factors) or ``size`` (the output's H and W); ``mode`` and
    ``align_corners`` only for bilinear (nearest's attributes are just the scale or size)."""
    if (a["scale"] is None) == (a["size"] is None):
        raise ArgError(
            "upsample takes a scale or a size, not "
            + ("both" if a["scale"] is not None else "neither"),
            "upsample(2) doubles H and W; upsample(size: [65, 65]) resizes to 65x65",
            "size" if a["scale"] is not None else "scale",
        )
    attrs: dict[str, Any] = (
        {"scale": _pair(a["scale"], "scale", 1)}
        if a["scale"] is not None
        else {"size": _pair(a["size"], "size", 1)}
    )
    mode = _choice(a["mode"], "mode", ("nearest", "bilinear"))
    corners = a["align_corners"]
    if mode == "nearest":
        if corners is not None:
            raise ArgError(
                'align_corners is an option of mode: "bilinear" (nearest copies pixels)',
                'drop align_corners, or add mode: "bilinear"',
                "align_corners",
            )
        return attrs
    corners = corners is not None and _bool(corners, "align_corners")
    return {**attrs, "mode": mode, "align_corners": corners}


def _layer_norm(a: dict[str, Any]) -> dict[str, Any]:
    axis = _int(a["axis"], "axis")
    if axis not in (1, -1):
        raise ArgError(
            f"axis must be 1 (the channels of [C, H, W]) or -1 (the last dimension), got {axis}",
            "ConvNeXt's LayerNorm2d is axis 1; after permute([0, 2, 3, 1]) use axis -1",
            "axis",
        )
    eps = _float(a["eps"], "eps")
    if eps <= 0.0:
        raise ArgError(f"eps must be > 0, got {eps}", None, "eps")
    return {"axis": axis, "eps": eps, "affine": _bool(a["affine"], "affine")}


def _scale(a: dict[str, Any]) -> dict[str, Any]:
    factor = _float(a["factor"], "factor")
    divide = _bool(a["divide"], "divide")
    if divide and factor == 0.0:
        raise ArgError("division of a tensor by zero", None, "factor")
    if not math.isfinite(factor):
        raise ArgError(f"factor must be a finite number, got {factor}", None, "factor")
    return {"factor": factor, "divide": divide}


def _pool_common(a: dict[str, Any]) -> dict[str, Any]:
    k = _pair(a["k"], "k", 1)
    return {
        "kernel": k,
        "stride": k if a["stride"] is None else _pair(a["stride"], "stride", 1),
        "padding": _pair(a["pad"], "pad", 0),
        "ceil_mode": _bool(a["ceil"], "ceil"),
    }


def _pad(a: dict[str, Any]) -> dict[str, Any]:
    """``pad(pads, value)``: pads is n (every side) or [left, right, top, bottom], as F.pad
    (a negative pad crops, as nn.ZeroPad2d((-1, 1, -1, 1)) in NASNet)."""
    v = a["pads"]
    if isinstance(v, (list, tuple)):
        if len(v) != 4:
            raise ArgError(
                f"pads must be an integer or [left, right, top, bottom], got {show(v)}",
                "F.pad's order for the last two axes: width first, then height",
                "pads",
            )
        pads = tuple(_int(p, "pads") for p in v)
    else:
        pads = (_int(v, "pads"),) * 4
    value = a["value"]
    if value in ("-inf", "inf"):
        return {"pads": pads, "value": float(value)}
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArgError(
            f'value must be a finite number, "-inf" or "inf", got {show(value)}',
            'value: "-inf" pads for a max pool (padding never wins the max), 0 for a conv',
            "value",
        )
    return {"pads": pads, "value": float(value)}


_POOL = (("k", REQUIRED), ("stride", None), ("pad", 0), ("ceil", False))
_ACT = Layer(Op.RELU)

LAYERS: dict[str, Layer] = {
    "conv": Layer(
        Op.CONV2D,
        (
            ("out", REQUIRED),
            ("k", REQUIRED),
            ("stride", 1),
            ("pad", 0),
            ("dilation", 1),
            ("groups", 1),
            ("bias", True),
            ("drop_connect", 0.0),
        ),
        lambda a: {**_conv(a), **_drop_connect(a)},
    ),
    "linear": Layer(
        Op.LINEAR,
        (("out", REQUIRED), ("bias", True), ("last_dim", False), ("drop_connect", 0.0)),
        lambda a: {
            "out_features": _int(a["out"], "out", 1),
            "bias": _bool(a["bias"], "bias"),
            **({"last_dim": True} if _bool(a["last_dim"], "last_dim") else {}),
            **_drop_connect(a),
        },
    ),
    "bn": Layer(
        Op.BATCH_NORM,
        (("eps", 1e-5), ("momentum", 0.1), ("affine", True)),
        lambda a: {
            "eps": _float(a["eps"], "eps"),
            "momentum": _float(a["momentum"], "momentum"),
            "affine": _bool(a["affine"], "affine"),
        },
    ),
    "lrn": Layer(
        Op.LRN,
        (("size", REQUIRED), ("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)),
        lambda a: {
            "size": _int(a["size"], "size", 1),
            "alpha": _float(a["alpha"], "alpha"),
            "beta": _float(a["beta"], "beta"),
            "k": _float(a["k"], "k"),
        },
    ),
    "layer_norm": Layer(Op.LAYER_NORM, (("axis", 1), ("eps", 1e-5), ("affine", True)), _layer_norm),
    "layer_scale": Layer(
        Op.LAYER_SCALE,
        (("init", 1e-6), ("flat", False)),
        lambda a: {"init": _float(a["init"], "init"), "flat": _bool(a["flat"], "flat")},
    ),
    **{
        op.value: Layer(op)
        for op in (Op.RELU, Op.RELU6, Op.SIGMOID, Op.TANH, Op.SILU, Op.HARDSWISH, Op.HARDSIGMOID)
    },
    "gelu": Layer(
        Op.GELU,
        (("approximate", "none"),),
        lambda a: (
            {"approximate": "tanh"}
            if _choice(a["approximate"], "approximate", ("none", "tanh")) == "tanh"
            else {}
        ),
    ),
    "leaky_relu": Layer(
        Op.LEAKY_RELU,
        (("slope", 0.01),),
        lambda a: {"negative_slope": _float(a["slope"], "slope")},
    ),
    "scale": Layer(Op.SCALE, (("factor", REQUIRED), ("divide", False)), _scale, functional=True),
    "maxpool": Layer(
        Op.MAX_POOL,
        _POOL + (("dilation", 1),),
        lambda a: {**_pool_common(a), "dilation": _pair(a["dilation"], "dilation", 1)},
    ),
    "avgpool": Layer(
        Op.AVG_POOL,
        _POOL + (("count_include_pad", True),),
        lambda a: {
            **_pool_common(a),
            "count_include_pad": _bool(a["count_include_pad"], "count_include_pad"),
        },
    ),
    "adaptive_avgpool": Layer(
        Op.ADAPTIVE_AVG_POOL,
        (("out", REQUIRED),),
        lambda a: {"output": _pair(a["out"], "out", 1)},
    ),
    "global_avgpool": Layer(Op.GLOBAL_AVG_POOL),
    "pad": Layer(Op.PAD, (("pads", REQUIRED), ("value", 0.0)), _pad),
    "upsample": Layer(
        Op.UPSAMPLE,
        (("scale", None), ("mode", "nearest"), ("align_corners", None), ("size", None)),
        _upsample,
    ),
    "dropout": Layer(Op.DROPOUT, (("p", 0.5),), lambda a: {"p": _prob(a["p"], "p")}),
    "drop_path": Layer(
        Op.DROP_PATH, (("p", REQUIRED),), lambda a: {"p": _prob(a["p"], "p"), "mode": "row"}
    ),
    "add": Layer(Op.ADD, functional=True, inputs=2),
    "mul": Layer(Op.MUL, functional=True, inputs=2),
    "concat": Layer(
        Op.CONCAT,
        (("axis", 1),),
        lambda a: {"axis": _int(a["axis"], "axis", 1)},
        functional=True,
        inputs=0,
    ),
    "channel_shuffle": Layer(
        Op.CHANNEL_SHUFFLE,
        (("groups", REQUIRED),),
        lambda a: {"groups": _int(a["groups"], "groups", 1)},
        functional=True,
    ),
    "flatten": Layer(
        Op.FLATTEN,
        (("start", 1),),
        lambda a: {"start_dim": _int(a["start"], "start", 1)},
        functional=True,
    ),
    "reshape": Layer(
        Op.RESHAPE,
        (("shape", REQUIRED),),
        lambda a: {"shape": tuple(_int(d, "shape", -1) for d in _seq(a["shape"], "shape"))},
        functional=True,
    ),
    "permute": Layer(
        Op.PERMUTE,
        (("dims", REQUIRED),),
        lambda a: {"dims": tuple(_int(d, "dims", 0) for d in _seq(a["dims"], "dims"))},
    ),
    "softmax": Layer(Op.SOFTMAX, (("axis", 1),), lambda a: {"axis": _int(a["axis"], "axis", 1)}),
    "identity": Layer(Op.IDENTITY),
}
"""Every built-in layer by its spec name (the interpreter handles ``split`` and ``input``)."""

SPECIAL_LAYERS = ("split", "input")
SHAPE_QUERIES = ("channels", "height", "width", "shape")
"""Functions of a tensor's shape, answered by the interpreter (``channels(x)``...)."""


def _seq(v: Any, what: str) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise ArgError(f"{what} must be a list, got {show(v)}", None, what)
    return list(v)


def make_divisible(v: Any, divisor: Any = 8, min_value: Any = None) -> int:
    """MobileNet/EfficientNet channel rounding (torchvision's ``_make_divisible``)."""
    v = _float(v, "v")
    d = _int(divisor, "divisor", 1)
    lo = d if min_value is None else _int(min_value, "min_value", 1)
    new_v = max(lo, int(v + d / 2) // d * d)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += d
    return new_v


def _range(*args: Any) -> list[int]:
    if not 1 <= len(args) <= 3:
        raise ArgError(f"range takes 1 to 3 arguments, got {len(args)}")
    ints = [_int(a, "range bound") for a in args]
    r = range(*ints)
    if len(r) > MAX_ITEMS:
        raise ArgError(
            f"range of {len(r):,} elements exceeds the limit of {MAX_ITEMS:,}",
            "a spec this large is almost certainly a mistake",
        )
    return list(r)


def _round(v: Any, ndigits: Any = None) -> Any:
    x = _float(v, "round argument")
    return round(x) if ndigits is None else round(x, _int(ndigits, "ndigits"))


def _minmax(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        items = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        if not items:
            raise ArgError(f"{name} of nothing")
        for v in items:
            _float(v, f"{name} argument")
        return fn(items)

    return call


def _len(v: Any) -> int:
    return len(_seq(v, "len argument"))


def _sum(v: Any) -> Any:
    items = _seq(v, "sum argument")
    for x in items:
        _float(x, "sum item")
    return sum(items)


def _enumerate(v: Any, start: Any = 0) -> list[tuple[int, Any]]:
    return list(enumerate(_seq(v, "enumerate argument"), _int(start, "start")))


def _zip(*lists: Any) -> list[tuple[Any, ...]]:
    return list(zip(*(_seq(v, "zip argument") for v in lists), strict=False))


def _to_int(v: Any) -> int:
    return int(_float(v, "int argument"))


def _math(
    fn: Callable[[float], Any],
    v: Any,
    name: str,
    lowest: float | None = None,
    inclusive: bool = False,
) -> Any:
    """``fn(v)`` on a number, with domain and range errors as :class:`ArgError`."""
    x = _float(v, f"{name} argument")
    if lowest is not None and (x < lowest or (x == lowest and not inclusive)):
        bound = f">= {lowest:g}" if inclusive else f"> {lowest:g}"
        raise ArgError(f"{name} of {show(v)}: the argument must be {bound}")
    try:
        return fn(x)
    except (OverflowError, ValueError):
        raise ArgError(f"{name} of {show(v)} is out of range") from None


def _log(v: Any, base: Any = None) -> float:
    """Natural logarithm, or to ``base`` (``log(x, 2)``)."""
    if base is None:
        return float(_math(math.log, v, "log", 0.0))
    b = _float(base, "log base")
    if b <= 0.0 or b == 1.0:
        raise ArgError(f"log base must be > 0 and not 1, got {show(base)}")
    return float(_math(math.log, v, "log", 0.0)) / math.log(b)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "range": _range,
    "len": _len,
    "min": _minmax(min, "min"),
    "max": _minmax(max, "max"),
    "sum": _sum,
    "zip": _zip,
    "enumerate": _enumerate,
    "round": _round,
    "ceil": lambda v: _math(math.ceil, v, "ceil"),
    "floor": lambda v: _math(math.floor, v, "floor"),
    "int": _to_int,
    "float": lambda v: _float(v, "float argument"),
    "abs": lambda v: (
        abs(_float(v, "abs argument")) if isinstance(v, float) else abs(_int(v, "abs argument"))
    ),
    "sqrt": lambda v: _math(math.sqrt, v, "sqrt", 0.0, True),
    "log": _log,
    "exp": lambda v: _math(math.exp, v, "exp"),
    "make_divisible": make_divisible,
    "str": lambda v: show(v, MAX_ITEMS + 1),
}
"""Pure functions on numbers and lists. Shape queries are :data:`SHAPE_QUERIES`."""
