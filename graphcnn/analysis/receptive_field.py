"""receptive_field: the receptive field of every node, in graph-input pixels (an analysis).

``analyze(graph)`` maps each node name to a :class:`ReceptiveField` of that node's output, per
spatial axis (height, width):

* ``size``: how many input pixels one output pixel sees, from its first to its last (holes left
  by strides or dilation included; not clipped to the image, so it counts padding too and
  exceeds the image for deep networks, the usual convention);
* ``jump``: the stride of the node's output grid, in input pixels;
* ``start``: the centre of output pixel 0's receptive field, in input coordinates (pixel ``i``'s
  centre is ``start + i * jump``; negative values lie in the padding).

The recurrence, for a window layer with kernel ``k``, stride ``s``, padding ``p``, dilation ``d``
(conv2d, max_pool2d, avg_pool2d; ``ceil_mode`` only adds windows at the end, so it changes
nothing here)::

    k_eff = d * (k - 1) + 1
    size  = size_in + (k_eff - 1) * jump_in
    jump  = jump_in * s
    start = start_in + ((k_eff - 1) / 2 - p) * jump_in

Pixel ``i`` sees input pixels ``start + i*jump -/+ (size - 1) / 2`` (:meth:`ReceptiveField.bounds`).
An input node has size 1, jump 1, start 0. Conventions for the other ops:

* Pointwise along H and W (batch_norm, lrn, activations, dropout, drop_path, channel_shuffle,
  identity, channel split, softmax over channels) keep their input's field.
* *Whole map*: global_avg_pool, linear, flatten, a reshape that changes H or W and a softmax over
  H or W make every output see the whole input map, i.e. the union of all its pixels' fields:
  the recurrence with a window as large as the map (``k = s = n``, ``p = 0``). The size is the
  input's full extent in image pixels (padding included); the jump spans the whole map; the start
  is the map's centre. A 2-D (features) tensor has no spatial grid and keeps its field.
* adaptive_avg_pool2d from ``n`` to ``m`` cells is the window layer ``k = s = n / m, p = 0`` when
  ``m`` divides ``n`` (exact, and ``m = 1`` is the whole map); otherwise its windows are irregular
  and it takes the whole-map rule (an over-approximation).
* add, mul, concat (over channels): each output pixel sees the union of its inputs' pixels, so
  ``size`` is the extent of that union (the largest input size when the centres coincide, the
  usual case) and ``start`` its centre. Inputs on the output's grid must share its jump; when
  they do not, no single grid describes the output and :class:`ReceptiveFieldError` names the
  node. A broadcast input (a 1x1 gate, as in squeeze-excitation) is seen by every output pixel:
  its field goes to ``whole`` (below), and ``size``/``start`` describe the windows of the
  inputs on the grid. Concatenating along H or W is refused the same way.
* ``whole``: per axis, the ``(first, last)`` input pixels every output pixel sees through a
  broadcast branch, besides its own window: pixel ``i`` sees the union of its window and
  ``whole`` (:meth:`ReceptiveField.bounds`). Windows and pointwise ops keep it, a union takes the
  union's extent, a whole-map op takes it into its window. Kept apart, the window keeps growing
  only by the layers' own kernels (EfficientNet-B0's last map: its windows' 851 pixels and,
  through the gates, the image), where folding the gate into a nominal window made every later
  layer grow it again (4,153 pixels of a 224 image).
* A split along H or W shifts ``start`` by the chunk's offset times the jump.
* pad (left, right, top, bottom) keeps size and jump and moves output pixel 0 into the border:
  ``start = start_in - top * jump_in`` along H (``left`` along W), the window rule with
  ``k = s = 1, p = top`` (a negative pad crops: pixel 0 moves inwards). The right and bottom
  pads add or remove pixels at the end only.
* upsample by ``s`` (nearest) copies input pixel ``i // s`` into output pixel ``i``: an output
  pixel sees exactly what its source pixel sees, so ``size`` and ``start`` (pixel 0 copies pixel
  0) are kept and the grid gets ``s`` times finer: ``jump = jump_in / s``. The grid is nominal,
  as for a broadcast input: pixel ``i``'s true centre is ``start + (i // s) * jump_in``; a
  following window of span ``k_eff - 1`` a multiple of ``s`` (a 3x3 conv after a 2x upsample)
  gets its exact size. ``s`` must divide ``jump_in`` (HRNet upsamples its stride-8 and deeper
  branches back to stride 4); otherwise :class:`ReceptiveFieldError` names the node.
  Bilinear upsampling mixes two neighbouring source pixels per axis: ``size = size_in +
  jump_in`` (the most any output pixel sees; a pixel that samples a source centre exactly sees
  one), the same ``jump``, and pixel ``i`` samples source position ``(i + 0.5) / s - 0.5``, so
  ``start = start_in + (1 / (2 s) - 1 / 2) * jump_in``. With ``align_corners`` it samples
  ``i * (n - 1) / (s n - 1)`` and the grid (``start_in``, ``jump_in / s``) is nominal: a true
  centre is at most ``jump_in`` off. An upsample to a ``size`` that is a whole multiple of
  the input is the same as that scale; any other size (LR-ASPP's 33 -> 65) puts the output
  pixels on no regular grid of the input: each is taken to see the whole input map (the
  whole-map rule's size and centre, an over-approximation, as for an irregular adaptive pool)
  on a nominal grid of ``jump = floor(jump_in * n / out)`` (at least 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, GroupOp, Node, Op, TensorType, attr_int, attr_ints, attr_pair


class ReceptiveFieldError(GraphcnnError):
    """No single (size, jump, start) describes a node's output grid."""


