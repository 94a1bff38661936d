"""Layer names that say a checkpoint's exact key: ``-`` is allowed (torchvision's RegNet keys
``trunk_output.block1.block1-0...``), through the language, the torch module, ONNX and back."""

from __future__ import annotations

from typing import Any

import pytest

import graphcnn
from graphcnn.errors import SpecError

SPEC = """
network n() {
  x = input(3, 8, 8)
  scope trunk_output {
    scope block1 {
      for j in range(2) { x = x -> conv(4, 3, pad: 1) as "block1-{j}" -> relu }
    }
  }
  return x
}
"""


def test_a_dash_in_a_name_is_the_exact_key() -> None:
    g = graphcnn.compile_text(SPEC)
    keys = {f"{n.name}.{p.name}" for n in g for p in n.params}
    assert "trunk_output.block1.block1-0.weight" in keys
    assert "trunk_output.block1.block1-1.bias" in keys


def test_other_characters_are_still_refused() -> None:
    with pytest.raises(SpecError, match="invalid layer name") as info:
        graphcnn.compile_text(SPEC.replace('"block1-{j}"', '"block1.{j}"'))
    assert "'-'" in (info.value.hint or "")


def test_dashed_keys_load_strictly_in_torch_and_survive_onnx(torch1: Any) -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.backends.to_torch import to_torch
    from graphcnn.weights import init_weights

    g = graphcnn.compile_text(SPEC)
    w = init_weights(g, 0)
    module = to_torch(g, w)
    assert set(module.state_dict()) == set(w)
    back, w2 = from_onnx(to_onnx(g, w))
    assert set(w2) == set(w)  # the importer keeps the '-' of the keys
