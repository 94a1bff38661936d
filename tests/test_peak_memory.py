"""The peak-memory analysis: hand-computed liveness, the zoo's invariants, and what autograd
really saves (checked against PyTorch with saved-tensor hooks).

Byte counts are float32 (4 bytes per element) unless said otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers.specs import net
from helpers.zoo import compiled, slow_params

import graphcnn
from graphcnn import zoo
from graphcnn.analysis.peak_memory import SAVED, TOKENS, MemoryReport, analyze
from graphcnn.ir import Graph, Op


def steps(report: MemoryReport) -> list[int]:
    return [b for _, b in report.per_node]


CHAIN = (
    "  return x -> conv(4, 3, pad: 1, bias: false) as c1 -> relu as r\n"
    "    -> conv(2, 3, pad: 1, bias: false) as c2"
)


def test_chain_inference_by_hand() -> None:
    # batch 2: input 2*3*64*4 = 1536, c1 and r 2*4*64*4 = 2048 each, c2 2*2*64*4 = 1024
    g = net(CHAIN, "3, 8, 8")
    m = analyze(g, batch=2)
    assert [n for n, _ in m.per_node] == ["input", "c1", "r", "c2"]
    # a node runs with its inputs and output alive; the input dies after c1, c1 after r
    assert steps(m) == [1536, 1536 + 2048, 2048 + 2048, 2048 + 1024]
    assert (m.peak_bytes, m.peak_at, m.live_at_peak) == (4096, "r", ("c1", "r"))
    assert m.naive_bytes == 1536 + 2048 + 2048 + 1024
    assert m.weight_bytes == (4 * 3 * 9 + 2 * 4 * 9) * 4  # weights never enter the peak
    assert m.total_bytes == 4096 + 720
    assert (m.saved_bytes, m.batch, m.training) == (0, 2, False)


def test_chain_training_by_hand() -> None:
    # c1 saves the input, r its output, c2 its input (= r's output): both stay to the end
    g = net(CHAIN, "3, 8, 8")
    m = analyze(g, batch=2, training=True)
    assert steps(m) == [1536, 1536 + 2048, 1536 + 2048 + 2048, 1536 + 2048 + 1024]
    assert (m.peak_bytes, m.peak_at, m.live_at_peak) == (5632, "r", ("input", "c1", "r"))
    assert m.saved_bytes == 1536 + 2048
    assert m.naive_bytes == analyze(g, batch=2).naive_bytes  # nothing saved beyond outputs


def test_residual_skip_stays_alive_across_the_branch() -> None:
    g = net(
        "  y = x -> conv(4, 3, pad: 1) as a -> relu as r -> conv(4, 3, pad: 1) as b\n"
        "  return add(y, x) as s",
        "4, 8, 8",
    )
    m = analyze(g)  # every tensor is 4*64*4 = 1024 bytes
    assert steps(m) == [1024, 2048, 3072, 3072, 3072]
    assert (m.peak_at, m.live_at_peak) == ("r", ("input", "a", "r"))
    plain = analyze(
        net("  return x -> conv(4, 3, pad: 1) -> relu -> conv(4, 3, pad: 1)", "4, 8, 8")
    )
    assert steps(plain) == [1024, 2048, 2048, 2048]


def test_views_share_their_input_storage() -> None:
    g = net("  return x -> flatten as f -> linear(3) as fc", "2, 4, 4")
    m = analyze(g)
    assert steps(m) == [128, 128, 128 + 12]
    assert m.naive_bytes == 128 + 128 + 12 and m.live_at_peak == ("input", "fc")
    # linear saves its input: a view, so the input's storage is kept to the end
    t = analyze(g, training=True)
    assert steps(t) == steps(m) and t.saved_bytes == 128
    g = net("  a, b = split(x, 2)\n  return concat(b, a) as c", "4, 4, 4")
    m = analyze(g)
    assert steps(m) == [256, 256, 256, 512]
    assert m.naive_bytes == 256 + 128 + 128 + 256 and m.live_at_peak == ("input", "c")


def test_dropout_aliases_at_inference_and_saves_a_mask_in_training() -> None:
    g = net(
        "  return x -> flatten -> linear(8) as l1 -> dropout as d -> linear(2) as l2", "4, 2, 2"
    )
    # input 64, l1 and d 32, l2 8; mask 1 byte per element
    m = analyze(g)
    assert steps(m) == [64, 64, 64 + 32, 32, 32 + 8]
    assert m.naive_bytes == 64 + 64 + 32 + 32 + 8
    t = analyze(g, training=True)
    assert steps(t) == [64, 64, 64 + 32, 64 + 32 + 32 + 8, 64 + 32 + 8 + 8]
    assert t.saved_bytes == 64 + 32 + 8 and t.naive_bytes == m.naive_bytes + 8
    assert t.live_at_peak == ("input", "l1", "d")


def test_requires_grad_decides_what_is_saved() -> None:
    """A pool on the raw input needs no gradient, so it saves nothing (no input, no indices);
    after a conv it saves its input and int64 indices."""
    first = net("  return x -> maxpool(2) as p -> conv(1, 1, bias: false) as c", "1, 4, 4")
    t = analyze(first, training=True)
    assert steps(t) == [64, 64 + 16, 16 + 16] and t.saved_bytes == 16
    after = net("  return x -> conv(1, 1, bias: false) as c -> maxpool(2) as p", "1, 4, 4")
    t = analyze(after, training=True)
    assert steps(t) == [64, 64 + 64, 64 + 64 + 16 + 4 * 8]
    assert t.saved_bytes == 64 + 64 + 4 * 8 and t.live_at_peak == ("input", "c", "p")
    assert t.naive_bytes == 64 + 64 + 16 + 4 * 8


def test_graph_outputs_live_to_the_end() -> None:
    g = net(
        "  a = x -> conv(1, 1) as a\n  c = a -> conv(1, 1) as b -> conv(1, 1) as c\n  return a, c",
        "1, 4, 4",
    )
    assert steps(analyze(g)) == [64, 128, 128, 64 + 64 + 64]


def test_training_only_nodes_count_only_in_training() -> None:
    g = compiled("googlenet")
    aux = {n.name for n in g if n.training_only}
    assert aux
    assert not aux & {n for n, _ in analyze(g).per_node}
    assert aux <= {n for n, _ in analyze(g, training=True).per_node}


def test_the_saved_table_covers_every_op() -> None:
    assert set(SAVED) == set(Op)
    assert {t for tokens in SAVED.values() for t in tokens} <= set(TOKENS)


def test_analysis_does_not_mutate() -> None:
    g = compiled("resnet18")
    before = g.dump()
    analyze(g, training=True)
    assert g.dump() == before


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_invariants(name: str) -> None:
    g = compiled(name)
    inf, train = analyze(g), analyze(g, training=True)
    for m in (inf, train):
        assert 0 < m.peak_bytes <= m.naive_bytes
        assert m.peak_bytes == max(steps(m))
        assert dict(m.per_node)[m.peak_at] == m.peak_bytes
    assert train.peak_bytes >= inf.peak_bytes
    assert train.saved_bytes <= train.peak_bytes
    # at inference the peak is exactly the storages alive then
    sizes = {n.name: n.type.sample_numel * n.type.itemsize for n in g}
    assert sum(sizes[n] for n in inf.live_at_peak) == inf.peak_bytes
    # weights stay apart: the peak scales exactly with the batch
    for training in (False, True):
        one, eight = analyze(g, batch=1, training=training), analyze(g, 8, training)
        assert eight.peak_bytes == 8 * one.peak_bytes
        assert eight.weight_bytes == one.weight_bytes  # (training adds auxiliary heads)
        assert eight.per_node == tuple((n, 8 * b) for n, b in one.per_node)


def test_batch_defaults_to_the_graph_batch() -> None:
    g = graphcnn.compile("resnet18", batch=4)
    assert analyze(g).batch == 4
    assert analyze(g).peak_bytes == 4 * analyze(g, batch=1).peak_bytes
    assert analyze(compiled("resnet18")).batch == 1


# -- what PyTorch saves ---------------------------------------------------------------------------

ALL_OPS = """
network allops() {
  x = input(8, 16, 16)
  raw = x -> maxpool(3, stride: 1, pad: 1) -> relu6 as raw    # no grad upstream: nothing saved
  x = x -> conv(8, 3, pad: 1) -> bn -> relu -> lrn(3)
  x = x * raw                                                 # saves only raw
  y = concat(relu6(x) + sigmoid(x), tanh(x) * silu(x), hardswish(x) + leaky_relu(x), gelu(x))
  y = y -> pad([0, 1, 1, 0], value: "-inf") -> maxpool(2) -> upsample(2)
        -> avgpool(3, stride: 1, pad: 1) -> adaptive_avgpool(4)
  g = y -> global_avgpool -> conv(32, 1) -> sigmoid
  y = y * g
  p, q = split(y, 2)
  y = concat(q -> conv(16, 1) -> drop_path(0.2), p) -> channel_shuffle(2) -> softmax -> identity
  z = y -> permute([0, 2, 3, 1]) -> layer_norm(axis: -1)
        -> linear(32, last_dim: true, drop_connect: 0.3) -> permute([0, 3, 1, 2])
  y = (y + z * 0.5) / 2 -> layer_norm -> layer_scale -> hardsigmoid -> gelu(approximate: "tanh")
  return y -> reshape([32, 16]) -> flatten -> linear(10) -> bn -> dropout -> linear(5)
}
"""


def torch_saved_bytes(torch: Any, graph: Graph, batch: int) -> int:
    """Bytes of the distinct storages autograd saves in one training forward of the generated
    module (parameters, buffers and BN's per-channel statistics left out)."""
    from graphcnn.backends.to_torch import to_torch

    module = to_torch(graph)
    module.train()
    weights = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights and t.dim() > 1:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(batch, *graph.inputs[0].type.sample_shape)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(seen.values())


@pytest.mark.torch
@pytest.mark.parametrize(
    "name",
    slow_params(
        ["all ops", "resnet18", "mobilenet_v2", "shufflenet_v2_x0_5", "efficientnet_b0"],
        {"mobilenet_v2", "shufflenet_v2_x0_5"},
    ),
)
def test_saved_bytes_match_pytorch(name: str, torch: Any) -> None:
    g = graphcnn.compile_text(ALL_OPS) if name == "all ops" else compiled(name, (3, 64, 64))
    if name == "all ops":
        assert {n.op for n in g} == set(Op)
    report = analyze(g, batch=2, training=True)
    # on CPU dropout keeps a float noise tensor where CUDA keeps a 1-byte mask
    cpu_mask = sum(2 * n.type.sample_numel * (n.type.itemsize - 1) for n in g if n.op is Op.DROPOUT)
    assert torch_saved_bytes(torch, g, 2) == report.saved_bytes + cpu_mask
