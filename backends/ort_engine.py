"""Run compiled ONNX models in ONNX Runtime: provider choice, threads, validation, I/O binding.

:class:`OrtEngine` opens a model with the best execution provider that actually works here —
TensorRT, then CUDA, then CPU, unless told otherwise — because ``onnxruntime-gpu`` lists the GPU
providers even where their libraries or a GPU are missing, and then silently falls back. The
providers the session really uses are in :attr:`OrtEngine.providers`. Inputs are validated
(shape and dtype, with both expected and actual in the message) before they reach the runtime.
On CUDA, :meth:`OrtEngine.run_torch` binds torch CUDA tensors directly (I/O binding, no copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import torch

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def usable_providers() -> list[str]:
    """Providers that can run here: listed by ONNX Runtime AND their native libraries load.

    onnxruntime-gpu lists CUDA and TensorRT everywhere; asking for them without a GPU driver or
    TensorRT's libraries makes it log errors and fall back, so probe the libraries first.
    """
    import ctypes

    import onnxruntime as ort

    def loads(*names: str) -> bool:
        for name in names:
            try:
                ctypes.CDLL(name)
                return True
            except OSError:
                continue
        return False

    listed = ort.get_available_providers()
    gpu = loads("libcuda.so.1", "libcuda.so", "nvcuda.dll")
    trt = gpu and loads("libnvinfer.so.10", "libnvinfer.so.11", "libnvinfer.so")
    ok = {
        "CPUExecutionProvider": True,
        "CUDAExecutionProvider": gpu,
        "TensorrtExecutionProvider": trt,
    }
    return [p for p in PREFERENCE if p in listed and ok.get(p, False)]


class EngineError(GraphcnnError):
    """A model cannot be opened, or an input does not fit it."""


def load_model_bytes(model: str | Path | bytes | onnx.ModelProto) -> bytes | str:
    """A path (checked to exist and parse) or serialized bytes for ``InferenceSession``."""
    if isinstance(model, (str, Path)):
        import onnx

        p = Path(model)
        if not p.is_file():
            raise EngineError(f"no such model file: {str(p)!r}")
        try:
            onnx.load_model(str(p), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and friends
            raise EngineError(
                f"{p.name} is not a valid ONNX model ({type(e).__name__}: {e})",
                "the file may be truncated or not an ONNX file",
            ) from None
        return str(p)
    if isinstance(model, bytes):
        return model
    return model.SerializeToString()  # type: ignore[no-any-return]


class OrtEngine:
    """An ONNX Runtime session with graphcnn's defaults and checks."""

    def __init__(
        self,
        model: str | Path | bytes | onnx.ModelProto,
        providers: Sequence[str] | None = None,
        device: str = "auto",
        threads: int | None = None,
        opt_level: str = "all",
    ) -> None:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        available = usable_providers()
        if providers is None:
            wanted = ["CPUExecutionProvider"] if device == "cpu" else list(PREFERENCE)
            if device == "cuda":
                wanted = ["CUDAExecutionProvider"]
            providers = [p for p in wanted if p in available]
        missing = [p for p in providers if p not in available]
        if missing:
            raise EngineError(
                f"execution provider(s) {', '.join(missing)} not available",
                f"available: {', '.join(available)}",
            )
        if opt_level not in OPT_LEVELS:
            raise EngineError(
                f"unknown optimisation level {opt_level!r}",
                f"choose one of {', '.join(OPT_LEVELS)}",
            )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # a provider that cannot load falls back; we report it
        source = load_model_bytes(model)
        try:
            self.session = ort.InferenceSession(
                source, sess_options=opts, providers=list(providers)
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph
            raise EngineError(f"ONNX Runtime cannot open the model: {e}") from None
        if device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise EngineError(
                "CUDA was requested but ONNX Runtime fell back to the CPU",
                "check that a GPU and the CUDA libraries are present",
            )
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: list[int | str] = list(inp.shape)
        self.input_type: str = inp.type
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses, best first."""
        return list(self.session.get_providers())

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")

    def check(self, shape: Sequence[int], dtype: str) -> None:
        """Raise :class:`EngineError` unless ``shape``/``dtype`` fit the model's input."""
        want = "float32" if self.input_type == "tensor(float)" else self.input_type
        if dtype != want:
            raise EngineError(
                f"input dtype {dtype}, expected {want}", "convert with x.astype('float32')"
            )
        exp = self.input_shape
        ok = len(shape) == len(exp) and all(
            isinstance(e, str) or e is None or e == s for e, s in zip(exp, shape, strict=True)
        )
        if not ok:
            shown = "[" + ", ".join(str(e) for e in exp) + "]"
            raise EngineError(f"input shape {list(shape)}, expected {shown}")

    def run(self, x: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
        """Run on a numpy batch; returns every output (logits first)."""
        self.check(x.shape, str(x.dtype))
        return list(self.session.run(self.output_names, {self.input_name: x}))

    def run_torch(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run on a torch tensor; on CUDA the tensors are bound in place (I/O binding)."""
        import torch

        self.check(tuple(x.shape), str(x.dtype).removeprefix("torch."))
        if not (x.is_cuda and self.on_gpu):
            return [torch.from_numpy(y) for y in self.run(x.detach().cpu().numpy())]
        x = x.contiguous()
        binding = self.session.io_binding()
        binding.bind_input(
            self.input_name, "cuda", x.device.index or 0, "float32", list(x.shape), x.data_ptr()
        )
        outs = []
        for o in self.session.get_outputs():
            shape = [x.shape[0] if isinstance(d, str) else d for d in o.shape]
            y = torch.empty(shape, dtype=torch.float32, device=x.device)
            binding.bind_output(o.name, "cuda", x.device.index or 0, "float32", shape, y.data_ptr())
            outs.append(y)
        self.session.run_with_iobinding(binding)
        return outs
