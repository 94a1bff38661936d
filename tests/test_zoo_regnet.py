"""The RegNet zoo (graphcnn/zoo/regnet.gcnn) is torchvision's, variant by variant.

The spec computes each variant's stages from torchvision's six numbers (depth, w_0, w_a, w_m,
group width, SE ratio) as ``BlockParams.from_init_params`` does; every variant's stage widths,
depths and group widths must equal torchvision's own, without building a model. The largest ones
(:data:`helpers.zoo.HUGE`: regnet_x_32gf, regnet_y_32gf, regnet_y_128gf), which the zoo-wide
whole- model tests skip, are checked here in torch: torchvision's ``state_dict`` (BN statistics
randomised) loads strictly into the generated module, whose eval-mode outputs equal torchvision's
at 64x64, one model at a time. Settings torchvision refuses are located spec errors. Published
params and GMACs and the ``state_dict`` names of all fifteen are tests/test_zoo.py's.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from helpers.zoo import HUGE, compiled

import graphcnn
from graphcnn import zoo
from graphcnn.errors import SpecError
from graphcnn.ir import Graph, Op

REGNETS = [m for m in zoo.names() if m.startswith("regnet_")]
TOLERANCE = 1e-5
"""Largest output difference allowed, relative to the largest output."""


def test_the_zoo_has_every_torchvision_regnet() -> None:
    tv = pytest.importorskip("torchvision.models")
    assert set(REGNETS) == {m for m in tv.list_models() if m.startswith("regnet_")}
    assert {zoo.spec_path(m).name for m in REGNETS} == {"regnet.gcnn"}


def stages(g: Graph) -> list[tuple[int, int, int]]:
    """(width, blocks, channels per group) of each stage ``trunk_output.blockK``."""
    found: dict[str, list[tuple[int, int]]] = {}
    for n in g:
        parts = n.name.split(".")
        if n.op is Op.CONV2D and parts[0] == "trunk_output" and parts[3:] == ["f", "b", "0"]:
            width = n.type.sample_shape[0]
            found.setdefault(parts[1], []).append((width, width // n.attr_int("groups")))
    return [(blocks[0][0], len(blocks), blocks[0][1]) for blocks in found.values()]


@pytest.mark.parametrize("name", REGNETS)
def test_stages_equal_torchvisions_block_params(name: str, monkeypatch: Any) -> None:
    """The spec's log-space quantisation, stage split and group rounding are torchvision's."""
    pytest.importorskip("torch")
    from torchvision.models import regnet

    # the builder's BlockParams, read before any model is built
    monkeypatch.setattr(regnet, "_regnet", lambda params, *args, **kw: params)
    params = getattr(regnet, name)()
    theirs = list(zip(params.widths, params.depths, params.group_widths, strict=True))
    g = compiled(name)
    assert stages(g) == theirs
    se = [n for n in g if n.name.endswith(".f.se.fc1")]
    assert len(se) == (sum(params.depths) if params.se_ratio else 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HUGE & set(REGNETS)))
def test_huge_regnet_loads_torchvisions_state_dict_and_outputs_equal(
    name: str, torch1: Any
) -> None:
    from graphcnn.backends.to_torch.module import build_module

    torch = torch1
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    theirs = tvm.get_model(name, weights=None).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # away from the identity, so BN shows
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
    g = compiled(name, (3, 64, 64))
    # built on meta and handed torchvision's tensors: one copy of the weights (2.6 GB for
    # regnet_y_128gf), not two
    with torch.device("meta"):
        ours = build_module(g).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, ref = ours(x), theirs(x)
    assert out.shape == ref.shape == (1, 1000)
    assert torch.isfinite(ref).all()
    assert (out - ref).abs().max() <= TOLERANCE * ref.abs().max()
    del ours, theirs
    gc.collect()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("16, 48, 27.89, 1.0, 8", "w_m > 1"),  # log(w_m) = 0: no quantisation step
        ("16, 48, -1.0, 2.09, 8", "w_a >= 0"),
        ("16, 20, 27.89, 2.09, 8", "multiple of 8"),  # torchvision's ValueError too
    ],
)
def test_invalid_settings_are_located_spec_errors(args: str, message: str) -> None:
    text = f'import "regnet.gcnn"\nmodel bad = regnet({args})'
    with pytest.raises(SpecError, match=message) as info:
        graphcnn.compile_text(text, network="bad")
    assert "regnet.gcnn:" in str(info.value)
