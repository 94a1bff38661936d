"""The pass registry, the pipelines and the CLI around them, checked on the whole zoo.

- registry: a pass's file name is its registry name and its CLI name; its docstring is its spec;
  unknown names fail with a hint listing the valid ones (exit code 2 on the CLI);
- ``verify=True`` runs ``Graph.verify()`` after every pass, and blames a broken graph on the pass;
- ``inference`` changes no zoo model's outputs (non-trivial BN statistics, eval mode), removes
  every BN that follows a conv/linear layer, every dropout and every training-only node, and
  names each BN it cannot fold with the reason;
- ``graphcnn compile/profile --pipeline inference`` and ``graphcnn passes``;
- no pass is quadratic: work is counted (node visits, user lookups, rewrites, traced lines),
  not timed, on generated networks of N and 2N layers.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import invoke
from helpers.passes import (
    assert_same_outputs,
    canonical,
    example_input,
    of_op,
    relative_error,
)
from helpers.tools import import_file, load_tool
from helpers.weights import random_bn_weights
from helpers.work import Work, counted
from helpers.zoo import compiled, reduced, zoo_params

import graphcnn
import graphcnn.ir
import graphcnn.passes
from graphcnn import zoo
from graphcnn.ir import Graph, Node, Op
from graphcnn.passes import PASSES, PIPELINES, PassError, describe, optimize
from graphcnn.weights import check_weights, init_weights, save_safetensors

PASS_DIR = Path(graphcnn.passes.__file__).resolve().parent
LAYERS = (Op.CONV2D, Op.LINEAR)
REMOVED_BY_INFERENCE = (Op.BATCH_NORM, Op.DROPOUT, Op.DROP_PATH)

# BNs that cannot fold: after a concat (DenseNet) or in front of an activation (pre-activation).
KEEPS_BN = {n for n in zoo.names() if n.startswith("densenet")} | {"preact_resnet18"}
KEEPS_BN |= {"nasnetalarge"} & set(zoo.names())  # final_path_bn follows a concat

# --------------------------------------------------------------------------------- registry


def _defines_run(path: Path) -> bool:
    """Whether a module of passes/ defines a top-level ``run``: a transform (analyses in the
    same folder define ``analyze`` and are not registered as passes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body)


def test_pass_name_is_file_name_is_cli_name() -> None:
    transforms = {p.stem for p in PASS_DIR.glob("*.py") if _defines_run(p)}
    assert set(PASSES) == transforms
    for name, run in PASSES.items():
        assert run.__module__ == f"graphcnn.passes.{name}"
        assert Path(sys.modules[run.__module__].__file__ or "").name == f"{name}.py"
        assert describe(name).startswith(f"{name}: ")
    # every pass runs by its name on the command line
    for name in PASSES:
        data = json.loads(invoke("profile", "lenet5", "--pipeline", name, "--json").output)
        assert data["model"] == "lenet5"


@pytest.mark.parametrize("name", sorted(PASSES))
def test_pass_docstring_is_its_spec(name: str) -> None:
    doc = sys.modules[PASSES[name].__module__].__doc__
    assert doc and doc.startswith(f"{name}: ")
    assert "Before" in doc and "after" in doc


def test_pipelines() -> None:
    assert "inference" in PIPELINES and "none" in PIPELINES
    assert PIPELINES["none"] == ()
    assert set(PIPELINES["inference"]) == set(PASSES)  # inference runs every pass, once each
    assert len(PIPELINES["inference"]) == len(PASSES)
    for names in PIPELINES.values():
        assert all(n in PASSES for n in names)
    g = compiled("resnet18")
    out, weights, reports = optimize(g, None, "none")
    assert canonical(out) == canonical(g) and weights is None and reports == []


def test_a_pipeline_may_be_a_list_or_comma_separated_passes() -> None:
    g = compiled("googlenet")
    _, _, reports = optimize(g, None, "remove_dropout, fold_bn")
    assert [r.name for r in reports] == ["remove_dropout", "fold_bn"]
    _, _, reports = optimize(g, None, ["fold_bn"])
    assert [r.name for r in reports] == ["fold_bn"]


