"""The zoo's modern families against torchvision: MobileNetV3 (graphcnn/zoo/mobilenet_v3.gcnn)
and ConvNeXt (graphcnn/zoo/convnext.gcnn).

The zoo-wide tests (tests/test_zoo.py: params, MACs, state_dict names; the torch, ONNX,
training and pipeline tests) take these models like any other. Here: every normalisation,
dropout and stochastic-depth layer carries torchvision's own eps, momentum and probability
(so training and round trips are exact, not only inference); a training-mode forward draws
the same masks as torchvision's under the same seed; and convnext_large, which the zoo-wide
whole-model tests skip (helpers.zoo.HUGE), loads torchvision's state_dict strictly and
computes the same at a reduced input.
"""

from __future__ import annotations

from typing import Any

import pytest

import graphcnn
from graphcnn.ir import Op

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")

from helpers.torch_ref import TOL, assert_same_buffers, pair, rel_err  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]

MODELS = [
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
]

# IR op -> (torchvision module types, the attributes that must agree: ours -> theirs)
SETTINGS: dict[Op, tuple[tuple[str, ...], dict[str, str]]] = {
    Op.BATCH_NORM: (("BatchNorm2d",), {"eps": "eps", "momentum": "momentum"}),
    Op.LAYER_NORM: (("LayerNorm", "LayerNorm2d"), {"eps": "eps"}),
    Op.DROPOUT: (("Dropout",), {"p": "p"}),
    Op.DROP_PATH: (("StochasticDepth",), {"p": "p", "mode": "mode"}),
}


def _settings(name: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(ours, torchvision's): layer name -> its eps/momentum/p, for every layer of SETTINGS."""
    with torch.device("meta"):  # attributes only: no memory, no initialisation
        tv = tvm.get_model(name, weights=None)
    kinds = {t: op for op, (types, _) in SETTINGS.items() for t in types}
    theirs = {}
    for path, m in tv.named_modules():
        op = kinds.get(type(m).__name__)
        if op is not None:
            theirs[path] = {ours: getattr(m, attr) for ours, attr in SETTINGS[op][1].items()}
    g = graphcnn.compile(name)
    ours = {n.name: {k: n.attrs[k] for k in SETTINGS[n.op][1]} for n in g if n.op in SETTINGS}
    return ours, theirs


@pytest.mark.parametrize("name", MODELS)
def test_norms_dropout_and_stochastic_depth_match_torchvision(name: str) -> None:
    ours, theirs = _settings(name)
    assert sorted(ours) == sorted(theirs)
    assert ours == theirs  # exact: BN momentum 0.01, LN eps 1e-6, drop_path p = 0.5 * 7 / 35


def test_convnext_stochastic_depth_grows_linearly_to_the_recipes_probability() -> None:
    for name, last in (("convnext_tiny", 0.1), ("convnext_small", 0.4), ("convnext_base", 0.5)):
        g = graphcnn.compile(name)
        ps = [n.attrs["p"] for n in g if n.op is Op.DROP_PATH]
        assert ps[0] == 0.0 and ps[-1] == pytest.approx(last)
        steps = [b - a for a, b in zip(ps, ps[1:], strict=False)]
        assert steps == pytest.approx([last / (len(ps) - 1)] * len(steps))


@pytest.mark.parametrize(
    ("name", "size", "batch"),
    [
        ("mobilenet_v3_small", 96, 4),
        pytest.param("mobilenet_v3_large", 96, 4, marks=pytest.mark.slow),
        pytest.param("convnext_small", 64, 8, marks=pytest.mark.slow),
    ],
)
def test_training_forward_draws_torchvisions_masks(name: str, size: int, batch: int) -> None:
    """Train mode (batch statistics, dropout, stochastic depth) under one seed: the same
    random draws in the same order, so the same output and the same BN running statistics."""
    g, ours, tv = pair(name, size)
    with torch.no_grad():  # a layer scale of 1e-6 would hide a dropped branch
        for key, v in tv.state_dict().items():
            if key.endswith("layer_scale"):
                v.uniform_(0.5, 1.5)
    ours.load_state_dict(tv.state_dict(), strict=True)
    ours.train()
    tv.train()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(7)
    out = ours(x)
    torch.manual_seed(7)
    ref = tv(x)
    assert rel_err(out, ref) <= TOL
    assert_same_buffers(ours, tv, empty_ok=name.startswith("convnext"))
    if name.startswith("convnext"):  # some residual branches were dropped, or this proves little
        torch.manual_seed(7)
        with torch.no_grad():
            assert rel_err(ours.eval()(x), ref) > 1e-3


@pytest.mark.slow
def test_convnext_large_loads_torchvisions_state_dict_and_computes_the_same() -> None:
    """helpers.zoo.HUGE skips it in the zoo-wide tests: 198M parameters, here at 64x64."""
    g, ours, tv = pair("convnext_large", 64)
    ours.eval()
    tv.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, ref = ours(x), tv(x)
    assert out.shape == (1, 1000)
    assert rel_err(out, ref) <= TOL
