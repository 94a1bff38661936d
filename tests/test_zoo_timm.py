"""The zoo models whose reference is timm (:data:`helpers.zoo.TIMM`) match timm exactly.

For each model of :data:`MODELS`: the graph compiles at timm's input size; its parameter count is
timm's; its parameter names and shapes are the keys and shapes of timm's ``state_dict`` (BN
running statistics included); its MACs are fvcore's conv + linear count of timm's model; and
timm's ``state_dict`` (BN statistics randomised) loads strictly into the generated PyTorch module,
whose eval-mode outputs equal timm's. timm publishes no MACs table, only one-decimal GMACs on its
model cards (inception_v4 12.3, inception_resnet_v2 13.2), which the counts round to
(nasnetalarge's card is not compared: its one-decimal figure is fvcore's total, batch norms
included, 23,886,348,558 at 331x331, which its conv + linear count does not round to):

===================== ========== ================ =================
model                 params     MACs (graphcnn)  fvcore conv+linear
===================== ========== ================ =================
inception_v4          42,679,816 12,253,974,624   12,253,974,624
inception_resnet_v2   55,843,464 13,155,794,016   13,155,794,016
nasnetalarge          88,753,150 23,783,414,658   23,783,414,658
===================== ========== ================ =================

fvcore counts conv, linear (addmm), batch_norm and adaptive_avg_pool2d and skips elementwise ops,
activations, max/avg pools and concat; graphcnn's MACs are conv and linear only
(``graphcnn.cost.CONVENTION``), so the comparison takes fvcore's conv and linear rows.
"""

from __future__ import annotations

import importlib
from functools import partial
from typing import Any, NamedTuple

import pytest
from helpers.zoo import TIMM, compiled

import graphcnn
from graphcnn import zoo


class Reference(NamedTuple):
    """What a zoo model is checked against."""

    timm: str
    """timm's model name."""
    size: int
    """timm's square input size."""
    gmacs: float | None
    """GMACs on timm's model card (Hugging Face ``timm/<name>.tf_in1k``), one decimal; None where
    the card's figure is not a conv + linear count (see the module docstring)."""


MODELS: dict[str, Reference] = {
    "inception_v4": Reference("inception_v4", 299, 12.3),
    "inception_resnet_v2": Reference("inception_resnet_v2", 299, 13.2),
    # the searched cells in the language (graphcnn/zoo/nasnet.gcnn); TF "same" padding, made
    # explicit and asymmetric where timm pads dynamically (tests/test_pad.py)
    "nasnetalarge": Reference("nasnetalarge", 331, None),
}
"""Zoo model -> its timm reference."""

TOLERANCE = 1e-5
"""Largest output difference allowed, relative to the largest output."""


@pytest.fixture(scope="module")
def timm() -> Any:
    return pytest.importorskip("timm")


def timm_model(timm: Any, torch: Any, name: str, meta: bool = False) -> Any:
    """timm's model ``name`` (random init, eval mode); ``meta``: shapes only, no memory."""
    with torch.device("meta" if meta else "cpu"):
        return timm.create_model(MODELS[name].timm, pretrained=False).eval()


