"""What goes into the lowered module: bad inputs are ValueError/TypeError, bad weights a
WeightsError listing every key; seeded initialisation is reproducible and follows PyTorch's default
bounds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.torch_ref import compile_at, pair  # noqa: E402
from torch import nn  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_torch import to_torch  # noqa: E402
from graphcnn.weights import WeightsError, init_weights  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


@pytest.fixture(scope="module")
def lenet() -> tuple[graphcnn.Graph, nn.Module]:
    g = graphcnn.compile("lenet5")
    return g, to_torch(g).eval()


@pytest.mark.parametrize(
    "shape", [(2, 3, 32, 32), (2, 1, 28, 28), (2, 1, 32, 31), (1, 32, 32), (2, 1, 1, 32, 32)]
)
def test_wrong_input_shape_is_a_value_error(
    lenet: tuple[graphcnn.Graph, nn.Module], shape: tuple[int, ...]
) -> None:
    _, m = lenet
    with pytest.raises(ValueError) as info:
        m(torch.zeros(shape))
    text = str(info.value)
    assert "[N, 1, 32, 32]" in text  # expected
    assert str(list(shape)) in text  # actual


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_input_is_a_type_error(
    lenet: tuple[graphcnn.Graph, nn.Module], dtype: torch.dtype
) -> None:
    _, m = lenet
    with pytest.raises(TypeError, match=str(dtype)):
        m(torch.zeros(2, 1, 32, 32, dtype=dtype))


def test_a_numpy_array_input_is_a_type_error(lenet: tuple[graphcnn.Graph, nn.Module]) -> None:
    _, m = lenet
    with pytest.raises(TypeError, match="ndarray"):
        m(np.zeros((2, 1, 32, 32), dtype=np.float32))


def test_weights_are_loaded(lenet: tuple[graphcnn.Graph, nn.Module]) -> None:
    g, _ = lenet
    w = init_weights(g, seed=11)
    m = to_torch(g, w)
    state = m.state_dict()
    assert set(state) == set(w) | {k for k in state if k.endswith("num_batches_tracked")}
    for k, v in w.items():
        assert np.array_equal(state[k].numpy(), v), k


def _bad_weights(g: graphcnn.Graph) -> dict[str, np.ndarray[Any, Any]]:
    w = init_weights(g)
    del w["conv1.weight"]
    w["conv9.weight"] = np.zeros((3, 3), np.float32)
    w["fc1.bias"] = np.zeros(7, np.float32)
    return w


def test_bad_weights_are_a_weights_error_listing_every_key(
    lenet: tuple[graphcnn.Graph, nn.Module],
) -> None:
    g, _ = lenet
    with pytest.raises(WeightsError) as info:
        to_torch(g, _bad_weights(g))
    text = str(info.value)
    assert "missing (1):\n    conv1.weight" in text
    assert "unexpected (1):\n    conv9.weight" in text
    assert "wrong shape (1):\n    fc1.bias: expected [84], got [7]" in text


@pytest.mark.parametrize("kind", ["missing", "unexpected", "wrong shape"])
def test_each_kind_of_bad_weight_alone(lenet: tuple[graphcnn.Graph, nn.Module], kind: str) -> None:
    g, _ = lenet
    w = init_weights(g)
    if kind == "missing":
        key = "fc2.bias"
        del w[key]
    elif kind == "unexpected":
        key = "fc2.running_mean"
        w[key] = np.zeros(10, np.float32)
    else:
        key = "conv2.weight"
        w[key] = np.zeros((16, 6, 3, 3), np.float32)
    with pytest.raises(WeightsError) as info:
        to_torch(g, w)
    text = str(info.value)
    assert f"{kind} (1):" in text and key in text
    others = {"missing", "unexpected", "wrong shape"} - {kind}
    assert not any(f"{o} (" in text for o in others)


def test_a_torchvision_state_dict_with_a_wrong_key_is_rejected_strictly() -> None:
    g, ours, tv = pair("resnet18", 64)
    state = tv.state_dict()
    state["layer1.0.conv3.weight"] = state.pop("layer1.0.conv2.weight")
    with pytest.raises(RuntimeError, match="layer1.0.conv2.weight"):
        ours.load_state_dict(state, strict=True)


def _params(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_same_seed_same_parameters_other_seed_others() -> None:
    g = compile_at("resnet18", 64)
    a, b, c = _params(to_torch(g, seed=0)), _params(to_torch(g, seed=0)), _params(to_torch(g))
    other = _params(to_torch(g, seed=1))
    assert a.keys() == b.keys() == c.keys() == other.keys()
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k  # seed=0 is the default
    random = [
        f"{path}.{p}"
        for path, mod in to_torch(g).named_modules()
        if isinstance(mod, (nn.Conv2d, nn.Linear))
        for p, _ in mod.named_parameters()
    ]
    assert len(random) == 22  # 20 convs (3 of them downsample projections) + fc weight and bias
    for k in random:
        assert not torch.equal(a[k], other[k]), k


def test_seeded_init_is_independent_of_the_other_layers() -> None:
    """Each tensor has its own stream: resnet18 and resnet34 share conv1, layer1.0, fc."""
    r18 = _params(to_torch(compile_at("resnet18", 64)))
    r34 = _params(to_torch(compile_at("resnet34", 64)))
    for k in ("conv1.weight", "layer1.0.conv1.weight", "layer2.0.conv1.weight", "fc.weight"):
        assert torch.equal(r18[k], r34[k]), k


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "lenet5", "googlenet"])
def test_seeded_init_follows_pytorch_default_bounds(name: str) -> None:
    g = graphcnn.compile(name)
    m = to_torch(g, seed=0)
    assert not any(t.is_meta for t in m.state_dict().values())
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in m.parameters())
    assert all(p.requires_grad for p in m.parameters())
    layers = [mod for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    norms = [mod for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    assert layers and (norms or name == "lenet5")
    for mod in layers:
        w = mod.weight.detach()
        bound = 1 / math.sqrt(w[0].numel())  # fan_in; depthwise convs: k*k
        assert float(w.abs().max()) <= bound
        if w.numel() >= 64:
            assert float(w.abs().max()) > 0.8 * bound  # spread over the whole interval
            assert abs(float(w.mean())) < 0.25 * bound
        if mod.bias is not None:
            assert float(mod.bias.detach().abs().max()) <= bound
    for bn in norms:
        assert torch.equal(bn.weight.detach(), torch.ones_like(bn.weight))
        assert torch.equal(bn.bias.detach(), torch.zeros_like(bn.bias))
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert int(bn.num_batches_tracked) == 0


def test_seeded_bounds_equal_torch_own_reset_parameters() -> None:
    """The bound is the one nn.Conv2d / nn.Linear use themselves (kaiming_uniform_(a=sqrt(5)))."""
    g = graphcnn.compile("lenet5")
    m = to_torch(g, seed=0)
    torch.manual_seed(0)
    for mod in (m.conv2, m.fc1):
        fresh = type(mod)(*_ctor_args(mod))
        bound = 1 / math.sqrt(mod.weight[0].numel())
        for ours, theirs in ((mod.weight, fresh.weight), (mod.bias, fresh.bias)):
            assert float(theirs.detach().abs().max()) <= bound
            assert float(ours.detach().abs().max()) <= bound
            assert float(ours.detach().abs().max()) > 0.5 * float(theirs.detach().abs().max())


def _ctor_args(mod: nn.Module) -> tuple[Any, ...]:
    if isinstance(mod, nn.Conv2d):
        return (mod.in_channels, mod.out_channels, mod.kernel_size)
    assert isinstance(mod, nn.Linear)
    return (mod.in_features, mod.out_features)


def test_seed_none_keeps_torch_own_initialisation() -> None:
    g = compile_at("resnet18", 64)
    torch.manual_seed(4)
    a = _params(to_torch(g, seed=None))
    torch.manual_seed(4)
    b = _params(to_torch(g, seed=None))
    seeded = _params(to_torch(g, seed=4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], seeded["conv1.weight"])
    bound = 1 / math.sqrt(3 * 7 * 7)
    assert float(a["conv1.weight"].abs().max()) <= bound
