"""Scaling of parse + shape inference + profiling, checked without a clock.

A generated PLAIN network (tools/gen_plain.py: N layers written out line by line, cycling
conv 3x3 / bn / relu at constant channels) is compiled and profiled; its node count, params,
MACs, FLOPs and activation bytes must equal closed-form arithmetic. Linearity is checked by
counting work, not by timing: tokens through the post-lexer, AST locations built by the parser,
interpreter steps and evaluations, shape-inference calls, IR insertions and cost-rule calls. For
N layers the increment over the empty network must be exactly 2x (4x) for 2N (4N) layers. A
second check counts every Python-level call (cProfile's call counts, not its timings) per
function: from N to 2N to 4N layers each function's count must grow by exactly 2x, so a hidden
per-layer loop over all earlier layers is caught and named.
Wall-clock numbers live in tools/bench_profile.py and docs/benchmarks.md, never in tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.tools import load_tool
from helpers.work import Work, call_counts, counted, not_linear

import graphcnn
import graphcnn.cost
import graphcnn.lang.interp
import graphcnn.lang.parser
import graphcnn.shapes
from graphcnn.ir import Graph, Op

gen_plain = load_tool("gen_plain")


def _compile_plain(tmp_path: Path, n: int) -> Graph:
    path = gen_plain.write_plain(tmp_path / f"plain{n}.gcnn", n)
    return graphcnn.compile(str(path))


def test_plain_2000_exact(tmp_path: Path) -> None:
    n, c, size = 2000, 16, 8
    g = _compile_plain(tmp_path, n)
    want = gen_plain.expected_totals(n, c, size)
    assert len(g) == want.nodes == n + 1
    ops = Counter(node.op for node in g)
    assert ops == {Op.INPUT: 1, Op.CONV2D: want.convs, Op.BATCH_NORM: want.bns, Op.RELU: want.relus}
    assert (want.convs, want.bns, want.relus) == (667, 667, 666)
    nodes = list(g)
    assert [nd.op for nd in nodes[1:7]] == [Op.CONV2D, Op.BATCH_NORM, Op.RELU] * 2
    assert all(nd.type.sample_shape == (c, size, size) for nd in nodes)
    assert nodes[-1].name == "bn_666" and [node for _, node in g.outputs] == ["bn_666"]

    p = graphcnn.profile(g)
    t = p.totals
    assert len(p.layers) == n
    assert t.params == want.params == 667 * (16 * 16 * 9) + 667 * 2 * 16 == 1_558_112
    assert t.macs == want.macs == 667 * (16 * 8 * 8 * 16 * 9) == 98_353_152
    assert t.flops == want.flops == 2 * 98_353_152 + 667 * 2 * 1024 + 666 * 1024 == 198_754_304
    assert t.activation_bytes == want.activation_bytes == n * 1024 * 4 == 8_192_000
    assert p.training_only.params == 0 and p.training_only.macs == 0


def test_gen_plain_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.gcnn"
    assert gen_plain.main(["7", "-o", str(out), "--channels", "4", "--size", "2"]) == 0
    text = out.read_text()
    assert text == gen_plain.plain_spec(7, 4, 2)
    # one statement per layer: no loops, no blocks
    assert text.count("  x = x -> ") == 7 and "for " not in text and "block" not in text
    t = graphcnn.profile(graphcnn.compile(str(out))).totals
    want = gen_plain.expected_totals(7, 4, 2)
    assert (t.params, t.macs, t.flops) == (want.params, want.macs, want.flops)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    """Counters of the pipeline's unit operations, installed as wrappers for one test."""
    counter = Work()
    newlines = graphcnn.lang.parser._Newlines
    process = newlines.process

    def counting_process(self: Any, stream: Iterator[Any]) -> Iterator[Any]:
        for tok in process(self, stream):
            counter["tokens"] += 1
            yield tok

    monkeypatch.setattr(newlines, "process", counting_process)
    build = graphcnn.lang.parser._Build
    monkeypatch.setattr(build, "_loc", counted(counter, "ast_locs", build._loc))
    interp_cls = graphcnn.lang.interp.Interpreter
    monkeypatch.setattr(interp_cls, "eval", counted(counter, "evals", interp_cls.eval))
    run_network = interp_cls.run_network

    def counting_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return run_network(self, *args, **kwargs)
        finally:
            counter["steps"] += self.steps

    monkeypatch.setattr(interp_cls, "run_network", counting_run)
    # shape inference: the front end binds infer_node at import; count either name
    infer = graphcnn.shapes.infer_node
    counted_infer = counted(counter, "infer_node", infer)
    monkeypatch.setattr(graphcnn.lang.interp, "infer_node", counted_infer)
    monkeypatch.setattr(graphcnn.shapes, "infer_node", counted_infer)
    monkeypatch.setattr(Graph, "add", counted(counter, "graph_add", Graph.add))
    monkeypatch.setattr(
        graphcnn.cost, "node_cost", counted(counter, "node_cost", graphcnn.cost.node_cost)
    )
    yield counter


def _measure(work: Work, tmp_path: Path, n: int) -> dict[str, int]:
    work.clear()
    g = _compile_plain(tmp_path, n)
    p = graphcnn.profile(g)
    assert len(g) == n + 1 and p.totals.macs == gen_plain.expected_totals(n).macs
    return dict(work)


KEYS = ("tokens", "ast_locs", "steps", "evals", "infer_node", "graph_add", "node_cost")


def test_work_is_linear(work: Work, tmp_path: Path) -> None:
    n = 600  # a multiple of 3: every size holds whole conv/bn/relu cycles
    _measure(work, tmp_path, 3)  # warm-up: parser construction, caches
    base = _measure(work, tmp_path, 0)
    one = _measure(work, tmp_path, n)
    two = _measure(work, tmp_path, 2 * n)
    four = _measure(work, tmp_path, 4 * n)
    for key in KEYS:
        inc = one.get(key, 0) - base.get(key, 0)
        assert inc > 0, f"{key}: no work counted per layer (is the counter still wired?)"
        assert two[key] - base.get(key, 0) == 2 * inc, (key, base.get(key), one[key], two[key])
        assert four[key] - base.get(key, 0) == 4 * inc, (key, base.get(key), one[key], four[key])
    # one shape inference, one IR insertion per node, one cost rule per layer
    assert one["graph_add"] == n + 1
    assert one["infer_node"] >= n + 1
    assert one["node_cost"] == n


def _calls_per_function(tmp_path: Path, n: int) -> dict[str, int]:
    """Calls of every function (cProfile's deterministic counts) to compile and profile N layers."""
    path = gen_plain.write_plain(tmp_path / f"plain{n}.gcnn", n)
    p, counts = call_counts(lambda: graphcnn.profile(graphcnn.compile(str(path))))
    assert p.totals.macs == gen_plain.expected_totals(n).macs
    return counts


@pytest.mark.slow
def test_python_calls_are_linear(tmp_path: Path) -> None:
    n = 300  # a multiple of 3
    _calls_per_function(tmp_path, 3)  # warm-up: parser construction, regex and other caches
    one, two, four = (_calls_per_function(tmp_path, k * n) for k in (1, 2, 4))
    assert sum(two.values()) - sum(one.values()) > 100 * n  # it did count the pipeline
    bad = not_linear(one, two, four)
    assert not bad, f"call counts not linear in the layer count (N, 2N, 4N): {bad}"