def randomise_batch_norms(model: Any, torch: Any) -> None:
    """BN statistics and affine parameters away from their identity init, so eval mode, eps and
    the parameter mapping all show in the outputs."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def assert_same_outputs(ours: Any, theirs: Any, x: Any, torch: Any) -> None:
    with torch.no_grad():
        out, ref = ours(x), theirs(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= TOLERANCE * ref.abs().max()


def test_every_timm_zoo_model_is_checked_here() -> None:
    assert set(MODELS) == TIMM & set(zoo.names())


@pytest.mark.parametrize("name", MODELS)
def test_compiles_at_timms_input_size(name: str) -> None:
    g = compiled(name)
    g.verify()
    size = MODELS[name].size
    assert g.inputs[0].type.sample_shape == (3, size, size)
    assert g[g.outputs[0][1]].type.sample_shape == (1000,)


@pytest.mark.torch
@pytest.mark.parametrize("name", MODELS)
def test_params_equal_timms(name: str, timm: Any, torch: Any) -> None:
    model = timm_model(timm, torch, name, meta=True)
    p = graphcnn.profile(compiled(name))
    assert p.training_only.params == 0
    assert p.totals.params == sum(t.numel() for t in model.parameters())


@pytest.mark.torch
@pytest.mark.parametrize("name", MODELS)
def test_parameter_names_and_shapes_equal_timms_state_dict(
    name: str, timm: Any, torch: Any
) -> None:
    state = timm_model(timm, torch, name, meta=True).state_dict()
    theirs = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    ours = {f"{n.name}.{p.name}": p.shape for n in compiled(name) for p in n.params}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs


@pytest.mark.parametrize("name", [n for n, ref in MODELS.items() if ref.gmacs is not None])
def test_macs_round_to_timms_model_card(name: str) -> None:
    assert round(graphcnn.profile(compiled(name)).totals.macs / 1e9, 1) == MODELS[name].gmacs


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_macs_equal_fvcores_conv_and_linear_count(name: str, timm: Any, torch: Any) -> None:
    from reference.compute_numbers import fvcore_macs

    pytest.importorskip("fvcore")
    size = MODELS[name].size
    assert graphcnn.profile(compiled(name)).totals.macs == fvcore_macs(
        timm_model(timm, torch, name), (3, size, size)
    )


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_timms_state_dict_loads_strictly_and_outputs_equal(
    name: str, timm: Any, torch1: Any
) -> None:
    from graphcnn.backends.to_torch import to_torch

    torch = torch1
    theirs = timm_model(timm, torch, name)
    randomise_batch_norms(theirs, torch)
    ours = to_torch(compiled(name)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    size = MODELS[name].size
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(ours, theirs, x, torch)


def _timm_block(timm: Any, module: str, cls: str, **kw: Any) -> Any:
    """One timm block built as its model builds it: ConvNormAct with no default padding,
    BN eps 0.001."""
    from timm.layers import ConvNormAct

    conv_block = partial(ConvNormAct, padding=0, norm_kwargs={"eps": 1e-3})
    # the module, not timm.models' attribute of that name (the model's builder function)
    blocks = importlib.import_module(f"timm.models.{module}")
    return getattr(blocks, cls)(conv_block=conv_block, **kw).eval()


BLOCKS = {
    # a scaled residual (x * 0.17) with a biased 1x1 projection
    "block35(x, 0.17)": ("inception_resnet_v2", "Block35", {"scale": 0.17}, 320),
    # the unscaled, relu-free last block
    "block8(x, act: false)": ("inception_resnet_v2", "Block8", {"no_relu": True}, 2080),
    # the average pool branch that leaves padding out of the mean
    "inception_a(x)": ("inception_v4", "InceptionA", {}, 384),
}


@pytest.mark.torch
@pytest.mark.parametrize("call", BLOCKS)
def test_one_block_loads_timms_block_strictly_and_computes_the_same(
    call: str, timm: Any, torch: Any
) -> None:
    from graphcnn.backends.to_torch import to_torch

    module, cls, kw, c = BLOCKS[call]
    block = _timm_block(timm, module, cls, **kw)
    randomise_batch_norms(block, torch)
    g = graphcnn.compile_text(
        f'import "inception_v4.gcnn"\nnetwork t() {{ x = input({c}, 5, 5)\n return {call} as b }}'
    )
    ours = to_torch(g).eval()
    ours.b.load_state_dict(block.state_dict(), strict=True)
    x = torch.randn(2, c, 5, 5, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(ours, block, x, torch)


NASNET_CELLS = {
    # the searched normal cell; both inputs the same tensor
    "normal_cell(x, x, 16)": ("NormalCell", (24, 16, 24, 16), 9, "x"),
    # the reduction cell on an even size: asymmetric "same" pads (-inf before the max pools)
    "reduction_cell(x, x, 16)": ("ReductionCell0", (24, 16, 24, 16), 10, "x"),
    # the first cell of a stage reads the previous stage's output at twice the size through
    # the factorized reduction (its shifted path crops and pads: on an odd size a zero row)
    "first_cell(s, x, 16)": ("FirstCell", (24, 8, 24, 16), 9, "s"),
}


@pytest.mark.torch
@pytest.mark.parametrize("call", NASNET_CELLS)
def test_nasnet_cell_loads_timms_cell_strictly_and_computes_the_same(
    call: str, timm: Any, torch: Any
) -> None:
    """NASNet-A's searched cells, written as blocks of graphcnn/zoo/nasnet.gcnn, against timm's
    cells at a small size (x: 24 channels; s: x max-pooled to half the size)."""
    from timm.models import nasnet

    from graphcnn.backends.to_torch import to_torch

    cls, args, size, first = NASNET_CELLS[call]
    cell = getattr(nasnet, cls)(*args, pad_type="same").eval()
    randomise_batch_norms(cell, torch)
    g = graphcnn.compile_text(
        'import "nasnet.gcnn"\nnetwork t() {\n'
        f"  x = input(24, {size}, {size})\n  s = x -> maxpool(3, stride: 2, pad: 1)\n"
        f"  return {call} as b\n}}"
    )
    ours = to_torch(g).eval()
    ours.b.load_state_dict(cell.state_dict(), strict=True)
    x = torch.randn(2, 24, size, size, generator=torch.Generator().manual_seed(1))
    s = torch.nn.functional.max_pool2d(x, 3, 2, 1)
    with torch.no_grad():
        out, ref = ours(x), cell(s if first == "s" else x, x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= TOLERANCE * ref.abs().max()
