"""Where a benchmark ran: library versions, the machine
(:func:`graphcnn.analysis.devices.machine`), the load average, and the device's peak FLOP/s
that achieved rates are compared with."""

from __future__ import annotations

import os
from typing import Any

from graphcnn.analysis.devices import get_device, machine
from graphcnn.bench.options import HALF_TYPES


def environment() -> dict[str, Any]:
    """Versions, CPU model and count, and the load average before the run."""
    from importlib.metadata import PackageNotFoundError, version

    def v(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    host = machine()
    return {
        "python": host["python"],
        "torch": v("torch"),
        "onnxruntime": v("onnxruntime-gpu") or v("onnxruntime"),
        "onnx": v("onnx"),
        "cpu_model": host["cpu_model"],
        "nproc": host["nproc"],
        "loadavg_before": loadavg(),
    }


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rate(device: str, half: str | None) -> tuple[float | None, str]:
    """The device's peak FLOP/s for the run's float type, and where it comes from."""
    if device == "cpu":
        dev = get_device("cpu")
        return dev.peak("float32"), "cpu float32, measured (numpy GEMM, all cores): " + (
            dev.description
        )
    import torch

    name = torch.cuda.get_device_name()
    if "H100" in name and "PCIE" not in name.upper():
        dev = get_device("h100-sxm")
        dtype = HALF_TYPES[half] if half else "float32"
        return dev.peak(dtype), f"h100-sxm {dtype} datasheet ({name})"
    return None, f"no peak rate known for {name}"
