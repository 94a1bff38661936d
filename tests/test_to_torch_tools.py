"""The lowered module works with torch's tools: torch.jit.trace, torch.export, torch.compile,
autograd, channels_last (half precision and CUDA where a GPU exists).
"""

from __future__ import annotations

import shutil
import warnings

import pytest

torch = pytest.importorskip("torch")

from helpers.torch_ref import TOL, compile_at, compile_spec, pair, rel_err, sample  # noqa: E402
from torch import nn  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_torch import to_torch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


def test_jit_trace() -> None:
    g = compile_at("shufflenet_v2_x0_5", 64)  # split (narrow) and channel_shuffle (view)
    m = to_torch(g).eval()
    x = sample(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated in recent torch
        traced = torch.jit.trace(m, x, check_trace=False)
    with torch.no_grad():
        assert rel_err(traced(x), m(x)) <= TOL


@pytest.mark.slow
def test_torch_export_with_a_dynamic_batch() -> None:
    g = compile_at("resnet18", 64)
    m = to_torch(g).eval()
    x = sample(g)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(m, (x,), dynamic_shapes=({0: batch},))
    exported = ep.module()
    for n in (2, 3):
        x = sample(g, batch=n, seed=n)
        with torch.no_grad():
            assert rel_err(exported(x), m(x)) <= TOL


@pytest.mark.slow
def test_torch_export_skips_training_only_heads_in_eval() -> None:
    g = compile_at("googlenet", 96)
    m = to_torch(g).eval()
    x = sample(g)
    ep = torch.export.export(m, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert targets  # a real graph
    params = set(ep.state_dict)
    assert "fc.weight" in params and "aux1.fc1.weight" in params
    with torch.no_grad():
        out = ep.module()(x)
        assert isinstance(out, torch.Tensor) and rel_err(out, m(x)) <= TOL


TINY_AUX = """
network tiny() {
  x = input(3, 16, 16) -> conv(8, 3, pad: 1) as conv -> bn as bn -> relu
  y = x -> global_avgpool -> flatten -> dropout(0.5) -> linear(10) as fc
  training { aux = x -> adaptive_avgpool(2) -> flatten -> linear(10) as aux }
  return y, aux
}
"""


@pytest.mark.slow
def test_torch_compile_captures_the_whole_graph() -> None:
    """backend="eager": Dynamo capture only (cheap), in both modes, without graph breaks."""
    torch._dynamo.reset()
    try:
        g = compile_spec(TINY_AUX)
        m = to_torch(g)
        compiled = torch.compile(m, backend="eager", fullgraph=True)
        x = sample(g, batch=4)
        m.train()
        torch.manual_seed(0)
        out = compiled(x)
        torch.manual_seed(0)
        ref = m(x)
        assert type(out)._fields == ("y", "aux")
        for o, r in zip(out, ref, strict=True):
            assert rel_err(o, r) <= TOL
        m.eval()
        with torch.no_grad():
            out = compiled(x)
            assert isinstance(out, torch.Tensor) and rel_err(out, m(x)) <= TOL
        r18 = compile_at("resnet18", 64)
        m18 = to_torch(r18).eval()
        x18 = sample(r18)
        compiled18 = torch.compile(m18, backend="eager", fullgraph=True)
        with torch.no_grad():
            assert rel_err(compiled18(x18), m18(x18)) <= TOL
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_with_inductor() -> None:
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++", "gcc", "cc")):
        pytest.skip("torch.compile (inductor) needs a C++ compiler; none on PATH")
    import torch._inductor.config as inductor_config

    g = graphcnn.compile("lenet5")
    m = to_torch(g).eval()
    x = sample(g, batch=4)
    torch._dynamo.reset()
    try:
        with inductor_config.patch(compile_threads=1), torch.no_grad():
            out = torch.compile(m)(x)
    except Exception as e:  # noqa: BLE001 - skip only for a missing/broken C++ toolchain
        text = f"{type(e).__name__}: {e}"
        if any(s in text for s in ("InvalidCxxCompiler", "CppCompileError", "C++ compiler")):
            pytest.skip(f"inductor cannot build C++ here: {text[:200]}")
        raise
    finally:
        torch._dynamo.reset()
    with torch.no_grad():
        assert rel_err(out, m(x)) <= TOL


def test_autograd_reaches_every_parameter_and_matches_torchvision() -> None:
    g, ours, tv = pair("resnet18", 64)
    ours.train()
    tv.train()
    xa = sample(g).requires_grad_()
    xb = xa.detach().clone().requires_grad_()
    ours(xa).square().sum().backward()
    tv(xb).square().sum().backward()
    theirs = dict(tv.named_parameters())
    for name, p in ours.named_parameters():
        assert p.requires_grad and p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
        assert rel_err(p.grad, theirs[name].grad) <= 1e-4, name
    assert xa.grad is not None and rel_err(xa.grad, xb.grad) <= 1e-4
    assert not any(b.requires_grad for b in ours.buffers())


def test_autograd_reaches_auxiliary_heads_through_training_outputs() -> None:
    g = compile_at("googlenet", 96)
    m = to_torch(g).train()
    x = sample(g)
    out = m(x)
    sum(o.square().sum() for o in out).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert missing == []
    # Using the logits only leaves the auxiliary heads without gradients.
    m.zero_grad(set_to_none=True)
    m(x).logits.square().sum().backward()
    no_grad = {n.split(".")[0] for n, p in m.named_parameters() if p.grad is None}
    assert no_grad == {"aux1", "aux2"}


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resnet18", 64),
        ("shufflenet_v2_x0_5", 64),
        pytest.param("efficientnet_b0", 64, marks=pytest.mark.slow),
        pytest.param("densenet121", 64, marks=pytest.mark.slow),
        pytest.param("googlenet", 96, marks=pytest.mark.slow),
        ("mobilenet_v2", 64),
    ],
)
def test_channels_last(name: str, size: int) -> None:
    g = compile_at(name, size)
    m = to_torch(g).eval()
    x = sample(g)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=torch.channels_last)
        conv = next(mod for mod in m.modules() if isinstance(mod, nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        out = m(x.to(memory_format=torch.channels_last))
    assert rel_err(out, ref) <= TOL


needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available (no GPU on this machine)"
)


@needs_cuda
def test_cuda_float32_matches_cpu() -> None:
    g = compile_at("resnet18", 64)
    m = to_torch(g).eval()
    x = sample(g)
    with torch.no_grad():
        ref = m(x)
        m = m.cuda()
        assert all(p.is_cuda for p in m.parameters()) and all(b.is_cuda for b in m.buffers())
        old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            out = m(x.cuda())
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    assert out.is_cuda
    assert rel_err(out.cpu(), ref) <= 1e-4


@needs_cuda
def test_cuda_half_precision() -> None:
    g = compile_at("resnet18", 64)
    m = to_torch(g).eval()
    x = sample(g)
    with torch.no_grad():
        ref = m(x)
        out = m.cuda().half()(x.cuda().half())
    assert out.dtype == torch.float16
    assert rel_err(out.float().cpu(), ref) <= 2e-2


@needs_cuda
def test_cuda_training_outputs_and_drop_path() -> None:
    g = compile_at("googlenet", 96)
    m = to_torch(g).cuda().train()
    out = m(sample(g).cuda())
    assert type(out)._fields == ("logits", "aux2", "aux1") and all(o.is_cuda for o in out)
    e = compile_at("efficientnet_b0", 64)
    me = to_torch(e).cuda().train()
    assert torch.isfinite(me(sample(e).cuda())).all()
