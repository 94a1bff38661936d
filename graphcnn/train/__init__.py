"""Training a graph's lowered PyTorch module: ``graphcnn train`` and its Python API.

Stage "train", after the backends: it lowers the graph with
:func:`graphcnn.backends.to_torch.to_torch` and trains it. One idea per module:
``config`` (:class:`TrainConfig`, :class:`TrainError`), ``data`` (digits / ImageFolder,
augmentation policies, loaders), ``regularize`` (dropout override, MixUp/CutMix, early
stopping), ``transfer`` (checkpoints, head replacement, freezing), ``optim`` (optimizer and
schedule), ``distributed`` (torchrun / DDP), ``checkpoint`` and ``metrics`` (the files a run
writes), ``engine`` (the loop, :func:`train`)::

    import graphcnn
    from graphcnn.train import TrainConfig, train

    g = graphcnn.compile("lenet5")
    result = train(g, TrainConfig(epochs=5, augment=("affine",)), out="runs/lenet5")
    result.best_val_accuracy, result.best_epoch
"""

from __future__ import annotations

from graphcnn.train.config import TrainConfig, TrainError
from graphcnn.train.engine import Reporter, TrainResult, train

__all__ = ["Reporter", "TrainConfig", "TrainError", "TrainResult", "train"]
