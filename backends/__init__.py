"""graphcnn.backends: lowering of the IR to execution targets, one module per target.

This folder installs as ``graphcnn.backends`` (see ``[tool.setuptools.package-dir]``).
Backends import their heavy libraries (torch, onnx, tensorrt) lazily, inside functions.

:data:`TARGETS` is the registry ``graphcnn compile --target`` dispatches through: each target
names the module that emits it (imported only when used) and the compile options it reads.
That module provides ``emit(graph, weights, out, options, echo)``, which writes the
artifacts atomically and reports through ``echo``, and may provide ``preflight()``, which
checks what the target needs (a GPU, a library) before any work is done.
"""

if __name__ != "graphcnn.backends":
    raise ImportError(
        f"this package must be imported as 'graphcnn.backends', not {__name__!r}: "
        "install graphcnn (pip install -e .) and use 'import graphcnn.backends'"
    )

import importlib  # noqa: E402 - after the import-name guard
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


@dataclass(frozen=True)
class EmitOptions:
    """What ``graphcnn compile`` passes to a target's ``emit``; each target reads its own."""

    origin: str = ""
    """Where the weights come from (a checkpoint path, or the seeded initialisation)."""
    pipeline: str = "none"
    class_name: str = "Model"
    opset: int = 17
    static_batch: int | None = None
    int8: bool = False
    calibration: str | None = None
    fp16: bool = False
    batch_range: tuple[int, int, int] | None = None
    workspace: int | None = None
    timing_cache: str | None = None


Emit = Callable[[Any, Any, Path, EmitOptions, Callable[[str], Any]], Any]


@dataclass(frozen=True)
class Target:
    """A ``compile`` target: the module that emits it and the options only it reads."""

    name: str
    module: str
    help: str
    options: frozenset[str] = frozenset()
    """Names of the :class:`EmitOptions` fields (CLI flags) this target reads besides the
    common ones; ``compile`` refuses them for the other targets."""

    def emitter(self) -> Emit:
        emit: Emit = importlib.import_module(self.module).emit
        return emit

    def preflight(self) -> None:
        """The target module's ``preflight()``, if it has one."""
        check = getattr(importlib.import_module(self.module), "preflight", None)
        if check is not None:
            check()


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "torch",
            "graphcnn.backends.to_torch.emit",
            "a standalone nn.Module source file + its weights",
            frozenset({"class_name"}),
        ),
        Target(
            "onnx",
            "graphcnn.backends.to_onnx.emit",
            "an ONNX model",
            frozenset({"opset", "static_batch", "int8", "calibration"}),
        ),
        Target(
            "tensorrt",
            "graphcnn.backends.to_tensorrt.entry",
            "a TensorRT engine + its manifest (needs TensorRT 10 and a CUDA GPU)",
            frozenset(
                {"opset", "int8", "calibration", "fp16", "batch_range", "workspace", "timing_cache"}
            ),
        ),
    )
}
"""Every ``graphcnn compile --target`` by name."""


def targets_reading(option: str) -> list[str]:
    """The targets that read ``option`` (an :class:`EmitOptions` field)."""
    return [t.name for t in TARGETS.values() if option in t.options]


__all__ = ["TARGETS", "EmitOptions", "Target", "targets_reading"]
