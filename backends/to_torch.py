"""Lower the IR to PyTorch: readable Python source for an ``nn.Module``, and the module itself.

The same generated source serves both uses: :func:`to_torch` executes it in memory, and
``graphcnn compile MODEL --target torch -o model.py`` writes it to a standalone file (importing
only torch and safetensors) with the weights beside it. ``LOWERINGS[op]`` has one small function
per op; each returns the layer's module constructor (for ops with parameters) and its forward
expression. Module paths equal the IR scope names, so a torchvision ``state_dict`` loads strictly.

Generated ``forward`` reads like hand-written code: one line per op, named after the spec's
layers; intermediate values are released after their last use (as torch.fx does), ReLUs run in
place where that is safe, and training-only nodes (auxiliary heads) run under ``if self.training``.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphcnn import __version__
from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, Node, Op, attr_int, attr_pair

if TYPE_CHECKING:
    import numpy as np
    import torch


class LoweringError(GraphcnnError):
    """The torch backend cannot lower a node (names the op and its spec location)."""


@dataclass(frozen=True)
class Lowered:
    """What one node becomes: an optional module constructor and a forward expression.

    ``expr`` is a format string: ``{m}`` is the node's module, ``{0}``, ``{1}`` its inputs.
    """

    expr: str
    module: str | None = None


Lowering = Callable[[Node, Graph], Lowered]


def _pair_or_int(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else str(tuple(v))


def _conv(n: Node, g: Graph) -> Lowered:
    cin = int(g[n.inputs[0]].type.shape[1])
    args = [
        str(cin),
        str(attr_int(n.attrs, "out_channels")),
        _pair_or_int(attr_pair(n.attrs, "kernel")),
    ]
    for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
        v = attr_pair(n.attrs, key)
        if v != default:
            args.append(f"{key}={_pair_or_int(v)}")
    if attr_int(n.attrs, "groups") != 1:
        args.append(f"groups={attr_int(n.attrs, 'groups')}")
    if not n.attrs["bias"]:
        args.append("bias=False")
    return Lowered("{m}({0})", f"nn.Conv2d({', '.join(args)})")


def _linear(n: Node, g: Graph) -> Lowered:
    fin = int(g[n.inputs[0]].type.shape[-1])
    bias = "" if n.attrs["bias"] else ", bias=False"
    return Lowered("{m}({0})", f"nn.Linear({fin}, {attr_int(n.attrs, 'out_features')}{bias})")


def _batch_norm(n: Node, g: Graph) -> Lowered:
    x = g[n.inputs[0]].type
    cls = "BatchNorm2d" if len(x.shape) == 4 else "BatchNorm1d"
    args = [str(x.shape[1])]
    if n.attrs["eps"] != 1e-5:
        args.append(f"eps={n.attrs['eps']!r}")
    if n.attrs["momentum"] != 0.1:
        args.append(f"momentum={n.attrs['momentum']!r}")
    if not n.attrs["affine"]:
        args.append("affine=False")
    return Lowered("{m}({0})", f"nn.{cls}({', '.join(args)})")


def _fill(template: str, node: Node) -> str:
    """Replace ``{attr}`` by the node's attribute; ``{0}``, ``{1}``, ``{m}`` slots stay."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) == "m":
            return m.group(0)
        v = node.attrs[m.group(1)]
        if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
            return str(v[0])
        return repr(v)

    return re.sub(r"\{([a-z_]+)\}", value, template)


def _fn(template: str) -> Lowering:
    return lambda n, g: Lowered(_fill(template, n))


def _max_pool(n: Node, g: Graph) -> Lowered:
    parts = ["{0}", "{kernel}", "{stride}"]
    if attr_pair(n.attrs, "padding") != (0, 0):
        parts.append("{padding}")
    if attr_pair(n.attrs, "dilation") != (1, 1):
        parts.append("dilation={dilation}")
    if n.attrs["ceil_mode"]:
        parts.append("ceil_mode=True")
    return Lowered(_fill(f"F.max_pool2d({', '.join(parts)})", n))


def _avg_pool(n: Node, g: Graph) -> Lowered:
    parts = ["{0}", "{kernel}", "{stride}"]
    if attr_pair(n.attrs, "padding") != (0, 0):
        parts.append("{padding}")
    if n.attrs["ceil_mode"]:
        parts.append("ceil_mode=True")
    if not n.attrs["count_include_pad"]:
        parts.append("count_include_pad=False")
    return Lowered(_fill(f"F.avg_pool2d({', '.join(parts)})", n))