@pytest.mark.parametrize(
    "pipeline, unknown",
    [
        ("nope", "nope"),
        ("inferense", "inferense"),
        ("fold_bn,nope", "nope"),
        (["remove_dropout", "x"], "x"),
    ],
)
def test_unknown_pass_or_pipeline_lists_the_valid_names(pipeline: Any, unknown: str) -> None:
    with pytest.raises(PassError) as info:
        optimize(compiled("lenet5"), None, pipeline)
    assert info.value.message == f"unknown pass or pipeline {unknown!r}"
    assert info.value.hint is not None
    for name in [*PIPELINES, *PASSES]:
        assert name in info.value.hint


def test_cli_unknown_pipeline_exits_2_with_the_hint() -> None:
    for command in (["profile", "lenet5"], ["compile", "lenet5", "-o", "unused.py"]):
        result = invoke(*command, "--pipeline", "inferense", code=2)
        assert "error: unknown pass or pipeline 'inferense'" in result.output
        assert "Traceback" not in result.output
        hint = next(line for line in result.output.splitlines() if "hint:" in line)
        for name in [*PIPELINES, *PASSES]:
            assert name in hint


# ------------------------------------------------------------------------------- verify


@pytest.mark.parametrize("name", zoo.names())
def test_every_pass_leaves_a_valid_graph(name: str) -> None:
    g = compiled(name)
    out, _, reports = optimize(g, None, "inference", verify=True)
    assert [r.name for r in reports] == list(PIPELINES["inference"])
    out.verify()


def _bogus(graph: Graph, weights: Any = None) -> graphcnn.passes.PassResult:
    """Gives two convs an out_channels their stored type does not have."""
    convs = [n for n in graph if n.op is Op.CONV2D]
    bad = {
        n.name: n.replace(attrs={**n.attrs, "out_channels": n.attr_int("out_channels") + 1})
        for n in (convs[1], convs[-1])
    }
    return graphcnn.passes.PassResult(graph.rewrite(bad), rewritten=list(bad))


def test_a_broken_pass_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PASSES, "bogus", _bogus)
    g = compiled("resnet18")
    first = [n.name for n in g if n.op is Op.CONV2D][1]
    with pytest.raises(PassError) as info:
        optimize(g, None, ["remove_dropout", "bogus", "fold_bn"], verify=True)
    message = info.value.message
    assert message.startswith("pass bogus broke the graph: ")
    assert f"{first}: stored type" in message, message
    # without verify the pipeline does not look (that is what --verify-passes is for)
    optimize(g, None, ["bogus"])


def test_cli_verify_passes_names_the_broken_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PASSES, "bogus", _bogus)
    result = invoke("profile", "resnet18", "--pipeline", "bogus", "--verify-passes", code=2)
    assert "error: pass bogus broke the graph: layer1.0.conv1: " in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------- numeric equivalence


@pytest.mark.parametrize("name", zoo_params(zoo.names()))
def test_inference_pipeline_keeps_every_zoo_models_outputs(name: str, torch1: Any) -> None:
    g = reduced(name)
    weights = random_bn_weights(g)
    out, out_weights, _ = optimize(g, weights, "inference", verify=True)
    assert out_weights is not None
    check_weights(out, out_weights, f"{name} after inference")
    assert_same_outputs(g, weights, out, out_weights)


@pytest.mark.slow
def test_zoo_inputs_are_reduced_where_the_architecture_allows() -> None:
    def zoo_input(name: str) -> tuple[int, ...]:
        return reduced(name).inputs[0].type.sample_shape

    assert zoo_input("lenet5") == (1, 32, 32)
    assert zoo_input("resnet50") == (3, 64, 64)
    assert zoo_input("alexnet_v1") == (3, 96, 96)
    assert zoo_input("inception_v3") == (3, 299, 299)  # its aux head fixes the input size
    assert sum(zoo_input(n) == (3, 64, 64) for n in zoo.names()) >= 40


