"""Running a benchmark: :func:`run_bench` checks its arguments, sets every backend up through
:data:`SETUP` (a backend that cannot run is skipped or failed, with the reason), then checks
each one against the eager reference and times it at each batch size (:func:`_measure`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.bench.environment import environment, loadavg, peak_rate
from graphcnn.bench.options import (
    BACKENDS,
    DEFAULT_BACKENDS,
    DEVICES,
    HALF_TYPES,
    TOLERANCES,
    BenchError,
    parse_backends,
    parse_batches,
)
from graphcnn.bench.ort_runners import setup_ort, setup_ort_int8
from graphcnn.bench.results import BackendInfo, BenchResult, Measurement, compare
from graphcnn.bench.runner import Context, Runner, Skip, short_error
from graphcnn.bench.tensorrt_runner import setup_tensorrt
from graphcnn.bench.timing import (
    DEFAULT_MIN_TIME,
    DEFAULT_REPEAT,
    DEFAULT_WARMUP,
    summarize,
    time_calls,
)
from graphcnn.bench.torch_runners import (
    inference,
    prepare_torch_input,
    reference_module,
    setup_torch,
    setup_torch_compile,
    torch_sync,
    torch_to_numpy,
)

if TYPE_CHECKING:
    import numpy as np

    from graphcnn.ir import Graph

    Array = np.ndarray[Any, Any]

ProgressFn = Callable[[str, float, float], None]
"""``progress(description, completed, total)``: how far :func:`run_bench` got."""

SETUP: dict[str, Callable[[Context], Runner]] = {
    "torch": setup_torch,
    "torch-compile": setup_torch_compile,
    "ort": setup_ort,
    "ort-int8": setup_ort_int8,
    "tensorrt": setup_tensorrt,
}
"""How to set each backend of :data:`BACKENDS` up for one run."""


def run_bench(
    graph: Graph,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    batches: Sequence[int] = (1,),
    *,
    weights: Mapping[str, Array] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    half: str | None = None,
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    min_time: float = DEFAULT_MIN_TIME,
    pipeline: str = "inference",
    seed: int = 0,
    calibration: str | Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    peak_flops: float | None = None,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Check and time ``backends`` on ``graph`` at each batch size (see :mod:`graphcnn.bench`).

    ``graph``: compiled with a symbolic batch (or a concrete one equal to every batch size).
    ``peak_flops`` overrides the device's peak rate; ``tolerances`` overrides entries of
    :data:`TOLERANCES`. Backends that cannot run are skipped (missing GPU or package) or
    failed (an error while building or running them), each with its reason; the others are
    measured. ``torch.set_num_threads`` is restored afterwards.
    """
    names = parse_backends(backends)
    if not names:
        raise BenchError("no backend given", f"valid backends: {', '.join(BACKENDS)}")
    sizes = parse_batches(batches)
    if device not in DEVICES:
        raise BenchError(f"unknown device {device!r}", f"valid devices: {', '.join(DEVICES)}")
    if half is not None:
        if half not in HALF_TYPES:
            raise BenchError(f"unknown half type {half!r}", f"choose {' or '.join(HALF_TYPES)}")
        if device != "cuda":
            raise BenchError("half precision (fp16/bf16) is for --device cuda")
    if threads is not None and threads < 1:
        raise BenchError(f"threads must be >= 1, got {threads}")
    if warmup < 0 or repeat < 1 or min_time < 0:
        raise BenchError("need warmup >= 0, repeat >= 1 and min_time >= 0")
    tol = {**TOLERANCES, **(tolerances or {})}
    if len(graph.inputs) != 1:
        raise BenchError(
            f"bench needs a network with one input, {graph.name} has {len(graph.inputs)}"
        )
    in_type = graph.inputs[0].type
    static = in_type.shape[0]
    if isinstance(static, int) and any(b != static for b in sizes):
        raise BenchError(
            f"{graph.name} has a fixed batch of {static}; cannot run batch sizes "
            f"{', '.join(map(str, sizes))}",
            "compile it with a symbolic batch (no --batch at compile time)",
        )
    chw = tuple(int(d) for d in in_type.shape[1:])
    if len(chw) != 3:
        raise BenchError(f"bench needs an image input [N, C, H, W], got {list(in_type.shape)}")
    shape = (chw[0], chw[1], chw[2])

    from graphcnn.cost import profile

    env = environment()
    flops_per_sample = profile(graph.inference(), batch=1).totals.flops
    result = BenchResult(
        model=graph.name,
        input=shape,
        device=device,
        half=half,
        threads=threads,
        pipeline=pipeline,
        seed=seed,
        warmup=warmup,
        repeat=repeat,
        min_time=min_time,
        calibration="",
        flops_per_sample=flops_per_sample,
        peak_flops=peak_flops,
        peak_source="given" if peak_flops else "",
        backends=[],
        measurements=[],
        environment=env,
    )

    try:
        import torch
    except ImportError:
        raise BenchError(
            "bench needs PyTorch (the eager reference every backend is checked against)",
            "pip install 'graphcnn[torch]'",
        ) from None
    if device == "cuda" and not torch.cuda.is_available():
        why = "CUDA is not available here (torch.cuda.is_available() is False)"
        for name in names:
            result.backends.append(BackendInfo(name, "skipped", why))
            for b in sizes:
                result.measurements.append(Measurement(name, b, "skipped", why))
        env["loadavg_after"] = loadavg()
        return result
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    if peak_flops is None:
        result.peak_flops, result.peak_source = peak_rate(device, half)

    total = len(names) + 1 + len(names) * len(sizes)
    done = 0.0

    def report(text: str, step: float = 0.0) -> None:
        if progress is not None:
            progress(text, done + step, total)

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        from graphcnn.passes import optimize
        from graphcnn.weights import init_weights

        report("preparing weights and passes")
        w = dict(weights) if weights is not None else init_weights(graph, seed)
        deploy, deploy_w, _ = optimize(graph, w, pipeline)
        assert deploy_w is not None
        ctx = Context(
            graph, w, deploy, deploy_w, device, half, threads, sizes, seed, calibration, shape
        )
        ref_forward = inference(reference_module(ctx))
        ref_sync = torch_sync(device)
        env["torch_threads"] = torch.get_num_threads()
        done += 1

        runners: dict[str, Runner] = {}
        for name in names:
            report(f"setting up {name}")
            t0 = time.perf_counter()
            info = BackendInfo(name, "ready")
            try:
                runner = SETUP[name](ctx)
                runners[name] = runner
                info.dtype, info.detail = runner.dtype, runner.detail
                if runner.fallback_reason:
                    info.status, info.reason = "fallback", runner.fallback_reason
            except Skip as e:
                info.status, info.reason = "skipped", str(e)
            except Exception as e:  # noqa: BLE001 - any backend error is reported, not raised
                info.status, info.reason = "failed", short_error(e)
            info.setup_s = time.perf_counter() - t0
            result.backends.append(info)
            done += 1
        result.calibration = ctx.calibration_source or (
            "not used" if "ort-int8" not in names else ""
        )

        from graphcnn.backends.quantize import synthetic_calibration

        inputs = synthetic_calibration(shape, max(sizes), seed + 1)
        for b in sizes:
            x = inputs[:b]
            ref_in = prepare_torch_input(x, device, None)
            ref = torch_to_numpy(ref_forward(ref_in))
            ref_sync()
            for name in names:
                info = next(i for i in result.backends if i.name == name)
                ready = runners.get(name)
                m = Measurement(name, b, "ok", dtype=info.dtype, peak_flops=result.peak_flops)
                m.flops = flops_per_sample * b
                if ready is None:
                    m.status, m.reason = info.status, info.reason
                    result.measurements.append(m)
                    done += 1
                    continue
                report(f"{name} batch {b}: checking")
                try:
                    _measure(ready, info, m, x, ref, tol, warmup, repeat, min_time, report)
                except Exception as e:  # noqa: BLE001
                    m.status, m.reason = "failed", short_error(e)
                    m.latency = None
                result.measurements.append(m)
                done += 1
        _speedups(result)
        report("done")
    finally:
        torch.set_num_threads(old_threads)
        env["loadavg_after"] = loadavg()
    return result


