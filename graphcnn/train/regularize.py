"""Regularisers that act on the graph or the batch, and early stopping.

- :func:`set_dropout`: ``--dropout P`` replaces the ``p`` of every dropout node of the graph.
- :func:`set_drop_connect`: ``--drop-connect P`` replaces the DropConnect ``p`` of every conv
  and linear that has one; in a network with none, it puts DropConnect on every linear layer
  (Wan et al. 2013 drop the weights of fully connected layers). ``P = 0`` removes it.
- :func:`batch_mixer`: MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019) from torchvision's
  ``transforms.v2``; one of the two per batch when both are on. Targets become class
  probabilities, convex combinations of two one-hot labels.
- :func:`soft_cross_entropy`: cross-entropy with label smoothing that takes class indices or
  probabilities alike.
- :class:`EarlyStopping`: stop when the monitored value has not improved for ``patience``
  epochs.

Cutout lives with the per-sample transforms (:func:`graphcnn.train.data.cutout`), dropout and
DropConnect in the graph itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphcnn.ir import Graph, Op

if TYPE_CHECKING:
    import torch


def set_dropout(graph: Graph, p: float) -> tuple[Graph, int]:
    """``graph`` with every dropout node's ``p`` replaced, and how many nodes changed."""
    replace = {
        n.name: n.replace(attrs={**n.attrs, "p": float(p)}) for n in graph if n.op is Op.DROPOUT
    }
    return (graph.rewrite(replace=replace) if replace else graph), len(replace)


def set_drop_connect(graph: Graph, p: float) -> tuple[Graph, int, bool]:
    """``graph`` with DropConnect ``p`` on its conv/linear nodes that have it, or (when none
    has) on every linear node; how many changed; whether it was added (no node had it)."""
    has = [n for n in graph if "drop_connect" in n.attrs]
    added = not has
    targets = has or [n for n in graph if n.op is Op.LINEAR]
    replace = {}
    for n in targets:
        attrs = {k: v for k, v in n.attrs.items() if k != "drop_connect"}
        if p > 0:
            attrs["drop_connect"] = float(p)
        replace[n.name] = n.replace(attrs=attrs)
    return (graph.rewrite(replace=replace) if replace else graph), len(replace), added


def batch_mixer(mixup: float, cutmix: float, classes: int) -> Any | None:
    """A batch transform ``(x, y) -> (x', y_soft)``, or None when both alphas are 0."""
    from torchvision.transforms import v2

    mixers: list[Any] = []
    if mixup > 0:
        mixers.append(v2.MixUp(alpha=mixup, num_classes=classes))
    if cutmix > 0:
        mixers.append(v2.CutMix(alpha=cutmix, num_classes=classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


def soft_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy; ``target`` holds class indices [N] or probabilities [N, C]."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)


def hard_labels(target: torch.Tensor) -> torch.Tensor:
    """Class indices of a target (the dominant class of a mixed one)."""
    return target.argmax(1) if target.ndim == 2 else target


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a strictly better value (0: never stop).

    ``mode`` "max" for an accuracy, "min" for a loss. :meth:`step` takes one epoch's value and
    answers whether to stop now; ``best_epoch`` is 1-based.
    """

    patience: int
    mode: str = "max"
    best: float | None = None
    best_epoch: int = 0
    epochs_seen: int = 0

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def step(self, value: float) -> bool:
        self.epochs_seen += 1
        if self.improved(value):
            self.best, self.best_epoch = value, self.epochs_seen
        return self.patience > 0 and self.epochs_seen - self.best_epoch >= self.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "epochs_seen": self.epochs_seen}

    def load(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        self.epochs_seen = int(state["epochs_seen"])