# ---------------------------------------------------------------------- what inference removes


def _follows_layer(g: Graph, bn: Node) -> bool:
    return g[bn.inputs[0]].op in LAYERS


@pytest.mark.parametrize("name", zoo.names())
def test_inference_graph_is_lean(name: str) -> None:
    g = compiled(name)
    out, _, reports = optimize(g, None, "inference")
    assert not any(n.training_only for n in out)
    assert not of_op(out, Op.DROPOUT, Op.DROP_PATH)
    assert all(not out[n].training_only for _, n in out.outputs)
    notes = [note for r in reports for note in r.notes]
    left = of_op(out, Op.BATCH_NORM)
    inference_bns = [n for n in g.inference() if n.op is Op.BATCH_NORM]
    if all(_follows_layer(g, bn) for bn in inference_bns):
        assert name not in KEEPS_BN
        assert left == [] and notes == [], notes
        return
    assert name in KEEPS_BN
    # each BN that stays is named once, with a reason; every note is about a BN that stayed
    reasons = {}
    for note in notes:
        m = re.fullmatch(r"not folded: (\S+): (.+)", note)
        assert m, note
        reasons[m.group(1)] = m.group(2)
    assert len(reasons) == len(notes) and sorted(reasons) == sorted(left)
    for bn in left:
        src = g[g[bn].inputs[0]]
        assert src.op not in LAYERS
        assert f"follows {src.op} {src.name}" in reasons[bn]
    # and everything that follows a conv/linear layer did fold
    assert all(not _follows_layer(g, g[bn]) for bn in left)


def test_the_models_that_keep_bns() -> None:
    keep = set()
    for name in zoo.names():
        out, _, _ = optimize(compiled(name), None, "inference")
        if of_op(out, Op.BATCH_NORM):
            keep.add(name)
    assert keep == KEEPS_BN


@pytest.mark.parametrize("name", zoo.names())
def test_inference_is_a_fixpoint(name: str) -> None:
    """One run is enough: running the pipeline again changes nothing."""
    out, _, _ = optimize(compiled(name), None, "inference")
    again, _, reports = optimize(out, None, "inference")
    assert canonical(again) == canonical(out)
    assert all(r.removed == r.rewritten == 0 for r in reports)


# ------------------------------------------------------------------------------------ CLI


def _si(n: int) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)


