"""An ``.onnx`` file wherever a spec goes: ``graphcnn.load`` / ``graphcnn.compile`` and the
commands that take SPEC_OR_MODEL (profile, dump, analyze, draw, compile, bench, train; check
once its edit lands; search refuses one). The models are graphcnn's own exports (resnet18 at
64x64 with non-trivial batch-norm statistics, a tiny digits net), so the imported graph must
cost exactly what the spec does, and an ONNX file's initializers are its weights.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from helpers.cli import invoke  # noqa: E402
from helpers.onnx_ref import ort_run, rel_err, sample  # noqa: E402
from helpers.weights import random_bn_weights  # noqa: E402

import graphcnn  # noqa: E402
from graphcnn.backends.from_onnx import from_onnx  # noqa: E402
from graphcnn.backends.to_onnx import to_onnx  # noqa: E402
from graphcnn.errors import GraphcnnError  # noqa: E402

TOL = 1e-5  # max |ours - reference| / max |reference|, float32
SIZE = ("--input", "3x64x64")
TINY = """
network tiny(classes = 10) {
  x = input(1, 8, 8)
  x = x -> conv(4, 3, pad: 1) as conv1 -> bn as bn1 -> relu -> flatten -> linear(classes) as fc
  return x
}
"""
FAST_TRAIN = ["--epochs", "1", "--threads", "1", "--batch-size", "128"]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resnet18 at 64x64 exported by graphcnn (dynamic batch), BN statistics not 0/1."""
    g = graphcnn.compile("resnet18", input_shape=(3, 64, 64))
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    path.write_bytes(to_onnx(g, random_bn_weights(g, seed=7)).SerializeToString())
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits-sized net (1x8x8 input), small enough to train for one epoch in a test."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    path.write_bytes(to_onnx(graphcnn.compile_text(TINY), seed=3).SerializeToString())
    return path


def profile_json(*args: str) -> Any:
    return json.loads(invoke("profile", *args, "--json").stdout)


def test_load_returns_the_imported_graph_and_its_weights(resnet: Path) -> None:
    g, w = graphcnn.load(resnet)
    ref_g, ref_w = from_onnx(resnet)
    assert w is not None and w.keys() == ref_w.keys()
    assert all(np.array_equal(w[k], ref_w[k]) for k in w)
    assert g.dump() == ref_g.dump() == graphcnn.compile(str(resnet)).dump()
    spec = graphcnn.load("resnet18", input_shape=(3, 64, 64))
    assert spec[1] is None  # a spec declares shapes only
    assert graphcnn.profile(g).totals == graphcnn.profile(spec[0]).totals


def test_load_spec_names_an_onnx_file_as_one(resnet: Path) -> None:
    with pytest.raises(GraphcnnError, match="is an ONNX model, not a spec"):
        graphcnn.load_spec(resnet)


