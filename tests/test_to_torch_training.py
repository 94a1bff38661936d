"""Train/eval semantics of the PyTorch lowering: dropout, batch norm, stochastic depth and
training-only outputs (googlenet, inception_v3 auxiliary heads) behave as in torchvision, RNG
stream included.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from helpers.torch_ref import (  # noqa: E402
    TOL,
    assert_same_buffers,
    compile_at,
    compile_spec,
    pair,
    rel_err,
    sample,
)
from torch import nn  # noqa: E402

from graphcnn.backends.to_torch import to_torch  # noqa: E402
from graphcnn.ir import Op  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


TRAIN_CASES = [
    ("resnet18", 64),
    pytest.param("alexnet", 64, marks=pytest.mark.slow),  # 61M parameters
    ("mobilenet_v2", 64),
    ("shufflenet_v2_x0_5", 64),
    ("densenet121", 64),
    ("efficientnet_b0", 96),
    ("squeezenet1_1", 64),
    ("mnasnet0_5", 64),
    pytest.param("efficientnet_v2_s", 96, marks=pytest.mark.slow),  # fused MBConv: ~1 min
]  # googlenet and inception_v3 (training-only outputs): test_training_only_outputs


@pytest.mark.parametrize(("name", "size"), TRAIN_CASES)
def test_training_mode_matches_torchvision(name: str, size: int | None) -> None:
    """Batch statistics, running-stat updates, dropout and drop_path, in torchvision's RNG order.

    Seeding torch before each model's call makes their dropout / stochastic-depth masks equal
    only if both draw the same random numbers in the same order.
    """
    g, ours, tv = pair(name, size)
    ours.train()
    tv.train()
    x = sample(g)
    with torch.no_grad():
        torch.manual_seed(123)
        out = ours(x)
        torch.manual_seed(123)
        ref = tv(x)
    if isinstance(ref, tuple):  # GoogLeNetOutputs / InceptionOutputs: compare positionally
        assert isinstance(out, tuple) and len(out) == len(ref)
        for o, r in zip(out, ref, strict=True):
            assert rel_err(o, r) <= TOL
    else:
        assert rel_err(out, ref) <= TOL
    assert_same_buffers(ours, tv, empty_ok=name in ("alexnet", "squeezenet1_1"))  # no BN
    # Back in eval mode, the (now non-trivial) running statistics are used.
    ours.eval()
    tv.eval()
    with torch.no_grad():
        assert rel_err(ours(x), tv(x)) <= TOL


def test_dropout_is_active_only_in_training() -> None:
    g = compile_at("alexnet", 64)
    m = to_torch(g)
    x = sample(g)
    m.eval()
    with torch.no_grad():
        a, b = m(x), m(x)
    assert torch.equal(a, b)
    m.train()  # alexnet has no batch norm: dropout is its only source of randomness
    with torch.no_grad():
        c, d = m(x), m(x)
        torch.manual_seed(5)
        e = m(x)
        torch.manual_seed(5)
        f = m(x)
    assert not torch.equal(c, d)
    assert not torch.equal(c, a)
    assert torch.equal(e, f)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval() -> None:
    g = compile_at("resnet18", 64)
    m = to_torch(g)
    x = sample(g, batch=4)
    other = x.clone()
    other[1:] = sample(g, batch=3, seed=1)  # same first sample, different batch mates
    bn = m.bn1
    mean0, var0 = bn.running_mean.clone(), bn.running_var.clone()

    m.eval()
    with torch.no_grad():
        a, b = m(x), m(other)
    assert torch.equal(a[0], b[0])  # eval: each sample on its own
    assert torch.equal(bn.running_mean, mean0) and torch.equal(bn.running_var, var0)
    assert int(bn.num_batches_tracked) == 0

    m.train()
    with torch.no_grad():
        c, d = m(x), m(other)
    assert not torch.allclose(c[0], d[0])  # training: normalised by the batch's statistics
    assert not torch.equal(bn.running_mean, mean0) and not torch.equal(bn.running_var, var0)
    assert int(bn.num_batches_tracked) == 2
    # momentum 0.1 from mean 0: running_mean = 0.09 * first batch mean + 0.1 * second batch mean
    conv1 = m.conv1(torch.cat([x, other]))  # bias-free conv: batch means are linear
    expect = 0.09 * conv1[:4].mean((0, 2, 3)) + 0.1 * conv1[4:].mean((0, 2, 3))
    assert torch.allclose(bn.running_mean, expect, rtol=1e-4, atol=1e-6)


def _drop_path_helper(m: nn.Module) -> Any:
    """The ``_drop_path`` function the generated module's forward calls."""
    return type(m).forward.__globals__["_drop_path"]