def _split(n: Node, g: Graph) -> Lowered:
    sizes: tuple[int, ...] = n.attrs["sizes"]  # type: ignore[assignment]
    index = attr_int(n.attrs, "index")
    start = sum(sizes[:index])
    return Lowered(f"{{0}}.narrow({n.attrs['axis']}, {start}, {sizes[index]})")


def _concat(n: Node, g: Graph) -> Lowered:
    inputs = ", ".join(f"{{{i}}}" for i in range(len(n.inputs)))
    return Lowered(f"torch.cat([{inputs}], {n.attrs['axis']})")


def _reshape(n: Node, g: Graph) -> Lowered:
    dims = ", ".join(str(d) for d in n.type.shape[1:])
    return Lowered(f"{{0}}.reshape({{0}}.shape[0], {dims})")


def _unsupported(n: Node, g: Graph) -> Lowered:
    raise LoweringError(
        f"the torch backend cannot lower op {n.op} (node {n.name}"
        f"{', ' + str(n.loc) if n.loc else ''})"
    )


LOWERINGS: dict[Op, Lowering] = {
    Op.INPUT: _unsupported,  # inputs are forward()'s arguments
    Op.CONV2D: _conv,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _batch_norm,
    Op.LRN: _fn("F.local_response_norm({0}, {size}, alpha={alpha}, beta={beta}, k={k})"),
    Op.RELU: _fn("F.relu({0})"),
    Op.RELU6: _fn("F.relu6({0})"),
    Op.SIGMOID: _fn("torch.sigmoid({0})"),
    Op.TANH: _fn("torch.tanh({0})"),
    Op.SILU: _fn("F.silu({0})"),
    Op.HARDSWISH: _fn("F.hardswish({0})"),
    Op.GELU: _fn("F.gelu({0})"),
    Op.MAX_POOL: _max_pool,
    Op.AVG_POOL: _avg_pool,
    Op.ADAPTIVE_AVG_POOL: _fn("F.adaptive_avg_pool2d({0}, {output})"),
    Op.GLOBAL_AVG_POOL: _fn("F.adaptive_avg_pool2d({0}, 1)"),
    Op.DROPOUT: _fn("F.dropout({0}, {p}, self.training)"),
    Op.DROP_PATH: _fn("_drop_path({0}, {p}, self.training)"),
    Op.ADD: _fn("{0} + {1}"),
    Op.MUL: _fn("{0} * {1}"),
    Op.CONCAT: _concat,
    Op.SPLIT: _split,
    Op.CHANNEL_SHUFFLE: _fn("_channel_shuffle({0}, {groups})"),
    Op.FLATTEN: _fn("torch.flatten({0}, {start_dim})"),
    Op.RESHAPE: _reshape,
    Op.SOFTMAX: _fn("F.softmax({0}, {axis})"),
    Op.IDENTITY: _fn("{0}"),
}

# Ops whose result may share memory with their input (in-place ops must not run after them).
_ALIASING = {Op.FLATTEN, Op.RESHAPE, Op.IDENTITY, Op.SPLIT, Op.DROPOUT, Op.DROP_PATH}
# Producers whose output autograd does not save, so a following ReLU may overwrite it.
_INPLACE_SAFE = {Op.CONV2D, Op.BATCH_NORM, Op.ADD, Op.LINEAR}

_HELPERS = '''

def _add(root: nn.Module, path: str, module: nn.Module) -> None:
    """Register ``module`` at dotted ``path``, creating the scopes on the way."""
    *scopes, leaf = path.split(".")
    for name in scopes:
        if name not in root._modules:
            root.add_module(name, Scope())
        root = root._modules[name]  # type: ignore[assignment]
    root.add_module(leaf, module)


class Scope(nn.Module):
    """A named group of layers (a block call or a seq scope of the spec)."""

    def __getitem__(self, name: int | str) -> nn.Module:
        return self._modules[str(name)]  # type: ignore[return-value]


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth (per sample), as torchvision.ops.stochastic_depth(mode="row")."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


def _check(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if torch.jit.is_tracing():  # shapes are fixed by the example input
        return
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        dims = ", ".join(map(str, shape))
        raise TypeError(f"expected a floating-point tensor of shape [N, {dims}], got {kind}")
    if tuple(x.shape[1:]) != shape or x.dim() != len(shape) + 1:
        raise ValueError(f"expected input of shape [N, {', '.join(map(str, shape))}], "
                         f"got {list(x.shape)}")
'''


