"""fold_bn: fold inference batch norm into the neighbouring conv or linear layer.

Before / after, in spec terms::

    x -> conv(64, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu     # before
    x -> conv(64, 3, pad: 1, bias: true) as conv1 -> relu                    # after

In eval mode BN is the per-channel affine map ``y = s * x + t`` with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - running_mean * s``.

*After a layer* (conv/linear -> BN, the layer's output used by nothing else): scale the layer's
output channels, ``W'[o] = W[o] * s[o]``, ``b'[o] = (b[o] - mean[o]) * s[o] + beta[o]``
(a bias is added where the layer had none).

*Before a layer* (BN -> conv/linear, the BN's output used by nothing else): scale the input
channels and push the shift through the weights, ``W'[o, i] = W[o, i] * s[i]``,
``b'[o] = b[o] + sum_{i,kh,kw} W[o, i, kh, kw] * t[i]``. This is legal only for an unpadded,
ungrouped conv (or a linear layer):

    # NOTE: BN before a padded conv cannot fold: the padding zeros would need the shift t too,
    # and the conv only sees them after the BN; folding would change the border outputs.

Refused (each reported as ``not folded: <bn>: <reason>``): BN after anything but a conv or
linear layer with no other users (e.g. after a concat, as in DenseNet), BN followed by an
activation (pre-activation ResNet: ``bn -> relu -> conv``), before a padded or grouped conv;
never across any other op (``layer_norm``, ``layer_scale``, ``scale``, ``permute``, ...: only a
directly adjacent conv or linear absorbs it); never into a channels-last ``linear(last_dim:
true)`` (BN scales axis 1, the linear maps the last axis) nor into a layer with ``drop_connect``
(its training-time mask would see the folded weights; ``remove_dropout`` runs first in the
inference pipeline).
The fold runs in float64 and writes back in the weights' dtype. Without weights only the graph
changes (a bias parameter is declared), which is what profiling an inference graph needs.
"""

from __future__ import annotations

from typing import Any

from graphcnn.ir import Graph, GroupOp, Node, Op, freeze
from graphcnn.passes.manager import PassResult, Weights
from graphcnn.shapes import infer_node

LAYERS = GroupOp.MACS


def _with_bias(graph: Graph, layer: Node) -> Node:
    attrs = {**layer.attrs, "bias": True}
    out, params = infer_node(layer.op, attrs, [graph[i].type for i in layer.inputs])
    return layer.replace(attrs=freeze(attrs), params=params, type=out)


def _affine(weights: Weights, bn: Node) -> tuple[Any, Any]:
    import numpy as np

    w = {p.name: weights[f"{bn.name}.{p.name}"].astype(np.float64) for p in bn.params}
    c = w["running_mean"].shape[0]
    gamma = w.get("weight", np.ones(c))
    beta = w.get("bias", np.zeros(c))
    s = gamma / np.sqrt(w["running_var"] + float(bn.attrs["eps"]))  # type: ignore[arg-type]
    return s, beta - w["running_mean"] * s


def _unfit(layer: Node) -> str | None:
    """Why a conv/linear layer cannot absorb a batch norm, or None."""
    if layer.attrs.get("last_dim"):
        # NOTE: BN scales axis 1; a channels-last linear maps the last axis: they do not meet
        return f"{layer.name} is a channels-last linear (last_dim)"
    if layer.attrs.get("drop_connect"):
        return f"{layer.name} drops its weights in training (drop_connect): run remove_dropout"
    return None


def _why_not(graph: Graph, bn: Node) -> str | None:
    """None if ``bn`` folds into its producer or consumer, else the reason it does not."""
    src = graph[bn.inputs[0]]
    if src.op in LAYERS and graph.uses(src.name) == 1:
        return _unfit(src)
    users = graph.users(bn.name)
    if graph.uses(bn.name) == 1 and users and graph[users[0]].op in LAYERS:
        dst = graph[users[0]]
        if _unfit(dst):
            return _unfit(dst)
        if dst.op is Op.CONV2D and dst.attrs["padding"] != (0, 0):
            return f"precedes the padded conv {dst.name} (the padding would miss the shift)"
        if dst.op is Op.CONV2D and dst.attrs["groups"] != 1:
            return f"precedes the grouped conv {dst.name}"
        return None
    if src.op in LAYERS:
        role = " (it is a graph output)" if graph.is_output(src.name) else ""
        return f"{src.name} has {graph.uses(src.name)} uses{role}"
    if graph.is_output(bn.name):
        return "it is a graph output and has no conv or linear layer before it"
    after = f"follows {src.op} {src.name}"
    nxt = ", ".join(f"{graph[u].op}" for u in users) or "nothing"
    return f"{after} and feeds {nxt}: no conv or linear layer to fold into"


def run(graph: Graph, weights: Weights | None = None) -> PassResult:
    replace: dict[str, Node] = {}
    remove: dict[str, str | None] = {}
    notes: list[str] = []
    new_weights = dict(weights) if weights is not None else None
    for bn in graph:
        if bn.op is not Op.BATCH_NORM:
            continue
        reason = _why_not(graph, bn)
        src = graph[bn.inputs[0]]
        if reason is None and (src.name in replace or src.name in remove):
            reason = f"{src.name} already absorbed another batch norm"
        if reason is not None:
            notes.append(f"not folded: {bn.name}: {reason}")
            continue
        if src.op in LAYERS and graph.uses(src.name) == 1:
            layer, after = src, True
        else:
            layer, after = graph[graph.users(bn.name)[0]], False
            if layer.name in replace:
                notes.append(f"not folded: {bn.name}: {layer.name} already absorbed one")
                continue
        replace[layer.name] = _with_bias(graph, layer)
        remove[bn.name] = layer.name if after else bn.inputs[0]
        if new_weights is not None:
            _fold(new_weights, bn, layer, after)
            for p in bn.params:
                del new_weights[f"{bn.name}.{p.name}"]
    if not remove:
        return PassResult(graph, notes=notes)
    return PassResult(
        graph.rewrite(replace, remove),
        new_weights,
        removed=list(remove),
        rewritten=list(replace),
        notes=notes,
    )


def _fold(weights: Weights, bn: Node, layer: Node, after: bool) -> None:
    import numpy as np

    s, t = _affine(weights, bn)
    wkey, bkey = f"{layer.name}.weight", f"{layer.name}.bias"
    w = weights[wkey]
    dtype = w.dtype
    w64 = w.astype(np.float64)
    b64 = weights[bkey].astype(np.float64) if bkey in weights else np.zeros(w.shape[0])
    extra = (1,) * (w.ndim - 2)
    if after:  # scale output channels
        w_new = w64 * s.reshape(-1, 1, *extra)
        b_new = b64 * s + t
    else:  # scale input channels, push the shift through the weights
        w_new = w64 * s.reshape(1, -1, *extra)
        b_new = b64 + (w64 * t.reshape(1, -1, *extra)).sum(axis=tuple(range(1, w.ndim)))
    weights[wkey] = w_new.astype(dtype)
    weights[bkey] = b_new.astype(dtype)
