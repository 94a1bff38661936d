"""The PyTorch lowering computes what the references compute (backends/to_torch/).

Every zoo model torchvision has computes what torchvision computes, with torchvision's own
(random) weights loaded strictly into ``to_torch(graph)``; the paper-only models match
``tests/reference/paper_models.py`` the same way; a spec using every op matches the ops' meaning
written by hand.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from helpers.torch_ref import (  # noqa: E402
    SLOW,
    TOL,
    TORCHVISION_MODELS,
    compile_spec,
    pair,
    rel_err,
    sample,
    slow_marked,
)
from torch import nn  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_torch import to_torch  # noqa: E402
from graphcnn.ir import Op  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


def test_every_torchvision_zoo_model_is_covered() -> None:
    assert len(TORCHVISION_MODELS) >= 36
    assert SLOW <= set(TORCHVISION_MODELS)


@pytest.mark.parametrize("name", slow_marked(TORCHVISION_MODELS))
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
    "alexnet_v1",
    "zfnet",
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


ALL_OPS = """
network allops(classes = 5) {
  x = input(4, 12, 12)
  a = x -> conv(8, 3, pad: 1, bias: false) as c1 -> bn(eps: 1e-3, momentum: 0.01) as bn1
        -> hardswish
  b = x -> conv(8, (3, 1), pad: (1, 0), groups: 2) as c2 -> gelu
  y = (a + b) -> identity -> relu6
  p, q = split(y, [3, 5])
  z = concat(q, p) -> channel_shuffle(2) -> lrn(3, alpha: 1e-3, beta: 0.5, k: 2.0)
  s = z -> reshape([8, 144]) -> softmax(axis: 2) -> reshape([8, 12, 12])
  t = s * sigmoid(z) -> tanh -> silu
  t = t -> maxpool(3, stride: 2, pad: 1, ceil: true)
        -> avgpool(3, stride: 1, pad: 1, count_include_pad: false)
  t = t -> drop_path(0.2) -> dropout(0.3)
  u = t -> adaptive_avgpool(2) -> flatten -> linear(classes) as fc
  v = t -> global_avgpool -> flatten -> linear(6, bias: false) as fc2 -> bn as bn2 -> relu
  return u, v
}
"""


def _all_ops_reference(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ALL_OPS written by hand from the spec's meaning (eval mode)."""
    a = F.conv2d(x, m.c1.weight, None, padding=1)
    bn1 = m.bn1
    a = (a - bn1.running_mean[:, None, None]) / torch.sqrt(bn1.running_var[:, None, None] + 1e-3)
    a = a * bn1.weight[:, None, None] + bn1.bias[:, None, None]
    a = a * (a + 3).clamp(0, 6) / 6
    b = F.conv2d(x, m.c2.weight, m.c2.bias, padding=(1, 0), groups=2)
    b = 0.5 * b * (1 + torch.erf(b / math.sqrt(2)))
    y = (a + b).clamp(0, 6)
    z = torch.cat([y[:, 3:], y[:, :3]], 1)
    n = z.shape[0]
    z = z.reshape(n, 2, 4, 12, 12).permute(0, 2, 1, 3, 4).reshape(n, 8, 12, 12)
    z = nn.LocalResponseNorm(3, alpha=1e-3, beta=0.5, k=2.0)(z)
    s = torch.softmax(z.reshape(n, 8, 144), dim=2).reshape(n, 8, 12, 12)
    t = torch.tanh(s * torch.sigmoid(z))
    t = t * torch.sigmoid(t)
    t = nn.MaxPool2d(3, 2, 1, ceil_mode=True)(t)
    t = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(t)
    u = m.fc(F.adaptive_avg_pool2d(t, 2).flatten(1))
    v = t.mean((2, 3)) @ m.fc2.weight.T
    bn2 = m.bn2
    v = (v - bn2.running_mean) / torch.sqrt(bn2.running_var + 1e-5) * bn2.weight + bn2.bias
    return u, v.clamp_min(0)


def test_every_op_lowers_to_its_torch_meaning() -> None:
    """Ops no zoo model uses (gelu, hardswish, softmax, reshape, identity, BatchNorm1d) too."""
    g = compile_spec(ALL_OPS)
    assert {n.op for n in g} == set(Op)
    m = to_torch(g)
    assert isinstance(m.bn2, nn.BatchNorm1d) and isinstance(m.bn1, nn.BatchNorm2d)
    assert (m.bn1.eps, m.bn1.momentum) == (1e-3, 0.01)
    assert m.c2.groups == 2 and m.c2.kernel_size == (3, 1) and m.c1.bias is None
    assert m.fc2.bias is None
    with torch.no_grad():  # non-trivial running statistics, so eval mode really uses them
        for bn in (m.bn1, m.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    m.eval()
    x = sample(g, batch=3)
    with torch.no_grad():
        out = m(x)
        ref = _all_ops_reference(m, x)
    assert isinstance(out, tuple) and len(out) == 2  # two inference outputs: a plain tuple
    for o, r in zip(out, ref, strict=True):
        assert rel_err(o, r) <= TOL
