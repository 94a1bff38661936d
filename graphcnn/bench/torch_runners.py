"""The PyTorch backends: ``torch`` (eager, the module ``to_torch`` builds from the graph as
compiled) and ``torch-compile`` (that module through ``torch.compile``, falling back to eager
with the reason). The float32 eager module on the run's device is also the reference every
backend is checked against; :func:`prepare_torch_module` / :func:`prepare_torch_input` are the
GPU path's hook (half precision in channels_last)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphcnn.bench.options import HALF_TYPES
from graphcnn.bench.runner import Context, Runner, first_output, short_error

if TYPE_CHECKING:
    import numpy as np
    import torch

    Array = np.ndarray[Any, Any]


def torch_to_numpy(y: Any) -> Array:
    """The first output as a float32 numpy array on the host."""
    return first_output(y).detach().float().cpu().numpy()  # type: ignore[no-any-return]


def prepare_torch_module(module: torch.nn.Module, device: str, half: str | None) -> Any:
    """The GPU path's hook: the module on ``device``; with ``half`` in that dtype, channels_last."""
    import torch

    module = module.to(device)
    if half is not None:
        module = module.to(dtype=getattr(torch, HALF_TYPES[half])).to(
            memory_format=torch.channels_last
        )
    return module.eval()


def prepare_torch_input(x: Array, device: str, half: str | None) -> Any:
    """A numpy batch as the tensor :func:`prepare_torch_module`'s module takes."""
    import torch

    t = torch.from_numpy(x).to(device)
    if half is not None:
        t = t.to(getattr(torch, HALF_TYPES[half])).contiguous(memory_format=torch.channels_last)
    return t


def torch_sync(device: str) -> Callable[[], None]:
    """What waits for ``device``'s queued work: CUDA synchronisation, or nothing on the CPU."""
    if device != "cuda":
        return lambda: None
    import torch

    return torch.cuda.synchronize


def inference(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` called under ``torch.inference_mode()``."""
    import torch

    def run(x: Any) -> Any:
        with torch.inference_mode():
            return fn(x)

    return run


def reference_module(ctx: Context) -> Any:
    """The float32 eager module of the graph as compiled on the run's device, built once."""
    if ctx.ref_module is None:
        from graphcnn.backends.to_torch import to_torch

        ctx.ref_module = prepare_torch_module(to_torch(ctx.graph, ctx.weights), ctx.device, None)
    return ctx.ref_module


def setup_torch(ctx: Context) -> Runner:
    import copy

    module = reference_module(ctx)
    if ctx.half is not None:
        module = prepare_torch_module(copy.deepcopy(module), ctx.device, ctx.half)
    dtype = HALF_TYPES[ctx.half] if ctx.half else "float32"
    return Runner(
        "torch",
        dtype,
        lambda x: prepare_torch_input(x, ctx.device, ctx.half),
        inference(module),
        torch_to_numpy,
        torch_sync(ctx.device),
        detail={"graph": "as compiled (no passes)", "memory_format": _memory_format(ctx)},
    )


def _memory_format(ctx: Context) -> str:
    return "channels_last" if ctx.half else "contiguous"


def setup_torch_compile(ctx: Context) -> Runner:
    import copy

    import torch

    eager = reference_module(ctx)
    if ctx.half is not None:
        eager = prepare_torch_module(copy.deepcopy(eager), ctx.device, ctx.half)
    dtype = HALF_TYPES[ctx.half] if ctx.half else "float32"
    runner = Runner(
        "torch-compile",
        dtype,
        lambda x: prepare_torch_input(x, ctx.device, ctx.half),
        inference(eager),
        torch_to_numpy,
        torch_sync(ctx.device),
        fallback=inference(eager),
        detail={"mode": "default", "backend": "inductor", "dynamic": False},
    )
    try:
        compiled = torch.compile(eager, dynamic=False)
    except Exception as e:  # noqa: BLE001 - torch.compile raises many kinds (RuntimeError, ...)
        runner.fallback_reason = f"torch.compile failed: {short_error(e)}"
        return runner
    runner.forward = inference(compiled)
    return runner
