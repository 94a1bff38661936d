"""Optimizer and learning-rate schedule of a run, from torch.optim.

- ``sgd`` (momentum, optional Nesterov) or ``adamw``. Weight decay (L2 for SGD, decoupled for
  AdamW) applies to conv and linear weights only, not to biases and batch-norm parameters, as
  timm and torchvision's reference scripts do. With ``body_lr_scale`` != 1 every layer but the
  head trains at ``lr * body_lr_scale`` (discriminative learning rates for fine-tuning).
- Schedules step once per epoch: ``step`` (x ``gamma`` every ``step_size`` epochs), ``cosine``
  (to 0 at the last epoch), ``plateau`` ("divide by 10 when validation accuracy plateaus":
  ``ReduceLROnPlateau`` on validation accuracy) or ``constant``; ``warmup_epochs`` ramps
  linearly from lr/10 first.
"""

from __future__ import annotations

from typing import Any

from graphcnn.train.config import TrainConfig, TrainError

WARMUP_START = 0.1


def optimizer(model: Any, config: TrainConfig, heads: set[str]) -> Any:
    """The optimizer over the trainable parameters, grouped by decay and learning rate."""
    import torch

    # One group per distinct (weight decay, lr): fewer groups, fewer optimizer kernel launches.
    groups: dict[tuple[float, float], list[Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = p.ndim > 1  # conv/linear weights; biases and BN affine parameters are 1-D
        head = name.rsplit(".", 1)[0] in heads
        key = (
            config.weight_decay if decay else 0.0,
            config.lr * (1.0 if head else config.body_lr_scale),
        )
        groups.setdefault(key, []).append(p)
    if not groups:
        raise TrainError(
            "nothing to train: every layer is frozen",
            "freeze fewer scopes (e.g. --freeze-until fc)",
        )
    params = [{"params": ps, "weight_decay": wd, "lr": lr} for (wd, lr), ps in groups.items()]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    return torch.optim.AdamW(params, lr=config.lr)


class Schedule:
    """One ``step(val_accuracy)`` per epoch; ``state_dict``/``load_state_dict`` for resume."""

    def __init__(self, opt: Any, config: TrainConfig):
        import torch.optim.lr_scheduler as s

        self.warmup = min(config.warmup_epochs, config.epochs - 1)
        self.epoch = 0
        self.warm = s.LinearLR(opt, WARMUP_START, 1.0, self.warmup) if self.warmup else None
        rest = max(1, config.epochs - self.warmup)
        self.main: Any
        if config.schedule == "step":
            self.main = s.StepLR(opt, config.step_size, config.gamma)
        elif config.schedule == "cosine":
            self.main = s.CosineAnnealingLR(opt, rest)
        elif config.schedule == "plateau":
            self.main = s.ReduceLROnPlateau(
                opt, mode="max", factor=config.gamma, patience=config.plateau_patience
            )
        else:
            self.main = s.ConstantLR(opt, 1.0, 0)
        self.opt = opt

    def step(self, val_accuracy: float) -> None:
        import torch.optim.lr_scheduler as s

        self.epoch += 1
        if self.warm is not None and self.epoch <= self.warmup:
            self.warm.step()
        elif isinstance(self.main, s.ReduceLROnPlateau):
            self.main.step(val_accuracy)
        else:
            self.main.step()

    def lr(self) -> float:
        return float(max(g["lr"] for g in self.opt.param_groups))

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "warm": self.warm.state_dict() if self.warm is not None else None,
            "main": self.main.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        if self.warm is not None and state["warm"] is not None:
            self.warm.load_state_dict(state["warm"])
        self.main.load_state_dict(state["main"])
