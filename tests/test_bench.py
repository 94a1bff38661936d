"""graphcnn bench (graphcnn/bench/): backends, error checks, statistics, JSON, plot, skips.

Everything runs on lenet5 (62K params) with tiny repetition counts: these tests check what is
measured and reported, never how fast anything is.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.cli import invoke
from helpers.fresh import imported

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import graphcnn  # noqa: E402
from graphcnn import bench  # noqa: E402
from graphcnn.bench import (  # noqa: E402
    BACKENDS,
    BenchError,
    BenchResult,
    compare,
    parse_backends,
    parse_batches,
    percentile,
    run_bench,
    summarize,
    time_calls,
)
from graphcnn.cli import render  # noqa: E402

FAST: dict[str, Any] = {"warmup": 1, "repeat": 3, "min_time": 0.0, "threads": 1}
PEAK = 1e11  # a fixed peak, so the API tests never measure the CPU
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOP_KEYS = {
    "model", "input", "device", "half", "threads", "pipeline", "seed", "warmup", "repeat",
    "min_time_s", "calibration", "flops_per_sample", "peak_flops", "peak_source", "backends",
    "results", "environment",
}  # fmt: skip
RESULT_KEYS = {
    "backend", "batch", "status", "reason", "dtype", "latency_ms", "throughput", "speedup",
    "gflops", "peak_fraction", "flops", "first_call_s", "accuracy", "flagged",
}  # fmt: skip
LATENCY_KEYS = {"samples", "mean", "min", "p50", "p90", "p99", "max"}
ACCURACY_KEYS = {
    "max_abs_error", "max_abs_reference", "rel_error", "top1_agreement", "n", "tolerance", "ok",
}  # fmt: skip
BACKEND_KEYS = {"name", "status", "reason", "dtype", "setup_s", "detail"}
NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def lenet() -> graphcnn.Graph:
    return graphcnn.compile("lenet5")


@pytest.fixture(scope="module")
def result(lenet: graphcnn.Graph) -> BenchResult:
    """torch, ort and ort-int8 on lenet5 at batches 1 and 4."""
    return run_bench(lenet, ["torch", "ort", "ort-int8"], [1, 4], peak_flops=PEAK, **FAST)


def cli(*args: str) -> Any:
    """``graphcnn bench ARGS``, its exit code left to the test."""
    return invoke("bench", *args, code=None)


# --------------------------------------------------------------------------- statistics


def test_percentile_interpolates_linearly_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 11, 101):
        xs = rng.exponential(size=n).tolist()
        for q in (0, 1, 25, 50, 90, 99, 100):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-12)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_latency_stats() -> None:
    s = summarize([0.010, 0.030, 0.020, 0.040, 0.100])
    assert (s.samples, s.min, s.max) == (5, 0.010, 0.100)
    assert s.mean == pytest.approx(0.04)
    assert s.p50 == pytest.approx(0.030)
    assert s.p90 == pytest.approx(0.040 + 0.6 * 0.060)
    assert s.p99 == pytest.approx(0.040 + 0.96 * 0.060)
    assert s.to_json() == {
        "samples": 5, "mean": 40.0, "min": 10.0, "p50": 30.0, "p90": 76.0, "p99": 97.6,
        "max": 100.0,
    }  # fmt: skip
    with pytest.raises(ValueError):
        summarize([])


def test_time_calls_honours_repeat_min_time_and_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    assert len(time_calls(lambda: calls.append(1), warmup=2, repeat=5, min_time=0.0)) == 5
    assert len(calls) == 7  # warm-up calls are not samples
    # a clock that advances 1 ms per reading: each timed call lasts exactly one tick, and the
    # loop reads the clock three times per sample, so 50 ms of min_time take 17 samples
    ticks = iter(range(10**6))
    monkeypatch.setattr(bench.timing.time, "perf_counter", lambda: next(ticks) / 1000)
    samples = time_calls(lambda: None, warmup=0, repeat=1, min_time=0.05, max_samples=10**9)
    assert samples == pytest.approx([0.001] * 17)
    monkeypatch.undo()
    assert len(time_calls(lambda: None, warmup=0, repeat=3, min_time=60.0, max_samples=50)) == 50


def test_compare_reports_relative_error_and_top1() -> None:
    ref = np.array([[1.0, 2.0, 0.0], [4.0, 0.0, 1.0]])
    y = ref + np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    acc = compare(y, ref, tolerance=0.2)
    assert acc.max_abs_error == 0.5 and acc.max_abs_reference == 4.0
    assert acc.rel_error == pytest.approx(0.125) and acc.ok
    assert acc.top1_agreement == 1.0 and acc.n == 2
    flipped = compare(np.array([[3.0, 2.0, 0.0], [4.0, 0.0, 1.0]]), ref, tolerance=0.2)
    assert flipped.top1_agreement == 0.5 and not flipped.ok
    nan = compare(np.full_like(ref, np.nan), ref, tolerance=1.0)
    assert not nan.ok and nan.to_json()["rel_error"] is None  # JSON has no NaN


def test_parse_backends_and_batches() -> None:
    assert parse_backends(["torch,ort", "ort-int8", "ORT"]) == ["torch", "ort", "ort-int8"]
    with pytest.raises(BenchError) as info:
        parse_backends(["torch,onnx", "trt"])
    assert "'onnx', 'trt'" in info.value.message
    assert info.value.hint is not None and all(b in info.value.hint for b in BACKENDS)
    assert parse_batches(["8,1", "32", 8]) == [1, 8, 32]
    for bad in (["0"], ["1,x"], ["-2"], [""]):
        with pytest.raises(BenchError):
            parse_batches(bad)


# --------------------------------------------------------------------------- the backends


def test_each_backend_runs_and_matches_the_eager_reference(result: BenchResult) -> None:
    assert [b.status for b in result.backends] == ["ready"] * 3
    assert [(m.backend, m.batch) for m in result.measurements] == [
        ("torch", 1), ("ort", 1), ("ort-int8", 1), ("torch", 4), ("ort", 4), ("ort-int8", 4),
    ]  # fmt: skip
    for m in result.measurements:
        assert m.status == "ok" and m.latency is not None and m.accuracy is not None, m
        assert m.latency.samples >= 3 and 0 < m.latency.min <= m.latency.p50 <= m.latency.max
        assert m.accuracy.n == m.batch and m.accuracy.max_abs_reference > 0
        assert not m.flagged
        if m.backend == "torch":
            assert m.accuracy.max_abs_error == 0.0 and m.speedup == 1.0
        elif m.backend == "ort":
            assert m.accuracy.rel_error < 1e-5 and m.accuracy.top1_agreement == 1.0
        else:
            assert m.dtype == "int8" and m.accuracy.rel_error < 0.1
        assert m.throughput == pytest.approx(m.batch / m.latency.p50)
        assert m.flops == result.flops_per_sample * m.batch
        assert m.gflops == pytest.approx(m.flops / m.latency.p50 / 1e9)
        assert m.peak_fraction == pytest.approx(m.flops / m.latency.p50 / PEAK)
        assert m.speedup is not None
        base = result.measurement("torch", m.batch)
        assert base is not None and base.latency is not None
        assert m.speedup == pytest.approx(base.latency.p50 / m.latency.p50)
    assert result.flops_per_sample == graphcnn.profile(graphcnn.compile("lenet5")).totals.flops
    assert result.threads == 1 and torch.get_num_threads() >= 1
    assert "synthetic" in result.calibration
    ort = result.backend("ort")
    assert ort is not None and ort.detail["providers"] == ["CPUExecutionProvider"]


def test_render_shows_every_measured_row(result: BenchResult) -> None:
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    for item in render.bench_tables(result):
        console.print(item)
    text = console.export_text()
    for col in ("p50 ms", "p99 ms", "img/s", "speed-up", "GFLOP/s", "% peak", "max error"):
        assert col in text
    assert text.count("ort-int8 ") == 2 and "1.00x" in text and "FLAGGED" not in text
    assert "cpu (1 thread)" in text and "int8 calibration: synthetic" in text


def test_a_large_error_is_flagged_not_hidden(lenet: graphcnn.Graph) -> None:
    r = run_bench(lenet, ["torch", "ort"], [2], tolerances={"float32": 1e-12}, peak_flops=PEAK,
                  **FAST)  # fmt: skip
    ort = r.measurement("ort", 2)
    torch_row = r.measurement("torch", 2)
    assert ort is not None and torch_row is not None
    assert ort.flagged and ort.latency is not None  # still timed and reported
    assert not torch_row.flagged  # the reference against itself: exactly 0
    assert r.flagged == [ort]
    assert ort.to_json()["flagged"] is True and ort.to_json()["accuracy"]["ok"] is False
    lines = [str(getattr(x, "plain", "")) for x in render.bench_tables(r)]
    assert any(line.startswith("FLAGGED ort batch 2") for line in lines)


def test_torch_compile_falls_back_to_eager_with_a_reason(
    lenet: graphcnn.Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("inductor is unavailable\nlong traceback...")

    monkeypatch.setattr(torch, "compile", broken)
    r = run_bench(lenet, ["torch-compile"], [2], peak_flops=PEAK, **FAST)
    info = r.backend("torch-compile")
    m = r.measurement("torch-compile", 2)
    assert info is not None and info.status == "fallback"
    assert info.reason == "torch.compile failed: RuntimeError: inductor is unavailable"
    assert m is not None and m.status == "fallback" and m.latency is not None
    assert m.accuracy is not None and m.accuracy.max_abs_error == 0.0
    assert m.speedup is None  # no torch eager row to compare with


def test_torch_compile_fallback_when_the_first_call_fails(
    lenet: graphcnn.Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inductor compiles lazily: a failure in the (untimed) check call also falls back."""

    def lazy(module: Any, **kwargs: Any) -> Any:
        def fail(x: Any) -> Any:
            raise RuntimeError("C++ compiler not found")

        return fail

    monkeypatch.setattr(torch, "compile", lazy)
    r = run_bench(lenet, ["torch", "torch-compile"], [1], peak_flops=PEAK, **FAST)
    m = r.measurement("torch-compile", 1)
    assert m is not None and m.status == "fallback" and m.latency is not None
    assert m.reason is not None and "C++ compiler not found" in m.reason
    assert m.speedup is not None


