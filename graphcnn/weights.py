"""Weights: numpy arrays keyed by ``node.param`` names (``layer1.0.conv1.weight``); no torch.

- :func:`init_weights` initialises a graph deterministically from a seed with each layer's
  standard PyTorch scheme (the `reset_parameters` of nn.Conv2d, nn.Linear, nn.BatchNorm2d).
- :func:`save_safetensors` / :func:`load_safetensors` store them (atomically) in safetensors.
- :func:`load_checkpoint` reads a PyTorch ``.pt``/``.pth`` state dict (torch imported lazily)
  or a ``.safetensors`` file, and :func:`check_weights` lists every missing, unexpected or
  mis-shaped key against the graph (:func:`compare_keys` returns that comparison as data, and
  :func:`read_shapes` reads a checkpoint's names and shapes for it).
- :func:`fit_checkpoint` is loading for a pipeline that removes the training-only parts: the
  keys of those parts a checkpoint lacks are not needed, and it says so.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph, Node, Op, ParamDecl

if TYPE_CHECKING:
    import numpy as np

Weights = dict[str, "np.ndarray[Any, Any]"]
"""Parameter and buffer arrays by full name (``node.name + "." + param.name``)."""


class WeightsError(GraphcnnError):
    """Weights do not fit the graph, or a weights file cannot be read."""


def param_key(node: str, param: str) -> str:
    """The full name of a node's parameter: ``node.param``, or the node's own name when the
    parameter is unnamed (a ``layer_scale``, kept on its block as ``features.1.0.layer_scale``)."""
    return f"{node}.{param}" if param else node


def expected(graph: Graph) -> dict[str, tuple[ParamDecl, Node]]:
    """Every parameter/buffer the graph declares, by full name."""
    return {param_key(n.name, p.name): (p, n) for n in graph for p in n.params}


def init_weights(graph: Graph, seed: int = 0, dtype: str = "float32") -> Weights:
    """PyTorch's default initialisation, reproducible from ``seed`` and independent of order.

    conv/linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) — what
    ``kaiming_uniform_(a=sqrt(5))`` reduces to; BN: weight 1, bias 0, running mean 0, var 1.
    Each tensor draws from its own stream, seeded by ``seed`` and a CRC of its name, so adding a
    layer does not change the others.
    """
    return _init_nodes(graph, seed, dtype)


def _init_nodes(nodes: Iterable[Node], seed: int, dtype: str = "float32") -> Weights:
    import numpy as np

    out: Weights = {}
    for node in nodes:
        for p in node.params:
            key = param_key(node.name, p.name)
            if node.op is Op.LAYER_SCALE:
                out[key] = np.full(p.shape, float(node.attrs["init"]), dtype=dtype)  # type: ignore[arg-type]
                continue
            if node.op in (Op.BATCH_NORM, Op.LAYER_NORM):
                fill = 1.0 if p.name in ("weight", "running_var") else 0.0
                out[key] = np.full(p.shape, fill, dtype=dtype)
                continue
            weight = next(q for q in node.params if q.name == "weight")
            fan_in = math.prod(weight.shape[1:])
            bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
            rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
            arr = rng.random(p.shape, dtype=np.float32)
            arr *= np.float32(2 * bound)
            arr -= np.float32(bound)
            out[key] = arr.astype(dtype, copy=False)
    return out


@dataclass(frozen=True)
class KeyDiff:
    """How a checkpoint's names and shapes compare with the parameters a graph declares."""

    missing: list[str]
    unexpected: list[str]
    shaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    """(key, expected shape, the checkpoint's shape)."""
    training_only: list[str] = field(default_factory=list)
    """The missing keys that belong to training-only nodes (auxiliary heads)."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shaped)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "wrong_shape": [
                {"key": k, "expected": list(want), "got": list(got)} for k, want, got in self.shaped
            ],
            "missing_training_only": self.training_only,
        }


def compare_keys(graph: Graph, shapes: Mapping[str, tuple[int, ...]]) -> KeyDiff:
    """Missing, unexpected and mis-shaped keys of a checkpoint (``name -> shape``) for ``graph``."""
    want = expected(graph)
    missing = [k for k in want if k not in shapes]
    return KeyDiff(
        missing,
        [k for k in shapes if k not in want],
        [
            (k, want[k][0].shape, tuple(shapes[k]))
            for k in want
            if k in shapes and tuple(shapes[k]) != want[k][0].shape
        ],
        [k for k in missing if want[k][1].training_only],
    )


def training_parts(graph: Graph, keys: Iterable[str]) -> list[str]:
    """The top-level scopes (``aux1``, ``AuxLogits``) of the nodes that own ``keys``."""
    want = expected(graph)
    return list(dict.fromkeys(want[k][1].name.split(".")[0] for k in keys if k in want))


TRAINING_ONLY_HINT = (
    "a pipeline that removes them loads this checkpoint without them: graphcnn compile ... "
    "--pipeline inference (Python: graphcnn.load_weights(path, graph, pipeline='inference'))"
)
"""How to load a checkpoint that lacks only the training-only parts (``compile``, the API)."""


def check_weights(
    graph: Graph,
    weights: Mapping[str, Any],
    source: str = "weights",
    training_hint: str = TRAINING_ONLY_HINT,
) -> None:
    """Raise :class:`WeightsError` listing every missing, unexpected and mis-shaped key.

    When the only missing keys are those of training-only parts, the hint names the parts and
    ends with ``training_hint`` (what loads such a checkpoint where the error is raised).
    """
    diff = compare_keys(graph, {k: tuple(v.shape) for k, v in weights.items()})
    if diff.ok:
        return
    raise WeightsError(
        diff_text(diff, f"{source} does not fit {graph.name}:"),
        hint_for(graph, diff, training_hint),
    )


def diff_text(diff: KeyDiff, title: str) -> str:
    """``title`` and the missing, unexpected and mis-shaped keys (50 of each at most)."""
    shaped = [f"{k}: expected {list(want)}, got {list(got)}" for k, want, got in diff.shaped]
    lines = [title]
    for name, items in (
        ("missing", diff.missing),
        ("unexpected", diff.unexpected),
        ("wrong shape", shaped),
    ):
        if items:
            lines.append(f"  {name} ({len(items)}):")
            lines += [f"    {k}" for k in items[:50]]
            if len(items) > 50:
                lines.append(f"    ... and {len(items) - 50} more")
    return "\n".join(lines)


def hint_for(graph: Graph, diff: KeyDiff, training_hint: str = TRAINING_ONLY_HINT) -> str:
    """What to do about ``diff``: the training-only parts and ``training_hint`` when only their
    keys are missing."""
    if diff.missing and diff.training_only == diff.missing and not (diff.unexpected or diff.shaped):
        parts = ", ".join(training_parts(graph, diff.missing))
        return (
            f"the {len(diff.missing)} missing keys all belong to training-only parts ({parts}); "
            + training_hint
        )
    return "the checkpoint must come from the same architecture and arguments"


@dataclass(frozen=True)
class Fitted:
    """Weights read for a graph, and the keys that were not needed (see :func:`fit_checkpoint`)."""

    weights: Weights
    not_needed: list[str] = field(default_factory=list)
    note: str | None = None
    """What was not needed and why, for the user (None when the checkpoint had everything)."""


def fit_checkpoint(
    path: str | Path, graph: Graph, drops_training: bool = False, seed: int = 0
) -> Fitted:
    """Read a checkpoint for ``graph``; with ``drops_training`` (the pipeline that will run
    removes the training-only parts) the training-only keys it lacks are not needed.

    Those keys get the seeded initialisation, so every pass sees complete weights, and the
    pipeline drops them with their nodes: nothing of them reaches an artifact. Everything else
    (another missing key, an unexpected or mis-shaped one) is the error :func:`check_weights`
    raises; without ``drops_training`` a missing training-only key is one too.
    """
    weights = load_checkpoint(path)
    source = Path(path).name
    if not drops_training:
        check_weights(graph, weights, source)
        return Fitted(weights)
    diff = compare_keys(graph, {k: tuple(v.shape) for k, v in weights.items()})
    spare = set(diff.training_only)
    if spare:
        nodes = [n for n in graph if any(param_key(n.name, p.name) in spare for p in n.params)]
        filled = _init_nodes(nodes, seed, _dtype(weights))
        weights.update((k, v) for k, v in filled.items() if k in spare)
    check_weights(graph, weights, source)
    if not spare:
        return Fitted(weights)
    keys = diff.training_only
    parts = ", ".join(training_parts(graph, keys))
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    note = (
        f"{source} has no weights for {len(keys)} keys of the training-only parts {parts} "
        f"({shown}); not needed: the pipeline removes those parts"
    )
    return Fitted(weights, list(keys), note)


def _dtype(weights: Weights) -> str:
    """The checkpoint's floating dtype (float32 when it has none)."""
    floats = [str(v.dtype) for v in weights.values() if v.dtype.kind == "f"]
    return floats[0] if floats else "float32"


