"""Transfer learning: start from a checkpoint, replace a head that changed shape, freeze scopes.

:func:`initial_weights` reads ``--weights`` (a graphcnn ``.safetensors``, a torchvision or timm
``.pth``/``.bin``/``.safetensors`` state dict whose keys are the spec's layer names) and takes
every tensor that fits; a *head* layer (the last layer with parameters before an output, through
flatten/dropout/identity) whose shape changed, typically because ``--set classes=C`` differs
from the checkpoint, is re-initialised from the seed and reported. Any other missing,
unexpected or mis-shaped key is an error naming them all.

:func:`frozen_nodes` resolves ``--freeze SCOPE[,SCOPE]`` (those scopes) or ``--freeze-until
SCOPE`` (every layer before SCOPE's first layer) to the parameter-carrying nodes to freeze.
Frozen parameters get no gradient and are left out of the optimizer; frozen batch norms stay
in eval mode, so their running statistics do not move either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphcnn.ir import Graph, Node, Op
from graphcnn.train.config import TrainConfig, TrainError
from graphcnn.weights import Weights, check_weights, expected, init_weights, load_checkpoint


@dataclass
class Transfer:
    """Where the initial weights came from and what was re-initialised."""

    source: str
    replaced: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    frozen_params: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "head_replaced": self.replaced,
            "frozen_layers": len(self.frozen),
            "frozen_params": self.frozen_params,
        }


TRAIN_NEEDS_TRAINING_ONLY = (
    "training runs them, so train needs their weights: start from a checkpoint that has them "
    "(`graphcnn compile --pipeline inference` loads one without them)"
)
"""The hint when a checkpoint lacks only the training-only parts (auxiliary heads)."""


def head_nodes(graph: Graph) -> set[str]:
    """The last parameter-carrying node before each graph output (auxiliary heads included)."""
    heads: set[str] = set()
    for _, name in graph.outputs:
        node: Node = graph[name]
        while not node.params and len(node.inputs) == 1 and node.op is not Op.INPUT:
            node = graph[node.inputs[0]]
        if node.params:
            heads.add(node.name)
    return heads


def initial_weights(graph: Graph, config: TrainConfig) -> tuple[Weights, Transfer]:
    """The weights a run starts from: ``config.weights`` fitted to ``graph``, or seeded init."""
    init = init_weights(graph, config.seed)
    if not config.weights:
        return init, Transfer(f"seeded PyTorch-style init, seed {config.seed}")
    loaded = load_checkpoint(config.weights)
    want = expected(graph)
    heads = head_nodes(graph)
    replaced = []
    for key, (decl, node) in want.items():
        got = loaded.get(key)
        fits = got is not None and tuple(got.shape) == decl.shape
        if node.name in heads and not fits:
            loaded[key] = init[key]
            replaced.append(key)
    check_weights(graph, loaded, config.weights, TRAIN_NEEDS_TRAINING_ONLY)
    return {k: loaded[k] for k in want}, Transfer(config.weights, replaced)


def _matches(node: str, scope: str) -> bool:
    return node == scope or node.startswith(scope + ".")


def _scope_hint(graph: Graph) -> str:
    tops = list(dict.fromkeys(n.name.split(".")[0] for n in graph if n.params))
    shown = ", ".join(tops[:20]) + (", ..." if len(tops) > 20 else "")
    return f"scopes with parameters: {shown} (`graphcnn dump` lists every layer)"


def frozen_nodes(graph: Graph, config: TrainConfig) -> list[str]:
    """Names of the parameter-carrying nodes ``--freeze`` / ``--freeze-until`` select."""
    layers = [n.name for n in graph if n.params]
    if config.freeze_until:
        scope = config.freeze_until
        first = next((i for i, n in enumerate(layers) if _matches(n, scope)), None)
        if first is None:
            raise TrainError(
                f"--freeze-until {scope}: no layer with parameters in that scope",
                _scope_hint(graph),
            )
        return layers[:first]
    frozen: list[str] = []
    for scope in config.freeze:
        hit = [n for n in layers if _matches(n, scope)]
        if not hit:
            raise TrainError(
                f"--freeze {scope}: no layer with parameters in that scope", _scope_hint(graph)
            )
        frozen += [n for n in hit if n not in frozen]
    return frozen


def apply_freeze(model: Any, graph: Graph, frozen: list[str]) -> tuple[int, list[str]]:
    """Stop gradients of ``frozen`` layers; their parameter count and frozen batch norms."""
    names = set(frozen)
    count = 0
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[0] in names:
            p.requires_grad_(False)
            count += p.numel()
    bns = [n for n in frozen if graph[n].op is Op.BATCH_NORM]
    return count, bns
