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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, SourceLoc

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import tensorrt as trt
    import torch
    from typing_extensions import Buffer

    Array = np.ndarray[Any, Any]

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MIN_TENSORRT = 10
MANIFEST_FORMAT = "graphcnn-tensorrt-engine"
MANIFEST_VERSION = 1
BUILD_FIELDS = frozenset(
    {"created", "build_seconds", "engine_sha256", "engine_bytes", "from_cache", "io"}
)
"""Manifest fields known only after a build: not part of the cache key."""
ENV_FIELDS = ("tensorrt", "gpu", "compute_capability")
"""What an engine must match where it runs (CUDA is recorded; minor-version compatible)."""
CACHE_ENV = "GRAPHCNN_TRT_CACHE"
"""Overrides the engine cache folder; ``off`` disables the cache."""
REMAINDERS = ("pad", "drop")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}  # fmt: skip
_TRT_DTYPES = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8",
    "INT32": "int32", "INT64": "int64", "BOOL": "bool", "UINT8": "uint8",
}  # fmt: skip


class TensorRTError(GraphcnnError):
    """A TensorRT engine cannot be built, loaded or run (or its options are invalid)."""


class TensorRTUnavailable(TensorRTError):
    """TensorRT's Python package, torch with CUDA, or a CUDA GPU is missing here."""


class ManifestMismatch(TensorRTError):
    """An engine was built for another GPU, TensorRT version or IR than the current one."""


# --------------------------------------------------------------------------- options


def parse_batch_range(text: str) -> tuple[int, int, int]:
    """``"1:8:32"`` -> ``(1, 8, 32)`` (min, opt, max); ``"8"`` -> ``(8, 8, 8)``."""
    parts = text.strip().split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise TensorRTError(
            f"batch range {text!r} is not MIN:OPT:MAX", "e.g. 1:8:32 (or 8 for a fixed batch)"
        )
    lo, opt, hi = values
    return validate_batch_range((lo, opt, hi))


def validate_batch_range(r: Sequence[int]) -> tuple[int, int, int]:
    """Check ``1 <= min <= opt <= max``; returns the range as a tuple."""
    if len(r) != 3:
        raise TensorRTError(f"batch range needs 3 values (min, opt, max), got {list(r)}")
    lo, opt, hi = (int(v) for v in r)
    if lo < 1:
        raise TensorRTError(f"batch range {lo}:{opt}:{hi}: the minimum batch must be >= 1")
    if not lo <= opt <= hi:
        raise TensorRTError(
            f"batch range {lo}:{opt}:{hi} is not ordered", "it must satisfy MIN <= OPT <= MAX"
        )
    return lo, opt, hi


def parse_size(text: str) -> int:
    """A byte count: ``"1GiB"``, ``"512MiB"``, ``"2G"`` (binary), ``"1.5GB"`` (decimal) or
    ``"4096"``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS:
        raise TensorRTError(
            f"size {text!r} is not a byte count", "e.g. 1GiB, 512MiB, 2G or a number of bytes"
        )
    n = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if n < 1:
        raise TensorRTError(f"size {text!r} must be at least one byte")
    return n


@dataclass(frozen=True)
class InputProfile:
    """Min / opt / max shapes of one engine input (one optimization profile entry)."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"input": self.name, "min": list(self.min), "opt": list(self.opt),
                "max": list(self.max)}  # fmt: skip

    @property
    def batch_range(self) -> tuple[int, int, int]:
        return self.min[0], self.opt[0], self.max[0]


def default_batch_range(graph: Graph) -> tuple[int, int, int]:
    """A graph compiled with a concrete batch B gets ``B:B:B``; a symbolic one ``1:1:1``."""
    b = graph.inference().inputs[0].type.shape[0]
    return (b, b, b) if isinstance(b, int) else (1, 1, 1)


def input_profiles(graph: Graph, batch_range: Sequence[int] | None = None) -> list[InputProfile]:
    """One :class:`InputProfile` per graph input: ``(batch, C, H, W)`` for min, opt and max."""
    lo, opt, hi = validate_batch_range(batch_range or default_batch_range(graph))
    out = []
    for node in graph.inference().inputs:
        sample = node.type.sample_shape
        out.append(InputProfile(node.name, (lo, *sample), (opt, *sample), (hi, *sample)))
    if not out:
        raise TensorRTError(f"graph {graph.name} has no inputs")
    return out


