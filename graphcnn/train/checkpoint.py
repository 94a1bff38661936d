"""What a run writes and reads back, each file atomically (a temporary file, then a rename).

- ``best.safetensors`` / ``last.safetensors``: the model's weights keyed like every graphcnn
  checkpoint (``layer1.0.conv1.weight``; no ``num_batches_tracked``), loadable by
  ``graphcnn compile --weights`` and ``graphcnn train --weights``.
- ``state.pt``: what ``--resume`` needs beyond the weights: optimizer and schedule state,
  early-stopping state, the epochs' metrics, the RNG state. Plain tensors, numbers and strings
  only, read back with ``torch.load(weights_only=True)``, which never runs code from the file.

``last.safetensors`` and ``state.pt`` are a pair: the weights are written first, then the state,
which records the weights file's SHA-256. A run stopped between the two writes leaves a state
that does not match the weights beside it, and ``--resume`` refuses the pair instead of
resuming from mismatched epochs.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from graphcnn.train.config import TrainError
from graphcnn.weights import Weights, load_safetensors, save_safetensors, write_atomic

BEST = "best.safetensors"
LAST = "last.safetensors"
STATE = "state.pt"


def module_weights(model: Any) -> Weights:
    """The module's parameters and buffers as numpy arrays, by graphcnn key."""
    return {
        k: v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_weights(model: Any, path: Path, metadata: dict[str, str]) -> None:
    save_safetensors(module_weights(model), path, metadata)


def save_state(path: Path, state: dict[str, Any]) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(path, buf.getvalue())


def load_resume(out: Path) -> tuple[Weights, dict[str, Any]]:
    """The last weights and training state of the run in ``out``."""
    import torch

    last, state = out / LAST, out / STATE
    if not last.is_file() or not state.is_file():
        raise TrainError(
            f"--resume: {out} holds no run to resume ({LAST} and {STATE} are needed)",
            "resume with the --out DIR of an earlier run, or drop --resume",
        )
    try:
        obj = torch.load(state, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise TrainError(f"--resume: cannot read {state}: {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict) or "epoch" not in obj:
        raise TrainError(f"--resume: {state} is not a graphcnn training state")
    if obj.get("last_sha256", file_sha256(last)) != file_sha256(last):
        raise TrainError(
            f"--resume: {LAST} and {STATE} in {out} are from different epochs (the run was "
            "stopped while writing them)",
            "rerun without --resume, or restore both files of one epoch",
        )
    return load_safetensors(last), obj