def test_cli_compile_inference_writes_an_equivalent_module(tmp_path: Path, torch1: Any) -> None:
    torch = torch1
    g = compiled("resnet18")
    weights = random_bn_weights(g, seed=5)
    ckpt = tmp_path / "trained.safetensors"
    save_safetensors(weights, ckpt)
    plain, lean = tmp_path / "plain.py", tmp_path / "lean.py"
    invoke("compile", "resnet18", "--target", "torch", "-o", str(plain), "--weights", str(ckpt))
    result = invoke(
        "compile",
        "resnet18",
        "--target",
        "torch",
        "-o",
        str(lean),
        "--weights",
        str(ckpt),
        "--pipeline",
        "inference",
        "--report",
    )
    # the report: one row per pass with nodes, params and MACs before -> after
    _, _, reports = optimize(g, weights, "inference")
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    for r in reports:
        row = next((line for line in rows if f" {r.name} " in line), None)
        assert row is not None, f"no report row for {r.name}:\n{result.output}"
        assert f"{r.params[0]:,} -> {r.params[1]:,}" in row
        assert f"{_si(r.macs[0])} -> {_si(r.macs[1])}" in row
        assert f"{r.nodes[0]} -> {r.nodes[1]}" in row
    # resnet18: 20 conv -> bn pairs, no conv has a bias: each BN's gamma/beta become a bias
    fold = next(r for r in reports if r.name == "fold_bn")
    bns = of_op(g, Op.BATCH_NORM)
    assert fold.removed == len(bns) == 20 and fold.notes == ()
    assert fold.params[0] - fold.params[1] == sum(g[bn].num_params // 2 for bn in bns)

    x = torch.from_numpy(example_input(g, 2))
    with torch.no_grad():
        ref = import_file(plain).Model().eval()(x).numpy()
        got = import_file(lean).Model().eval()(x).numpy()
    assert relative_error(got, ref) <= 1e-5
    source = lean.read_text()
    assert "BatchNorm" not in source and "BatchNorm2d" in plain.read_text()


def test_cli_profile_inference_totals(tmp_path: Path) -> None:
    """googlenet: the inference totals minus what fold_bn and the other passes take out."""
    g = compiled("googlenet")
    base = json.loads(invoke("profile", "googlenet", "--json").output)
    data = json.loads(invoke("profile", "googlenet", "--pipeline", "inference", "--json").output)
    inf = g.inference()
    bns = [n for n in inf if n.op is Op.BATCH_NORM]
    assert bns and all(_follows_layer(inf, bn) and len(inf.users(bn.inputs[0])) == 1 for bn in bns)
    new_bias = [inf[bn.inputs[0]] for bn in bns if not inf[bn.inputs[0]].attrs["bias"]]
    dropped = [n for n in inf if n.op in (Op.DROPOUT, Op.DROP_PATH)]
    bias_params = sum(n.attr_int("out_channels") for n in new_bias)
    bn_params = sum(bn.num_params for bn in bns)
    assert bn_params == sum(2 * int(bn.type.shape[1]) for bn in bns)
    numel = {n.name: n.type.sample_numel for n in inf}
    t = base["totals"]
    assert data["totals"] == {
        "params": t["params"] - bn_params + bias_params,
        "macs": t["macs"],
        "flops": t["flops"]
        - sum(2 * numel[bn.name] for bn in bns)
        + sum(numel[c.name] for c in new_bias),
        "activation_bytes": t["activation_bytes"]
        - 4 * sum(numel[n.name] for n in [*bns, *dropped]),
        "weight_bytes": t["weight_bytes"]
        - 4 * sum(p.numel for bn in bns for p in bn.params)
        + 4 * bias_params,
    }
    assert data["training_only"] == {"params": 0, "macs": 0}
    assert base["training_only"]["params"] > 0


def test_cli_passes_lists_passes_and_pipelines() -> None:
    text = invoke("passes").output
    lines = text.splitlines()
    for name in PASSES:
        line = next(line for line in lines if line.startswith(name + " "))
        assert describe(name).split(": ", 1)[1] in line
    for name, names in PIPELINES.items():
        assert f"pipeline {name}: {', '.join(names) or '(no passes)'}" in lines


# --------------------------------------------------------------------------------- scaling


def mixed_spec(units: int) -> str:
    """A network exercising every pass, ``units`` times: conv/bn/relu (fold_bn), dropout and
    identity, flatten -> reshape (merge_reshapes), a dead branch and a training-only node."""
    gen = load_tool("gen_plain")
    body = []
    for _ in range(units):
        body += [gen.layer_line(kind, 16) for kind in ("conv", "bn", "relu", "dropout", "identity")]
        body += [
            "  x = x -> flatten",
            "  x = x -> reshape([16, 8, 8])",
            "  d = x -> relu",
            "  training { t = x -> relu }",
        ]
    return "network mixed() {\n  x = input(16, 8, 8)\n" + "\n".join(body) + "\n  return x\n}\n"


def _tracing(work: Work, run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` with every line executed in passes/ and graphcnn/ir.py counted per file
    (sys.settrace line events: each loop iteration counts, so a hidden loop over the graph
    shows even inside one call)."""
    files = {str(p) for p in PASS_DIR.glob("*.py")} | {str(Path(graphcnn.ir.__file__).resolve())}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            work["lines:" + Path(frame.f_code.co_filename).stem] += 1
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename in files else None

    def traced(*args: Any, **kwargs: Any) -> Any:
        old = sys.gettrace()
        work.active = True
        sys.settrace(tracer)
        try:
            return run(*args, **kwargs)
        finally:
            sys.settrace(old)
            work.active = False

    return traced


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    """Counters of the passes' unit operations, installed as wrappers for one test; they
    count while a pass runs (not while the pipeline profiles between passes)."""
    import graphcnn.passes.fold_bn as fold_bn

    counter = Work()
    counter.active = False
    iterate = Graph.__iter__

    def counting_iter(self: Graph) -> Iterator[Node]:
        for node in iterate(self):
            if counter.active:
                counter["node_visits"] += 1
            yield node

    users = Graph.users

    def counting_users(self: Graph, name: str) -> list[str]:
        if counter.active:
            counter["users"] += 1
            if self._users is None:
                counter["users_index"] += len(self.nodes)  # building the index is O(n)
        return users(self, name)

    rewrite = Graph.rewrite

    def counting_rewrite(self: Graph, *args: Any, **kwargs: Any) -> Graph:
        if counter.active:
            counter["rewrite_nodes"] += len(self.nodes)
        return rewrite(self, *args, **kwargs)

    monkeypatch.setattr(Graph, "__iter__", counting_iter)
    monkeypatch.setattr(Graph, "users", counting_users)
    monkeypatch.setattr(Graph, "rewrite", counting_rewrite)
    monkeypatch.setattr(Graph, "__getitem__", counted(counter, "lookups", Graph.__getitem__))
    monkeypatch.setattr(Node, "replace", counted(counter, "node_replace", Node.replace))
    monkeypatch.setattr(fold_bn, "infer_node", counted(counter, "infer_node", fold_bn.infer_node))
    for name, run in list(PASSES.items()):
        monkeypatch.setitem(PASSES, name, _tracing(counter, run))
    yield counter


def _measure(work: Work, g: Graph) -> dict[str, int]:
    weights = init_weights(g)
    work.clear()
    out, _, _ = optimize(g, weights, "inference")
    assert of_op(out, Op.BATCH_NORM, Op.DROPOUT, Op.IDENTITY) == []
    return dict(work)


@pytest.mark.parametrize("kind", ["plain", "mixed"])
def test_no_pass_is_quadratic(work: Work, tmp_path: Path, kind: str) -> None:
    """The work the passes of ``inference`` do beyond an empty network's must exactly double
    from N to 2N layers (+-5%), for every counter and every traced file."""
    gen = load_tool("gen_plain")
    n = 300 if kind == "plain" else 40  # plain: layers (a multiple of 3); mixed: units

    def build(k: int) -> Graph:
        if kind == "plain":
            return graphcnn.compile(str(gen.write_plain(tmp_path / f"plain{k}.gcnn", k)))
        return graphcnn.compile_text(mixed_spec(k))

    _measure(work, build(3))  # warm-up: imports and caches on first use
    base = _measure(work, build(0))
    one, two = _measure(work, build(n)), _measure(work, build(2 * n))
    expected = {
        "node_visits",
        "users",
        "users_index",
        "rewrite_nodes",
        "lookups",
        "node_replace",
        "infer_node",
        "lines:ir",
        "lines:fold_bn",
        "lines:eliminate_dead_nodes",
        "lines:remove_dropout",
        "lines:eliminate_identity",
        "lines:merge_reshapes",
        "lines:manager",
    }
    if kind == "mixed":
        expected |= {"lines:remove_training_outputs"}
    grows = {k for k in one if one[k] > base.get(k, 0)}
    assert expected <= grows, f"counters not wired, or not growing: {expected - grows}"
    bad = {}
    for key in set(one) | set(two):
        inc1, inc2 = one.get(key, 0) - base.get(key, 0), two.get(key, 0) - base.get(key, 0)
        if inc1 == inc2 == 0:
            continue  # constant work
        if not (inc1 > 0 and 1.95 <= inc2 / inc1 <= 2.05):
            bad[key] = (base.get(key, 0), one.get(key, 0), two.get(key, 0))
    assert not bad, f"work (empty, N, 2N layers) does not scale linearly: {bad}"
