"""What the TensorRT backend needs where it runs: TensorRT 10 or newer, torch with CUDA and a
CUDA device; and what an engine depends on there (TensorRT and CUDA versions, GPU name and
compute capability, recorded in every manifest).

Each check fails with :class:`TensorRTUnavailable` saying what is missing. TensorRT is imported
inside functions only, so the rest of the backend imports (and is unit-tested) without it.
"""

from __future__ import annotations

from typing import Any

from graphcnn.backends.to_tensorrt.errors import TensorRTError, TensorRTUnavailable

MIN_TENSORRT = 10


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


def device_index(device: int | str) -> int:
    """``0``, ``"cuda"``, ``"cuda:1"`` -> a CUDA device index."""
    if isinstance(device, int):
        return device
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise TensorRTError(f"TensorRT runs on a CUDA device, not {device!r}")
    return int(index or 0)
