"""Build TensorRT engines from graphcnn's ONNX models (TensorRT 10 Python API), load and run them.

The path is ONNX: :func:`graphcnn.backends.to_onnx.to_onnx` (dynamic batch ``N``) -> TensorRT's
ONNX parser -> ``builder.build_serialized_network`` with one optimization profile per input
(``min:opt:max`` batch over the graph's C, H, W). TensorRT 10 networks are always explicit-batch,
so ``create_network(0)``. Precisions: ``fp32``; ``fp16`` / ``bf16`` (``BuilderFlag.FP16`` /
``BF16``: TensorRT may run layers in that type; I/O stays float32); ``int8``, either

- **explicit quantization** (preferred): the ONNX model already holds QuantizeLinear /
  DequantizeLinear pairs, e.g. from :func:`graphcnn.backends.quantize.quantize_int8` with
  ``activation_type="int8"`` (TensorRT needs symmetric int8 Q/DQ: zero point 0, no uint8), and
  TensorRT keeps exactly those scales; or
- **implicit quantization** with calibration data, through an ``IInt8EntropyCalibrator2``
  (:func:`make_calibrator`) fed by :class:`CalibrationBatches`. TensorRT deprecated calibrators
  in 10.1 in favour of explicit quantization; they still work in 10.x.

INT8 builds also set FP16 so layers without an INT8 kernel fall back to FP16, not FP32.

Every engine gets a **manifest** (JSON, ``<engine>.json`` beside it): IR hash, spec hash, ONNX
hash, TensorRT / CUDA versions, GPU name and compute capability, precision, profiles, graphcnn
version. :func:`load_engine` refuses (:class:`ManifestMismatch`) an engine built for another
GPU, TensorRT version or IR: a serialized engine only runs on the TensorRT version and GPU
architecture that built it. :class:`EngineCache` keeps built engines keyed by the manifest
without its build-time fields, so an identical build is skipped. Parser errors name the ONNX
node, which is the IR scope name, and its spec location (the node's ``doc_string``).

:class:`TensorRTRunner` executes an engine on torch CUDA tensors (``data_ptr()`` addresses, the
current torch stream; no pycuda or cuda-python), validating device, dtype, shape and profile.

Everything that needs neither TensorRT nor a GPU is a plain function here and unit-tested
everywhere: batch ranges, sizes, profiles, hashes, manifests and cache keys, calibration
batching, parser-error mapping. TensorRT is imported inside functions only.

The package, one idea per module, each importing only the ones before it: ``errors``
(:class:`TensorRTError` and kin), ``options`` (precisions, batch ranges, sizes, profiles),
``runtime`` (``require_*`` checks, the runtime description), ``manifest`` (hashes, manifests,
engine files, :class:`EngineCache`), ``onnx_side`` (ONNX nodes, parser-error mapping),
``calibration`` (:class:`CalibrationBatches`, :func:`make_calibrator`), ``runner``
(:class:`TensorRTRunner`), ``build`` (:func:`build_engine`) and ``entry`` (:func:`to_tensorrt`,
:func:`emit_engine`). Every public name is importable from the package itself.
"""

from __future__ import annotations

from graphcnn.backends.to_tensorrt.build import build_engine
from graphcnn.backends.to_tensorrt.calibration import (
    REMAINDERS,
    CalibrationBatches,
    make_calibrator,
)
from graphcnn.backends.to_tensorrt.entry import emit, emit_engine, preflight, to_tensorrt
from graphcnn.backends.to_tensorrt.errors import (
    ManifestMismatch,
    TensorRTError,
    TensorRTUnavailable,
)
from graphcnn.backends.to_tensorrt.manifest import (
    BUILD_FIELDS,
    CACHE_ENV,
    ENV_FIELDS,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    EngineCache,
    cache_key,
    canonical,
    compare_manifest,
    ir_hash,
    load_engine,
    make_manifest,
    manifest_path,
    read_manifest,
    save_engine,
    spec_hash,
)
from graphcnn.backends.to_tensorrt.onnx_side import (
    OnnxNode,
    ParseError,
    ParserIssue,
    map_parser_error,
    onnx_inputs,
    onnx_nodes,
    parse_loc,
    qdq_summary,
)
from graphcnn.backends.to_tensorrt.options import (
    PRECISIONS,
    InputProfile,
    default_batch_range,
    input_profiles,
    parse_batch_range,
    parse_size,
    validate_batch_range,
)
from graphcnn.backends.to_tensorrt.runner import TensorRTRunner, TensorSpec, check_input, engine_io
from graphcnn.backends.to_tensorrt.runtime import (
    MIN_TENSORRT,
    require_cuda,
    require_runtime,
    require_tensorrt,
    runtime_env,
)

__all__ = [
    "emit",
    "preflight",
    "BUILD_FIELDS",
    "CACHE_ENV",
    "CalibrationBatches",
    "ENV_FIELDS",
    "EngineCache",
    "InputProfile",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "MIN_TENSORRT",
    "ManifestMismatch",
    "OnnxNode",
    "PRECISIONS",
    "ParseError",
    "ParserIssue",
    "REMAINDERS",
    "TensorRTError",
    "TensorRTRunner",
    "TensorRTUnavailable",
    "TensorSpec",
    "build_engine",
    "cache_key",
    "canonical",
    "check_input",
    "compare_manifest",
    "default_batch_range",
    "emit_engine",
    "engine_io",
    "input_profiles",
    "ir_hash",
    "load_engine",
    "make_calibrator",
    "make_manifest",
    "manifest_path",
    "map_parser_error",
    "onnx_inputs",
    "onnx_nodes",
    "parse_batch_range",
    "parse_loc",
    "parse_size",
    "qdq_summary",
    "read_manifest",
    "require_cuda",
    "require_runtime",
    "require_tensorrt",
    "runtime_env",
    "save_engine",
    "spec_hash",
    "to_tensorrt",
    "validate_batch_range",
]