def test_drop_path_is_active_only_in_training() -> None:
    """efficientnet_b0: before the head (features.8) only stochastic depth is random."""
    g = compile_at("efficientnet_b0", 96)
    assert any(n.op is Op.DROP_PATH for n in g)
    m = to_torch(g)
    seen: list[torch.Tensor] = []
    m.features[8][0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    x = sample(g)

    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        with torch.no_grad():
            m(x)
        return seen.pop()

    m.eval()
    e1, e2 = run(1), run(2)
    assert torch.equal(e1, e2)
    m.train()
    t1, t1_again, t2 = run(1), run(1), run(2)
    assert torch.equal(t1, t1_again)
    assert not torch.equal(t1, t2)


@pytest.mark.parametrize(
    "p",
    [
        0.0,
        0.3,
        1.0,  # everything dropped: zeros, not NaN (as torchvision.ops.stochastic_depth)
    ],
)
def test_drop_path_matches_torchvision_stochastic_depth(p: float) -> None:
    ops = pytest.importorskip("torchvision.ops")
    g = compile_spec(f"""
network n() {{
  x = input(3, 4, 4)
  return x -> drop_path({p}) -> flatten
}}
""")
    m = to_torch(g).train()
    x = sample(g, batch=64)
    torch.manual_seed(7)
    out = m(x)
    torch.manual_seed(7)
    ref = ops.stochastic_depth(x, p, "row", training=True).flatten(1)
    assert torch.equal(out, ref)


def test_drop_path_helper_drops_whole_samples() -> None:
    m = to_torch(compile_at("efficientnet_b0", 32))
    drop_path = _drop_path_helper(m)
    x = torch.ones(4000, 3, 2, 2)
    assert drop_path(x, 0.25, False) is x
    assert drop_path(x, 0.0, True) is x
    torch.manual_seed(0)
    y = drop_path(x, 0.25, True)
    per_sample = y.flatten(1)
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)  # all or nothing
    assert per_sample[:, 0].unique().tolist() == [0.0, pytest.approx(1 / 0.75)]
    dropped = float((per_sample[:, 0] == 0).float().mean())
    assert 0.2 < dropped < 0.3
    assert abs(float(y.mean()) - 1.0) < 0.07  # expectation preserved


@pytest.mark.parametrize(
    ("name", "size", "fields", "tv_fields"),
    [
        ("googlenet", 96, ("logits", "aux2", "aux1"), ("logits", "aux_logits2", "aux_logits1")),
        pytest.param(
            "inception_v3",
            None,  # its auxiliary head needs the full 299x299 input
            ("logits", "aux"),
            ("logits", "aux_logits"),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_training_only_outputs(
    name: str, size: int | None, fields: tuple[str, ...], tv_fields: tuple[str, ...]
) -> None:
    """Train mode: a namedtuple in torchvision's positional order; eval mode: the logits."""
    g, ours, tv = pair(name, size)
    x = sample(g)
    ours.train()
    tv.train()
    with torch.no_grad():
        torch.manual_seed(3)
        out = ours(x)
        torch.manual_seed(3)
        ref = tv(x)
    assert type(ref)._fields == tv_fields
    assert isinstance(out, tuple) and type(out)._fields == fields
    for field, tv_field in zip(fields, tv_fields, strict=True):
        assert rel_err(getattr(out, field), getattr(ref, tv_field)) <= TOL
    assert [o.shape for o in out] == [(2, 1000)] * len(fields)
    assert_same_buffers(ours, tv)  # the auxiliary heads' BN statistics too
    ours.eval()
    tv.eval()
    with torch.no_grad():
        logits = ours(x)
        assert isinstance(logits, torch.Tensor)
        assert rel_err(logits, tv(x)) <= TOL