def test_importing_an_onnx_file_needs_no_torch(resnet: Path) -> None:
    code = (
        "import sys, graphcnn\n"
        f"g, w = graphcnn.load({str(resnet)!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(len(g), len(w))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_profile_of_the_onnx_file_is_the_profile_of_the_spec(resnet: Path) -> None:
    ours, ref = profile_json(str(resnet)), profile_json("resnet18", *SIZE)
    assert ours["totals"] == ref["totals"]
    assert ours["totals"]["params"] == 11_689_512
    rows = [(r["name"], r["params"], r["macs"]) for r in ours["layers"]]
    assert rows == [(r["name"], r["params"], r["macs"]) for r in ref["layers"]]


def test_import_and_profile_print_the_same_table(resnet: Path) -> None:
    table = invoke("profile", str(resnet)).stdout
    imported = invoke("import", str(resnet)).stdout
    assert table.strip() and table in imported


def test_input_and_batch_reinfer_the_imported_graph(resnet: Path) -> None:
    args = ("--input", "3x96x96", "--batch", "4")
    ours, ref = profile_json(str(resnet), *args), profile_json("resnet18", *args)
    assert ours["totals"] == ref["totals"] and ours["batch"] == 4


def test_an_input_the_weights_do_not_fit_is_refused(tiny: Path) -> None:
    r = invoke("profile", str(tiny), "--input", "1x16x16", code=2)
    assert "fc's parameters would change shape" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "classes=3"), "no parameters to set (classes)"),
        (("--network", "other"), "no network 'other' to choose"),
    ],
)
def test_spec_only_options_are_refused(tiny: Path, args: tuple[str, ...], message: str) -> None:
    r = invoke("profile", str(tiny), *args, code=2)
    assert message in r.output


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage that is not a model"])
def test_a_malformed_onnx_file_is_one_error_and_exit_2(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    for command in ("profile", "analyze", "dump"):
        r = invoke(command, str(bad), code=2)
        lines = r.output.strip().splitlines()
        assert lines[0].startswith("error: ") and "bad" in lines[0], r.output
        assert sum(line.startswith("error") for line in lines) == 1, r.output
        assert "Traceback" not in r.output


def test_a_missing_onnx_file_is_an_error(tmp_path: Path) -> None:
    r = invoke("profile", str(tmp_path / "absent.onnx"), code=2)
    assert "no such file" in r.output


def test_dump_prints_the_imported_ir(resnet: Path) -> None:
    assert invoke("dump", str(resnet)).stdout.strip() == from_onnx(resnet)[0].dump().strip()


def test_analyze_reports_on_the_imported_graph(resnet: Path) -> None:
    args = ("--device", "h100-sxm", "--json")
    ours = json.loads(invoke("analyze", str(resnet), *args).stdout)
    ref = json.loads(invoke("analyze", "resnet18", *SIZE, *args).stdout)
    assert ours["totals"] == ref["totals"]
    assert ours["receptive_field"] == ref["receptive_field"]
    assert ours["memory"] == ref["memory"]
    assert ours["suggestions"] == ref["suggestions"]


def test_draw_draws_the_imported_graph(resnet: Path, tmp_path: Path) -> None:
    pytest.importorskip("grandalf", reason="graphcnn.draw lays graphs out with grandalf")
    ours = json.loads(
        invoke("draw", str(resnet), "-o", str(tmp_path / "a.svg"), "--depth", "2", "--json").stdout
    )
    ref = json.loads(
        invoke(
            "draw", "resnet18", *SIZE, "-o", str(tmp_path / "b.svg"), "--depth", "2", "--json"
        ).stdout
    )
    assert (ours["boxes"], ours["edges"]) == (ref["boxes"], ref["edges"])
    assert (tmp_path / "a.svg").read_text().startswith("<")


def test_compile_to_onnx_keeps_the_outputs(resnet: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt.onnx"
    r = invoke(
        "compile", str(resnet), "--target", "onnx", "--pipeline", "inference", "-o", str(out)
    )
    assert f"weights: {resnet} (its initializers)" in r.stdout
    before, after = onnx.load(str(resnet)), onnx.load(str(out))
    bn = sum(n.op_type == "BatchNormalization" for n in before.graph.node)
    assert bn == 20 and not any(n.op_type == "BatchNormalization" for n in after.graph.node)
    x = sample(graphcnn.compile(str(resnet)), batch=2)
    assert rel_err(ort_run(after, x)[0], ort_run(before, x)[0]) < TOL


def test_compile_to_torch_writes_a_module_with_the_onnx_weights(
    resnet: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    out = tmp_path / "model.py"
    invoke("compile", str(resnet), "--target", "torch", "-o", str(out))
    spec = importlib.util.spec_from_file_location(f"gen_{uuid.uuid4().hex}", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model().eval()
    x = sample(graphcnn.compile(str(resnet)), batch=2)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    assert rel_err(y, ort_run(onnx.load(str(resnet)), x)[0]) < TOL


def test_compile_weights_option_overrides_the_onnx_weights(tiny: Path, tmp_path: Path) -> None:
    from graphcnn.weights import init_weights, save_safetensors

    g = graphcnn.compile(str(tiny))
    w = init_weights(g, seed=11)
    save_safetensors(w, tmp_path / "w.safetensors")
    out = tmp_path / "m.onnx"
    r = invoke(
        "compile", str(tiny), "-t", "onnx", "--weights", str(tmp_path / "w.safetensors"), "-o",
        str(out),
    )  # fmt: skip
    assert "(its initializers)" not in r.stdout
    _, got = from_onnx(out)
    assert all(np.array_equal(got[k], w[k]) for k in w)


def test_bench_runs_the_onnx_weights(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import graphcnn.bench

    seen: dict[str, Any] = {}
    real = graphcnn.bench.run_bench

    def spy(graph: Any, *args: Any, **kw: Any) -> Any:
        seen.update(kw)
        return real(graph, *args, **kw)

    monkeypatch.setattr(graphcnn.bench, "run_bench", spy)
    fast = ("--warmup", "0", "--repeat", "1", "--min-time", "0")
    r = invoke("bench", str(tiny), "-b", "torch,ort", "--batch", "1", *fast, "--json")
    _, w = from_onnx(tiny)
    assert seen["weights"].keys() == w.keys()
    assert all(np.array_equal(seen["weights"][k], w[k]) for k in w)
    results = json.loads(r.stdout)["results"]
    assert [x["status"] for x in results] == ["ok", "ok"]
    assert all(x["accuracy"]["ok"] for x in results)


def test_bench_runs_every_batch_of_a_fixed_batch_export(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = tmp_path / "static.onnx"
    path.write_bytes(to_onnx(graphcnn.compile_text(TINY), static_batch=1).SerializeToString())
    assert graphcnn.compile(str(path)).inputs[0].type.shape[0] == 1
    fast = ("--warmup", "0", "--repeat", "1", "--min-time", "0")
    r = invoke("bench", str(path), "-b", "ort", "--batch", "1,3", *fast, "--json")
    results = json.loads(r.stdout)["results"]
    assert [(x["batch"], x["status"], x["accuracy"]["ok"]) for x in results] == [
        (1, "ok", True),
        (3, "ok", True),
    ]
    ref = graphcnn.profile(graphcnn.compile_text(TINY, batch=3)).totals
    assert profile_json(str(path), "--batch", "3")["totals"]["macs"] == ref.macs == 3 * 4864


def test_train_trains_the_imported_architecture(tiny: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    r = invoke("train", str(tiny), *FAST_TRAIN, "--out", str(tmp_path / "a"), "--json")
    assert "graphcnn import" in r.stderr  # how to start from the ONNX weights instead
    assert json.loads(r.stdout)["transfer"]["source"].startswith("seeded")
    weights = tmp_path / "w.safetensors"
    invoke("import", str(tiny), "-o", str(weights))
    r = invoke(
        "train", str(tiny), *FAST_TRAIN, "--weights", str(weights), "--out", str(tmp_path / "b")
    )
    assert "graphcnn import" not in r.stderr


def test_search_refuses_an_onnx_file(tiny: Path) -> None:
    r = invoke("search", str(tiny), "--space", "lr=loguniform(1e-3, 1e-1)", code=2)
    assert "has no parameters to search" in r.output and "Traceback" not in r.output


def test_check_checks_the_imported_graph(resnet: Path) -> None:
    ours = json.loads(invoke("check", str(resnet), "--json").stdout)["results"]
    ref = json.loads(invoke("check", "resnet18", *SIZE, "--json").stdout)["results"]
    keys = ("ok", "outputs", "params", "macs")
    assert [{k: r[k] for k in keys} for r in ours] == [{k: r[k] for k in keys} for r in ref]


def test_check_names_from_compares_the_imported_graph(resnet: Path, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    import graphcnn

    _, weights = graphcnn.load(str(resnet))
    assert weights is not None
    ckpt = tmp_path / "w.safetensors"
    save_file({k: v for k, v in weights.items() if not k.endswith("fc.bias")}, str(ckpt))
    r = invoke("check", str(resnet), "--names-from", str(ckpt), "--json", code=2)
    assert json.loads(r.stdout)["names_from"]["missing"] == ["fc.bias"]


@pytest.mark.parametrize(
    "command",
    ["check", "dump", "profile", "analyze", "draw", "compile", "bench", "train", "search"],
)
def test_help_says_what_spec_or_model_may_be(command: str) -> None:
    text = " ".join(invoke(command, "--help").stdout.split())
    assert "SPEC_OR_MODEL is a zoo model name" in text and ".onnx file" in text
