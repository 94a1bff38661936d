"""INT8 calibration data for implicit quantization: samples cut into fixed-size batches, and
the ``IInt8EntropyCalibrator2`` that feeds them to TensorRT.

TensorRT deprecated calibrators in 10.1 in favour of explicit quantization (Q/DQ nodes in the
ONNX model); they still work in 10.x.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_tensorrt.errors import TensorRTError

if TYPE_CHECKING:
    import numpy as np
    import tensorrt as trt
    from typing_extensions import Buffer

    Array = np.ndarray[Any, Any]

REMAINDERS = ("pad", "drop")


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
