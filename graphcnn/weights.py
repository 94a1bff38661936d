"""Weights: numpy arrays keyed by ``node.param`` names (``layer1.0.conv1.weight``); no torch.

- :func:`init_weights` initialises a graph deterministically from a seed with each layer's
  standard PyTorch scheme (the `reset_parameters` of nn.Conv2d, nn.Linear, nn.BatchNorm2d).
- :func:`save_safetensors` / :func:`load_safetensors` store them (atomically) in safetensors.
- :func:`load_checkpoint` reads a PyTorch ``.pt``/``.pth`` state dict (torch imported lazily)
  or a ``.safetensors`` file, and :func:`check_weights` lists every missing, unexpected or
  mis-shaped key against the graph.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping
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
    import numpy as np

    out: Weights = {}
    for node in graph:
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


def check_weights(graph: Graph, weights: Mapping[str, Any], source: str = "weights") -> None:
    """Raise :class:`WeightsError` listing every missing, unexpected and mis-shaped key."""
    want = expected(graph)
    missing = [k for k in want if k not in weights]
    unexpected = [k for k in weights if k not in want]
    shaped = [
        f"{k}: expected {list(want[k][0].shape)}, got {list(weights[k].shape)}"
        for k in want
        if k in weights and tuple(weights[k].shape) != want[k][0].shape
    ]
    if not (missing or unexpected or shaped):
        return
    lines = [f"{source} does not fit {graph.name}:"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shaped)):
        if items:
            lines.append(f"  {title} ({len(items)}):")
            lines += [f"    {k}" for k in items[:50]]
            if len(items) > 50:
                lines.append(f"    ... and {len(items) - 50} more")
    raise WeightsError(
        "\n".join(lines), "the checkpoint must come from the same architecture and arguments"
    )


def _strip(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop torch-only bookkeeping (``num_batches_tracked``) and a DataParallel ``module.``."""
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    prefix = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    return {k[len(prefix) :]: state[k] for k in keys}


def load_checkpoint(path: str | Path, graph: Graph | None = None) -> Weights:
    """Read weights from ``.safetensors`` or a PyTorch ``.pt``/``.pth`` state dict."""
    import numpy as np

    p = Path(path)
    if p.is_dir():
        raise WeightsError(f"cannot read weights {str(p)!r}: it is a directory")
    if not p.is_file():
        raise WeightsError(f"cannot read weights {str(p)!r}: no such file")
    if p.suffix == ".safetensors":
        weights = load_safetensors(p)
    else:
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
        if (
            isinstance(obj, Mapping)
            and "state_dict" in obj
            and isinstance(obj["state_dict"], Mapping)
        ):
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
        weights = {
            k: v.detach().cpu().numpy() for k, v in _strip(obj).items() if hasattr(v, "detach")
        }
        weights = {k: np.ascontiguousarray(v) for k, v in weights.items()}
    if graph is not None:
        check_weights(graph, weights, p.name)
    return weights


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
