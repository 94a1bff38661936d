"""graphcnn.lang.memo: what compilations share (shape results, block calls, parsed overrides)
gives exactly the graph that running everything gives.

Each comparison compiles once as usual (identical block calls replayed from the first one) and
once with replay switched off (every block body runs), and compares the IR dumps, the scopes
and the profiles.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

import graphcnn
from graphcnn.errors import SpecError
from graphcnn.lang import memo as memo_module
from graphcnn.lang.calls import Calls
from graphcnn.lang.interp import compile_module
from graphcnn.lang.loader import load_text, resolve
from graphcnn.lang.memo import Memo
from graphcnn.search import Evaluator


def _replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count block replays (the scope paths replayed into)."""
    seen: list[str] = []
    real = Calls._replay

    def counting(self: Calls, rec: Any, path: str, args: Any) -> Any:
        seen.append(path)
        return real(self, rec, path, args)

    monkeypatch.setattr(Calls, "_replay", counting)
    return seen


def _no_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        Calls, "_run_shared", lambda self, blk, bound, loc, path: self._run_block(blk, bound, loc)
    )


def _snapshot(g: graphcnn.Graph) -> tuple[str, list[tuple[str, str]], Any]:
    p = graphcnn.profile(g, training=True)
    return g.dump(), list(g.scopes.items()), p.to_json(None)


@pytest.mark.parametrize(
    "model",
    [
        "resnet50",
        "googlenet",
        "shufflenet_v2_x1_0",
        "efficientnet_b0",
        "mobilenet_v2",
        "regnet_y_400mf",
    ],
)
def test_replayed_blocks_build_the_same_graph(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _replays(monkeypatch)
    shared = _snapshot(graphcnn.compile(model))
    assert seen, "no block call was replayed: the test compares nothing"
    monkeypatch.undo()
    _no_replay(monkeypatch)
    assert _snapshot(graphcnn.compile(model)) == shared


SPEC = """
block pair(a, b, c) {
  y = a -> conv(c, 3, pad: 1) as conv
  scope "inner" { z = b -> relu -> conv(c, 1) }
  return y + z, a
}
seq block unit(x, c) {
  y, same = pair(x, x, c)
  return y -> relu -> bn
}
network net(c = 8, n = 3) {
  x = input(3, 16, 16)
  u = x -> conv(c, 1) as stem
  v = x -> conv(c, 1) as other
  for i in range(n) { u = unit(u, c) as "u{i}" }
  w, w2 = pair(u, v, c)
  w3, w4 = pair(u, u, c)
  w5, w6 = pair(u, v, c)
  scope "u1" { t = w -> relu }
  training { aux = unit(w, c) as aux }
  return w + w3 + w5 + t + w2 + w6
}
"""


def test_replay_maps_arguments_scopes_and_training(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_text(SPEC)
    seen = _replays(monkeypatch)
    shared = _snapshot(compile_module(module))
    # u1, u2 repeat u0; pair(u, u) differs from pair(u, v) (one tensor twice), the third repeats
    # the first; the training-only unit differs from the others by its training mark
    assert seen == ["u1", "u2", "pair_2"]
    monkeypatch.undo()
    _no_replay(monkeypatch)
    ran = _snapshot(compile_module(module))
    assert ran == shared
    dump = ran[0]
    assert "%pair_1.add: f32[N,8,16,16] = add(%pair_1.conv, %pair_1.inner.conv)" in dump
    assert "%pair_1.inner.relu: f32[N,8,16,16] = relu(%u2.2)" in dump
    assert "%pair_2.inner.relu: f32[N,8,16,16] = relu(%other)" in dump
    assert "%u1.0.conv: f32[N,8,16,16] = conv2d(%u0.2)" in dump
    # `scope "u1"` enters the replayed seq scope again: its numbering goes on after bn (u1.2)
    assert "%u1.3: f32[N,8,16,16] = relu(%pair.add)" in dump


def test_errors_inside_a_replayable_block_still_point_at_it() -> None:
    module = load_text(
        SPEC.replace(
            "return y -> relu -> bn", 'assert c < 100, "too wide"\n  return y -> relu -> bn'
        )
    )
    memo = Memo()
    compile_module(module, memo=memo)
    with pytest.raises(SpecError, match="assertion failed: too wide") as err:
        compile_module(module, overrides={"c": 200}, memo=memo)
    assert err.value.loc is not None and err.value.loc.line == 9
    assert any("block unit" in frame for frame in err.value.stack)


def test_a_shared_memo_gives_each_candidate_its_own_exact_cost() -> None:
    ev = Evaluator("resnet18", fixed={"classes": "10"}, input_shape=(3, 32, 32))
    rng = random.Random(1)
    for _ in range(12):
        layers = [rng.randint(1, 3) for _ in range(4)]
        classes = rng.choice([10, 37, 1000])
        c = ev.cost({"layers": str(layers), "classes": classes})
        g = graphcnn.compile(
            "resnet18", params={"layers": layers, "classes": classes}, input_shape=(3, 32, 32)
        )
        t = graphcnn.profile(g).totals
        assert (c.params, c.macs, c.flops) == (t.params, t.macs, t.flops)
        assert ev.graph({"layers": str(layers), "classes": classes}).dump() == g.dump()


@pytest.mark.parametrize(
    ("value", "text"),
    [(17, "17"), (0.25, "0.25"), (-0.0, "-0.0"), (True, "true"), (10**18, "10**18")],
)
def test_plain_overrides_equal_their_spec_text(value: Any, text: str) -> None:
    module = load_text(
        "network net(k = 1) {\n  x = input(3, 8, 8)\n"
        "  return x -> flatten -> linear(2 if k == true else 3) -> scale(1 if k == true else k)\n"
        "}\n"
    )
    memo = Memo()
    as_text = compile_module(module, overrides={"k": text}, memo=memo).dump()
    assert compile_module(module, overrides={"k": value}, memo=memo).dump() == as_text
    assert compile_module(module, overrides={"k": text}, memo=memo).dump() == as_text


def test_a_bad_override_text_is_a_located_error_every_time() -> None:
    module, _ = resolve("resnet18")
    memo = Memo()
    for _ in range(2):
        with pytest.raises(SpecError, match="invalid expression"):
            compile_module(module, "resnet18", {"layers": "[1, 2"}, memo=memo)


def test_a_full_memo_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo_module, "MAX_RECORDED", 10)
    module, _ = resolve("resnet18")
    memo = Memo()
    first = compile_module(module, "resnet18", memo=memo).dump()
    held = memo.recorded
    assert held > 10
    assert compile_module(module, "resnet18", memo=memo).dump() == first
    assert memo.recorded == held  # forgotten at the start, recorded again
