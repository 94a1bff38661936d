"""Training objectives: train an accepted candidate with ``graphcnn train``'s Python API.

The base :class:`graphcnn.train.TrainConfig` comes from ``--train KEY=VALUE`` (any of its
fields; a short budget by default: :data:`SHORT_EPOCHS` epochs), the searched training
hyperparameters replace its fields per trial. Each epoch's validation accuracy is reported to
the Optuna trial, so the study's pruner (``--pruner median``) can stop a hopeless candidate
early: the trial then ends PRUNED, counted apart from the cost rejections.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from graphcnn.search.candidate import SearchError

SHORT_EPOCHS = 2


def train_fields() -> list[str]:
    """The names a ``--space`` or ``--train`` may give to training."""
    from graphcnn.train import TrainConfig

    return [f.name for f in fields(TrainConfig)]


def _value(text: str) -> Any:
    try:
        v = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(v) if isinstance(v, list) else v


def base_config(items: Sequence[str]) -> Any:
    """``["epochs=3", "data=digits"]`` -> a checked TrainConfig (``epochs`` defaults short)."""
    from graphcnn.train import TrainConfig

    names = set(train_fields())
    kwargs: dict[str, Any] = {"epochs": SHORT_EPOCHS}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in names:
            raise SearchError(
                f"--train {item!r}: expected FIELD=VALUE with a training option",
                f"fields: {', '.join(sorted(names))}",
            )
        kwargs[key] = _value(text.strip())
    return _checked(TrainConfig(), kwargs)


def _checked(base: Any, changes: Mapping[str, Any]) -> Any:
    try:
        cfg = replace(base, **changes)
    except TypeError as e:
        raise SearchError(f"bad training option: {e}") from None
    cfg.check()
    return cfg


class _TrialReporter:
    """A ``graphcnn.train`` Reporter that reports validation accuracy to an Optuna trial."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def start(self, epoch: int, epochs: int, batches: int) -> None: ...

    def advance(self, loss: float) -> None: ...

    def end(self, row: Mapping[str, float]) -> None:
        import optuna

        epoch = int(row["epoch"])
        self.trial.report(float(row["val_accuracy"]), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")


def train_candidate(
    graph: Any, base: Any, overrides: Mapping[str, Any], trial: Any
) -> dict[str, float]:
    """Train one candidate; its best validation accuracy and lowest validation loss."""
    from graphcnn.train import train

    cfg = _checked(base, overrides)
    result = train(graph, cfg, out=None, reporter=_TrialReporter(trial))
    losses = [float(r["val_loss"]) for r in result.rows if "val_loss" in r]
    return {
        "val_accuracy": float(result.best_val_accuracy),
        "val_loss": min(losses) if losses else float("nan"),
    }
