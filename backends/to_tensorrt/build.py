"""Build a serialized engine from an ONNX model: TensorRT's ONNX parser ->
``builder.build_serialized_network`` with one optimization profile per input.

TensorRT 10 networks are always explicit-batch, so ``create_network(0)``. Precisions: ``fp32``;
``fp16`` / ``bf16`` (``BuilderFlag.FP16`` / ``BF16``: TensorRT may run layers in that type; I/O
stays float32); ``int8``, either by **explicit quantization** (the ONNX model holds symmetric
int8 QuantizeLinear / DequantizeLinear pairs, whose scales TensorRT keeps) or by **implicit
quantization** with calibration data (:mod:`graphcnn.backends.to_tensorrt.calibration`). INT8
builds also set FP16 so layers without an INT8 kernel fall back to FP16, not FP32.

Options are validated and the engine cache consulted before any TensorRT call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_tensorrt.calibration import CalibrationBatches, make_calibrator
from graphcnn.backends.to_tensorrt.errors import TensorRTError
from graphcnn.backends.to_tensorrt.manifest import EngineCache, make_manifest, sha256_hex
from graphcnn.backends.to_tensorrt.onnx_side import (
    OnnxNode,
    ParseError,
    ParserIssue,
    map_parser_error,
    onnx_inputs,
    onnx_nodes,
    qdq_summary,
)
from graphcnn.backends.to_tensorrt.options import PRECISIONS, InputProfile, input_profiles
from graphcnn.backends.to_tensorrt.runner import engine_io
from graphcnn.backends.to_tensorrt.runtime import runtime_env
from graphcnn.ir import Graph

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import tensorrt as trt

    Array = np.ndarray[Any, Any]


def _onnx_bytes(model: bytes | str | Path | onnx.ModelProto) -> tuple[bytes, str | None]:
    if isinstance(model, bytes):
        return model, None
    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise TensorRTError(f"no such ONNX model: {str(p)!r}")
        return p.read_bytes(), str(p)
    return model.SerializeToString(), None


def build_engine(
    onnx_model: bytes | str | Path | onnx.ModelProto,
    graph: Graph,
    precision: str = "fp32",
    batch_range: Sequence[int] | None = None,
    workspace: int | None = None,
    timing_cache: str | Path | None = None,
    calibration: Array | CalibrationBatches | None = None,
    calibration_cache: str | Path | None = None,
    cache: EngineCache | None = None,
    device: int = 0,
    verbose: bool = False,
    log: Callable[[str], Any] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Build (or fetch from ``cache``) a serialized engine for ``onnx_model``; returns
    ``(engine bytes, manifest)``.

    ``graph`` is the IR the model was lowered from (profiles come from its C, H, W; parser errors
    are mapped to its scopes). ``batch_range`` is ``(min, opt, max)``. ``workspace`` caps the
    builder's scratch memory (bytes). ``timing_cache`` is a file read before and written after
    the build (a cache from another GPU or TensorRT version is ignored and replaced).
    ``calibration`` (samples or batches) is required for ``int8`` unless the model carries Q/DQ.
    """
    started = time.monotonic()
    say = log or (lambda _msg: None)
    if precision not in PRECISIONS:
        raise TensorRTError(f"unknown precision {precision!r}", f"choose one of {PRECISIONS}")
    profiles = input_profiles(graph, batch_range)
    if workspace is not None and workspace < 1:
        raise TensorRTError(f"workspace must be a positive byte count, got {workspace}")
    data, path = _onnx_bytes(onnx_model)
    nodes = onnx_nodes(data)
    names = onnx_inputs(data)
    if sorted(names) != sorted(p.name for p in profiles):
        raise TensorRTError(
            f"the ONNX model's inputs {names} are not the graph's {[p.name for p in profiles]}",
            "build from the ONNX model of this graph (to_onnx)",
        )
    qdq = qdq_summary(data)
    batches: CalibrationBatches | None = None
    quantization = "none"
    if precision == "int8":
        if qdq["uint8"]:
            raise TensorRTError(
                f"the model has {qdq['uint8']} uint8 (asymmetric) quantizers; TensorRT's explicit "
                "quantization takes symmetric int8 Q/DQ only",
                "quantize with activation_type='int8', or pass calibration data instead",
            )
        if qdq["quantize"] or qdq["dequantize"]:
            quantization = "explicit (Q/DQ in the model)"
        elif calibration is None:
            raise TensorRTError(
                "an INT8 engine needs calibration data or a model with Q/DQ nodes",
                "pass calibration samples, or quantize_int8(..., activation_type='int8') first",
            )
        elif len(profiles) != 1:
            raise TensorRTError(
                f"calibration feeds one input; {graph.name} has {len(profiles)}",
                "quantize the ONNX model to Q/DQ instead (explicit quantization)",
            )
        else:
            opt = profiles[0].opt
            batches = (
                calibration
                if isinstance(calibration, CalibrationBatches)
                else CalibrationBatches(calibration, opt[0], "pad", opt[1:])
            )
            quantization = "calibrated (IInt8EntropyCalibrator2, deprecated in TensorRT 10.1)"
    env = runtime_env(device)
    manifest = make_manifest(
        graph,
        env,
        precision,
        profiles,
        sha256_hex(data),
        workspace,
        quantization,
        batches.sha256() if batches is not None else None,
    )
    if cache is not None:
        hit = cache.lookup(manifest)
        if hit is not None:
            say(f"engine cache hit: {cache.path(manifest)}")
            return hit
    engine = _build(
        data, path, nodes, graph, manifest, profiles, workspace, timing_cache, batches,
        calibration_cache, device, verbose, say,
    )  # fmt: skip
    manifest.update(
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(time.monotonic() - started, 3),
        engine_sha256=sha256_hex(engine),
        engine_bytes=len(engine),
        io=engine_io(engine, device),
        from_cache=False,
    )
    if cache is not None:
        say(f"cached engine: {cache.store(engine, manifest)}")
    return engine, manifest


