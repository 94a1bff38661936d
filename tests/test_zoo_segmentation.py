"""The segmentation zoo (graphcnn/zoo/segmentation.gcnn) is torchvision's, model by model.

FCN and DeepLabV3 on dilated ResNets, DeepLabV3 and LR-ASPP on a dilated MobileNetV3-Large:
parameters with and without the training-only auxiliary head equal torchvision's with
``aux_loss=True`` and without; MACs equal forward hooks on torchvision's convs and linears (run
on the meta device: shapes only); the ``state_dict`` names and shapes are torchvision's, whose
random weights load strictly into the generated module and compute the same ``out`` (and, in
training mode with the same dropout masks, the same ``aux``); and the published
``num_params``/``_ops`` of the weights enums are what these counts give. torchvision's ``_ops``
include the auxiliary head. The MobileNetV3 models' maps at torchvision's 520x520 are 65 and 33:
their resizes (33 -> 65 -> 520) are no whole factors, which ``upsample(size: ...)`` takes as
torch's ``F.interpolate(size=...)`` does (checked at 72: maps 9 and 5).
"""

from __future__ import annotations

from typing import Any

import pytest

import graphcnn
from graphcnn import zoo
from graphcnn.ir import Op
from graphcnn.passes import apply_pipeline
from graphcnn.weights import param_key

torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")

from helpers.torch_ref import TOL, rel_err  # noqa: E402

from graphcnn.backends.to_torch import to_torch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]

MODELS = [
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
]
SLOW = {"fcn_resnet101", "deeplabv3_resnet101"}
PARAMS = [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in MODELS]
HAS_AUX = {m for m in MODELS if not m.startswith("lraspp")}  # torchvision refuses LR-ASPP's aux
SMALL = 64
"""A reduced input at which every resize is a whole factor (maps of 8 and 4)."""
ODD = 72
"""A reduced input at which MobileNetV3's are not (maps of 9 and 5, as 65 and 33 at 520)."""


def torchvision_model(name: str, aux: bool, seed: int = 0) -> Any:
    kwargs = {"aux_loss": True} if aux and name in HAS_AUX else {}
    torch.manual_seed(seed)
    return tvm.get_model(name, weights=None, weights_backbone=None, **kwargs)


def on_meta(name: str, aux: bool) -> Any:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return torchvision_model(name, aux)


def hook_macs(model: Any, size: int) -> dict[str, int]:
    """Multiply-accumulates of each Conv2d and Linear of ``model`` for one image at ``size``,
    by module name, from a forward pass on the meta device."""
    found: dict[str, int] = {}

    def count(name: str) -> Any:
        def hook(m: Any, inputs: Any, out: Any) -> None:
            per_out = (
                m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                if isinstance(m, torch.nn.Conv2d)
                else m.in_features
            )
            found[name] = out[0].numel() * per_out

        return hook

    handles = [
        m.register_forward_hook(count(n))
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    for h in handles:
        h.remove()
    return found


def weights_meta(name: str) -> dict[str, Any]:
    entry = tvm.get_model_weights(name).COCO_WITH_VOC_LABELS_V1
    return dict(entry.meta) | {"resize": entry.transforms.keywords["resize_size"]}


@pytest.mark.parametrize("name", MODELS)
def test_params_with_and_without_aux_equal_torchvisions(name: str) -> None:
    p = graphcnn.profile(graphcnn.compile(name))
    with_aux = sum(t.numel() for t in on_meta(name, aux=True).parameters())
    without = sum(t.numel() for t in on_meta(name, aux=False).parameters())
    assert p.totals.params == without
    assert p.totals.params + p.training_only.params == with_aux
    assert (p.training_only.params > 0) == (name in HAS_AUX)
    lean = apply_pipeline(graphcnn.compile(name), ["remove_training_outputs"])
    assert graphcnn.profile(lean).totals.params == without
    inference = apply_pipeline(graphcnn.compile(name), "inference")
    assert not any(n.training_only or n.name.startswith("aux_") for n in inference)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_names_and_shapes_equal_torchvisions(name: str) -> None:
    theirs = {
        k: tuple(v.shape)
        for k, v in on_meta(name, aux=True).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    g = graphcnn.compile(name)
    ours = {param_key(n.name, p.name): p.shape for n in g for p in n.params}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [None, SMALL])
def test_macs_equal_forward_hooks(name: str, size: int | None) -> None:
    """At the zoo's input and at a reduced one: inference MACs are torchvision's without the
    auxiliary head, the training-only ones the head's."""
    g = graphcnn.compile(name, input_shape=None if size is None else (3, size, size))
    p = graphcnn.profile(g)
    side = g.inputs[0].type.sample_shape[1]
    assert sum(hook_macs(on_meta(name, aux=False), side).values()) == p.totals.macs
    both = hook_macs(on_meta(name, aux=True), side)
    aux = sum(v for k, v in both.items() if k.startswith("aux_classifier."))
    assert (p.totals.macs, p.training_only.macs) == (sum(both.values()) - aux, aux)


@pytest.mark.parametrize("name", MODELS)
def test_published_num_params_and_ops(name: str) -> None:
    """num_params and _ops (GMACs, 3 decimals) count the auxiliary head; _ops are at the
    weights' resize size, 520."""
    meta = weights_meta(name)
    g = graphcnn.compile(name)
    p = graphcnn.profile(g)
    assert p.totals.params + p.training_only.params == meta["num_params"]
    ours = round((p.totals.macs + p.training_only.macs) / 1e9, 3)
    assert g.inputs[0].type.sample_shape[1:] == (meta["resize"], meta["resize"])
    assert ours == meta["_ops"]


@pytest.mark.parametrize("name", ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"])
def test_mobilenet_resizes_at_520_are_to_sizes_no_whole_factor_gives(name: str) -> None:
    g = graphcnn.compile(name)
    sizes = {(n.inputs[0], n.attrs["size"]) for n in g if n.op is Op.UPSAMPLE}
    pairs = {(g[x].type.shape[2], size[0]) for x, size in sizes}
    assert (33, 520) in pairs or (33, 65) in pairs
    assert any(out % h for h, out in pairs)


def randomized(model: Any) -> Any:
    """BN statistics and affine parameters away from the identity, so BN shows in the output."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
    return model


OUTPUT_CASES = [
    pytest.param(m, SMALL, marks=[pytest.mark.slow] if m in SLOW else [], id=m) for m in MODELS
] + [pytest.param(m, ODD, id=f"{m}-{ODD}") for m in MODELS if "mobilenet" in m]


@pytest.mark.parametrize(("name", "side"), OUTPUT_CASES)
def test_torchvisions_weights_load_strictly_and_outputs_equal(name: str, side: int) -> None:
    theirs = randomized(torchvision_model(name, aux=True))
    g = graphcnn.compile(name, input_shape=(3, side, side))
    ours = to_torch(g)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, ref = ours.eval()(x), theirs.eval()(x)
        assert out.shape == (2, 21, side, side)
        assert rel_err(out, ref["out"]) <= TOL
        if name not in HAS_AUX:
            return
        # training mode: batch statistics, and dropout masks drawn in the same order
        torch.manual_seed(2)
        train = ours.train()(x)
        torch.manual_seed(2)
        ref = theirs.train()(x)
    assert rel_err(train.out, ref["out"]) <= TOL
    assert rel_err(train.aux, ref["aux"]) <= TOL


def test_the_zoo_has_every_torchvision_segmentation_model() -> None:
    assert set(MODELS) == set(tvm.list_models(module=tvm.segmentation))
    assert {zoo.spec_path(m).name for m in MODELS} == {"segmentation.gcnn"}