def _strip(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop torch-only bookkeeping (``num_batches_tracked``) and a DataParallel ``module.``."""
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    prefix = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    return {k[len(prefix) :]: state[k] for k in keys}


def load_checkpoint(path: str | Path, graph: Graph | None = None) -> Weights:
    """Read weights from ``.safetensors`` or a PyTorch ``.pt``/``.pth`` state dict."""
    import numpy as np

    p = _weights_file(path)
    if p.suffix == ".safetensors":
        weights = load_safetensors(p)
    else:
        weights = {k: v.detach().cpu().numpy() for k, v in _torch_state(p).items()}
        weights = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    if graph is not None:
        check_weights(graph, weights, p.name)
    return weights


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """A checkpoint's names and shapes, to compare with a graph before loading anything.

    A ``.safetensors`` file's header is read without its data; a PyTorch file is read as
    ``load_checkpoint`` reads it (``weights_only=True``: nothing in the file runs).
    """
    p = _weights_file(path)
    if p.suffix != ".safetensors":
        return {k: tuple(v.shape) for k, v in _torch_state(p).items()}
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="np") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # noqa: BLE001 - safetensors raises several error types
        raise WeightsError(f"cannot read safetensors file {str(p)!r}: {e}") from None
    return _strip(shapes)


def _weights_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        raise WeightsError(f"cannot read weights {str(p)!r}: it is a directory")
    if not p.is_file():
        raise WeightsError(f"cannot read weights {str(p)!r}: no such file")
    return p


def _torch_state(p: Path) -> dict[str, Any]:
    """The tensors of a PyTorch state dict file, by name (``weights_only``: no code runs)."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"reading {p.name} needs torch",
            "pip install 'graphcnn[torch]', or convert it to .safetensors",
        ) from None
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the error says it all
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        if "Unsupported global" in str(e):  # a pickled object (e.g. a whole nn.Module)
            raise WeightsError(
                f"{p.name} holds pickled Python objects, not a plain state dict",
                "save model.state_dict(), not the model object: "
                "torch.save(model.state_dict(), path)",
            ) from None
        raise WeightsError(
            f"cannot read PyTorch checkpoint {str(p)!r}: {_torch_reason(e)}",
            "it must be a state dict saved by torch.save, intact; graphcnn never unpickles "
            "objects (weights_only=True), so nothing in the file runs",
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"{p.name} holds a {type(obj).__name__}, not a state dict",
            "save model.state_dict(), not the model object",
        )
    odd = [k for k in obj if not isinstance(k, str)]
    if odd:
        raise WeightsError(
            f"{p.name} is not a state dict: key {odd[0]!r} is not a string",
            "save model.state_dict(): its keys are parameter names",
        )
    return {k: v for k, v in _strip(obj).items() if hasattr(v, "detach")}


