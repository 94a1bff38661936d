"""Run a serialized engine: :class:`TensorRTRunner` executes it on torch CUDA tensors
(``data_ptr()`` addresses, the current torch stream; no pycuda or cuda-python), validating
device, dtype, shape and profile (:func:`check_input`, which needs no GPU).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphcnn.backends.to_tensorrt.errors import TensorRTError
from graphcnn.backends.to_tensorrt.runtime import require_cuda, require_tensorrt

if TYPE_CHECKING:
    import torch

_TRT_DTYPES = {
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8",
    "INT32": "int32", "INT64": "int64", "BOOL": "bool", "UINT8": "uint8",
}  # fmt: skip


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
