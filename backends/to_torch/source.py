"""The torch backend's code generator: :func:`generate_source` writes the Python source of an
``nn.Module`` class for a graph, one ``forward`` line per node from ``LOWERINGS``, with the helper
functions the generated module carries (``_add``, ``_add_parameter``, ``Scope``,
``_channel_shuffle``, ``_drop_path``, ``_drop_connect``, ``_check``), the names it reserves, and
how spec names become Python names.
"""

from __future__ import annotations

import keyword
import re

from graphcnn.backends.to_torch.lowering import _INPLACE_SAFE, LOWERINGS, LoweringError
from graphcnn.ir import Graph, Node, Op
from graphcnn.version import __version__

_HELPERS = '''

def _add(root: nn.Module, path: str, module: nn.Module) -> None:
    """Register ``module`` at dotted ``path``, creating the scopes on the way."""
    *scopes, leaf = path.split(".")
    for name in scopes:
        if name not in root._modules:
            root.add_module(name, Scope())
        root = root._modules[name]  # type: ignore[assignment]
    root.add_module(leaf, module)


def _add_parameter(root: nn.Module, path: str, value: torch.Tensor) -> None:
    """Register ``value`` as a parameter at dotted ``path`` (on the scope that holds it)."""
    *scopes, leaf = path.split(".")
    for name in scopes:
        if name not in root._modules:
            root.add_module(name, Scope())
        root = root._modules[name]  # type: ignore[assignment]
    root.register_parameter(leaf, nn.Parameter(value))


class Scope(nn.Module):
    """A named group of layers (a block call or a seq scope of the spec)."""

    def __getitem__(self, name: int | str) -> nn.Module:
        key = str(name)
        if key not in self._modules:  # a parameter kept on the scope (layer_scale)
            return getattr(self, key)  # type: ignore[no-any-return]
        return self._modules[key]  # type: ignore[return-value]


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


def _drop_connect(layer: nn.Module, x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """DropConnect (Wan et al. 2013): in training, each weight of the conv/linear ``layer`` is
    kept with probability 1 - p and rescaled by 1/(1 - p); at inference, the plain layer."""
    if not training or p == 0.0:
        return layer(x)
    w = layer.weight
    w = w * w.new_empty(w.shape).bernoulli_(1.0 - p).div_(1.0 - p)
    if isinstance(layer, nn.Conv2d):
        return layer._conv_forward(x, w, layer.bias)
    return F.linear(x, w, layer.bias)


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
        "_add_parameter",
        "_drop_connect",
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
    graph: Graph,
    class_name: str = "Model",
    weights_file: str | None = None,
    weights_sha256: str | None = None,
) -> str:
    """Python source of a module class building ``graph`` (see the module docstring).

    With ``weights_file``, ``Model()`` loads that file from beside the source, and with
    ``weights_sha256`` first checks that it holds exactly those bytes.
    """
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
        elif low.parameter is not None:
            _check_module_path(node)
            ctor.append(f"        _add_parameter(self, {node.name!r}, {low.parameter})")
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
    return _render(graph, class_name, (weights_file, weights_sha256), ctor, body, var, shape)


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
    weights: tuple[str | None, str | None],
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
    weights_file, sha = weights
    default = repr(weights_file) if weights_file else "None"
    lines += [
        f"class {class_name}(Scope):",
        f'    """{graph.name}: input [N, {", ".join(map(str, shape))}]."""',
        "",
        f"    WEIGHTS = {default}",
        f"    WEIGHTS_SHA256 = {sha!r}",
        f"    INPUT_SHAPE = {shape!r}",
        "",
        "    def __init__(self, load_weights: bool = True) -> None:",
        '        """Build the layers; load WEIGHTS (next to this file, checked by its sha256)."""',
        "        super().__init__()",
        *ctor,
        "        if load_weights and self.WEIGHTS:",
        "            import hashlib",
        "",
        "            from safetensors.torch import load",
        "",
        "            path = Path(__file__).with_name(self.WEIGHTS)",
        "            if not path.is_file():",
        "                raise FileNotFoundError(f'{path} is missing: it holds the weights of '",
        "                                        'this model (load_weights=False skips them)')",
        "            data = path.read_bytes()",
        "            digest = hashlib.sha256(data).hexdigest()",
        "            if self.WEIGHTS_SHA256 and digest != self.WEIGHTS_SHA256:",
        "                raise ValueError(f'{path.name} is not the weights file this source was '",
        "                                 'generated with (sha256 differs): regenerate both')",
        "            state = load(data)",
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