def _measure(
    runner: Runner,
    info: BackendInfo,
    m: Measurement,
    x: Array,
    ref: Array,
    tol: Mapping[str, float],
    warmup: int,
    repeat: int,
    min_time: float,
    report: Callable[[str, float], None],
) -> None:
    inp = runner.prepare(x)
    t0 = time.perf_counter()
    try:
        y = runner.forward(inp)
        runner.sync()
    except Exception as e:
        if runner.fallback is None or runner.forward is runner.fallback:
            raise
        runner.fallback_reason = f"torch.compile failed: {short_error(e)}"
        runner.forward = runner.fallback
        info.status, info.reason = "fallback", runner.fallback_reason
        y = runner.forward(inp)
        runner.sync()
    m.first_call_s = time.perf_counter() - t0
    m.accuracy = compare(runner.to_numpy(y), ref, tol.get(runner.dtype, TOLERANCES["float32"]))
    if runner.fallback_reason:
        m.status, m.reason = "fallback", runner.fallback_reason
    del y
    fwd, sync = runner.forward, runner.sync

    def call() -> None:
        fwd(inp)
        sync()

    label = f"{runner.name} batch {m.batch}"
    report(f"{label}: timing", 0.0)

    def tick(n: int) -> None:
        report(f"{label}: timing ({n} calls)", min(0.99, n / max(repeat, 1)))

    m.latency = summarize(time_calls(call, warmup, repeat, min_time, tick=tick))


def _speedups(result: BenchResult) -> None:
    for m in result.measurements:
        base = result.measurement("torch", m.batch)
        if m.latency and base is not None and base.latency:
            m.speedup = base.latency.p50 / m.latency.p50