# --------------------------------------------------------------------------- hashes, manifest


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def ir_hash(graph: Graph) -> str:
    """sha256 of the inference graph's ``dump()`` without spec locations (moving a layer in
    the spec file does not change the engine; changing a shape, attribute or edge does)."""
    g = graph.inference()
    bare = Graph(g.name, {k: n.replace(loc=None) for k, n in g.nodes.items()}, list(g.outputs))
    return _sha256(bare.dump())


def spec_hash(graph: Graph) -> str | None:
    """sha256 over the text of every spec file the graph's nodes come from (None if unknown)."""
    from graphcnn.errors import SOURCES

    files = sorted({n.loc.file for n in graph if n.loc is not None})
    texts = [(f, SOURCES[f]) for f in files if f in SOURCES]
    if not texts:
        return None
    return _sha256("\0".join(f"{name}\0{text}" for name, text in texts))


def make_manifest(
    graph: Graph,
    env: Mapping[str, Any],
    precision: str,
    profiles: Sequence[InputProfile],
    onnx_sha256: str,
    workspace: int | None = None,
    quantization: str = "none",
    calibration_sha256: str | None = None,
) -> dict[str, Any]:
    """The manifest of an engine about to be built (build fields are added by the build).

    ``env`` is :func:`runtime_env`'s: ``tensorrt``, ``cuda``, ``gpu``, ``compute_capability``.
    """
    from graphcnn import __version__

    if precision not in PRECISIONS:
        raise TensorRTError(f"unknown precision {precision!r}", f"choose one of {PRECISIONS}")
    missing = [k for k in (*ENV_FIELDS, "cuda") if k not in env]
    if missing:
        raise TensorRTError(f"runtime description lacks {', '.join(missing)}")
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "model": graph.name,
        "ir_hash": ir_hash(graph),
        "spec_hash": spec_hash(graph),
        "onnx_sha256": onnx_sha256,
        "graphcnn": __version__,
        "tensorrt": str(env["tensorrt"]),
        "cuda": None if env["cuda"] is None else str(env["cuda"]),
        "gpu": str(env["gpu"]),
        "compute_capability": str(env["compute_capability"]),
        "precision": precision,
        "quantization": quantization,
        "calibration_sha256": calibration_sha256,
        "workspace": workspace,
        "profiles": [p.to_json() for p in profiles],
    }


def canonical(manifest: Mapping[str, Any]) -> str:
    """The manifest without build-time fields as canonical JSON (sorted keys, no spaces)."""
    core = {k: v for k, v in manifest.items() if k not in BUILD_FIELDS}
    return json.dumps(core, sort_keys=True, separators=(",", ":"))


def cache_key(manifest: Mapping[str, Any]) -> str:
    """sha256 of :func:`canonical`: equal for two builds of the same thing, whenever built."""
    return _sha256(canonical(manifest))


def compare_manifest(
    manifest: Mapping[str, Any],
    env: Mapping[str, Any],
    graph_hash: str | None = None,
    precision: str | None = None,
) -> list[str]:
    """What makes an engine unusable here: one readable line per mismatch (empty: usable)."""
    problems = []
    if manifest.get("format") != MANIFEST_FORMAT:
        return [f"not a graphcnn TensorRT manifest (format {manifest.get('format')!r})"]
    if manifest.get("version") != MANIFEST_VERSION:
        problems.append(
            f"manifest version {manifest.get('version')} (this graphcnn reads {MANIFEST_VERSION})"
        )
    labels = {"tensorrt": "TensorRT", "gpu": "GPU", "compute_capability": "compute capability"}
    for key in ENV_FIELDS:
        built, here = manifest.get(key), env.get(key)
        if str(built) != str(here):
            problems.append(f"{labels[key]}: engine built with {built}, here {here}")
    if graph_hash is not None and manifest.get("ir_hash") != graph_hash:
        problems.append(
            f"IR: engine built from IR {str(manifest.get('ir_hash'))[:12]}, "
            f"the graph here is {graph_hash[:12]}"
        )
    if precision is not None and manifest.get("precision") != precision:
        problems.append(f"precision: engine is {manifest.get('precision')}, asked for {precision}")
    return problems


