"""peak_memory: peak activation memory of a forward pass, by liveness (an analysis).

``analyze(graph, batch, training)`` walks the nodes in their topological order, one step per
node, and counts the bytes of every tensor *storage* alive at each step. Weights are reported
apart (``weight_bytes``, parameters and buffers in their dtype) and never enter the peak, so the
peak scales exactly with the batch. ``batch`` defaults to the graph's concrete batch, else 1.

Inference (``training=False``; training-only nodes are skipped):

* A node's output is allocated at its step and freed after the step of its last consumer; a node
  with no consumer is freed right after its own step. Graph outputs stay alive to the end; the
  graph input is alive from its step until its last use.
* The bytes at a step (``per_node``) are those alive *while the node runs*: its output is
  allocated and its inputs are not yet freed. ``peak_bytes`` is the largest of them,
  ``peak_at`` the first node where it occurs and ``live_at_peak`` the nodes whose storages
  (or saved buffers) are then alive.
* Views alias their input's storage, which is counted once and lives until the last use of any
  of its views: flatten, reshape, identity, split (``narrow``) and, in inference only, dropout and
  drop_path (the identity). Every other op writes a new tensor; no op runs in place (the torch
  backend runs some ReLUs in place, so its real peak can be one tensor lower at such a step).

Training (``training=True``, training-only nodes included) adds what autograd saves for the
backward pass: a saved storage stays alive to the end of the forward pass, and extra buffers
(indices, masks) are allocated at their node and kept to the end. The model is the forward pass
only: gradients, optimiser state, workspaces and the loss are not counted. What each op saves is
:data:`SAVED` (PyTorch 2.x, checked with ``saved_tensors_hooks``); an op saves nothing when its
output does not require grad (it has no trainable parameter upstream, e.g. a pool on the raw
input). Per-channel statistics (BN's saved mean and inverse std) are O(C) and left out;
layer_norm's per-position ones are counted. A conv or linear layer with ``drop_connect`` keeps
its weight mask and masked weight (two weight-sized tensors, independent of the batch).
``saved_bytes`` is everything kept for backward once the forward pass ends (0 at inference).

``naive_bytes`` is the sum of every node's output bytes (views and the input included) plus, in
training, every extra saved buffer: the memory of a run that frees nothing, so the peak never
exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphcnn.ir import Graph, GroupOp, Node, Op

SAVED: dict[Op, tuple[str, ...]] = {
    Op.INPUT: (),
    Op.CONV2D: ("input",),
    Op.LINEAR: ("input",),
    Op.BATCH_NORM: ("input",),
    Op.LRN: ("input", "lrn_scratch"),
    Op.RELU: ("output",),
    Op.RELU6: ("input",),  # hardtanh's backward reads its input
    Op.SIGMOID: ("output",),
    Op.TANH: ("output",),
    Op.SILU: ("input",),
    Op.HARDSWISH: ("input",),
    Op.GELU: ("input",),
    Op.LEAKY_RELU: ("input",),
    Op.MAX_POOL: ("input", "indices"),
    Op.AVG_POOL: ("input",),
    Op.ADAPTIVE_AVG_POOL: ("input_unless_1x1",),
    Op.GLOBAL_AVG_POOL: (),  # lowered to a mean over H, W: only the shape is kept
    Op.DROPOUT: ("mask",),
    Op.DROP_PATH: ("sample_noise",),
    Op.ADD: (),
    Op.MUL: ("cross_inputs",),
    Op.CONCAT: (),
    Op.SPLIT: (),
    Op.CHANNEL_SHUFFLE: (),
    Op.FLATTEN: (),
    Op.RESHAPE: (),
    Op.SOFTMAX: ("output",),
    Op.IDENTITY: (),
    Op.HARDSIGMOID: ("input",),
    Op.LAYER_NORM: ("input", "norm_stats"),
    Op.LAYER_SCALE: ("input",),  # x * gamma: x for gamma's gradient
    Op.SCALE: (),  # times a Python number: nothing saved
    Op.PERMUTE: (),
    Op.UPSAMPLE: (),  # nearest's backward sums gradient blocks: only the sizes are kept
    Op.PAD: (),  # constant_pad_nd's backward narrows the gradient: only the pads are kept
}
"""What autograd keeps for backward, per op (tokens explained in :data:`TOKENS`)."""

TOKENS: dict[str, str] = {
    "input": "the input tensor(s)",
    "output": "the output tensor",
    "cross_inputs": "each input, if the other input requires grad (a*b saves b for a's grad)",
    "input_unless_1x1": "the input, unless the output is 1x1 (then PyTorch takes a mean)",
    "indices": "int64 argmax indices, one per output element",
    "mask": "the keep mask, 1 byte per element (CUDA's bool mask; CPU keeps a float tensor)",
    "sample_noise": "the per-sample keep factor, one element per sample",
    "norm_stats": "layer_norm's mean and inverse std, one element each per normalised "
    "position (per pixel)",
    "lrn_scratch": "PyTorch's composite LRN: the channel-padded squares (C + size - 1 channels) "
    "and two input-sized intermediates",
}


@dataclass(frozen=True)
class MemoryReport:
    """Peak activation memory of one forward pass (see the module docstring)."""

    peak_bytes: int
    peak_at: str
    live_at_peak: tuple[str, ...]
    naive_bytes: int
    weight_bytes: int
    per_node: tuple[tuple[str, int], ...]
    """(node, bytes alive while it runs), in execution order."""
    saved_bytes: int = 0
    """Training: the storages and extra buffers kept for backward (0 for inference)."""
    batch: int = 1
    training: bool = False

    @property
    def total_bytes(self) -> int:
        """The activation peak plus the weights."""
        return self.peak_bytes + self.weight_bytes


def _extra_bytes(token: str, node: Node) -> int:
    """Bytes per sample of an extra saved buffer (0 for tokens naming existing tensors)."""
    out = node.type
    if token == "indices":
        return out.sample_numel * 8
    if token == "mask":
        return out.sample_numel
    if token == "sample_noise":
        return out.itemsize
    if token == "norm_stats":
        return 2 * out.sample_numel // int(out.shape[node.attr_int("axis")]) * out.itemsize
    if token == "lrn_scratch":
        c, size = int(out.shape[1]), node.attr_int("size")
        return (2 * c + c + size - 1) * (out.sample_numel // c) * out.itemsize
    return 0


def analyze(graph: Graph, batch: int | None = None, training: bool = False) -> MemoryReport:
    """Liveness over the topological order, in O(nodes + edges)."""
    if batch is None:
        b = graph.inputs[0].type.shape[0] if graph.inputs else 1
        batch = b if isinstance(b, int) else 1
    nodes = [n for n in graph if training or not n.training_only]
    views = GroupOp.VIEW if training else GroupOp.INFERENCE_VIEW
    last = len(nodes) - 1
    owner: dict[str, str] = {}  # node -> the node whose storage its output is
    birth: dict[str, int] = {}  # storage owner -> step allocated
    death: dict[str, int] = {}  # storage owner -> last step it is needed
    size: dict[str, int] = {}
    grad: dict[str, bool] = {}  # does the node's output require grad
    extra = [0] * len(nodes)  # bytes of saved buffers allocated at each step
    kept: set[str] = set()  # storages saved for backward
    naive = weights = 0
    for t, node in enumerate(nodes):
        nbytes = node.type.sample_numel * node.type.itemsize * batch
        naive += nbytes
        weights += sum(p.numel for p in node.params) * node.type.itemsize
        if node.op in views:
            owner[node.name] = owner[node.inputs[0]]
        else:
            owner[node.name] = node.name
            birth[node.name], death[node.name], size[node.name] = t, t, nbytes
        for i in node.inputs:
            death[owner[i]] = t
        grad[node.name] = node.num_params > 0 or any(grad[i] for i in node.inputs)
        if not (training and grad[node.name]):
            continue
        saved: list[str] = []
        for token in SAVED[node.op]:
            if token == "input" or (token == "input_unless_1x1" and node.type.shape[2:] != (1, 1)):
                saved += node.inputs
            elif token == "output":
                saved.append(node.name)
            elif token == "cross_inputs":
                a, b = node.inputs
                saved += [x for x, other in ((a, b), (b, a)) if grad[other]]
            else:
                extra[t] += _extra_bytes(token, node) * batch
        if node.attrs.get("drop_connect"):  # the mask and the masked weight: batch-independent
            weight = next(p for p in node.params if p.name == "weight")
            extra[t] += 2 * weight.numel * node.type.itemsize
        kept.update(owner[s] for s in saved)
    kept_to_end = kept | {owner[n] for _, n in graph.outputs if n in owner}
    for name in kept_to_end:
        death[name] = last
    naive += sum(extra)

    delta = [0] * (len(nodes) + 1)
    for name, b in size.items():
        delta[birth[name]] += b
        delta[death[name] + 1] -= b
    per_node: list[tuple[str, int]] = []
    live = 0
    for t, node in enumerate(nodes):
        live += delta[t] + extra[t]
        per_node.append((node.name, live))
    if not per_node:
        return MemoryReport(0, "", (), 0, 0, (), 0, batch, training)
    at = max(range(len(per_node)), key=lambda t: per_node[t][1])
    alive = {n for n in size if birth[n] <= at <= death[n]}
    alive |= {nodes[t].name for t in range(at + 1) if extra[t]}
    return MemoryReport(
        peak_bytes=per_node[at][1],
        peak_at=per_node[at][0],
        live_at_peak=tuple(n.name for n in nodes if n.name in alive),
        naive_bytes=naive,
        weight_bytes=weights,
        per_node=tuple(per_node),
        saved_bytes=sum(size[n] for n in kept) + sum(extra),
        batch=batch,
        training=training,
    )
