"""Device profiles and the roofline time model, on layers with FLOPs and bytes worked out by hand.

A toy device with round numbers (1 GFLOP/s, 1 GB/s: ridge 1 FLOP/B) makes every estimate a
quotient that can be read off the test. The measured cpu profile is checked once for real (under a
temporary cache directory) and otherwise replaced by fixed numbers.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import graphcnn
import graphcnn.analysis.devices as devices
from graphcnn.analysis import roofline
from graphcnn.analysis.devices import DeviceError, DeviceProfile, get_device
from graphcnn.analysis.roofline import LayerTime, aggregate, total
from graphcnn.cost import profile
from graphcnn.ir import Graph

TOY = DeviceProfile("toy", {"float32": 1e9, "float16": 4e9}, 1e9)
"""1 GFLOP/s float32, 4 GFLOP/s float16, 1 GB/s: times are FLOPs or bytes in nanoseconds."""


def net(body: str, shape: str = "8, 16, 16", **kw: Any) -> Graph:
    return graphcnn.compile_text(
        f"network net() {{\n  x = input({shape})\n  return {body}\n}}\n", **kw
    )


def by_name(times: list[LayerTime]) -> dict[str, LayerTime]:
    return {t.name: t for t in times}


@pytest.fixture
def fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """A private cache dir and a measurement that returns fixed numbers (and counts calls)."""
    calls = {"n": 0}

    def measure() -> dict[str, Any]:
        calls["n"] += 1
        return {"float32_flops": 2e11, "mem_bandwidth": 2e10, "seconds": 0.0, "method": "fake"}

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(devices, "measure_cpu", measure)
    return calls


# --------------------------------------------------------------------------- by hand
def test_conv_and_relu_by_hand() -> None:
    g = net("x -> conv(16, 3, pad: 1, bias: false) as conv -> relu as relu")
    t = by_name(roofline.analyze(g, TOY))
    conv, relu = t["conv"], t["relu"]
    # conv: 16x16x16 outputs, each 8*3*3 = 72 MACs; 2 FLOPs per MAC, no bias
    assert conv.macs == 4096 * 72 and conv.flops == 2 * 4096 * 72 == 589_824
    # moved: input 8*16*16*4 + output 16*16*16*4 + weights 16*8*3*3*4 bytes
    assert conv.bytes == 8192 + 16384 + 4608 == 29_184
    assert conv.compute_s == pytest.approx(589_824e-9)
    assert conv.memory_s == pytest.approx(29_184e-9)
    assert conv.time_s == conv.compute_s and conv.bound == "compute"
    assert conv.intensity == pytest.approx(589_824 / 29_184)
    # relu: 1 FLOP per element, reads and writes 16 KiB
    assert relu.flops == 4096 and relu.bytes == 2 * 16384
    assert relu.time_s == relu.memory_s == pytest.approx(32_768e-9) and relu.bound == "memory"


def test_bound_is_intensity_against_the_ridge() -> None:
    g = graphcnn.compile("resnet18")
    h100 = get_device("h100-sxm")
    for t in roofline.analyze(g, h100):
        if t.bytes:
            assert (t.bound == "compute") == (t.intensity >= h100.ridge("float32")), t
            assert t.time_s == max(t.compute_s, t.memory_s)


def test_batch_scales_activations_not_weights() -> None:
    g = net("x -> conv(16, 3, pad: 1, bias: false) as conv")
    one = by_name(roofline.analyze(g, TOY))["conv"]
    four = by_name(roofline.analyze(g, TOY, batch=4))["conv"]
    assert four.flops == 4 * one.flops
    assert four.bytes == 4 * (8192 + 16384) + 4608
    # a concrete batch in the graph is the default
    g4 = net("x -> conv(16, 3, pad: 1, bias: false) as conv", batch=4)
    assert by_name(roofline.analyze(g4, TOY))["conv"] == four


def test_dtype_sets_the_peak_and_the_bytes() -> None:
    g = net("x -> conv(16, 3, pad: 1, bias: false) as conv")
    half = by_name(roofline.analyze(g, TOY, "float16"))["conv"]
    assert half.bytes == 29_184 // 2
    assert half.compute_s == pytest.approx(589_824 / 4e9)
    with pytest.raises(DeviceError) as info:
        roofline.analyze(g, TOY, "bfloat16")
    assert "float32, float16" in (info.value.hint or "")
    with pytest.raises(ValueError, match="unknown dtype"):
        roofline.analyze(g, TOY, "float8")


def test_views_are_free_and_concat_copies() -> None:
    g = net(
        "concat(x -> relu as a, x -> sigmoid as b) as cat -> flatten as flat "
        "-> reshape([16, 256]) as view -> identity as same"
    )
    t = by_name(roofline.analyze(g, TOY))
    for name in ("flat", "view", "same"):
        assert (t[name].bytes, t[name].time_s) == (0, 0.0)
    assert t["cat"].bytes == 2 * 8192 + 16384 and t["cat"].flops == 0
    assert t["cat"].bound == "memory" and t["cat"].time_s == pytest.approx(32_768e-9)
    assert roofline.VIEWS <= {str(op) for op in graphcnn.Op}


def test_rows_follow_the_profile_and_skip_training_only_nodes() -> None:
    g = graphcnn.compile("googlenet")
    p = profile(g)
    times = roofline.analyze(g, TOY, profile=p)
    inference = [r for r in p.layers if not r.training_only]
    assert len(inference) < len(p.layers)  # the auxiliary heads
    assert [t.name for t in times] == [r.name for r in inference]
    assert sum(t.macs for t in times) == p.totals.macs
    assert sum(t.flops for t in times) == p.totals.flops
    assert roofline.analyze(g, TOY) == times  # the same without a shared profile


def test_device_by_name() -> None:
    g = net("x -> relu as r")
    assert roofline.analyze(g, "h100-sxm") == roofline.analyze(g, get_device("h100-sxm"))


# --------------------------------------------------------------------------- blocks
def test_blocks_add_layer_times() -> None:
    g = graphcnn.compile("resnet18")
    times = roofline.analyze(g, TOY)
    blocks = aggregate(times, 1, g.scopes)
    assert [b.name for b in blocks] == [
        r.name for r in profile(g).at_depth(1) if not r.training_only
    ]
    layer1 = next(b for b in blocks if b.name == "layer1")
    inside = [t for t in times if t.name.startswith("layer1.")]
    assert layer1.layers == len(inside) and layer1.op == "seq"
    assert layer1.time_s == pytest.approx(sum(t.time_s for t in inside))
    assert layer1.compute_s == pytest.approx(sum(t.compute_s for t in inside))
    assert layer1.memory_s == pytest.approx(sum(t.memory_s for t in inside))
    assert layer1.bytes == sum(t.bytes for t in inside)
    compute_time = sum(t.time_s for t in inside if t.bound == "compute")
    assert layer1.bound == ("compute" if compute_time >= layer1.time_s / 2 else "memory")
    # a single-layer group keeps its row; everything adds up to the total
    fc = next(b for b in blocks if b.name == "fc")
    assert fc == by_name(times)["fc"]
    whole = total(times)
    assert whole.time_s == pytest.approx(sum(b.time_s for b in blocks))
    assert whole.macs == profile(g).totals.macs
    assert max(len(b.name.split(".")) for b in aggregate(times, 2)) == 2
    with pytest.raises(ValueError):
        aggregate(times, 0)


def test_block_bound_is_the_majority_of_its_time() -> None:
    rows = [
        LayerTime("b.c", "conv2d", 1, 10, 1, 3.0, 1.0, 3.0, "compute"),
        LayerTime("b.r1", "relu", 0, 1, 10, 0.1, 2.0, 2.0, "memory"),
        LayerTime("b.r2", "relu", 0, 1, 10, 0.1, 2.0, 2.0, "memory"),
    ]
    (b,) = aggregate(rows, 1)
    assert (b.time_s, b.bound, b.layers) == (7.0, "memory", 3)
    assert b.compute_s == pytest.approx(3.2) and b.memory_s == pytest.approx(5.0)


def test_docstring_states_the_model_and_its_limits() -> None:
    doc = roofline.__doc__ or ""
    for phrase in ("max(compute_s, memory_s)", "bytes / mem_bandwidth", "Limits", "fusion"):
        assert phrase in doc


# --------------------------------------------------------------------------- devices
def test_builtin_h100() -> None:
    h100 = get_device("h100-sxm")
    assert h100.peak("float16") == h100.peak("bfloat16") == 989e12
    assert h100.peak("float32") == 67e12 and h100.mem_bandwidth == 3.35e12
    assert h100.ridge("float16") == pytest.approx(989e12 / 3.35e12)


def test_unknown_device_lists_the_valid_ones() -> None:
    with pytest.raises(DeviceError) as info:
        get_device("tpu")
    assert "unknown device 'tpu'" in str(info.value)
    assert info.value.hint == "valid devices: cpu, h100-sxm"


def test_cpu_profile_is_cached_per_machine(fake_cpu: dict[str, int], tmp_path: Path) -> None:
    cpu = get_device("cpu")
    assert fake_cpu["n"] == 1
    assert cpu.peak("float32") == 2e11 and cpu.mem_bandwidth == 2e10
    assert cpu.measured["from_cache"] is False
    path = tmp_path / "graphcnn" / "cpu_profile.json"
    assert cpu.measured["cache"] == str(path)
    data = json.loads(path.read_text())
    (key,) = data["profiles"]
    for part in ("hostname=", "cpu_model=", "numpy=", "nproc="):
        assert part in key
    again = get_device("cpu")
    assert fake_cpu["n"] == 1 and again.measured["from_cache"] is True
    assert again.peak("float32") == cpu.peak("float32")
    get_device("cpu", remeasure=True)
    assert fake_cpu["n"] == 2
    # another machine (or numpy) is a different key: measured again, both kept
    data["profiles"] = {"cpu_model=other": data["profiles"][key]}
    path.write_text(json.dumps(data))
    get_device("cpu")
    assert fake_cpu["n"] == 3 and len(json.loads(path.read_text())["profiles"]) == 2
    # a corrupt cache is measured again, not an error
    path.write_text("{not json")
    get_device("cpu")
    assert fake_cpu["n"] == 4
    with pytest.raises(DeviceError, match="no peak rate for dtype 'float16'"):
        cpu.peak("float16")


def test_cpu_measurement_is_real_and_quick(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """A real measurement, quick by construction whatever the machine's speed: the GEMM is sized
    from a 512x512 warm-up so that one product takes about ``gemm_target_s`` at the rate measured
    (n from 512 to 2048), 2 + 3 products in all, and the copy moves 128 MiB 1 + 5 times. The
    seconds it took are recorded, not asserted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cpu = devices.cpu_profile(remeasure=True)
    m = cpu.measured
    record_property("seconds", m["seconds"])
    assert m["from_cache"] is False and m["seconds"] > 0
    assert 1e8 < cpu.peak("float32") < 1e14 and 1e8 < cpu.mem_bandwidth < 1e13
    n = m["gemm_n"]
    assert 512 <= n <= 2048 and n % 128 == 0
    # n was sized from the warm-up rate, which is at most the rate reported
    target = inspect.signature(devices.measure_cpu).parameters["gemm_target_s"].default
    assert n == 512 or n <= round((cpu.peak("float32") * target / 2) ** (1 / 3) / 128) * 128
    assert m["copy_bytes"] == 128 * 2**20
    assert "best of 3" in m["method"] and "best of 5" in m["method"]
    assert math.isfinite(cpu.ridge("float32"))
