"""Shared by the PyTorch lowering tests (tests/test_to_torch_*.py): torchvision's models as the
reference, graphs at a chosen input size, seeded samples and the relative error they are judged by.

Import it after ``pytest.importorskip("torch")``: it imports torch.
"""

from __future__ import annotations

import pytest
import torch
from conftest import torchvision_meta
from torch import nn

import graphcnn
from graphcnn import zoo
from graphcnn.backends.to_torch import to_torch

META = torchvision_meta()
TORCHVISION_MODELS = [m for m in zoo.names() if m in META]

# The large ones, run at batch 1. Measured on the 2-core dev machine (torch 2.14 CPU):
# `-m slow -n 2` took ~65 s of CPU time (195 s wall while other jobs held the cores, load
# average 6-11); the single largest forward pass, efficientnet_b7 at 600x600, takes ~2.5 s on one
# idle core. That is under the ~4-minute budget, so every model runs at its own resolution
# (no reduced input sizes).
SLOW = {
    *(m for m in TORCHVISION_MODELS if m.startswith("vgg")),
    *(f"efficientnet_b{i}" for i in range(4, 8)),
    *(f"efficientnet_v2_{v}" for v in "sml"),  # 384-480 px: 16-53 s each on the dev machine
    "resnet152",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "densenet161",
    "densenet201",
    "inception_v3",
    *(f"convnext_{v}" for v in ("tiny", "small", "base")),  # 4.5-15 GMACs at 224
    *(f"regnet_{v}" for v in ("x_8gf", "x_16gf", "y_8gf", "y_16gf")),  # 8-16 GMACs at 224
}
TOL = 1e-5  # max |ours - reference| / max |reference|, float32


def torchvision_model(name: str, seed: int = 0) -> nn.Module:
    """torchvision's architecture with random (seeded) weights, auxiliary heads included."""
    tvm = pytest.importorskip("torchvision.models")
    kwargs = (
        {"aux_logits": True, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    )
    torch.manual_seed(seed)
    return tvm.get_model(name, weights=None, **kwargs)


def compile_at(name: str, size: int | None = None) -> graphcnn.Graph:
    return (
        graphcnn.compile(name)
        if size is None
        else graphcnn.compile(name, input_shape=(3, size, size))
    )


def pair(name: str, size: int | None = None) -> tuple[graphcnn.Graph, nn.Module, nn.Module]:
    """(graph, our module, torchvision's module) holding the same weights."""
    tv = torchvision_model(name)
    g = compile_at(name, size)
    ours = to_torch(g)
    ours.load_state_dict(tv.state_dict(), strict=True)
    return g, ours, tv


def sample(g: graphcnn.Graph, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *g.inputs[0].type.sample_shape, generator=gen)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert isinstance(ours, torch.Tensor), type(ours)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    ref, ours = ref.detach().float(), ours.detach().float()
    assert torch.isfinite(ref).all()
    scale = ref.abs().max()
    assert scale > 0
    return float((ours - ref).abs().max() / scale)


def assert_same_buffers(ours: nn.Module, tv: nn.Module, empty_ok: bool = False) -> None:
    """BN running statistics (and num_batches_tracked) equal torchvision's."""
    ours_state, tv_state = ours.state_dict(), tv.state_dict()
    buffers = [k for k in tv_state if "running_" in k or k.endswith("num_batches_tracked")]
    assert buffers or empty_ok
    for k in buffers:
        assert torch.allclose(ours_state[k], tv_state[k], rtol=1e-5, atol=1e-7), k


def compile_spec(text: str) -> graphcnn.Graph:
    return graphcnn.compile_text(text)