# Names the generated module uses itself: a spec variable must never shadow them.
_RESERVED = frozenset(
    {
        "self",
        "torch",
        "nn",
        "F",
        "Path",
        "namedtuple",
        "Outputs",
        "Scope",
        "_add",
        "_check",
        "_drop_path",
        "_channel_shuffle",
    }
)


def _var(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name)
    if base[0].isdigit() or keyword.iskeyword(base) or base in _RESERVED:
        base = "v_" + base
    v, i = base, 1
    while v in taken:
        v, i = f"{base}_{i}", i + 1
    taken.add(v)
    return v


def _module_ref(path: str) -> str:
    """``layer1.0.conv1`` -> ``self.layer1[0].conv1``."""
    out = "self"
    for part in path.split("."):
        out += (
            f"[{part}]"
            if part.isdigit() and (part == "0" or not part.startswith("0"))
            else (
                f".{part}" if part.isidentifier() and not keyword.iskeyword(part) else f"[{part!r}]"
            )
        )
    return out


def generate_source(
    graph: Graph, class_name: str = "Model", weights_file: str | None = None
) -> str:
    """Python source of a module class building ``graph`` (see the module docstring)."""
    inputs = graph.inputs
    if len(inputs) != 1:
        raise LoweringError(
            f"the torch backend needs exactly one input, {graph.name} has {len(inputs)}"
        )
    taken: set[str] = set()
    var = {inputs[0].name: _var(inputs[0].name, taken)}
    last_use: dict[str, str] = {}
    for node in graph:
        for i in node.inputs:
            last_use[i] = node.name
    outputs = {n for _, n in graph.outputs}
    ctor: list[str] = []
    body: list[tuple[bool, str]] = []  # (training_only, line)
    for node in graph:
        if node.op is Op.INPUT:
            continue
        lowering = LOWERINGS.get(node.op)
        if lowering is None:
            raise LoweringError(
                f"the torch backend cannot lower op {node.op} (node {node.name}"
                f"{', ' + str(node.loc) if node.loc else ''})"
            )
        low = lowering(node, graph)
        args = [var[i] for i in node.inputs]
        module = None
        if low.module is not None:
            _check_module_path(node)
            ctor.append(f"        _add(self, {node.name!r}, {low.module})")
            module = _module_ref(node.name)
        expr = low.expr.format(*args, m=module)
        if node.op in (Op.RELU, Op.RELU6) and _inplace_ok(graph, node, outputs):
            expr = expr[:-1] + ", inplace=True)"
        elif (
            node.op is Op.ADD
            and node.inputs[0] != node.inputs[1]
            and _inplace_ok(graph, node, outputs)
        ):
            expr = f"{args[0]}.add_({args[1]})"  # as torchvision's `out += identity`
        var[node.name] = _var(node.name, taken)
        line = f"{var[node.name]} = {expr}"
        dead = sorted(
            {var[i] for i in node.inputs if last_use.get(i) == node.name and i not in outputs}
        )
        if dead:
            line += "; del " + ", ".join(dead)
        body.append((node.training_only, line))
    shape = tuple(int(d) for d in inputs[0].type.shape[1:])
    return _render(graph, class_name, weights_file, ctor, body, var, shape)


def _check_module_path(node: Node) -> None:
    """Layer names become module attributes: they must not collide with nn.Module's own."""
    import torch

    reserved = set(dir(torch.nn.Module))
    for part in node.name.split("."):
        if part in reserved or part.startswith("__"):
            raise LoweringError(
                f"layer name {part!r} of {node.name} collides with torch.nn.Module.{part}"
                f"{' (' + str(node.loc) + ')' if node.loc else ''}",
                "rename the layer (as ...) in the spec",
            )


def _inplace_ok(graph: Graph, node: Node, outputs: set[str]) -> bool:
    src = graph[node.inputs[0]]
    return src.op in _INPLACE_SAFE and len(graph.users(src.name)) == 1 and src.name not in outputs


def _field(name: str) -> str:
    f = re.sub(r"\W", "_", name)
    return f + "_" if keyword.iskeyword(f) or f[0].isdigit() or f.startswith("_") else f