def _torch_reason(e: Exception) -> str:
    """torch's own reason, without its advice to retry with ``weights_only=False`` (unsafe)."""
    text = str(e).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
        return "not a plain state dict (" + (text.splitlines() or ["?"])[0].strip() + ")"
    if "Weights only load failed" in text:
        return "not a plain state dict"
    first = text.splitlines()[0] if text else type(e).__name__
    return first.split(". ")[0].rstrip(".")


def load_safetensors(path: str | Path) -> Weights:
    from safetensors.numpy import load_file

    try:
        return _strip(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - safetensors raises several error types
        raise WeightsError(f"cannot read safetensors file {str(path)!r}: {e}") from None


def save_safetensors(
    weights: Mapping[str, Any], path: str | Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write atomically: a temporary file in the same folder, then an atomic rename."""
    write_atomic(path, safetensors_bytes(weights, metadata))


def safetensors_bytes(
    weights: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> bytes:
    """The safetensors encoding of ``weights`` (what :func:`save_safetensors` writes)."""
    from safetensors.numpy import save

    return bytes(save(dict(_contiguous(weights)), metadata=dict(metadata or {})))


def _contiguous(weights: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    import numpy as np

    for k, v in weights.items():
        yield k, np.ascontiguousarray(v)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so readers never see a partial file, even if killed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; artifacts follow the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