def _build(
    data: bytes,
    path: str | None,
    nodes: Sequence[OnnxNode],
    graph: Graph,
    manifest: Mapping[str, Any],
    profiles: Sequence[InputProfile],
    workspace: int | None,
    timing_cache: str | Path | None,
    batches: CalibrationBatches | None,
    calibration_cache: str | Path | None,
    device: int,
    verbose: bool,
    say: Callable[[str], Any],
) -> bytes:
    """The TensorRT calls of :func:`build_engine`."""
    import tensorrt as trt
    import torch

    from graphcnn.weights import write_atomic

    with torch.cuda.device(device):
        logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
        parser = trt.OnnxParser(network, logger)
        ok = parser.parse(data, path) if path is not None else parser.parse(data)
        if not ok:
            issues = []
            for i in range(parser.num_errors):
                err: trt.ParserError = parser.get_error(i)
                issues.append(
                    map_parser_error(err.desc(), err.node(), _node_name(err), nodes, graph)
                )
            raise ParseError(
                issues or [ParserIssue("the parser failed without details", None, None)]
            )

        config = builder.create_builder_config()
        if workspace is not None:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        profile = builder.create_optimization_profile()
        for p in profiles:
            profile.set_shape(p.name, trt.Dims(list(p.min)), trt.Dims(list(p.opt)),
                              trt.Dims(list(p.max)))  # fmt: skip
        config.add_optimization_profile(profile)
        precision = manifest["precision"]
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # INT8 layers without an int8 kernel use FP16
        if precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            if batches is not None:
                calib_profile = builder.create_optimization_profile()
                for p in profiles:
                    shape = trt.Dims([batches.batch_size, *p.opt[1:]])
                    calib_profile.set_shape(p.name, shape, shape, shape)
                config.set_calibration_profile(calib_profile)
                config.int8_calibrator = make_calibrator(batches, calibration_cache, device)

        tc_path = Path(timing_cache) if timing_cache is not None else None
        if tc_path is not None:
            old = tc_path.read_bytes() if tc_path.is_file() else b""
            tc = config.create_timing_cache(old)
            if not config.set_timing_cache(tc, ignore_mismatch=False):
                say(f"timing cache {tc_path} is from another GPU or TensorRT; starting afresh")
                config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

        say(f"building TensorRT {trt.__version__} engine ({precision}) for {graph.name} ...")
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise TensorRTError(
                f"TensorRT could not build an engine for {graph.name} ({precision})",
                "see TensorRT's messages above; a larger --workspace may help",
            )
        if tc_path is not None:
            write_atomic(tc_path, memoryview(config.get_timing_cache().serialize()).tobytes())
        return memoryview(blob).tobytes()


def _node_name(err: trt.ParserError) -> str:
    """``ParserError.node_name()`` (TensorRT 10.x); empty where the binding lacks it."""
    getter = getattr(err, "node_name", None)
    return str(getter()) if callable(getter) else ""
