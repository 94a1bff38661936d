"""The PyTorch lowering computes what the references compute (backends/to_torch/).

Every zoo model torchvision has computes what torchvision computes, with torchvision's own
(random) weights loaded strictly into ``to_torch(graph)``; the paper-only models match
``tests/reference/paper_models.py`` the same way; a spec using every op matches the ops' meaning
written by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from helpers.torch_ref import (  # noqa: E402
    SLOW,
    TOL,
    TORCHVISION_MODELS,
    pair,
    rel_err,
    sample,
)
from helpers.zoo import zoo_params  # noqa: E402
from torch import nn  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_torch import to_torch  # noqa: E402
from graphcnn.ir import Op  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


def test_every_torchvision_zoo_model_is_covered() -> None:
    assert len(TORCHVISION_MODELS) >= 36
    assert SLOW <= set(TORCHVISION_MODELS)


@pytest.mark.parametrize("name", zoo_params(TORCHVISION_MODELS))
def test_matches_torchvision_in_eval_mode(name: str) -> None:
    g, ours, tv = pair(name)
    ours.eval()
    tv.eval()
    x = sample(g, batch=1 if name in SLOW else 2)
    with torch.no_grad():
        out, ref = ours(x), tv(x)
    assert isinstance(out, torch.Tensor)  # eval mode: logits only, auxiliary heads skipped
    assert out.shape == (x.shape[0], 1000)
    assert rel_err(out, ref) <= TOL


PAPER_EQUIVALENT = [
    "lenet5",
    pytest.param("alexnet_v1", marks=pytest.mark.slow),
    pytest.param("zfnet", marks=pytest.mark.slow),
    "nin",
    "preact_resnet18",
    "mobilenet_v1",
    "shufflenet_v1",
    pytest.param("se_resnet50", marks=pytest.mark.slow),
    pytest.param("densenet264", marks=pytest.mark.slow),
]
# googlenet_paper is left out: its reference module names layers differently
# (conv2_reduce / conv1x1, not conv2.conv / branch1.conv), so no strict state_dict load.


@pytest.mark.parametrize("name", PAPER_EQUIVALENT)
def test_matches_paper_reference_implementation(name: str) -> None:
    """The models torchvision lacks (LRN, SE gates, channel shuffle, tanh, ...)."""
    pytest.importorskip("torchvision")
    from reference.paper_models import REFERENCE_MODELS

    torch.manual_seed(0)
    ref_model = REFERENCE_MODELS[name].build().eval()
    g = graphcnn.compile(name)
    ours = to_torch(g)
    ours.load_state_dict(ref_model.state_dict(), strict=True)
    ours.eval()
    x = sample(g)
    with torch.no_grad():
        assert rel_err(ours(x), ref_model(x)) <= TOL


ALL_OPS = Path(__file__).resolve().parent / "data" / "all_ops.gcnn"
"""The shared spec using every op (tests/test_ops.py checks that it does)."""


def _c11(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None]


def _bn(v: torch.Tensor, bn: nn.Module, eps: float) -> torch.Tensor:
    shape = (-1, 1, 1) if v.dim() == 4 else (-1,)
    out = (v - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + eps)
    return out if bn.weight is None else out * bn.weight.view(shape) + bn.bias.view(shape)


def _layer_norm(v: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    mean = v.mean(dim, keepdim=True)
    var = ((v - mean) ** 2).mean(dim, keepdim=True)
    return (v - mean) / torch.sqrt(var + eps)


def _hardsigmoid(v: torch.Tensor) -> torch.Tensor:
    return (v + 3).clamp(0, 6) / 6


def _all_ops_reference(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """tests/data/all_ops.gcnn written by hand from the ops' meaning (eval mode)."""
    n = x.shape[0]
    x = _bn(F.conv2d(x, m.stem.weight, None, padding=1), m.stem_bn, 1e-3)
    x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    a = F.conv2d(x, m.dil.weight, m.dil.bias, padding=2, dilation=2, groups=4).clamp(0, 6)
    b = F.conv2d(x, m.tall.weight, m.tall.bias, padding=(1, 0))
    b = b * torch.sigmoid(b)
    c = x * _hardsigmoid(x)  # dropout and drop_path: the identity in eval mode
    gate = F.conv2d(x.mean((2, 3), keepdim=True), m.gate.weight, m.gate.bias)  # drop_connect
    d = torch.sigmoid(x) * torch.tanh(gate)
    x = torch.cat([a + b, c, d], 1)
    x = x.reshape(n, 4, 12, 16, 16).transpose(1, 2).reshape(n, 48, 16, 16)
    x = torch.cat([x[:, 16:], x[:, :16]], 1)
    x = nn.LocalResponseNorm(5, alpha=1e-2, beta=0.5, k=2.0)(x)
    x = _bn(x, m.nab, 1e-5)
    r = F.conv2d(x, m.dw.weight, m.dw.bias, padding=3, groups=48).permute(0, 2, 3, 1)
    r = _layer_norm(r, -1, 1e-6) * m.ln.weight + m.ln.bias
    r = r @ m.pw1.weight.T + m.pw1.bias
    r = 0.5 * r * (1 + torch.tanh(math.sqrt(2 / math.pi) * (r + 0.044715 * r**3)))
    r = (r @ m.pw2.weight.T + m.pw2.bias).permute(0, 3, 1, 2) * m.gamma
    x = x + r * 0.17
    x = _layer_norm(x, 1, 1e-6) * _c11(m.ln2.weight) + _c11(m.ln2.bias)
    x = x * _c11(m.gamma2)
    x = 0.5 * _hardsigmoid(x) + F.leaky_relu(x, 0.2) / 4
    x = F.pad(x, (0, 1, 1, 0), value=-math.inf)  # pad (left, right, top, bottom)
    x = nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x)
    x = nn.AvgPool2d(2, count_include_pad=False)(x)
    x = x.repeat_interleave(2, dim=2).repeat_interleave(4, dim=3)  # upsample([2, 4])
    x = nn.AvgPool2d(3, 1, 1)(x)
    x = torch.softmax(F.adaptive_avg_pool2d(x, 2), 1).reshape(n, 48, 4).flatten(1)
    x = _bn(x @ m.fc1.weight.T + m.fc1.bias, m.fc1_bn, 1e-5)
    x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return x @ m.fc.weight.T + m.fc.bias