Span = tuple[int, int]
"""Inclusive ``(first, last)`` input pixels along one axis."""


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a node's output, per axis (height, width); see the module doc."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    whole: tuple[Span | None, Span | None] = (None, None)
    """Per axis, the ``(first, last)`` input pixels that every output pixel sees besides its
    own window, through a branch broadcast over the map (squeeze-excitation's gate, ASPP's
    pooled branch); None where there is none."""

    def bounds(self, row: int = 0, col: int = 0) -> tuple[tuple[int, int], tuple[int, int]]:
        """Inclusive input-pixel ranges ``((top, bottom), (left, right))`` of output pixel
        ``(row, col)``, before clipping to the image (its window and :attr:`whole`)."""
        return self.axis_bounds(0, row), self.axis_bounds(1, col)

    def axis_bounds(self, axis: int, i: int) -> Span:
        lo = round(self.start[axis] + i * self.jump[axis] - (self.size[axis] - 1) / 2)
        hi, whole = lo + self.size[axis] - 1, self.whole[axis]
        return (lo, hi) if whole is None else (min(lo, whole[0]), max(hi, whole[1]))


Axis = tuple[int, int, float]
"""(size, jump, start) along one axis."""

Rule = Callable[[Node, Sequence[ReceptiveField], Sequence[TensorType]], ReceptiveField]


def _axes(rf: ReceptiveField) -> tuple[Axis, Axis]:
    return (rf.size[0], rf.jump[0], rf.start[0]), (rf.size[1], rf.jump[1], rf.start[1])


def _field(
    h: Axis, w: Axis, whole: tuple[Span | None, Span | None] = (None, None)
) -> ReceptiveField:
    return ReceptiveField((h[0], w[0]), (h[1], w[1]), (h[2], w[2]), whole)


def _map(rf: ReceptiveField, axis: int, n: int) -> Span:
    """What the ``n`` pixels of a map see together along ``axis``: its first pixel's first
    input pixel to its last pixel's last (:attr:`ReceptiveField.whole` included)."""
    return rf.axis_bounds(axis, 0)[0], rf.axis_bounds(axis, n - 1)[1]


def _extent(t: TensorType) -> tuple[int, int]:
    """(H, W) of a [N, C, H, W] tensor; (1, 1) for anything without a spatial grid."""
    return (int(t.shape[2]), int(t.shape[3])) if len(t.shape) == 4 else (1, 1)


def _step(a: Axis, k: int, s: int, p: int, d: int = 1) -> Axis:
    size, jump, start = a
    keff = d * (k - 1) + 1
    return size + (keff - 1) * jump, jump * s, start + ((keff - 1) / 2 - p) * jump


