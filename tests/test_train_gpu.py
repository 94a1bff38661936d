"""The CUDA, mixed-precision (fp16 with a gradient scaler, bf16) and channels_last paths.

The CPU variants run everywhere (autocast bf16 and NHWC exist on CPU too); the CUDA ones skip,
with the reason, on a machine without a GPU. Each run must learn (validation accuracy well
above the 10% of chance after two short epochs) and keep finite losses.
"""

from __future__ import annotations

from typing import Any

import pytest

import graphcnn
from graphcnn.train import TrainConfig, TrainError, train

torch: Any = pytest.importorskip("torch")
pytest.importorskip("torchvision")

SPEC = """
network tiny(classes = 10) {
  x = input(1, 8, 8)
  x = x -> conv(8, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        -> conv(8, 3, pad: 1) as conv2 -> relu -> flatten -> linear(classes) as fc
  return x
}
"""
FAST = {"epochs": 2, "threads": 1, "batch_size": 64, "lr": 0.01}
CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device in this session (torch.cuda)"
)


def _learns(**options: Any) -> None:
    r = train(graphcnn.compile_text(SPEC), TrainConfig(**FAST, **options), None)
    assert r.best_val_accuracy > 0.6, r.rows
    assert all(row["train_loss"] == row["train_loss"] for row in r.rows)  # no NaN


@pytest.mark.parametrize(
    "options",
    [
        {"amp": True, "amp_dtype": "bf16"},
        {"channels_last": True},
        {"amp": True, "channels_last": True},
    ],
    ids=["amp-bf16", "channels-last", "amp-channels-last"],
)
def test_cpu_paths(options: dict[str, Any]) -> None:
    _learns(device="cpu", **options)


@CUDA
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"amp": True, "amp_dtype": "fp16"},
        {"amp": True, "amp_dtype": "bf16"},
        {"channels_last": True, "amp": True, "amp_dtype": "fp16"},
    ],
    ids=["fp32", "amp-fp16", "amp-bf16", "channels-last-fp16"],
)
def test_cuda_paths(options: dict[str, Any]) -> None:
    _learns(device="cuda", **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_device_is_one_error() -> None:
    with pytest.raises(TrainError, match="no CUDA device is available"):
        train(graphcnn.compile_text(SPEC), TrainConfig(**FAST, device="cuda"), None)
