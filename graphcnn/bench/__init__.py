"""Benchmark backends on the same inputs: what ``graphcnn bench MODEL`` runs.

:func:`run_bench` lowers one graph to several execution backends, checks every backend's output
against the PyTorch eager reference on the same input, then times it per batch size:

``torch``
    PyTorch eager: the module :func:`graphcnn.backends.to_torch.to_torch` builds from the graph
    *as compiled* (no passes), in eval mode under ``torch.inference_mode()``. Float32; on
    ``cuda`` with ``half`` ("fp16"/"bf16") it runs in that dtype in channels_last memory format
    (:func:`prepare_torch_module` / :func:`prepare_torch_input`, the hook of the GPU path).
``torch-compile``
    The same module through ``torch.compile`` (default mode, inductor, ``dynamic=False``: one
    static specialisation per batch size, compiled in the untimed check call). If compilation
    fails the eager module is measured instead, with status ``fallback`` and the reason.
``ort``
    The ONNX model :func:`graphcnn.backends.to_onnx.to_onnx` emits for the graph after the
    pipeline (``inference`` by default), in ONNX Runtime (:class:`OrtEngine`, all graph
    optimisations, ``threads`` intra-op threads).
``ort-int8``
    That model statically quantised (:func:`graphcnn.backends.quantize.quantize_int8`: QDQ,
    per-channel int8 weights, uint8 activations), calibrated on ``calibration`` (a folder of
    images or an .npz, at most 256 samples) or, without it, on 64 synthetic images (a fallback:
    see the quantize module).
``tensorrt``
    :mod:`graphcnn.backends.to_tensorrt` (imported lazily): ``build_engine`` on the deployment
    ONNX model, one engine per batch size (profile ``b:b:b``; fp32, or the ``half`` precision),
    built untimed before the check call, run by ``TensorRTRunner`` on CUDA tensors. Only on ``cuda``
    with the ``tensorrt`` package importable; otherwise the backend is *skipped* with every
    missing prerequisite as the reason (also when that module is missing or lacks that API).

Inputs are smooth synthetic images (:func:`graphcnn.backends.quantize.synthetic_calibration`,
seed ``seed + 1``, so never the int8 calibration samples, which use ``seed``); batch ``b`` uses
the first ``b`` of them, so every backend sees the same input. Weights: ``weights`` or
:func:`graphcnn.weights.init_weights` with ``seed``; the pipeline rewrites them (e.g. fold_bn)
for the deployment backends (ort, ort-int8, tensorrt).

Correctness, before timing: the first output (the logits) of each backend against the float32
eager module on the same device: ``max_abs_error``, ``max_abs_reference``, ``rel_error`` (their
ratio) and ``top1_agreement`` (share of samples with the same arg-max). A measurement whose
``rel_error`` exceeds :data:`TOLERANCES` for its dtype is *flagged* (``accuracy.ok`` false), and
still timed and reported.

Timing: ``warmup`` untimed calls, then one sample per call (wall clock, ``time.perf_counter``,
CUDA synchronised) until there are at least ``repeat`` samples *and* ``min_time`` seconds have
passed (at most :data:`MAX_SAMPLES`); the cyclic GC is off while timing. Latency percentiles
interpolate linearly between order statistics (numpy's default, :func:`percentile`); with few
samples p99 is close to the maximum. Throughput is ``batch / p50``; the speed-up is torch
eager's p50 over the backend's at the same batch; achieved GFLOP/s is the model's FLOPs per batch
(:func:`graphcnn.cost.profile` of the graph as compiled, the same count for every backend) over
p50, and ``peak_fraction`` divides that by the device's peak float32 rate
(:mod:`graphcnn.analysis.devices`: ``cpu`` measured with numpy, all cores; on cuda the ``h100-sxm``
profile for an H100 SXM, its float16/bfloat16 rate with ``half``; else unknown). int8 runs are
compared with the float32 peak too (no int8 peak is measured).

``BenchResult.to_json()`` keys: ``model``, ``input``, ``device``, ``half``, ``threads``,
``pipeline``, ``seed``, ``warmup``, ``repeat``, ``min_time_s``, ``calibration``,
``flops_per_sample``, ``peak_flops``, ``peak_source``, ``backends`` (name, status, reason, dtype,
setup_s, detail), ``results`` (one per backend and batch: backend, batch, status, reason,
dtype, latency_ms {samples, mean, min, p50, p90, p99, max}, throughput, speedup, gflops,
peak_fraction, first_call_s, accuracy {max_abs_error, max_abs_reference, rel_error,
top1_agreement, n, tolerance, ok}, flagged) and ``environment`` (versions, CPU, load average
before and after).

Nothing heavy is imported at module level: numpy, torch, onnx, onnxruntime, matplotlib and
tensorrt are imported where they are used.

The modules, in dependency order: ``options`` (backend, device and half names, tolerances,
argument checks), ``timing`` (timed calls, percentiles), ``results`` (what a run returns and its
JSON), ``runner`` (the shape of a ready backend), ``torch_runners``, ``ort_runners`` and
``tensorrt_runner`` (one per backend family), ``environment`` (versions, machine, peak rate),
``run`` (:func:`run_bench`) and ``chart`` (:func:`plot`); the CLI draws the table
(``graphcnn.cli.render.bench_tables``).
"""

from graphcnn.bench.chart import check_plot_support, plot
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
from graphcnn.bench.results import Accuracy, BackendInfo, BenchResult, Measurement, compare
from graphcnn.bench.run import ProgressFn, run_bench
from graphcnn.bench.tensorrt_runner import tensorrt_unavailable
from graphcnn.bench.timing import (
    DEFAULT_MIN_TIME,
    DEFAULT_REPEAT,
    DEFAULT_WARMUP,
    MAX_SAMPLES,
    LatencyStats,
    percentile,
    summarize,
    time_calls,
)
from graphcnn.bench.torch_runners import prepare_torch_input, prepare_torch_module

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKENDS",
    "DEFAULT_MIN_TIME",
    "DEFAULT_REPEAT",
    "DEFAULT_WARMUP",
    "DEVICES",
    "HALF_TYPES",
    "MAX_SAMPLES",
    "TOLERANCES",
    "Accuracy",
    "BackendInfo",
    "BenchError",
    "BenchResult",
    "LatencyStats",
    "Measurement",
    "ProgressFn",
    "check_plot_support",
    "compare",
    "parse_backends",
    "parse_batches",
    "percentile",
    "plot",
    "prepare_torch_input",
    "prepare_torch_module",
    "run_bench",
    "summarize",
    "tensorrt_unavailable",
    "time_calls",
]