@pytest.mark.slow
def test_torch_compile_really_compiles(lenet: graphcnn.Graph) -> None:
    r = run_bench(lenet, ["torch-compile"], [2], peak_flops=PEAK, **FAST)
    m = r.measurement("torch-compile", 2)
    assert m is not None and m.latency is not None and m.accuracy is not None
    if any(shutil.which(c) for c in ("g++", "c++", "clang++")):  # inductor can build: it must
        assert m.status == "ok", m.reason
        assert m.accuracy.rel_error < 1e-4
    else:  # no C++ toolchain here: reported, not hidden
        assert m.status == "fallback" and m.reason


@pytest.mark.skipif(not NO_CUDA, reason="checks the no-GPU reasons")
def test_tensorrt_is_skipped_with_the_reason_here(lenet: graphcnn.Graph) -> None:
    r = run_bench(lenet, ["torch", "tensorrt"], [1], peak_flops=PEAK, **FAST)
    info = r.backend("tensorrt")
    assert info is not None and info.status == "skipped"
    assert info.reason is not None and "no CUDA GPU" in info.reason
    m = r.measurement("tensorrt", 1)
    assert m is not None and m.status == "skipped" and m.reason == info.reason
    assert m.latency is None and m.to_json()["latency_ms"] is None
    torch_row = r.measurement("torch", 1)
    assert torch_row is not None and torch_row.status == "ok"  # the others still run


