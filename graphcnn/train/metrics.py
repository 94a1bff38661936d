"""The per-epoch record of a run: ``metrics.csv``, ``curves.png`` and ``run.json``.

``metrics.csv`` has one row per epoch (:data:`COLUMNS`); ``curves.png`` plots loss and accuracy,
train against validation, with matplotlib's Agg backend (no display needed) — the curves to
"babysit the learning process" by: a training loss that falls while the validation loss rises
is overfitting, a flat one a learning rate too small (or far too large).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graphcnn.weights import write_atomic

COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
    "images_per_second",
)

Row = Mapping[str, float]


def write_csv(rows: Sequence[Row], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (int(r[k]) if k == "epoch" else f"{r[k]:.6g}") for k in COLUMNS})
    write_atomic(path, buf.getvalue())


def plot_curves(rows: Sequence[Row], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, train vs validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(10, 4), dpi=100)
    for i, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(epochs, [r[f"train_{metric}"] for r in rows], "o-", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in rows], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(path, buf.getvalue())


def write_json(obj: Mapping[str, Any], path: Path) -> None:
    write_atomic(path, json.dumps(obj, indent=2) + "\n")
