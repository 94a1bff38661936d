"""The configuration of one training run (:class:`TrainConfig`) and its error (:class:`TrainError`).

Every ``graphcnn train`` option is a field here, so the Python API and the CLI share one
definition, ``run.json`` records the whole run, and ``--resume`` can refuse a run whose settings
changed. :meth:`TrainConfig.check` validates values that need no data or model (ranges,
names); what needs them (class counts, scopes, folders) is checked where they are loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from graphcnn.errors import GraphcnnError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "plateau", "constant")
AMP_DTYPES = ("bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = (
    "flip",
    "vflip",
    "crop",
    "pad-crop",
    "rotate",
    "affine",
    "color-jitter",
    "pca-color",
    "autoaugment",
    "randaugment",
    "trivialaugment",
    "augmix",
)
"""The names ``--augment`` accepts, in the order they apply whatever order they are given."""


class TrainError(GraphcnnError):
    """A training run cannot start or continue: bad data, options, weights or resources."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (defaults: a quick LeNet-5 run on digits)."""

    data: str = "digits"
    val_split: float = 0.2
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    plateau_patience: int = 2
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()
    cutout: int = 0
    mixup: float = 0.0
    cutmix: float = 0.0
    dropout: float | None = None
    drop_connect: float | None = None
    early_stopping: int = 0
    amp: bool = False
    amp_dtype: str = "bf16"
    channels_last: bool = False
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    threads: int = 0
    weights: str | None = None
    freeze: tuple[str, ...] = ()
    freeze_until: str | None = None
    body_lr_scale: float = 1.0
    aux_weight: float = 0.3

    def check(self) -> None:
        """Raise :class:`TrainError` on the first out-of-range or unknown value."""

        def need(ok: bool, message: str, hint: str | None = None) -> None:
            if not ok:
                raise TrainError(message, hint)

        need(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        need(self.lr > 0, f"--lr must be positive, got {self.lr}")
        need(
            self.optimizer in OPTIMIZERS,
            f"unknown optimizer {self.optimizer!r}",
            f"one of {', '.join(OPTIMIZERS)}",
        )
        need(
            self.schedule in SCHEDULES,
            f"unknown schedule {self.schedule!r}",
            f"one of {', '.join(SCHEDULES)}",
        )
        need(0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        need(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(0 < self.val_split < 1, f"--val-split must be in (0, 1), got {self.val_split}")
        need(
            0 <= self.label_smoothing < 1,
            f"--label-smoothing must be in [0, 1), got {self.label_smoothing}",
        )
        need(self.mixup >= 0 and self.cutmix >= 0, "--mixup and --cutmix take an alpha >= 0")
        need(self.cutout >= 0, f"--cutout takes a square side in pixels >= 0, got {self.cutout}")
        need(
            self.dropout is None or 0 <= self.dropout < 1,
            f"--dropout must be in [0, 1), got {self.dropout}",
        )
        need(
            self.drop_connect is None or 0 <= self.drop_connect < 1,
            f"--drop-connect must be in [0, 1), got {self.drop_connect}",
        )
        need(self.early_stopping >= 0, "--early-stopping takes a patience in epochs >= 0")
        need(self.warmup_epochs >= 0, "--warmup takes a number of epochs >= 0")
        need(
            self.amp_dtype in AMP_DTYPES,
            f"unknown --amp-dtype {self.amp_dtype!r}",
            f"one of {', '.join(AMP_DTYPES)}",
        )
        need(
            self.device in DEVICES,
            f"unknown --device {self.device!r}",
            f"one of {', '.join(DEVICES)}",
        )
        need(self.threads >= 0, "--threads must be >= 0 (0: automatic)")
        need(self.workers >= 0, "--workers must be >= 0")
        need(self.body_lr_scale > 0, "--body-lr-scale must be positive")
        need(
            not (self.freeze and self.freeze_until),
            "--freeze and --freeze-until are exclusive",
            "give one of them",
        )
        unknown = [a for a in self.augment if a not in AUGMENTS]
        need(
            not unknown,
            f"unknown augmentation {', '.join(map(repr, unknown))}",
            f"the policies are: {', '.join(AUGMENTS)}",
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["augment"] = list(self.augment)
        out["freeze"] = list(self.freeze)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in obj.items() if k in names}
        for k in ("augment", "freeze"):
            if k in kwargs:
                kwargs[k] = tuple(kwargs[k])
        return cls(**kwargs)
