"""``graphcnn analyze`` and its report (graphcnn.analysis.report): rankings, roofline bounds,
advice, receptive field and peak memory, for people (Rich tables) and as exactly one JSON object.

The cpu device is measured once per machine; here the measurement is replaced by fixed numbers in
a temporary cache directory, so no test depends on this machine's speed. Linearity is checked by
counting calls (as tests/test_scaling.py does), never with a clock: wall-clock numbers come from
tools/bench_passes.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers.cli import invoke
from helpers.fresh import imported
from helpers.tools import load_tool
from helpers.work import call_counts, not_linear

import graphcnn
import graphcnn.analysis.devices as devices
from graphcnn.analysis import peak_memory, receptive_field, roofline
from graphcnn.analysis.devices import DeviceProfile
from graphcnn.analysis.report import METRICS, Analysis, analyze, retype
from graphcnn.cost import profile
from graphcnn.passes import apply_pipeline, optimize

TOY = DeviceProfile("toy", {"float32": 1e9, "float16": 4e9}, 1e9)


@pytest.fixture(autouse=True)
def fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private cache and a fixed cpu 'measurement' (2e11 FLOP/s, 2e10 B/s)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(
        devices,
        "measure_cpu",
        lambda: {"float32_flops": 2e11, "mem_bandwidth": 2e10, "seconds": 0.0},
    )


def as_json(*args: str) -> dict[str, Any]:
    out = invoke("analyze", *args, "--json").stdout
    assert out.count("\n") == 1 and out.endswith("}\n")  # exactly one JSON object
    data: dict[str, Any] = json.loads(out)
    return data


# --------------------------------------------------------------------------- JSON
def test_json_report_on_googlenet() -> None:
    data = as_json("googlenet", "--top", "3", "--device", "h100-sxm")
    g = graphcnn.compile("googlenet")
    p = profile(g)
    assert data["model"] == "googlenet" and data["batch"] == 1 and data["dtype"] == "float32"
    assert data["device"]["name"] == "h100-sxm" and data["pipeline"] == "none"
    assert data["totals"]["params"] == p.totals.params and data["totals"]["macs"] == p.totals.macs
    times = roofline.analyze(g, "h100-sxm")
    assert data["totals"]["time_s"] == pytest.approx(sum(t.time_s for t in times))
    for level in ("top_layers", "top_blocks"):
        assert list(data[level]) == list(METRICS)
        for metric, rows in data[level].items():
            assert 1 <= len(rows) <= 3
            values = [r[metric] for r in rows]
            assert values == sorted(values, reverse=True) and values[-1] > 0
            for r in rows:
                assert r["bound"] in ("compute", "memory")
    # layer rankings agree with the profile (inference rows)
    inference = [r for r in p.layers if not r.training_only]
    best = max(inference, key=lambda r: r.cost.macs)
    assert data["top_layers"]["macs"][0]["name"] == best.name
    assert data["top_layers"]["params"][0]["params"] == max(r.cost.params for r in inference)
    blocks = {r["name"] for rows in data["top_blocks"].values() for r in rows}
    assert all("." not in b for b in blocks)  # depth 1
    # advice with exact before / after
    assert data["suggestions"]
    for s in data["suggestions"]:
        assert s["model_before"] == {"params": p.totals.params, "macs": p.totals.macs}
        assert s["layer_after"]["macs"] < s["layer_before"]["macs"]
    # receptive field: the output and every node
    rf = data["receptive_field"]
    assert rf["output"] == "fc" and set(rf["layers"]) == set(g.nodes)
    assert rf["field"] == rf["layers"]["fc"] and rf["last_feature_map"] is not None
    fields = receptive_field.analyze(g)
    assert rf["layers"]["conv1.conv"]["size"] == list(fields["conv1.conv"].size) == [7, 7]
    # memory: liveness peak vs the naive sum, inference and training
    mem = data["memory"]
    inf, train = peak_memory.analyze(g, 1, False), peak_memory.analyze(g, 1, True)
    assert mem["inference"]["peak_bytes"] == inf.peak_bytes < mem["inference"]["naive_bytes"]
    assert mem["training"]["peak_bytes"] == train.peak_bytes > inf.peak_bytes
    assert mem["training"]["naive_bytes"] == train.naive_bytes
    assert set(data["convention"]) >= {"macs", "time"}


def test_cpu_is_the_default_device_and_measured_once() -> None:
    data = as_json("resnet18")
    assert data["device"]["name"] == "cpu"
    assert data["device"]["peak_flops"] == {"float32": 2e11}
    assert data["device"]["measured"]["from_cache"] is False
    assert as_json("resnet18")["device"]["measured"]["from_cache"] is True
    assert as_json("resnet18", "--remeasure")["device"]["measured"]["from_cache"] is False


def test_batch_depth_and_top() -> None:
    one = as_json("resnet18", "--device", "h100-sxm")
    eight = as_json("resnet18", "--device", "h100-sxm", "--batch", "8", "--depth", "2")
    assert eight["batch"] == 8 and eight["totals"]["macs"] == 8 * one["totals"]["macs"]
    assert eight["totals"]["params"] == one["totals"]["params"]
    assert eight["totals"]["activation_bytes"] == 8 * one["totals"]["activation_bytes"]
    assert (
        eight["memory"]["inference"]["peak_bytes"] == 8 * one["memory"]["inference"]["peak_bytes"]
    )
    depths = {len(r["name"].split(".")) for rows in eight["top_blocks"].values() for r in rows}
    assert max(depths) == 2
    assert all(len(rows) <= 5 for rows in one["top_layers"].values())
    top1 = as_json("resnet18", "--device", "h100-sxm", "--top", "1")
    assert all(len(rows) == 1 for rows in top1["top_layers"].values())
    assert len({s["layer"] for s in top1["suggestions"]}) == 1


def test_float16_halves_bytes_not_macs() -> None:
    f32 = as_json("resnet18", "--device", "h100-sxm")
    f16 = as_json("resnet18", "--device", "h100-sxm", "--dtype", "float16")
    for key in ("activation_bytes", "weight_bytes", "bytes_moved"):
        assert f16["totals"][key] * 2 == f32["totals"][key], key
    assert f16["totals"]["macs"] == f32["totals"]["macs"]
    assert f16["memory"]["inference"]["peak_bytes"] * 2 == f32["memory"]["inference"]["peak_bytes"]
    assert f16["totals"]["compute_s"] < f32["totals"]["compute_s"] / 10  # tensor cores
    assert f16["ridge_flop_per_byte"] == pytest.approx(989e12 / 3.35e12)


def test_pipeline_and_training_memory() -> None:
    raw = as_json("googlenet", "--device", "h100-sxm")
    lean = as_json("googlenet", "--device", "h100-sxm", "--pipeline", "inference")
    assert lean["pipeline"] == "inference" and lean["nodes"] < raw["nodes"]
    assert lean["totals"]["macs"] == raw["totals"]["macs"]  # BN folds, no MACs change
    # training memory is of the graph before the pipeline (with BN, dropout, aux heads)
    assert lean["memory"]["training"] == raw["memory"]["training"]
    assert any("before the pipeline" in n for n in lean["notes"])
    # --report goes to stderr; stdout stays one JSON object
    result = invoke(
        "analyze", "googlenet", "--device", "h100-sxm", "-p", "inference", "--report", "--json"
    )
    assert json.loads(result.stdout)["nodes"] == lean["nodes"]
    assert "fold_bn" in result.stderr


NAIVE_INCEPTION = str(REPO / "docs" / "examples" / "naive_inception.gcnn")


def test_reduction_width_option() -> None:
    data = as_json("vgg11", "--device", "h100-sxm", "--reduction", "16")
    reduce = [s for s in data["suggestions"] if s["kind"] == "reduce_1x1"]
    assert reduce and all(s["snippet"].startswith("x -> conv(16, 1") for s in reduce)
    assert all("reduction width 16 given" in s["description"] for s in reduce)


def test_the_naive_inception_example_gets_the_whole_module_rewrite() -> None:
    data = as_json(NAIVE_INCEPTION, "--device", "h100-sxm")
    (module,) = [s for s in data["suggestions"] if s["kind"] == "inception_module"]
    assert (module["layer_before"]["macs"], module["layer_after"]["macs"]) == (
        854_196_224,
        271_351_808,
    )


# --------------------------------------------------------------------------- errors
def test_unknown_device_lists_valid_ones() -> None:
    result = invoke("analyze", "resnet18", "--device", "tpu-v9", code=2)
    assert "unknown device 'tpu-v9'" in result.output
    assert "valid devices: cpu, h100-sxm" in result.output
    assert "Traceback" not in result.output


def test_cpu_has_no_float16_peak() -> None:
    result = invoke("analyze", "resnet18", "--dtype", "float16", code=2)
    assert "no peak rate for dtype 'float16'" in result.output and "float32" in result.output


def test_bad_options() -> None:
    assert "float64" in invoke("analyze", "resnet18", "--dtype", "float64", code=2).output
    invoke("analyze", "resnet18", "--top", "0", code=2)
    invoke("analyze", "resnet18", "--depth", "0", code=2)
    assert "unknown pass" in invoke("analyze", "resnet18", "-p", "nope", code=2).output


# --------------------------------------------------------------------------- people
def test_human_report() -> None:
    out = invoke("analyze", NAIVE_INCEPTION, "--top", "2", "--device", "h100-sxm").stdout
    for text in (
        "naive_inception: input 256x28x28, batch 1",
        "device h100-sxm",
        "top 2 layers by MACs, params, act mem, est. time",
        "top 2 blocks at depth 1",
        "bottleneck advisor",
        "Inception",
        "Inception (module)",
        "MobileNet",
        "receptive field of fc",
        "inference activation memory",
        "training activation memory",
        "time model: roofline",
        "#1",
    ):
        assert text in out, text
    assert "compute" in out and "memory" in out
    assert invoke("analyze", "--help").stdout.count("--device") == 1


# --------------------------------------------------------------------------- the Python API
def test_api_matches_the_analyses() -> None:
    g = graphcnn.compile("resnet18")
    a = analyze(g, TOY, top=3)
    assert isinstance(a, Analysis) and a.device is TOY and a.output == "fc"
    times = roofline.analyze(g, TOY)
    assert a.totals.time_s == pytest.approx(roofline.total(times).time_s)
    by_time = sorted(times, key=lambda t: -t.time_s)[:3]
    assert [r.name for r in a.top_layers["time_s"]] == [t.name for t in by_time]
    assert a.receptive_field == receptive_field.analyze(g)["fc"]
    assert a.memory_inference == peak_memory.analyze(g, 1, False)
    assert a.last_feature_map == "layer4.1.relu_1"
    json.dumps(a.to_json())


def test_apply_pipeline_equals_optimize() -> None:
    g = graphcnn.compile("densenet121")
    fast = apply_pipeline(g, "inference")
    slow, _, _ = optimize(g, None, "inference")
    assert fast.dump() == slow.dump()
    assert apply_pipeline(g, "none") is g


def test_retype() -> None:
    g = graphcnn.compile("resnet18")
    assert retype(g, "float32") is g
    half = retype(g, "float16")
    half.verify()
    assert {n.type.dtype for n in half} == {"float16"} and {n.type.dtype for n in g} == {"float32"}
    assert profile(half).totals.weight_bytes * 2 == profile(g).totals.weight_bytes


def test_analyze_never_imports_torch() -> None:
    code = """
        import json
        from click.testing import CliRunner
        from graphcnn.cli import main
        args = ["analyze", "googlenet", "-p", "inference", "--device", "h100-sxm", "--json"]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        json.loads(r.stdout)
    """
    assert imported(code, "torch", "torchvision", "onnx") == []


# --------------------------------------------------------------------------- linear work
def _calls(tmp_path: Path, n: int) -> dict[str, int]:
    """Calls of every function to run the inference pipeline and analyze a plain N-layer net."""
    path = load_tool("gen_plain").write_plain(tmp_path / f"plain{n}.gcnn", n)
    g = graphcnn.compile(str(path))
    _, counts = call_counts(lambda: analyze(apply_pipeline(g, "inference"), TOY, training_graph=g))
    return counts


@pytest.mark.slow
def test_pipeline_and_analyze_calls_are_linear(tmp_path: Path) -> None:
    n = 300  # a multiple of 3: whole conv/bn/relu cycles
    _calls(tmp_path, 3)  # warm-up
    one, two, four = (_calls(tmp_path, k * n) for k in (1, 2, 4))
    assert sum(two.values()) - sum(one.values()) > 20 * n
    bad = not_linear(one, two, four)
    assert not bad, f"call counts not linear in the layer count (N, 2N, 4N): {bad}"