def manifest_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def save_engine(path: str | Path, engine: bytes, manifest: Mapping[str, Any]) -> list[Path]:
    """Write the engine and its manifest atomically (manifest last: it vouches for the engine)."""
    from graphcnn.weights import write_atomic

    p = Path(path)
    if manifest.get("engine_sha256") not in (None, _sha256(engine)):
        raise TensorRTError("the manifest does not describe this engine (sha256 differs)")
    data = dict(manifest, engine_sha256=_sha256(engine), engine_bytes=len(engine))
    data.pop("from_cache", None)
    write_atomic(p, engine)
    m = manifest_path(p)
    write_atomic(m, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return [p, m]


def read_manifest(engine_path: str | Path) -> dict[str, Any]:
    """The manifest beside an engine, checked to describe that engine's bytes."""
    p = Path(engine_path)
    m = manifest_path(p)
    if not p.is_file():
        raise TensorRTError(f"no such engine file: {str(p)!r}")
    if not m.is_file():
        raise TensorRTError(
            f"engine {p.name} has no manifest ({m.name})",
            "engines are only loaded with the manifest graphcnn writes beside them; rebuild "
            "with `graphcnn compile MODEL --target tensorrt`",
        )
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError) as e:
        raise TensorRTError(f"cannot read manifest {m.name}: {e}") from None
    if not isinstance(data, dict):
        raise TensorRTError(f"manifest {m.name} is not a JSON object")
    return data


def load_engine(
    path: str | Path,
    graph: Graph | None = None,
    env: Mapping[str, Any] | None = None,
    precision: str | None = None,
    device: int = 0,
) -> tuple[bytes, dict[str, Any]]:
    """Engine bytes and manifest, refused with :class:`ManifestMismatch` unless they fit here.

    ``env`` defaults to :func:`runtime_env` (needs TensorRT and a GPU); ``graph``, if given,
    must have the IR the engine was built from; ``precision``, if given, must match.
    """
    p = Path(path)
    manifest = read_manifest(p)
    blob = p.read_bytes()
    if manifest.get("engine_sha256") != _sha256(blob):
        raise ManifestMismatch(
            f"engine {p.name} does not match its manifest (sha256 differs)",
            "the engine file was replaced or truncated; rebuild it",
        )
    here = env if env is not None else runtime_env(device)
    problems = compare_manifest(manifest, here, ir_hash(graph) if graph else None, precision)
    if problems:
        raise ManifestMismatch(
            f"engine {p.name} cannot be used here: " + "; ".join(problems),
            "TensorRT engines are specific to the TensorRT version and GPU that built them; "
            "rebuild with `graphcnn compile MODEL --target tensorrt`",
        )
    return blob, manifest


class EngineCache:
    """Built engines by :func:`cache_key`: ``<root>/<key>.engine`` + ``<key>.engine.json``.

    ``root`` defaults to ``$GRAPHCNN_TRT_CACHE``, else ``$XDG_CACHE_HOME/graphcnn/tensorrt``
    (``~/.cache/graphcnn/tensorrt``).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            env = os.environ.get(CACHE_ENV)
            xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            root = env or Path(xdg) / "graphcnn" / "tensorrt"
        self.root = Path(root)

    @staticmethod
    def enabled() -> bool:
        return os.environ.get(CACHE_ENV, "").lower() not in ("off", "0", "no")

    def path(self, manifest: Mapping[str, Any]) -> Path:
        return self.root / f"{cache_key(manifest)}.engine"

    def lookup(self, manifest: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]] | None:
        """The cached engine built for ``manifest`` (its build fields ignored), if intact."""
        p = self.path(manifest)
        try:
            stored = read_manifest(p)
            blob = p.read_bytes()
        except (TensorRTError, OSError):
            return None
        if stored.get("engine_sha256") != _sha256(blob) or cache_key(stored) != cache_key(manifest):
            return None
        return blob, dict(stored, from_cache=True)

    def store(self, engine: bytes, manifest: Mapping[str, Any]) -> Path:
        p = self.path(manifest)
        save_engine(p, engine, manifest)
        return p


# --------------------------------------------------------------------------- ONNX side


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node: its name (an IR scope name for graphcnn models), op and location."""

    index: int
    name: str
    op: str
    loc: SourceLoc | None


