"""Every zoo model compiles, verifies, and matches torchvision or the original paper exactly.

torchvision is the reference implementation: params must equal its ``num_params``, MACs must round
to its ``_ops`` (GMACs, 3 decimals) — both from torchvision's own table, copied to
``tests/reference/torchvision_meta.tsv`` — and layer names must equal its ``state_dict`` keys so
weights map one-to-one. Models torchvision lacks are checked against the PyTorch reference
implementations in ``tests/reference/paper_models.py`` (exact numbers in ``paper_numbers.py``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from conftest import META_TSV, torchvision_meta
from helpers.zoo import SEGMENTATION, TIMM, zoo_params
from reference.paper_numbers import PAPER_MODELS

import graphcnn
from graphcnn import zoo
from graphcnn.cost import Profile
from graphcnn.weights import param_key

META = torchvision_meta()
TORCHVISION_MODELS = [m for m in zoo.names() if m in META]
PAPER_ONLY = [m for m in zoo.names() if m not in META and m not in TIMM | SEGMENTATION]

REQUIRED = (
    "lenet5 alexnet alexnet_v1 zfnet vgg11 vgg13 vgg16 vgg19 vgg11_bn vgg13_bn vgg16_bn vgg19_bn "
    "nin googlenet googlenet_paper inception_v3 resnet18 resnet34 resnet50 resnet101 resnet152 "
    "preact_resnet18 resnext50_32x4d resnext101_32x8d wide_resnet50_2 densenet121 densenet161 "
    "densenet169 densenet201 densenet264 se_resnet50 mobilenet_v1 mobilenet_v2 shufflenet_v1 "
    "shufflenet_v2_x0_5 shufflenet_v2_x1_0 shufflenet_v2_x1_5 shufflenet_v2_x2_0 "
    "squeezenet1_0 squeezenet1_1 mnasnet0_5 mnasnet0_75 mnasnet1_0 mnasnet1_3 "
    "efficientnet_v2_s efficientnet_v2_m efficientnet_v2_l "
    "mobilenet_v3_large mobilenet_v3_small convnext_tiny convnext_small convnext_base "
    "convnext_large inception_v4 inception_resnet_v2 nasnetalarge "
    + " ".join(f"regnet_x_{s}" for s in "400mf 800mf 1_6gf 3_2gf 8gf 16gf 32gf".split())
    + " "
    + " ".join(f"regnet_y_{s}" for s in "400mf 800mf 1_6gf 3_2gf 8gf 16gf 32gf 128gf".split())
    + " "
    + " ".join(f"efficientnet_b{i}" for i in range(8))
).split()

TABLE_COLUMNS = ("num_params", "_ops", "acc@1", "_file_size", "crop", "resize")
"""The numeric columns of tests/reference/torchvision_meta.tsv, after file, enum and weight."""

# torchvision counts auxiliary heads in inception_v3's num_params but not in googlenet's.
TORCHVISION_PARAMS_INCLUDE_AUX = {"inception_v3"}

_profiles: dict[str, tuple[graphcnn.Graph, Profile]] = {}


def compiled(name: str) -> tuple[graphcnn.Graph, Profile]:
    if name not in _profiles:
        g = graphcnn.compile(name)
        _profiles[name] = (g, graphcnn.profile(g))
    return _profiles[name]


def test_the_zoo_has_every_required_model() -> None:
    missing = sorted(set(REQUIRED) - set(zoo.names()))
    assert not missing, f"zoo lacks {missing}"


def test_reference_table_is_torchvisions() -> None:
    """Every row of the checked-in table is what the installed torchvision's weights enum says:
    num_params, _ops (GMACs), ImageNet acc@1, file size (MB), eval crop and resize. An empty
    cell is a value torchvision's published table leaves out (mobilenet_v2's num_params)."""
    models = pytest.importorskip("torchvision.models")
    from torchvision.models import quantization

    with META_TSV.open() as f:
        rows = list(csv.reader((ln for ln in f if not ln.startswith("#")), delimiter="\t"))
    assert len(rows) >= 100
    for file, enum, weight, *cells in rows:
        entry = getattr(getattr(quantization if "quantization/" in file else models, enum), weight)
        meta, transform = entry.meta, entry.transforms.keywords
        theirs = (
            meta["num_params"],
            meta["_ops"],
            meta["_metrics"]["ImageNet-1K"]["acc@1"],
            meta["_file_size"],
            transform["crop_size"],
            transform.get("resize_size"),
        )
        for column, cell, value in zip(TABLE_COLUMNS, cells, theirs, strict=True):
            assert not cell or float(cell) == value, (enum, weight, column, cell, value)
    # the table's rows are torchvision's: every zoo model it names has its weights enum
    for name in TORCHVISION_MODELS:
        assert models.get_model_weights(name).__name__ in {row[1] for row in rows}, name


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_compiles_and_verifies(name: str) -> None:
    g, p = compiled(name)
    g.verify()
    assert p.totals.params > 0 and p.totals.macs > 0
    logits = g[g.outputs[0][1]]
    assert not logits.training_only
    assert len(logits.type.shape) == (4 if name in SEGMENTATION else 2)  # [N, classes, H, W]
    for node in g:
        assert node.loc is not None and node.loc.file.endswith(".gcnn"), node.name


@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_matches_torchvision_published_numbers(name: str) -> None:
    g, p = compiled(name)
    params = p.totals.params
    if name in TORCHVISION_PARAMS_INCLUDE_AUX:
        params += p.training_only.params
    assert params == META[name]["params"]
    assert round(p.totals.macs / 1e9, 3) == META[name]["gmacs"]
    assert p.input[1] == META[name]["crop"] or name.startswith("efficientnet")


@pytest.mark.parametrize("name", zoo_params(TORCHVISION_MODELS, huge=True))
def test_layer_names_and_shapes_equal_torchvision_state_dict(
    name: str, torch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tvm = pytest.importorskip("torchvision.models")
    kwargs = (
        {"aux_logits": True, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    )
    if name.startswith("regnet"):
        # RegNet's widths are torch ops read back with .tolist(), which meta tensors cannot
        # answer: that arithmetic runs on the CPU, the model itself is still built on meta
        from torchvision.models.regnet import BlockParams

        widths = BlockParams.from_init_params.__func__

        def on_cpu(cls: type, *args: Any, **kw: Any) -> Any:
            with torch.device("cpu"):
                return widths(cls, *args, **kw)

        monkeypatch.setattr(BlockParams, "from_init_params", classmethod(on_cpu))
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = tvm.get_model(name, weights=None, **kwargs)
    theirs = {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    g, _ = compiled(name)
    ours = {param_key(n.name, p.name): p.shape for n in g for p in n.params}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs
    trainable = sum(p.numel() for p in model.parameters())
    _, prof = compiled(name)
    assert prof.totals.params + prof.training_only.params == trainable


@pytest.mark.parametrize("name", PAPER_ONLY)
def test_matches_the_paper_reference_implementation(name: str) -> None:
    ref = PAPER_MODELS[name]
    g, p = compiled(name)
    assert p.input == tuple(ref["input"])
    assert (p.totals.params, p.totals.macs) == (ref["params"], ref["macs"])
    assert (p.training_only.params, p.training_only.macs) == (
        ref["training_only_params"],
        ref["training_only_macs"],
    )


def test_families_are_one_spec_each_and_concise() -> None:
    """Variants are data: ResNet-family ~60 lines, DenseNet ~40 (issue targets)."""
    lines = {p.name: _code_lines(p) for p in zoo.ZOO_DIR.glob("*.gcnn")}
    assert lines["resnet.gcnn"] <= 70
    assert lines["densenet.gcnn"] <= 45
    files = {zoo.spec_path(m).name for m in zoo.names() if m.startswith("resnet")}
    assert files == {"resnet.gcnn"}


def _code_lines(path: Path) -> int:
    return sum(
        1
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    )


def test_googlenet_depth_one_rows_are_its_top_level_modules() -> None:
    _, p = compiled("googlenet")
    rows = [r.name for r in p.at_depth(1) if not r.training_only]
    assert rows[:3] == ["conv1", "maxpool1", "conv2"]
    assert "inception3a" in rows and rows[-1] == "fc"
    assert sum((r.cost for r in p.at_depth(1)), type(p.totals)()) == p.totals + p.training_only