def test_every_op_lowers_to_its_torch_meaning() -> None:
    """Ops no zoo model uses (gelu, layer_norm, layer_scale, scale, permute, ...) too."""
    g = graphcnn.compile(str(ALL_OPS))
    assert {n.op for n in g} == set(Op)
    m = to_torch(g)
    assert isinstance(m.fc1_bn, nn.BatchNorm1d) and isinstance(m.stem_bn, nn.BatchNorm2d)
    assert (m.stem_bn.eps, m.stem_bn.momentum) == (1e-3, 0.01)
    assert m.dil.groups == 4 and m.tall.kernel_size == (3, 1) and m.stem.bias is None
    assert isinstance(m.ln, nn.LayerNorm) and m.ln.eps == 1e-6
    assert isinstance(m.gamma, nn.Parameter) and m.gamma.shape == (48, 1, 1)
    assert m.gamma2.shape == (48,) and float(m.gamma2.detach()[0]) == 0.5  # layer_scale's init
    with torch.no_grad():  # non-trivial statistics and affine maps, so eval mode uses them
        for bn in (m.stem_bn, m.nab, m.fc1_bn):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        for norm in (m.stem_bn, m.fc1_bn, m.ln, m.ln2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        m.gamma.uniform_(0.5, 1.5)
        m.gamma2.uniform_(0.5, 1.5)
    m.eval()
    x = sample(g, batch=3)
    with torch.no_grad():
        out = m(x)
        ref = _all_ops_reference(m, x)
    assert isinstance(out, torch.Tensor)
    assert rel_err(out, ref) <= TOL
