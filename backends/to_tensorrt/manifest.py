"""Engine manifests, engine files and the engine cache.

Every engine gets a **manifest** (JSON, ``<engine>.json`` beside it): IR hash, spec hash, ONNX
hash, TensorRT / CUDA versions, GPU name and compute capability, precision, profiles, graphcnn
version. :func:`load_engine` refuses (:class:`ManifestMismatch`) an engine built for another
GPU, TensorRT version or IR: a serialized engine only runs on the TensorRT version and GPU
architecture that built it. :class:`EngineCache` keeps built engines keyed by the manifest
without its build-time fields, so an identical build is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graphcnn.backends.to_tensorrt.errors import ManifestMismatch, TensorRTError
from graphcnn.backends.to_tensorrt.options import PRECISIONS, InputProfile
from graphcnn.backends.to_tensorrt.runtime import runtime_env
from graphcnn.ir import Graph

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


def sha256_hex(data: bytes | str) -> str:
    """sha256 of bytes, or of a string's UTF-8 encoding, as hex."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def ir_hash(graph: Graph) -> str:
    """sha256 of the inference graph's ``dump()`` without spec locations (moving a layer in
    the spec file does not change the engine; changing a shape, attribute or edge does)."""
    g = graph.inference()
    bare = Graph(g.name, {k: n.replace(loc=None) for k, n in g.nodes.items()}, list(g.outputs))
    return sha256_hex(bare.dump())


def spec_hash(graph: Graph) -> str | None:
    """sha256 over the text of every spec file the graph's nodes come from (None if unknown)."""
    from graphcnn.errors import SOURCES

    files = sorted({n.loc.file for n in graph if n.loc is not None})
    texts = [(f, SOURCES[f]) for f in files if f in SOURCES]
    if not texts:
        return None
    return sha256_hex("\0".join(f"{name}\0{text}" for name, text in texts))


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
    from graphcnn.version import __version__

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
    return sha256_hex(canonical(manifest))


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
    if manifest.get("engine_sha256") not in (None, sha256_hex(engine)):
        raise TensorRTError("the manifest does not describe this engine (sha256 differs)")
    data = dict(manifest, engine_sha256=sha256_hex(engine), engine_bytes=len(engine))
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
    if manifest.get("engine_sha256") != sha256_hex(blob):
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
        intact = stored.get("engine_sha256") == sha256_hex(blob)
        if not intact or cache_key(stored) != cache_key(manifest):
            return None
        return blob, dict(stored, from_cache=True)

    def store(self, engine: bytes, manifest: Mapping[str, Any]) -> Path:
        p = self.path(manifest)
        save_engine(p, engine, manifest)
        return p