def test_tensorrt_reason_names_a_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, *args: Any) -> Any:
        if name == "graphcnn.backends.to_tensorrt":
            raise ImportError("No module named 'graphcnn.backends.to_tensorrt'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    why = bench.tensorrt_unavailable("cuda")
    assert why is not None and "graphcnn.backends.to_tensorrt is not available" in why


@pytest.mark.skipif(not NO_CUDA, reason="checks the no-GPU path")
def test_cuda_device_is_skipped_with_the_reason_here(lenet: graphcnn.Graph) -> None:
    r = run_bench(lenet, ["torch", "ort"], [1, 2], device="cuda", peak_flops=PEAK, **FAST)
    assert {b.status for b in r.backends} == {"skipped"}
    assert all(b.reason and "CUDA is not available" in b.reason for b in r.backends)
    assert len(r.measurements) == 4 and all(m.status == "skipped" for m in r.measurements)


def test_bad_arguments_raise_clear_errors(lenet: graphcnn.Graph) -> None:
    with pytest.raises(BenchError, match="unknown backend 'tvm'"):
        run_bench(lenet, ["tvm"], [1])
    with pytest.raises(BenchError, match="half precision"):
        run_bench(lenet, ["torch"], [1], half="fp16")
    with pytest.raises(BenchError, match="fixed batch of 2"):
        run_bench(graphcnn.compile("lenet5", batch=2), ["torch"], [1, 2])


def test_progress_reports_reach_the_total(lenet: graphcnn.Graph) -> None:
    seen: list[tuple[str, float, float]] = []
    run_bench(lenet, ["torch", "ort"], [1, 2], peak_flops=PEAK,
              progress=lambda *a: seen.append(a), **FAST)  # fmt: skip
    assert seen[-1] == ("done", 7, 7)  # 1 prepare + 2 set-ups + 2 x 2 measurements
    done = [d for _, d, _ in seen]
    assert done == sorted(done)
    assert any(text.startswith("ort batch 2") for text, _, _ in seen)


# --------------------------------------------------------------------------- the CLI


def test_cli_json_is_one_object_with_the_documented_keys() -> None:
    res = cli("lenet5", "--batch", "1,2", "-b", "torch", "-b", "ort,tensorrt", "--warmup", "0",
              "--repeat", "2", "--min-time", "0", "--threads", "1", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert set(data) == TOP_KEYS
    assert data["model"] == "lenet5" and data["input"] == [1, 32, 32]
    assert data["device"] == "cpu" and data["threads"] == 1 and data["pipeline"] == "inference"
    assert [b["name"] for b in data["backends"]] == ["torch", "ort", "tensorrt"]
    assert all(set(b) == BACKEND_KEYS for b in data["backends"])
    assert len(data["results"]) == 6
    for row in data["results"]:
        assert set(row) == RESULT_KEYS
        if row["backend"] == "tensorrt" and NO_CUDA:
            assert row["status"] == "skipped" and row["reason"]
            continue
        assert row["status"] == "ok"
        assert set(row["latency_ms"]) == LATENCY_KEYS and set(row["accuracy"]) == ACCURACY_KEYS
        assert row["accuracy"]["ok"] is True and row["throughput"] > 0
    assert data["peak_flops"] > 0 and "measured" in data["peak_source"]
    assert data["environment"]["loadavg_after"] is not None


@pytest.mark.slow
def test_cli_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "plots" / "lenet.png"
    res = cli("lenet5", "--batch", "1,2", "-b", "torch,ort", "--warmup", "0", "--repeat", "2",
              "--min-time", "0", "--plot", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "lenet5: input 1x32x32" in res.stdout and "img/s" in res.stdout
    assert f"wrote {out}" in res.stdout
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in out.parent.iterdir()] == ["lenet.png"]  # no temporary left over


def test_plot_of_flagged_and_skipped_rows(result: BenchResult, tmp_path: Path) -> None:
    path = bench.plot(result, tmp_path / "r.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    empty = BenchResult(**{**result.__dict__, "measurements": []})
    assert bench.plot(empty, tmp_path / "empty.png").read_bytes().startswith(PNG_SIGNATURE)


def test_cli_unknown_backend_lists_the_valid_ones() -> None:
    res = cli("lenet5", "--backend", "torch,tvm")
    assert res.exit_code == 2
    assert "unknown backend 'tvm'" in res.output
    assert "valid backends: torch, torch-compile, ort, ort-int8, tensorrt" in res.output


def test_cli_rejects_bad_options() -> None:
    res = cli("lenet5", "--half", "fp16")
    assert res.exit_code == 2 and "--half needs --device cuda" in res.output
    res = cli("lenet5", "--batch", "1,zero")
    assert res.exit_code == 2 and "positive integers" in res.output
    res = cli("lenet5", "--device", "tpu")
    assert res.exit_code == 2


@pytest.mark.skipif(not NO_CUDA, reason="checks the no-GPU path")
def test_cli_cuda_is_skipped_with_the_reason() -> None:
    res = cli("lenet5", "--device", "cuda", "--batch", "1")
    assert res.exit_code == 0, res.output
    assert "skipped torch: CUDA is not available" in res.stdout
    res = cli("lenet5", "--device", "cuda", "--batch", "1", "--json")
    data = json.loads(res.stdout)
    assert {r["status"] for r in data["results"]} == {"skipped"}


def test_importing_bench_stays_light() -> None:
    heavy = ("torch", "numpy", "onnx", "onnxruntime", "matplotlib", "tensorrt", "rich")
    assert imported("import graphcnn.bench", *heavy) == []


def test_json_has_no_nan() -> None:
    acc = compare(np.array([[math.inf, 0.0]]), np.array([[1.0, 0.0]]), 1e-3)
    json.dumps(acc.to_json(), allow_nan=False)