def _render(
    graph: Graph,
    class_name: str,
    weights_file: str | None,
    ctor: list[str],
    body: list[tuple[bool, str]],
    var: dict[str, str],
    shape: tuple[int, ...],
) -> str:
    inp = var[graph.inputs[0].name]
    outs = [(name, var[node]) for name, node in graph.outputs]
    training_outs = any(graph[n].training_only for _, n in graph.outputs)
    inference_outs = [
        v
        for (name, v), (_, n) in zip(outs, graph.outputs, strict=True)
        if not graph[n].training_only
    ]
    fields = [_field(name) for name, _ in outs]
    lines = [
        f'"""{class_name}: {graph.name}, generated by graphcnn {__version__}. Regenerate, do '
        'not edit."""',
        "",
        "# One line per layer; '; del x' frees a value after its last use, as torch.fx does.",
        "# ruff: noqa: E501, E702",
        "from __future__ import annotations",
        "",
        *(["from collections import namedtuple"] if training_outs else []),
        "from pathlib import Path",
        "",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
        _HELPERS.rstrip(),
        "",
        "",
    ]
    if training_outs:
        lines += [f"Outputs = namedtuple({'Outputs'!r}, {fields!r})", "", ""]
    default = repr(weights_file) if weights_file else "None"
    lines += [
        f"class {class_name}(Scope):",
        f'    """{graph.name}: input [N, {", ".join(map(str, shape))}]."""',
        "",
        f"    WEIGHTS = {default}",
        f"    INPUT_SHAPE = {shape!r}",
        "",
        "    def __init__(self, load_weights: bool = True) -> None:",
        '        """Build the layers; load WEIGHTS (next to this file) when present."""',
        "        super().__init__()",
        *ctor,
        "        path = Path(__file__).with_name(self.WEIGHTS) if self.WEIGHTS else None",
        "        if load_weights and path is not None and path.exists():",
        "            from safetensors.torch import load_file",
        "",
        "            state = load_file(str(path))",
        "            for key, buf in self.state_dict().items():",
        '                if key.endswith("num_batches_tracked"):',
        "                    state.setdefault(key, torch.zeros_like(buf))",
        "            self.load_state_dict(state)",
        "",
        f"    def forward(self, {inp}: torch.Tensor):",
        f"        _check({inp}, self.INPUT_SHAPE)",
    ]
    in_training = False
    for training, line in body:
        if training and not in_training:
            lines.append("        if self.training:")
        in_training = training
        lines.append(("            " if training else "        ") + line)
    if training_outs:
        lines.append("        if self.training:")
        lines.append(f"            return Outputs({', '.join(v for _, v in outs)})")
    result = (
        inference_outs[0] if len(inference_outs) == 1 else "(" + ", ".join(inference_outs) + ")"
    )
    lines.append(f"        return {result}")
    return "\n".join(lines) + "\n"


def build_module(
    graph: Graph,
    weights: Mapping[str, np.ndarray[Any, Any]] | None = None,
    class_name: str = "Model",
) -> torch.nn.Module:
    """Execute the generated source and instantiate the module.

    With ``weights`` the layers are created on the meta device (no wasted initialisation) and
    the numpy arrays are assigned without copying; without, torch's default initialisation runs.
    """
    import torch

    namespace: dict[str, Any] = {"__name__": f"graphcnn_generated_{graph.name}"}
    code = compile(generate_source(graph, class_name), f"<graphcnn:{graph.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own generated source, not user code
    cls = namespace[class_name]
    if weights is None:
        return cls(load_weights=False)  # type: ignore[no-any-return]
    from graphcnn.weights import check_weights

    check_weights(graph, weights)
    with torch.device("meta"):
        module = cls(load_weights=False)
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    for key in module.state_dict():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    module.load_state_dict(state, strict=True, assign=True)
    return module  # type: ignore[no-any-return]


def to_torch(
    graph: Graph, weights: Mapping[str, np.ndarray[Any, Any]] | None = None, seed: int | None = 0
) -> torch.nn.Module:
    """Lower ``graph`` to an ``nn.Module``: given ``weights`` (copied), else seeded init.

    ``seed=None`` with no weights keeps torch's own (unseeded) initialisation.
    """
    if weights is not None:  # copied: the module must not alias the caller's arrays
        return build_module(graph, {k: v.copy() for k, v in weights.items()})
    if seed is not None:
        from graphcnn.weights import init_weights

        return build_module(graph, init_weights(graph, seed))
    return build_module(graph, None)
