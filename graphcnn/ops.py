"""Every operation the IR knows (:class:`Op`), and the op categories every stage asks.

An op's semantics live in one table per stage, one entry per op (``SHAPE_RULES``, ``COST_RULES``,
the spec language's ``LAYERS``, each backend's ``LOWERINGS``, ...); ``tests/test_ops.py`` walks
this enum through every table. What several stages must agree on about groups of ops lives here
once, in :class:`GroupOp` (as tinygrad keeps ``GroupOp`` beside ``Ops``): a pass, an analysis or
a backend asks ``node.op in GroupOp.VIEW`` and never lists ops again.
"""

from __future__ import annotations

import enum


class Op(str, enum.Enum):
    """Every operation the IR knows. Each backend and rule table has one entry per member."""

    INPUT = "input"
    CONV2D = "conv2d"
    LINEAR = "linear"
    BATCH_NORM = "batch_norm"
    LRN = "lrn"
    RELU = "relu"
    RELU6 = "relu6"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    SILU = "silu"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    GELU = "gelu"
    LEAKY_RELU = "leaky_relu"
    LAYER_NORM = "layer_norm"
    LAYER_SCALE = "layer_scale"
    SCALE = "scale"
    MAX_POOL = "max_pool2d"
    AVG_POOL = "avg_pool2d"
    ADAPTIVE_AVG_POOL = "adaptive_avg_pool2d"
    PAD = "pad"
    UPSAMPLE = "upsample"
    GLOBAL_AVG_POOL = "global_avg_pool"
    DROPOUT = "dropout"
    DROP_PATH = "drop_path"
    ADD = "add"
    MUL = "mul"
    CONCAT = "concat"
    SPLIT = "split"
    CHANNEL_SHUFFLE = "channel_shuffle"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    PERMUTE = "permute"
    SOFTMAX = "softmax"
    IDENTITY = "identity"

    def __str__(self) -> str:
        return self.value


class GroupOp:
    """Op categories, each defined once. Membership is what the stages rely on."""

    ACTIVATION = frozenset(
        {
            Op.RELU, Op.RELU6, Op.SIGMOID, Op.TANH, Op.SILU, Op.HARDSWISH, Op.HARDSIGMOID,
            Op.GELU, Op.LEAKY_RELU,
        }
    )  # fmt: skip
    """Elementwise, one input, shape kept, no parameters, 1 FLOP per element."""

    PER_POSITION = ACTIVATION | {Op.LAYER_NORM, Op.LAYER_SCALE, Op.SCALE, Op.PERMUTE}
    """One input, each output position computed from the same position of the input only
    (channels may mix): the receptive field is kept. Not an affine map a batch norm may be
    folded across (fold_bn folds only into an adjacent conv or linear layer)."""

    MACS = frozenset({Op.CONV2D, Op.LINEAR})
    """Ops whose multiply-accumulates the MAC count includes; the layers BN folds into."""

    RESHAPE = frozenset({Op.FLATTEN, Op.RESHAPE})
    """Views that change the shape but not the data's order: consecutive ones merge."""

    VIEW = RESHAPE | {Op.IDENTITY, Op.SPLIT, Op.PERMUTE}
    """Ops whose output aliases its input's storage: no data moves, nothing is computed."""

    STOCHASTIC = frozenset({Op.DROPOUT, Op.DROP_PATH})
    """Random in training, the identity at inference (inverted scaling needs no rescale)."""

    INFERENCE_VIEW = VIEW | STOCHASTIC
    """Ops that alias their input in an inference forward pass."""

    BINARY = frozenset({Op.ADD, Op.MUL})
    """Ops of exactly two tensor inputs."""

    VARIADIC = frozenset({Op.CONCAT})
    """Ops of one or more tensor inputs."""

    SOURCE = frozenset({Op.INPUT})
    """Ops without inputs."""

    # NOTE: pad is in no category: it copies its input into a new tensor (not a view), its
    # border is a constant that no per-channel affine map commutes with (fold_bn never folds
    # across it), and it computes nothing (no MACs).
    # NOTE: upsample (nearest) is in no category either: it copies each input pixel into an
    # s x s block of a new tensor (not a view, not per-position: the output grid is finer).


def arity(op: Op) -> int | None:
    """How many tensor inputs ``op`` takes; None for any number of at least one."""
    if op in GroupOp.SOURCE:
        return 0
    if op in GroupOp.BINARY:
        return 2
    return None if op in GroupOp.VARIADIC else 1


__all__ = ["GroupOp", "Op", "arity"]