def parse_loc(text: str) -> SourceLoc | None:
    """``"resnet.gcnn:12:5"`` -> SourceLoc; anything else -> None."""
    m = re.fullmatch(r"(.+):(\d+):(\d+)", text.strip())
    return SourceLoc(m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def _model(model: bytes | onnx.ModelProto) -> onnx.ModelProto:
    import onnx

    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    return model


def onnx_nodes(model: bytes | onnx.ModelProto) -> list[OnnxNode]:
    """Every node of the model in order; ``loc`` parsed from its ``doc_string``."""
    m = _model(model)
    return [
        OnnxNode(i, n.name, n.op_type, parse_loc(n.doc_string)) for i, n in enumerate(m.graph.node)
    ]


def onnx_inputs(model: bytes | onnx.ModelProto) -> list[str]:
    """Names of the real inputs (initializers excluded)."""
    m = _model(model)
    inits = {i.name for i in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


def qdq_summary(model: bytes | onnx.ModelProto) -> dict[str, int]:
    """Counts of QuantizeLinear / DequantizeLinear nodes and of uint8 (asymmetric) quantizers."""
    m = _model(model)
    inits = {i.name: i for i in m.graph.initializer}
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    uint8 = 0
    for n in q:
        zp = inits.get(n.input[2]) if len(n.input) > 2 else None
        if zp is not None and zp.data_type == 2:  # TensorProto.UINT8
            uint8 += 1
    return {"quantize": len(q), "dequantize": len(dq), "uint8": uint8}


@dataclass(frozen=True)
class ParserIssue:
    """One ONNX-parser error, mapped back to the IR."""

    desc: str
    node: OnnxNode | None
    scope: str | None
    """The IR node it comes from (helper nodes such as ``x.sigmoid`` map to ``x``)."""

    def format(self) -> str:
        from graphcnn.errors import SpecError

        if self.node is None:
            return f"error: {self.desc}"
        what = f"ONNX node {self.node.name!r} ({self.node.op}"
        if self.scope and self.scope != self.node.name:
            what += f", from IR node {self.scope!r}"
        return SpecError(f"TensorRT cannot parse {what}): {self.desc}", self.node.loc).format()


def map_parser_error(
    desc: str,
    node_index: int,
    node_name: str,
    nodes: Sequence[OnnxNode],
    graph: Graph | None = None,
) -> ParserIssue:
    """Locate one parser error: by node name if TensorRT gives one, else by node index."""
    by_name = {n.name: n for n in nodes}
    node = by_name.get(node_name) if node_name else None
    if node is None and 0 <= node_index < len(nodes):
        node = nodes[node_index]
    scope = None
    if node is not None and graph is not None:
        name = node.name
        while name and name not in graph.nodes:
            name = name.rpartition(".")[0]
        scope = name or None
    elif node is not None:
        scope = node.name
    return ParserIssue(desc, node, scope)


class ParseError(TensorRTError):
    """TensorRT's ONNX parser rejected the model; every issue is located in the spec."""

    def __init__(self, issues: Sequence[ParserIssue]) -> None:
        n = len(issues)
        super().__init__(
            f"TensorRT's ONNX parser reported {n} error{'s' if n != 1 else ''}",
            "an op or attribute TensorRT does not support; `--target onnx` still works",
        )
        self.issues = list(issues)

    def format(self) -> str:
        lines = [f"error: {self.message}"] + [i.format() for i in self.issues]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- calibration


class CalibrationBatches:
    """Calibration samples ``[N, ...]`` cut into batches of exactly ``batch_size`` (float32).

    The last partial batch is padded by repeating samples from the start (``"pad"``, so every
    sample is used) or dropped (``"drop"``). A calibrator needs fixed-size batches: TensorRT
    calibrates at the calibration profile's shape.
    """

    def __init__(
        self,
        data: Array,
        batch_size: int,
        remainder: str = "pad",
        sample_shape: Sequence[int] | None = None,
    ) -> None:
        import numpy as np

        if remainder not in REMAINDERS:
            raise TensorRTError(f"unknown remainder rule {remainder!r}", f"choose {REMAINDERS}")
        if batch_size < 1:
            raise TensorRTError(f"calibration batch size must be >= 1, got {batch_size}")
        x = np.asarray(data)
        if x.ndim < 2 or len(x) == 0:
            raise TensorRTError(
                f"calibration data must be a non-empty [N, ...] array, got shape {list(x.shape)}"
            )
        if sample_shape is not None and tuple(x.shape[1:]) != tuple(sample_shape):
            raise TensorRTError(
                f"calibration samples are {list(x.shape[1:])}, the model takes {list(sample_shape)}"
            )
        if remainder == "drop" and len(x) < batch_size:
            raise TensorRTError(
                f"{len(x)} calibration samples make no full batch of {batch_size}",
                "give more samples, or pad the last batch",
            )
        if not np.isfinite(x).all():
            raise TensorRTError("calibration data contains NaN or infinity")
        self.data = x
        self.batch_size = batch_size
        self.remainder = remainder

    def __len__(self) -> int:
        full, rest = divmod(len(self.data), self.batch_size)
        return full + (1 if rest and self.remainder == "pad" else 0)

    @property
    def padded(self) -> int:
        """How many repeated samples fill the last batch."""
        rest = len(self.data) % self.batch_size
        return self.batch_size - rest if rest and self.remainder == "pad" else 0

    @property
    def dropped(self) -> int:
        """How many samples the ``"drop"`` rule leaves out."""
        return len(self.data) % self.batch_size if self.remainder == "drop" else 0

    def __getitem__(self, i: int) -> Array:
        import numpy as np

        if not 0 <= i < len(self):
            raise IndexError(i)
        idx = np.arange(i * self.batch_size, (i + 1) * self.batch_size) % len(self.data)
        return np.ascontiguousarray(self.data[idx], dtype=np.float32)

    def __iter__(self) -> Iterator[Array]:
        for i in range(len(self)):
            yield self[i]

    def sha256(self) -> str:
        """Hash of the samples and the batching (part of the engine cache key)."""
        import numpy as np

        h = hashlib.sha256(np.ascontiguousarray(self.data, dtype=np.float32).tobytes())
        h.update(f"{self.data.shape}|{self.batch_size}|{self.remainder}".encode())
        return h.hexdigest()


def make_calibrator(
    batches: CalibrationBatches, cache_file: str | Path | None = None, device: int = 0
) -> trt.IInt8EntropyCalibrator2:
    """An ``IInt8EntropyCalibrator2`` over ``batches`` (deprecated by TensorRT 10.1 in favour of
    explicit quantization, still supported). Batches are copied into one CUDA buffer (torch);
    ``cache_file`` stores the calibration table so a rebuild skips calibrating."""
    import tensorrt as trt
    import torch

    from graphcnn.weights import write_atomic

    cache = Path(cache_file) if cache_file is not None else None
    first = batches[0]

    # (subclassing Any: where no stubs are installed, tools/typecheck sees tensorrt as Any)
    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.buffer = torch.empty(first.shape, dtype=torch.float32, device=f"cuda:{device}")

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int]:
            if self.index >= len(batches):
                return []  # no more data: calibration ends
            self.buffer.copy_(torch.from_numpy(batches[self.index]))
            torch.cuda.synchronize(device)  # TensorRT reads the buffer on its own stream
            self.index += 1
            return [int(self.buffer.data_ptr())]  # one input (build_engine checks)

        # the stubs say Buffer; the binding also takes None ("no cache"), as its docs show
        def read_calibration_cache(self) -> bytes | None:  # type: ignore[override]
            if cache is not None and cache.is_file():
                return cache.read_bytes()
            return None

        def write_calibration_cache(self, data: Buffer) -> None:
            if cache is not None:
                write_atomic(cache, memoryview(data).tobytes())

    return _Calibrator()


# --------------------------------------------------------------------------- runtime checks


def require_tensorrt() -> None:
    """Check that ``import tensorrt`` works (10.x or newer), else :class:`TensorRTUnavailable`
    saying what is missing. Callers then import it themselves (typed by its stubs)."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise TensorRTUnavailable(
            f"the tensorrt target needs NVIDIA TensorRT's Python package 'tensorrt' "
            f"(>= {MIN_TENSORRT}), which cannot be imported here ({e})",
            "install TensorRT 10 from NVIDIA on a machine with a CUDA GPU; `--target onnx` "
            "writes the ONNX model that TensorRT builds from (e.g. trtexec --onnx=MODEL.onnx)",
        ) from None
    major = str(getattr(trt, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < MIN_TENSORRT:
        raise TensorRTUnavailable(
            f"TensorRT {getattr(trt, '__version__', '?')} is too old; graphcnn needs "
            f"{MIN_TENSORRT}.x or newer (the name-based I/O tensor API)"
        )


def require_cuda(device: int = 0) -> None:
    """Check for torch with a usable CUDA device ``device``, else :class:`TensorRTUnavailable`."""
    try:
        import torch
    except ImportError:
        raise TensorRTUnavailable(
            "the tensorrt target needs PyTorch with CUDA (torch) to drive the GPU, and torch "
            "cannot be imported here",
            "pip install torch (a CUDA build)",
        ) from None
    if not torch.cuda.is_available():
        raise TensorRTUnavailable(
            "the tensorrt target needs a CUDA GPU, and torch sees none here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
            "run on a machine with an NVIDIA GPU and driver",
        )
    if not 0 <= device < torch.cuda.device_count():
        raise TensorRTUnavailable(
            f"CUDA device {device} does not exist ({torch.cuda.device_count()} visible)"
        )


def require_runtime(device: int = 0) -> None:
    """Fail early, with what is missing, unless TensorRT and a CUDA GPU are both usable."""
    require_tensorrt()
    require_cuda(device)


def runtime_env(device: int = 0) -> dict[str, Any]:
    """What an engine depends on here: TensorRT and CUDA versions, GPU name and capability."""
    require_tensorrt()
    require_cuda(device)
    import tensorrt as trt
    import torch

    props = torch.cuda.get_device_properties(device)
    return {
        "tensorrt": str(trt.__version__),
        "cuda": torch.version.cuda,
        "gpu": str(props.name),
        "compute_capability": f"{props.major}.{props.minor}",
    }


# --------------------------------------------------------------------------- build


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
        _sha256(data),
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
        engine_sha256=_sha256(engine),
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


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor: name, shape (``-1`` where dynamic), dtype and, for inputs, the
    profile's min and max shapes."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_input: bool
    min: tuple[int, ...] | None = None
    max: tuple[int, ...] | None = None


def check_input(spec: TensorSpec, shape: Sequence[int], dtype: str, device: str) -> None:
    """Raise :class:`TensorRTError` unless a tensor fits input ``spec`` (device ``"cuda"``...)."""
    if device != "cuda":
        raise TensorRTError(
            f"input {spec.name!r} is on {device}; a TensorRT engine takes CUDA tensors",
            "move it with x.cuda()",
        )
    if dtype != spec.dtype:
        raise TensorRTError(
            f"input {spec.name!r} has dtype {dtype}, the engine takes {spec.dtype}",
            f"convert with x.to(torch.{spec.dtype})",
        )
    want = "[" + ", ".join("N" if d < 0 else str(d) for d in spec.shape) + "]"
    if len(shape) != len(spec.shape) or any(
        d >= 0 and d != s for d, s in zip(spec.shape, shape, strict=True)
    ):
        raise TensorRTError(f"input {spec.name!r} has shape {list(shape)}, expected {want}")
    if spec.min is not None and spec.max is not None:
        bad = [
            i
            for i, (lo, s, hi) in enumerate(zip(spec.min, shape, spec.max, strict=True))
            if not lo <= s <= hi
        ]
        if bad:
            i = bad[0]
            what = "batch" if i == 0 else f"dimension {i}"
            raise TensorRTError(
                f"input {spec.name!r}: {what} {shape[i]} is outside the engine's optimization "
                f"profile ({spec.min[i]}..{spec.max[i]})",
                f"rebuild with a --batch-range that covers {shape[i]}" if i == 0 else None,
            )


def engine_io(engine: bytes, device: int = 0) -> list[dict[str, Any]]:
    """The I/O tensors of a serialized engine as JSON (for the manifest)."""
    return [
        {
            "name": s.name,
            "mode": "input" if s.is_input else "output",
            "shape": list(s.shape),
            "dtype": s.dtype,
        }  # fmt: skip
        for s in TensorRTRunner(engine, device=device).specs
    ]


class TensorRTRunner:
    """Run a serialized engine on torch CUDA tensors, on the current torch stream.

    ``runner(x)`` validates ``x`` (device, dtype, shape, profile range), binds it by
    ``data_ptr()``, allocates the outputs with torch and enqueues ``execute_async_v3``; the
    outputs are ready for anything later on the same stream (``torch.cuda.synchronize()`` before
    timing on the host).
    """

    def __init__(
        self,
        engine: bytes,
        manifest: Mapping[str, Any] | None = None,
        device: int = 0,
        verbose: bool = False,
    ) -> None:
        require_tensorrt()
        require_cuda(device)
        import tensorrt as trt
        import torch

        self.device = device
        self.manifest = dict(manifest) if manifest is not None else None
        with torch.cuda.device(device):
            self.logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
            self.runtime = trt.Runtime(self.logger)
            self.engine = self.runtime.deserialize_cuda_engine(engine)
            if self.engine is None:
                raise TensorRTError(
                    "TensorRT cannot deserialize the engine",
                    "it was built by another TensorRT version or for another GPU; rebuild it",
                )
            self.context = self.engine.create_execution_context()
        self.specs = self._specs()

    def _specs(self) -> list[TensorSpec]:
        import tensorrt as trt

        specs = []
        e = self.engine
        for i in range(e.num_io_tensors):
            name = e.get_tensor_name(i)
            is_input = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dims = e.get_tensor_shape(name)
            shape = tuple(dims[j] for j in range(len(dims)))
            dtype = _TRT_DTYPES.get(e.get_tensor_dtype(name).name, e.get_tensor_dtype(name).name)
            lo = hi = None
            if is_input:
                lo_d, _, hi_d = e.get_tensor_profile_shape(name, 0)
                lo = tuple(lo_d[j] for j in range(len(lo_d)))
                hi = tuple(hi_d[j] for j in range(len(hi_d)))
            specs.append(TensorSpec(name, shape, dtype, is_input, lo, hi))
        return specs

    @property
    def inputs(self) -> list[TensorSpec]:
        return [s for s in self.specs if s.is_input]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [s for s in self.specs if not s.is_input]

    def __call__(self, *xs: torch.Tensor) -> list[torch.Tensor]:
        import torch

        ins = self.inputs
        if len(xs) != len(ins):
            raise TensorRTError(f"the engine takes {len(ins)} input(s), got {len(xs)}")
        keep = []
        with torch.cuda.device(self.device):
            for spec, x in zip(ins, xs, strict=True):
                check_input(spec, tuple(x.shape), str(x.dtype).removeprefix("torch."),
                            x.device.type)  # fmt: skip
                if x.device.index not in (None, self.device):
                    raise TensorRTError(
                        f"input {spec.name!r} is on cuda:{x.device.index}, the engine on "
                        f"cuda:{self.device}"
                    )
                x = x.contiguous()
                keep.append(x)
                self.context.set_input_shape(spec.name, tuple(x.shape))
                self.context.set_tensor_address(spec.name, x.data_ptr())
            outs = []
            for spec in self.outputs:
                dims = self.context.get_tensor_shape(spec.name)
                shape = [dims[j] for j in range(len(dims))]
                y = torch.empty(
                    shape, dtype=getattr(torch, spec.dtype), device=f"cuda:{self.device}"
                )
                self.context.set_tensor_address(spec.name, y.data_ptr())
                outs.append(y)
            stream = torch.cuda.current_stream(self.device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise TensorRTError("TensorRT failed to enqueue the engine (execute_async_v3)")
        return outs

    def run_torch(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``self(x)``: the interface of :class:`graphcnn.backends.ort_engine.OrtEngine`."""
        return self(x)


def _device_index(device: int | str) -> int:
    """``0``, ``"cuda"``, ``"cuda:1"`` -> a CUDA device index."""
    if isinstance(device, int):
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise TensorRTError(f"TensorRT runs on a CUDA device, not {device!r}")
    return int(index or 0)


def to_tensorrt(
    graph: Graph,
    weights: Mapping[str, Array] | None = None,
    batches: Sequence[int] | None = None,
    max_batch: int | None = None,
    half: str | None = None,
    device: int | str = 0,
    precision: str | None = None,
    workspace: int | None = None,
    cache: EngineCache | None = None,
) -> TensorRTRunner:
    """Lower ``graph`` (with ``weights``, else seeded init) to a ready-to-run engine.

    The batch range covers ``batches`` (min..max, tuned for the largest) or ``1..max_batch``;
    ``half`` ("fp16"/"bf16") picks that precision unless ``precision`` is given. This is the
    entry point of ``graphcnn bench --backend tensorrt``.
    """
    from graphcnn.backends.to_onnx import to_onnx

    index = _device_index(device)
    require_runtime(index)
    if batches:
        lo, hi = min(batches), max(batches)
    else:
        lo, hi = 1, max_batch or default_batch_range(graph)[2]
    if precision is None:
        precision = half if half in ("fp16", "bf16") else "fp32"
    model = to_onnx(graph, weights)
    engine, manifest = build_engine(
        model.SerializeToString(), graph, precision, (lo, hi, hi), workspace, cache=cache,
        device=index,
    )  # fmt: skip
    return TensorRTRunner(engine, manifest, device=index)


# --------------------------------------------------------------------------- CLI


def emit_engine(
    graph: Graph,
    weights: Any,
    out: str | Path,
    precision: str = "fp32",
    batch_range: Sequence[int] | None = None,
    workspace: int | None = None,
    timing_cache: str | Path | None = None,
    calibration: str | Path | None = None,
    opset: int = 17,
    echo: Callable[[str], Any] = print,
) -> tuple[list[Path], dict[str, Any]]:
    """What ``graphcnn compile MODEL --target tensorrt -o OUT`` does after compiling: lower to
    ONNX (dynamic batch), build (or reuse from the engine cache) and write OUT + its manifest.

    ``--int8`` calibrates on ``calibration`` (images folder or .npz; synthetic without).
    """
    from graphcnn.backends.to_onnx import check, to_onnx

    require_runtime()
    profiles = input_profiles(graph, batch_range)
    model = to_onnx(graph, weights, opset=opset)
    check(model, graph)
    samples = None
    if precision == "int8":
        from graphcnn.backends.quantize import CLI_MAX_SAMPLES, load_calibration

        samples = load_calibration(calibration, profiles[0].opt, CLI_MAX_SAMPLES)
        source = calibration or "synthetic images (a fallback only: pass --calibration)"
        echo(f"  INT8 calibration: {source}, {len(samples)} samples")
    cache = EngineCache() if EngineCache.enabled() else None
    engine, manifest = build_engine(
        model.SerializeToString(),
        graph,
        precision,
        profiles[0].batch_range,
        workspace,
        timing_cache,
        samples,
        cache=cache,
        log=echo,
    )
    files = save_engine(out, engine, manifest)
    lo, opt, hi = profiles[0].batch_range
    echo(
        f"{graph.name} -> TensorRT {manifest['tensorrt']} engine, {precision}, batch "
        f"{lo}:{opt}:{hi}, {manifest['gpu']} (sm {manifest['compute_capability']})"
        + (" [from the engine cache]" if manifest.get("from_cache") else "")
    )
    echo(f"wrote {files[0]} ({len(engine) / 1e6:.2f} MB) and its manifest {files[1]}")
    return files, manifest
