"""The PyTorch lowering table and the generated code: every op has a lowering, an op without
one is a LoweringError naming op and spec location, and spec names that are legal but clash with
Python or torch (generated helpers, indices, keywords, nn.Module attributes) still give working
code.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from helpers.torch_ref import compile_spec, sample  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.to_torch import (  # noqa: E402
    LOWERINGS,
    LoweringError,
    generate_source,
    to_torch,
)
from graphcnn.ir import Op  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("torch1")]


def test_lowerings_has_an_entry_for_every_op() -> None:
    assert set(LOWERINGS) == set(Op)
    assert all(callable(f) for f in LOWERINGS.values())


def test_input_op_lowering_raises_naming_op_and_location() -> None:
    g = graphcnn.compile("alexnet_v1")
    node = g.inputs[0]
    with pytest.raises(LoweringError) as info:
        LOWERINGS[Op.INPUT](node, g)
    text = str(info.value)
    assert "input" in text and "alexnet.gcnn:" in text


def test_an_op_without_lowering_is_a_lowering_error(monkeypatch: pytest.MonkeyPatch) -> None:
    g = graphcnn.compile("alexnet_v1")
    monkeypatch.delitem(LOWERINGS, Op.LRN)
    with pytest.raises(LoweringError) as info:
        to_torch(g)
    text = str(info.value)
    assert "lrn" in text and "alexnet.gcnn:" in text


def test_an_op_without_lowering_fails_to_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the exception, lowering must not silently succeed without the op."""
    g = graphcnn.compile("alexnet_v1")
    monkeypatch.delitem(LOWERINGS, Op.LRN)
    with pytest.raises(Exception, match="lrn"):
        generate_source(g)


# Generated code and module naming: spec names that are legal but clash with Python or torch.


def _runs_in_both_modes(spec: str, batch: int = 2) -> None:
    g = compile_spec(spec)
    m = to_torch(g)
    x = sample(g, batch=batch)
    with torch.no_grad():
        m.eval()(x)
        m.train()(x)


@pytest.mark.parametrize("layer", ["_check", "_drop_path", "_channel_shuffle", "Outputs"])
def test_layer_names_do_not_shadow_generated_helpers(layer: str) -> None:
    _runs_in_both_modes(f"""
network n() {{
  x = input(4, 6, 6)
  y = x -> conv(4, 1) as {layer} -> drop_path(0.1) -> channel_shuffle(2) -> flatten
        -> linear(3) as fc
  training {{ aux = x -> flatten -> linear(3) as aux }}
  return y, aux
}}
""")


@pytest.mark.parametrize("name", ["0", '"class"'])
def test_top_level_layer_named_by_an_index_or_keyword(name: str) -> None:
    _runs_in_both_modes(f"""
network n() {{
  x = input(2, 4, 4)
  return x -> conv(3, 1) as {name} -> flatten
}}
""")


def test_layer_named_like_a_module_attribute() -> None:
    """A layer named ``eval`` would shadow ``nn.Module.eval`` (torch's ``add_module`` refuses
    such a name too): lowering refuses it with one error naming the layer, its spec location
    and the fix, instead of building a module whose ``eval()`` is a conv."""
    g = compile_spec("""
network n() {
  x = input(2, 4, 4)
  return x -> conv(3, 1) as eval -> flatten
}
""")
    with pytest.raises(LoweringError) as info:
        to_torch(g)
    assert "'eval'" in str(info.value) and "torch.nn.Module.eval" in str(info.value)
    assert (
        "<spec>:4:" in str(info.value)
        and info.value.hint == "rename the layer (as ...) in the spec"
    )
    renamed = compile_spec("""
network n() {
  x = input(2, 4, 4)
  return x -> conv(3, 1) as eval_conv -> flatten
}
""")
    m = to_torch(renamed)
    assert sorted(m.state_dict()) == ["eval_conv.bias", "eval_conv.weight"]
    assert m.eval() is m and not m.training
    with torch.no_grad():
        assert m(sample(renamed)).shape == (2, 48)


def test_training_output_named_like_a_python_keyword() -> None:
    _runs_in_both_modes("""
network n() {
  x = input(2, 4, 4)
  y = x -> flatten -> linear(5) as fc
  training { lambda = x -> flatten -> linear(5) as aux }
  return y, lambda
}
""")