def _window(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    k, s = attr_pair(node.attrs, "kernel"), attr_pair(node.attrs, "stride")
    p, d = attr_pair(node.attrs, "padding"), attr_pair(node.attrs, "dilation", (1, 1))
    h, w = _axes(rfs[0])
    return _field(_step(h, k[0], s[0], p[0], d[0]), _step(w, k[1], s[1], p[1], d[1]), rfs[0].whole)


def _pad(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    left, _, top, _ = attr_ints(node.attrs, "pads")
    h, w = _axes(rfs[0])
    return _field(_step(h, 1, 1, top), _step(w, 1, 1, left), rfs[0].whole)


def _upsample(
    node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]
) -> ReceptiveField:
    rf = rfs[0]
    if "size" in node.attrs:  # a whole multiple of the input is a scale; otherwise no grid
        (h, w), (oh, ow) = _extent(xs[0]), attr_pair(node.attrs, "size")
        if oh % h or ow % w:  # every pixel sees the whole map, on the nearest whole grid
            jump = (max(1, rf.jump[0] * h // oh), max(1, rf.jump[1] * w // ow))
            return ReceptiveField(rf.size, jump, rf.start, (_map(rf, 0, h), _map(rf, 1, w)))
        scale = (oh // h, ow // w)
    else:
        scale = attr_pair(node.attrs, "scale")
    if any(j % s for j, s in zip(rf.jump, scale, strict=True)):
        raise ReceptiveFieldError(
            f"{node.name}: upsample by {scale[0]}x{scale[1]} of a grid of jump "
            f"{rf.jump[0]}x{rf.jump[1]} has no whole-pixel jump: the scale must divide the jump"
        )
    jump = (rf.jump[0] // scale[0], rf.jump[1] // scale[1])
    if node.attrs.get("mode", "nearest") != "bilinear":
        # NOTE: size kept (each output pixel copies one input pixel), the grid s times finer
        return ReceptiveField(rf.size, jump, rf.start, rf.whole)
    corners = bool(node.attrs["align_corners"])
    axes = []
    for size, j_in, start, s, j in zip(rf.size, rf.jump, rf.start, scale, jump, strict=True):
        if s == 1:  # bilinear by 1 samples each pixel itself
            axes.append((size, j, start))
            continue
        # two neighbouring source pixels; pixel i samples (i + 0.5) / s - 0.5 (align_corners:
        # i * (n - 1) / (s * n - 1), kept on the nominal grid i / s)
        shift = 0.0 if corners else (1 / (2 * s) - 0.5) * j_in
        axes.append((size + j_in, j, start + shift))
    return _field(axes[0], axes[1], rf.whole)


def _keep(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    return rfs[0]


def _whole(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    out: list[Axis] = []
    for axis, n in enumerate(_extent(xs[0])):
        lo, hi = _map(rfs[0], axis, n)
        out.append((hi - lo + 1, rfs[0].jump[axis] * n, (lo + hi) / 2))
    return _field(out[0], out[1])


def _linear(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    # last_dim: the same linear map at every position (channels-last), as a 1x1 conv
    return rfs[0] if len(xs[0].shape) > 2 else _whole(node, rfs, xs)


def _adaptive(
    node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]
) -> ReceptiveField:
    n, m = _extent(xs[0]), attr_pair(node.attrs, "output")
    out = []
    for a, ni, mi in zip(_axes(rfs[0]), n, m, strict=True):
        k = ni // mi if ni % mi == 0 else ni  # irregular windows: the whole map
        out.append(_step(a, k, k, 0))
    return _field(out[0], out[1], rfs[0].whole)


def _reshape(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    same = len(node.type.shape) == 4 and _extent(node.type) == _extent(xs[0])
    return rfs[0] if same else _whole(node, rfs, xs)


def _softmax(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    spatial = len(xs[0].shape) == 4 and attr_int(node.attrs, "axis") >= 2
    return _whole(node, rfs, xs) if spatial else rfs[0]


def _split(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    axis = attr_int(node.attrs, "axis")
    if len(xs[0].shape) != 4 or axis < 2:
        return rfs[0]
    offset = sum(attr_ints(node.attrs, "sizes")[: attr_int(node.attrs, "index")])
    start = list(rfs[0].start)
    start[axis - 2] += offset * rfs[0].jump[axis - 2]
    return ReceptiveField(rfs[0].size, rfs[0].jump, (start[0], start[1]), rfs[0].whole)


def _combine(node: Node, rfs: Sequence[ReceptiveField], xs: Sequence[TensorType]) -> ReceptiveField:
    if node.op is Op.CONCAT and len(node.type.shape) == 4 and attr_int(node.attrs, "axis") >= 2:
        raise ReceptiveFieldError(
            f"{node.name}: concat along a spatial axis has no single receptive-field grid"
        )
    out: list[Axis] = []
    wholes: list[Span | None] = []
    for axis, n in enumerate(_extent(node.type)):
        # (lo, hi, jump) of pixel 0 per input on the output's grid; a broadcast input
        # (extent 1 < n) is seen whole by every output pixel
        spans, seen = [], []
        for rf, x in zip(rfs, xs, strict=True):
            if _extent(x)[axis] != n:
                seen.append(_map(rf, axis, 1))
                continue
            lo = rf.start[axis] - (rf.size[axis] - 1) / 2
            spans.append((lo, lo + rf.size[axis] - 1, rf.jump[axis]))
            whole = rf.whole[axis]
            if whole is not None:
                seen.append(whole)
        jumps = {j for _, _, j in spans}
        if n > 1 and len(jumps) > 1:
            raise ReceptiveFieldError(
                f"{node.name}: {node.op} inputs {', '.join(node.inputs)} have different jumps "
                f"{sorted(jumps)} along {'HW'[axis]}: their pixels do not line up"
            )
        jump = max(rf.jump[axis] for rf in rfs) if n == 1 else jumps.pop()
        size, start = 0, 0.0
        for i in (n - 1, 0):  # the union's extent is largest at one of the ends
            lo = min(a + i * j for a, _, j in spans)
            hi = max(b + i * j for _, b, j in spans)
            size, start = max(size, round(hi - lo) + 1), (lo + hi) / 2
        out.append((size, jump, start))
        wholes.append((min(a for a, _ in seen), max(b for _, b in seen)) if seen else None)
    return _field(out[0], out[1], (wholes[0], wholes[1]))


RULES: dict[Op, Rule] = {
    Op.INPUT: _keep,  # unused: an input node starts a fresh field
    Op.CONV2D: _window,
    Op.LINEAR: _linear,
    Op.BATCH_NORM: _keep,
    Op.LRN: _keep,
    Op.RELU: _keep,
    Op.RELU6: _keep,
    Op.SIGMOID: _keep,
    Op.TANH: _keep,
    Op.SILU: _keep,
    Op.HARDSWISH: _keep,
    Op.GELU: _keep,
    Op.MAX_POOL: _window,
    Op.AVG_POOL: _window,
    Op.ADAPTIVE_AVG_POOL: _adaptive,
    Op.GLOBAL_AVG_POOL: _whole,
    Op.PAD: _pad,
    Op.UPSAMPLE: _upsample,
    Op.DROPOUT: _keep,
    Op.DROP_PATH: _keep,
    Op.ADD: _combine,
    Op.MUL: _combine,
    Op.CONCAT: _combine,
    Op.SPLIT: _split,
    Op.CHANNEL_SHUFFLE: _keep,
    Op.FLATTEN: _whole,
    Op.RESHAPE: _reshape,
    Op.SOFTMAX: _softmax,
    Op.IDENTITY: _keep,
    # per-position ops: a permute (NCHW <-> NHWC) moves each position's values, mixes none
    **{op: _keep for op in GroupOp.PER_POSITION},
}
"""One rule per op: ``(node, input fields, input types) -> output field``."""

PIXEL = ReceptiveField((1, 1), (1, 1), (0.0, 0.0))


def analyze(graph: Graph) -> dict[str, ReceptiveField]:
    """The receptive field of every node's output, by node name, in one topological sweep."""
    fields: dict[str, ReceptiveField] = {}
    for node in graph:
        if node.op is Op.INPUT:
            fields[node.name] = PIXEL
            continue
        rfs = [fields[i] for i in node.inputs]
        fields[node.name] = RULES[node.op](node, rfs, [graph[i].type for i in node.inputs])
    return fields
